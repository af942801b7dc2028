//! The process allocator: the system allocator, keeping the last few freed chunk-sized blocks
//! (bounded in count and bytes) to hand out again for the next allocation of about that size.
//!
//! A chunk computation allocates buffers of one or a few megabytes (decoded source regions,
//! coarsened tiles, encoded output) and frees them a moment later; the next chunk asks for the
//! same sizes again. The daemon keeps such blocks out of malloc's arenas so its resident memory
//! stays near what its caches count (see `bound_allocator_retention`), which on its own makes
//! each of them a fresh mapping: every page of every chunk buffer was faulted in and zeroed by
//! the kernel, about a third of the daemon's CPU on a pyramid, pack or regrid view. Keeping a
//! handful of freed blocks mapped removes that, within the share of its memory budget the
//! daemon sets aside for them (`atlasfs::cache::reused_buffer_share`). Written here because
//! general-purpose allocators (mimalloc, jemalloc) retain freed memory by policies of their own:
//! with mimalloc the pyramid's peak RSS rose by 300 MB.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Blocks at least this large are recycled; smaller ones come from malloc's arenas, which keep
/// freed memory of their own.
const SMALLEST: usize = 1 << 20;
/// Most bytes of freed blocks kept at once, unless limited by [`RecyclingAllocator::limit`]:
/// the most the memory budget sets aside for them.
const KEPT_BYTES: usize = atlasfs::cache::REUSED_BUFFERS_MAX as usize;
/// Most freed blocks kept at once.
const KEPT_BLOCKS: usize = 16;

/// [`System`], with up to [`KEPT_BLOCKS`] freed blocks of at least [`SMALLEST`] bytes kept for
/// reuse.
pub(crate) struct RecyclingAllocator {
    kept: Mutex<Kept>,
    kept_bytes_limit: AtomicUsize,
}

/// Freed blocks, oldest first, as (address, usable size).
struct Kept {
    blocks: [(usize, usize); KEPT_BLOCKS],
    len: usize,
    bytes: usize,
}

impl RecyclingAllocator {
    pub(crate) const fn new() -> Self {
        RecyclingAllocator {
            kept: Mutex::new(Kept {
                blocks: [(0, 0); KEPT_BLOCKS],
                len: 0,
                bytes: 0,
            }),
            kept_bytes_limit: AtomicUsize::new(KEPT_BYTES),
        }
    }

    /// Keeps at most `bytes` of freed blocks from now on (blocks kept beyond it go back as
    /// more are freed): the daemon's share of its memory budget for reused buffers.
    pub(crate) fn limit(&self, bytes: u64) {
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX).min(KEPT_BYTES);
        self.kept_bytes_limit.store(bytes, Ordering::Relaxed);
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The smallest kept block that holds `layout` without wasting more than a quarter of it.
    fn take(&self, layout: Layout) -> Option<*mut u8> {
        let size = layout.size();
        let mut kept = self.kept();
        let len = kept.len;
        let (index, &(address, usable)) = kept.blocks[..len]
            .iter()
            .enumerate()
            .filter(|(_, &(address, usable))| {
                usable >= size && usable - size <= size / 4 && address % layout.align() == 0
            })
            .min_by_key(|(_, &(_, usable))| usable)?;
        kept.blocks.copy_within(index + 1..len, index);
        kept.len -= 1;
        kept.bytes -= usable;
        Some(address as *mut u8)
    }

    /// Keeps `ptr` for reuse, giving the oldest kept blocks back to the system when over the
    /// bounds (or `ptr` itself when it alone exceeds them).
    ///
    /// # Safety
    /// `ptr` must be a live block of this allocator that the caller gives up.
    unsafe fn keep(&self, ptr: *mut u8) {
        // SAFETY: `ptr` is a live block of the system allocator.
        let usable = unsafe { libc::malloc_usable_size(ptr.cast()) };
        let limit = self.kept_bytes_limit.load(Ordering::Relaxed);
        let fits = usable <= limit;
        let added = if fits { usable } else { 0 };
        let mut released = [0usize; KEPT_BLOCKS + 1];
        let mut released_len = 0;
        {
            let mut kept = self.kept();
            while kept.len > 0 && (kept.len == KEPT_BLOCKS || kept.bytes + added > limit) {
                let (oldest, oldest_usable) = kept.blocks[0];
                let len = kept.len;
                kept.blocks.copy_within(1..len, 0);
                kept.len -= 1;
                kept.bytes -= oldest_usable;
                released[released_len] = oldest;
                released_len += 1;
            }
            if fits {
                let len = kept.len;
                kept.blocks[len] = (ptr as usize, usable);
                kept.len += 1;
                kept.bytes += usable;
            } else {
                released[released_len] = ptr as usize;
                released_len += 1;
            }
        }
        for &address in &released[..released_len] {
            // SAFETY: each was a live block given up to this allocator and is freed once.
            unsafe { libc::free(address as *mut libc::c_void) };
        }
    }

