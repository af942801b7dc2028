//! The bytes of a read: a range of a shared buffer (a metadata document or a cached chunk), so
//! serving a read copies nothing until the front end writes it out.

use std::ops::Deref;
use std::sync::Arc;

/// Up to `size` bytes of a buffer from an offset.
#[derive(Debug, Clone)]
pub struct Slice {
    buffer: Arc<Vec<u8>>,
    start: usize,
    end: usize,
}

impl Slice {
    /// `size` bytes of `buffer` from `offset`, clipped to its end.
    pub fn new(buffer: Arc<Vec<u8>>, offset: u64, size: usize) -> Slice {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(buffer.len());
        let end = start.saturating_add(size).min(buffer.len());
        Slice { buffer, start, end }
    }
}

impl Deref for Slice {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buffer[self.start..self.end]
    }
}

impl AsRef<[u8]> for Slice {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_clip_to_the_buffer() {
        let buffer = Arc::new((0u8..10).collect::<Vec<_>>());
        assert_eq!(&*Slice::new(buffer.clone(), 2, 3), &[2, 3, 4]);
        assert_eq!(&*Slice::new(buffer.clone(), 8, 100), &[8, 9]);
        assert!(Slice::new(buffer.clone(), 20, 5).is_empty());
        assert!(Slice::new(buffer, u64::MAX, usize::MAX).is_empty());
    }
}
