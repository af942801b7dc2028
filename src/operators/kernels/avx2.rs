//! Loops compiled a second time for AVX2 and chosen at run time when the CPU has it.
//!
//! The portable build targets baseline x86-64 (SSE2), where a loop over `f64` does one or two
//! values per instruction and a float-to-int cast is a scalar call per value. A loop written
//! without branches, `#[inline(always)]`, and called from a twin marked
//! `#[target_feature(enable = "avx2")]` when [`has_avx2`] does four: the same arithmetic in
//! the same order, so its results are bit for bit those of the portable build. (A closure
//! handed to one generic AVX2 function is not inlined into it, hence a twin per loop.)

/// Whether the CPU runs AVX2 instructions (detected once, then a load).
#[inline]
pub(crate) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
