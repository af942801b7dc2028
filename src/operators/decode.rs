//! Undoes an HDF5 filter pipeline on one stored chunk: Fletcher-32 check, inflate, unshuffle.
//! Pure functions over byte buffers; no I/O.

use std::io::Read;

use crate::sources::model::Filter;

/// Decodes `stored` through `filters` (given in write order), skipping filters whose bit is
/// set in `filter_mask`. `expected_len` is the decoded size, used to size buffers.
///
/// # Errors
/// A message when the data is corrupt (bad checksum, invalid deflate stream).
pub(super) fn decode_chunk(
    stored: Vec<u8>,
    filters: &[Filter],
    filter_mask: u32,
    expected_len: usize,
) -> Result<Vec<u8>, String> {
    let mut data = stored;
    for (i, filter) in filters.iter().enumerate().rev() {
        if filter_mask & (1 << i) != 0 {
            continue;
        }
        data = match filter {
            Filter::Fletcher32 => check_fletcher32(data)?,
            Filter::Deflate => {
                // A checksum applied before compression is still in the inflated bytes.
                let checksums = filters[..i]
                    .iter()
                    .filter(|f| **f == Filter::Fletcher32)
                    .count();
                inflate(&data, expected_len.saturating_add(4 * checksums))?
            }
            Filter::Shuffle { element_size } => unshuffle(&data, *element_size as usize),
        };
    }
    Ok(data)
}

/// Inflates `data`, which must decode to `expected_len` bytes: the buffer is reserved
/// fallibly, and a stream that inflates to more is corrupt (it is never decoded past that).
fn inflate(data: &[u8], expected_len: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    out.try_reserve_exact(expected_len)
        .map_err(|e| format!("cannot allocate {expected_len} bytes for the chunk: {e}"))?;
    let limit = u64::try_from(expected_len).map_or(u64::MAX, |n| n.saturating_add(1));
    flate2::read::ZlibDecoder::new(data)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| format!("corrupt deflate stream: {e}"))?;
    if out.len() > expected_len {
        return Err(format!(
            "corrupt deflate stream: inflates to more than the chunk's {expected_len} bytes"
        ));
    }
    Ok(out)
}

fn unshuffle(data: &[u8], element_size: usize) -> Vec<u8> {
    if element_size <= 1 || data.len() < element_size {
        return data.to_vec();
    }
    let count = data.len() / element_size;
    let mut out = vec![0u8; data.len()];
    match element_size {
        2 => unshuffle_whole::<2>(data, count, &mut out),
        4 => unshuffle_whole::<4>(data, count, &mut out),
        8 => unshuffle_whole::<8>(data, count, &mut out),
        _ => unshuffle_any(data, element_size, count, &mut out),
    }
    // Trailing bytes that do not fill an element are stored unshuffled.
    let tail = count * element_size;
    out[tail..].copy_from_slice(&data[tail..]);
    out
}

/// Interleaves the `N` byte planes of `count` elements of `data` into `out`, element by
/// element: each output element is written once, in order (the per-plane scatter of
/// [`unshuffle_any`] strides through the whole chunk `N` times).
fn unshuffle_whole<const N: usize>(data: &[u8], count: usize, out: &mut [u8]) {
    let planes: [&[u8]; N] = std::array::from_fn(|b| &data[b * count..(b + 1) * count]);
    for (i, element) in out[..count * N].chunks_exact_mut(N).enumerate() {
        for (byte, plane) in element.iter_mut().zip(&planes) {
            *byte = plane[i];
        }
    }
}

/// Interleaves byte planes of any element size, one plane at a time.
fn unshuffle_any(data: &[u8], element_size: usize, count: usize, out: &mut [u8]) {
    for byte in 0..element_size {
        let plane = &data[byte * count..(byte + 1) * count];
        for (i, &b) in plane.iter().enumerate() {
            out[i * element_size + byte] = b;
        }
    }
}

