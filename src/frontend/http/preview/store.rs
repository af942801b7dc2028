//! The key space as a zarrs readable store, so the preview decodes served chunks with zarrs
//! itself (every codec and both Zarr formats the tree serves) rather than a second decoder.
//! Blocking, like the key space: use it on a blocking thread. A chunk that fails to compute is
//! kept whole ([`KeyStore::take_failure`]) so its HTTP status survives zarrs' error types.

use std::sync::Arc;

use parking_lot::Mutex;
use zarrs::storage::byte_range::{ByteRange, ByteRangeIterator, InvalidByteRangeError};
use zarrs::storage::{
    Bytes, MaybeBytes, MaybeBytesIterator, ReadableStorageTraits, StorageError, StoreKey,
};

use crate::keyspace::{KeyError, KeySpace, Kind};

/// Reads of one key space through zarrs' storage traits.
pub(crate) struct KeyStore {
    keys: Arc<KeySpace>,
    failure: Mutex<Option<KeyError>>,
}

impl KeyStore {
    /// A store over `keys`.
    pub(crate) fn new(keys: Arc<KeySpace>) -> KeyStore {
        KeyStore {
            keys,
            failure: Mutex::new(None),
        }
    }

    /// The first chunk failure a read met, if any.
    pub(crate) fn take_failure(&self) -> Option<KeyError> {
        self.failure.lock().take()
    }

    /// The whole value of `key`, `None` when there is no such key.
    fn value(&self, key: &StoreKey) -> Result<Option<Bytes>, StorageError> {
        match self.keys.read(key.as_str(), 0, usize::MAX) {
            Ok(slice) => Ok(Some(Bytes::from_owner(slice))),
            Err(KeyError::NotFound(_)) => Ok(None),
            Err(e) => {
                let message = e.to_string();
                self.failure.lock().get_or_insert(e);
                Err(StorageError::Other(message))
            }
        }
    }
}

impl ReadableStorageTraits for KeyStore {
    fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        self.value(key)
    }

    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        let Some(value) = self.value(key)? else {
            return Ok(None);
        };
        Ok(Some(Box::new(
            byte_ranges.map(move |range| part(&value, range)),
        )))
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        Ok(match self.keys.stat(key.as_str()) {
            Some(Kind::File(len)) => Some(len),
            Some(Kind::Dir) | None => None,
        })
    }

    fn supports_get_partial(&self) -> bool {
        // A part costs the whole value (computed and cached whole).
        false
    }
}

/// `range` of `value`, or why it is not within it.
fn part(value: &Bytes, range: ByteRange) -> Result<Bytes, StorageError> {
    let len = value.len() as u64;
    let (start, end) = (range.start(len), range.end(len));
    if start > end || end > len {
        return Err(InvalidByteRangeError::new(range, len).into());
    }
    // Both ends are within the value.
    Ok(value.slice(start as usize..end as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_ranges_of_the_value() {
        let value = Bytes::from_static(b"0123456789");
        let part_of = |r| part(&value, r).map(|b| b.to_vec());
        assert_eq!(part_of(ByteRange::FromStart(2, Some(3))).unwrap(), b"234");
        assert_eq!(part_of(ByteRange::Suffix(2)).unwrap(), b"89");
        assert_eq!(
            part_of(ByteRange::FromStart(0, None)).unwrap(),
            b"0123456789"
        );
        assert!(part_of(ByteRange::FromStart(8, Some(5))).is_err());
    }
}