    #[cfg(test)]
    fn kept_bytes(&self) -> usize {
        self.kept().bytes
    }
}

// SAFETY: every block handed out comes from the system allocator (fresh, or kept after being
// freed by its owner), with at least the requested size and alignment.
unsafe impl GlobalAlloc for RecyclingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= SMALLEST {
            if let Some(ptr) = self.take(layout) {
                return ptr;
            }
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= SMALLEST {
            if let Some(ptr) = self.take(layout) {
                // SAFETY: the kept block holds at least `layout.size()` bytes. Clearing mapped
                // pages costs about half of faulting in fresh zeroed ones.
                unsafe { ptr.write_bytes(0, layout.size()) };
                return ptr;
            }
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= SMALLEST {
            // SAFETY: the caller gives up a live block of this allocator.
            unsafe { self.keep(ptr) }
        } else {
            // SAFETY: forwarded with the caller's block and layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded; every block, kept or not, is a block of the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    #[test]
    fn a_freed_chunk_sized_block_serves_the_next_allocation_of_about_its_size() {
        let allocator = RecyclingAllocator::new();
        unsafe {
            let first = allocator.alloc(layout(3 << 20));
            first.write_bytes(7, 3 << 20);
            allocator.dealloc(first, layout(3 << 20));
            assert!(allocator.kept_bytes() >= 3 << 20);
            // Too small a request for the kept block: it stays kept.
            let small = allocator.alloc(layout(2 << 20));
            assert_ne!(small, first);
            let again = allocator.alloc(layout((3 << 20) - 4096));
            assert_eq!(again, first);
            assert_eq!(allocator.kept_bytes(), 0);
            allocator.dealloc(small, layout(2 << 20));
            again.write_bytes(9, 3 << 20);
            allocator.dealloc(again, layout((3 << 20) - 4096));
            let zeroed = allocator.alloc_zeroed(layout(3 << 20));
            assert_eq!(zeroed, first);
            let values = std::slice::from_raw_parts(zeroed, 3 << 20);
            assert!(values.iter().all(|&v| v == 0));
            allocator.dealloc(zeroed, layout(3 << 20));
        }
    }

    #[test]
    fn small_blocks_are_not_kept_and_kept_bytes_stay_bounded() {
        let allocator = RecyclingAllocator::new();
        unsafe {
            let small = allocator.alloc(layout(4096));
            allocator.dealloc(small, layout(4096));
            assert_eq!(allocator.kept_bytes(), 0);
            let blocks: Vec<_> = (0..6).map(|_| allocator.alloc(layout(20 << 20))).collect();
            for &block in &blocks {
                allocator.dealloc(block, layout(20 << 20));
            }
            assert!(allocator.kept_bytes() <= KEPT_BYTES);
            assert!(allocator.kept_bytes() >= 3 * (20 << 20));
            let many: Vec<_> = (0..KEPT_BLOCKS + 4)
                .map(|_| allocator.alloc(layout(1 << 20)))
                .collect();
            for &block in &many {
                allocator.dealloc(block, layout(1 << 20));
            }
            assert!(allocator.kept().len <= KEPT_BLOCKS);
            allocator.limit(8 << 20);
            let block = allocator.alloc(layout(1 << 20));
            allocator.dealloc(block, layout(1 << 20));
            assert!(allocator.kept_bytes() <= 8 << 20);
            allocator.limit(0);
            let block = allocator.alloc(layout(1 << 20));
            allocator.dealloc(block, layout(1 << 20));
            assert_eq!(allocator.kept_bytes(), 0);
        }
    }
}