/// HDF5's Fletcher-32 over 16-bit big-endian words, stored big-endian after the data.
fn check_fletcher32(mut data: Vec<u8>) -> Result<Vec<u8>, String> {
    if data.len() < 4 {
        return Err("chunk too short for its Fletcher-32 checksum".to_owned());
    }
    let split = data.len() - 4;
    let stored = &data[split..];
    let stored_be = u32::from_be_bytes([stored[0], stored[1], stored[2], stored[3]]);
    let stored_le = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
    let computed = fletcher32(&data[..split]);
    if computed != stored_be && computed != stored_le {
        return Err(format!(
            "Fletcher-32 checksum mismatch (stored {stored_be:#010x}, computed {computed:#010x})"
        ));
    }
    data.truncate(split);
    Ok(data)
}

fn fletcher32(data: &[u8]) -> u32 {
    let mut sum1: u32 = 0;
    let mut sum2: u32 = 0;
    let mut words = data.chunks_exact(2);
    // Process in blocks small enough that the sums cannot overflow before reduction.
    loop {
        let mut n = 0;
        for w in words.by_ref().take(360) {
            sum1 += u32::from(u16::from_be_bytes([w[0], w[1]]));
            sum2 += sum1;
            n += 1;
        }
        sum1 = (sum1 & 0xffff) + (sum1 >> 16);
        sum2 = (sum2 & 0xffff) + (sum2 >> 16);
        if n < 360 {
            break;
        }
    }
    if let [last] = words.remainder() {
        sum1 += u32::from(*last) << 8;
        sum2 += sum1;
        sum1 = (sum1 & 0xffff) + (sum1 >> 16);
        sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    }
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    (sum2 << 16) | sum1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// HDF5's shuffle written from its definition: byte `b` of element `i` goes to plane `b`.
    fn shuffle(values: &[u8], size: usize) -> Vec<u8> {
        let count = values.len() / size;
        let mut out = Vec::with_capacity(values.len());
        for b in 0..size {
            out.extend((0..count).map(|i| values[i * size + b]));
        }
        out.extend_from_slice(&values[count * size..]);
        out
    }

    #[test]
    fn unshuffle_inverts_shuffle_for_every_element_size() {
        let values: Vec<u8> = (0..1003u32).map(|i| (i * 37 % 251) as u8).collect();
        for size in [1, 2, 3, 4, 5, 8, 16] {
            assert_eq!(
                unshuffle(&shuffle(&values, size), size),
                values,
                "element size {size}"
            );
        }
    }

    #[test]
    fn shuffle_then_deflate_round_trips() {
        let values: Vec<u8> = (0u32..1000).flat_map(|v| v.to_le_bytes()).collect();
        // Shuffle by hand: byte planes.
        let mut shuffled = Vec::new();
        for byte in 0..4 {
            shuffled.extend(values.chunks_exact(4).map(|e| e[byte]));
        }
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&shuffled).unwrap();
        let stored = enc.finish().unwrap();
        let filters = [Filter::Shuffle { element_size: 4 }, Filter::Deflate];
        assert_eq!(
            decode_chunk(stored, &filters, 0, values.len()).unwrap(),
            values
        );
    }

    #[test]
    fn a_stream_inflating_past_the_chunk_size_is_corrupt() {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&[7u8; 4096]).unwrap();
        let stored = enc.finish().unwrap();
        let e = decode_chunk(stored.clone(), &[Filter::Deflate], 0, 4000).unwrap_err();
        assert!(e.contains("more than the chunk's 4000 bytes"), "{e}");
        assert_eq!(
            decode_chunk(stored, &[Filter::Deflate], 0, 4096).unwrap(),
            vec![7u8; 4096]
        );
    }

    #[test]
    fn masked_filters_are_skipped() {
        let raw = vec![1u8, 2, 3, 4];
        let filters = [Filter::Deflate];
        assert_eq!(decode_chunk(raw.clone(), &filters, 1, 4).unwrap(), raw);
    }

    #[test]
    fn fletcher32_detects_corruption() {
        // The real HDF5 files of the integration tests check agreement with libhdf5.
        let mut data = b"abcdef".to_vec();
        data.extend_from_slice(&fletcher32(b"abcdef").to_le_bytes());
        assert_eq!(check_fletcher32(data.clone()).unwrap(), b"abcdef");
        data[0] ^= 1;
        assert!(check_fletcher32(data).is_err());
    }
}
