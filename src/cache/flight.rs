//! Single flight: of all callers asking for the same uncomputed key at the same time, one (the
//! leader) computes and the others wait for its result. A failed computation is not shared:
//! waiters are told it failed and try again themselves.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

/// The shared state of one computation.
pub(super) struct Flight {
    outcome: Mutex<Option<Option<Arc<Vec<u8>>>>>,
    done: Condvar,
}

impl Flight {
    /// Waits for the leader: its bytes, or `None` if it failed.
    pub(super) fn wait(&self) -> Option<Arc<Vec<u8>>> {
        let mut outcome = self.outcome.lock();
        loop {
            if let Some(result) = outcome.as_ref() {
                return result.clone();
            }
            self.done.wait(&mut outcome);
        }
    }
}

/// Computations in progress, by key.
pub(super) struct Flights<K: Hash + Eq + Clone> {
    map: Mutex<HashMap<K, Arc<Flight>>>,
}

/// What a caller of [`Flights::join`] is.
pub(super) enum Joined<'a, K: Hash + Eq + Clone> {
    /// Compute, then [`Leader::finish`].
    Leader(Leader<'a, K>),
    /// Someone else computes: [`Flight::wait`].
    Follower(Arc<Flight>),
}

/// The one caller computing a key. Dropping it unfinished (an early return or a panic) tells
/// the waiters the computation failed.
pub(super) struct Leader<'a, K: Hash + Eq + Clone> {
    flights: &'a Flights<K>,
    key: K,
    flight: Arc<Flight>,
    finished: bool,
}

impl<K: Hash + Eq + Clone> Default for Flights<K> {
    fn default() -> Self {
        Flights {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone> Flights<K> {
    /// Joins the computation of `key`, leading it if none is in progress.
    pub(super) fn join(&self, key: &K) -> Joined<'_, K> {
        let mut map = self.map.lock();
        if let Some(flight) = map.get(key) {
            return Joined::Follower(flight.clone());
        }
        let flight = Arc::new(Flight {
            outcome: Mutex::new(None),
            done: Condvar::new(),
        });
        map.insert(key.clone(), flight.clone());
        Joined::Leader(Leader {
            flights: self,
            key: key.clone(),
            flight,
            finished: false,
        })
    }

    /// Number of computations in progress.
    pub(super) fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// Whether no computation is in progress.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Hash + Eq + Clone> Leader<'_, K> {
    /// Hands the result (`None`: failed) to every waiter and ends the flight.
    pub(super) fn finish(mut self, result: Option<Arc<Vec<u8>>>) {
        self.complete(result);
    }

    fn complete(&mut self, result: Option<Arc<Vec<u8>>>) {
        if self.finished {
            return;
        }
        self.finished = true;
        *self.flight.outcome.lock() = Some(result);
        self.flight.done.notify_all();
        let mut map = self.flights.map.lock();
        if map
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            map.remove(&self.key);
        }
    }
}

impl<K: Hash + Eq + Clone> Drop for Leader<'_, K> {
    fn drop(&mut self) {
        self.complete(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followers_get_the_leaders_bytes() {
        let flights = Arc::new(Flights::default());
        let Joined::Leader(leader) = flights.join(&1) else {
            panic!("first caller leads")
        };
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let Joined::Follower(flight) = flights.join(&1) else {
                    panic!("later callers follow")
                };
                std::thread::spawn(move || flight.wait())
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(20));
        leader.finish(Some(Arc::new(vec![9])));
        for w in waiters {
            assert_eq!(w.join().unwrap().as_deref(), Some(&vec![9]));
        }
        assert!(flights.is_empty());
    }

    #[test]
    fn a_dropped_leader_fails_its_followers() {
        let flights = Flights::default();
        let leader = flights.join(&"k");
        let Joined::Follower(flight) = flights.join(&"k") else {
            panic!("second caller follows")
        };
        drop(leader);
        assert!(flight.wait().is_none());
        assert!(matches!(flights.join(&"k"), Joined::Leader(_)));
    }
}
