//! The pure per-chunk computations of views: each file is one numeric kernel that turns the
//! values of a chunk (a slice in C order, with its shape) into the values a view serves.
//! Nothing here reads a file, touches the cache or knows about the tree; a view operator is a
//! thin wrapper that fetches its input chunks, calls a kernel and encodes the result.
//!
//! - [`bitround`]: numcodecs-compatible mantissa rounding (`BitRound(keepbits)`).
//! - [`pack`]: CF packing of floats into 8- and 16-bit integers, with a mergeable data range.
//! - [`coarsen`]: NaN-skipping block reduction along two axes, composable level by level.
//! - [`expr`]: a small expression language over named n-d arrays, with xarray's broadcasting
//!   by dimension name and numpy's type promotion.

pub(crate) mod avx2;
pub mod bitround;
pub mod coarsen;
pub mod expr;
mod float;
pub mod pack;
pub(crate) mod regrid;

pub use float::Float;

#[cfg(test)]
pub(crate) mod test_rng {
    //! A small deterministic generator for the kernels' randomised tests (splitmix64).

    /// Splitmix64 state.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        /// The next 64 random bits.
        pub(crate) fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        /// A uniform value in `[lo, hi)`.
        pub(crate) fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
            let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            lo + (hi - lo) * unit
        }
    }
}
