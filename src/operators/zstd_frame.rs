//! zstd frames written without zstd's block pre-splitter, so that they decode as fast as the
//! frames numcodecs (and so zarr-python and xarray) writes.
//!
//! zstd 1.5.7 began splitting blocks before compressing them at levels from 3. On noisy data
//! (a packed view's low bytes) the smaller blocks make Huffman-coded literals pay: frames 5 %
//! smaller that take 10× longer to decode, for every reader of every chunk. The pre-splitter
//! is an experimental parameter that neither zarrs' codec nor the `zstd` crate's safe API
//! can set, hence this thin wrapper over `zstd-sys`; the frames are ordinary zstd frames
//! (content size recorded, no checksum) that any decoder reads.

use std::cell::RefCell;
use std::ptr::NonNull;

use zstd_sys::{ZSTD_ResetDirective, ZSTD_cParameter};

/// `ZSTD_c_blockSplitterLevel` (zstd.h): 1 turns the pre-splitter off.
const BLOCK_SPLITTER_LEVEL: ZSTD_cParameter = ZSTD_cParameter::ZSTD_c_experimentalParam20;
const NO_PRE_SPLIT: i32 = 1;

/// A compression context, reused by its thread.
struct Context(NonNull<zstd_sys::ZSTD_CCtx>);

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the pointer came from ZSTD_createCCtx and is freed once, here.
        unsafe {
            zstd_sys::ZSTD_freeCCtx(self.0.as_ptr());
        }
    }
}

thread_local! {
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// The zstd error of a return code, if it is one.
fn check(code: usize) -> Result<usize, String> {
    // SAFETY: both functions take any code; the name is a static C string.
    unsafe {
        if zstd_sys::ZSTD_isError(code) == 0 {
            return Ok(code);
        }
        let name = std::ffi::CStr::from_ptr(zstd_sys::ZSTD_getErrorName(code));
        Err(format!("zstd: {}", name.to_string_lossy()))
    }
}

impl Context {
    fn new() -> Result<Context, String> {
        // SAFETY: ZSTD_createCCtx returns an owned context or null.
        NonNull::new(unsafe { zstd_sys::ZSTD_createCCtx() })
            .map(Context)
            .ok_or_else(|| "zstd: cannot allocate a compression context".to_string())
    }

    fn compress(&mut self, values: &[u8], level: i32) -> Result<Vec<u8>, String> {
        let cctx = self.0.as_ptr();
        // SAFETY: `cctx` is a live context owned by `self`; the input pointer and length come
        // from one slice, and the output buffer has `bound` bytes of capacity, of which
        // ZSTD_compress2 initialises the `written` it returns (≤ bound) before set_len.
        unsafe {
            check(zstd_sys::ZSTD_CCtx_reset(
                cctx,
                ZSTD_ResetDirective::ZSTD_reset_session_and_parameters,
            ))?;
            check(zstd_sys::ZSTD_CCtx_setParameter(
                cctx,
                ZSTD_cParameter::ZSTD_c_compressionLevel,
                level,
            ))?;
            // A zstd without the pre-splitter refuses the parameter, and has nothing to turn off.
            let _ = zstd_sys::ZSTD_CCtx_setParameter(cctx, BLOCK_SPLITTER_LEVEL, NO_PRE_SPLIT);
            let bound = zstd_sys::ZSTD_compressBound(values.len());
            let mut out = Vec::<u8>::with_capacity(bound);
            let written = check(zstd_sys::ZSTD_compress2(
                cctx,
                out.as_mut_ptr().cast(),
                bound,
                values.as_ptr().cast(),
                values.len(),
            ))?;
            out.set_len(written);
            Ok(out)
        }
    }
}

/// `values` as one zstd frame at `level`, without the block pre-splitter.
///
/// # Errors
/// zstd's message when it fails (an out-of-range level is clamped by zstd, not refused).
pub(crate) fn compress(values: &[u8], level: i32) -> Result<Vec<u8>, String> {
    CONTEXT.with(|slot| {
        let mut slot = slot.borrow_mut();
        let context = match slot.as_mut() {
            Some(context) => context,
            None => slot.insert(Context::new()?),
        };
        context.compress(values, level)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The number of blocks in one zstd frame, read from the block headers.
    fn block_count(frame: &[u8]) -> usize {
        assert_eq!(frame[0..4], [0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
        let descriptor = frame[4];
        let single_segment = descriptor & 0x20 != 0;
        let fcs = match descriptor >> 6 {
            0 => usize::from(single_segment),
            1 => 2,
            2 => 4,
            _ => 8,
        };
        let dict = [0, 1, 2, 4][usize::from(descriptor & 3)];
        let mut at = 5 + usize::from(!single_segment) + dict + fcs;
        let mut blocks = 0;
        loop {
            let header = u32::from(frame[at])
                | u32::from(frame[at + 1]) << 8
                | u32::from(frame[at + 2]) << 16;
            let (last, kind, size) = (header & 1, (header >> 1) & 3, (header >> 3) as usize);
            at += 3 + if kind == 1 { 1 } else { size };
            blocks += 1;
            if last == 1 {
                assert_eq!(at, frame.len(), "one frame, no trailing bytes");
                return blocks;
            }
        }
    }

    /// Packed-like 16-bit values: a smooth high byte and a noisy low byte.
    fn noisy_int16(n: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .flat_map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let v = (i / 700) as i16 * 40 + (state % 97) as i16;
                v.to_le_bytes()
            })
            .collect()
    }

    #[test]
    fn frames_decode_to_the_values_in_whole_blocks() {
        let values = noisy_int16(1 << 20);
        let frame = compress(&values, 3).unwrap();
        assert!(frame.len() < values.len(), "the values compress");
        let zstd = crate::operators::Encoding::Zstd { level: 3 };
        let decoded = zstd.decode(&frame, Some(values.len() as u64)).unwrap();
        assert_eq!(decoded, values.as_slice());
        // Without the pre-splitter every block but the last holds zstd's maximum of 128 KiB.
        assert_eq!(block_count(&frame), values.len().div_ceil(128 << 10));
        // Reused contexts start from the given level each time.
        assert_eq!(compress(&values, 3).unwrap(), frame);
        assert_ne!(compress(&values, 1).unwrap(), frame);
        assert_eq!(compress(&[], 3).map(|f| f.is_empty()), Ok(false));
    }
}
