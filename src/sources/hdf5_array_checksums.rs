//! Checksums of the blocks of HDF5 fixed-array and extensible-array chunk indexes (Jenkins
//! lookup3, as libhdf5 writes them). `hdf5-reader` verifies these indexes' headers but reads the
//! entries of their data, index and secondary blocks without checking them, so a flipped bit
//! there would move a chunk; this module walks those blocks and verifies every checksum. Reads
//! metadata only, through the same storage as the index walk (addresses relative to the
//! superblock). Run after the walk, which has verified the header these sizes come from.
//!
//! A block that holds a whole index's structure (a non-paged fixed-array data block, an
//! extensible array's index block) failing is an error; a page, data block or secondary block
//! failing is [`Damage`] to the entries it holds, by element number.

use std::ops::Range;

use hdf5_reader::checksum::jenkins_lookup3;
use hdf5_reader::storage::Storage;

/// Entries of a chunk index whose block failed its checksum: their element numbers and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    /// Element numbers (the index's own numbering of chunks).
    pub(crate) elements: Range<u64>,
    /// Why they cannot be trusted.
    pub(crate) reason: String,
}

/// Verifies every data block (and page) checksum of the fixed array whose header is at
/// `header`; the pages that fail.
///
/// # Errors
/// A message naming the data block whose checksum does not match, or that cannot be read.
pub(crate) fn verify_fixed_array(
    storage: &dyn Storage,
    header: u64,
    offset_size: u8,
    length_size: u8,
) -> Result<Vec<Damage>, String> {
    let (os, ls) = (usize::from(offset_size), usize::from(length_size));
    let h = read(storage, header, 8 + ls + os + 4, "fixed array header")?;
    let (entry_size, page_bits) = (byte(&h, 6)?, byte(&h, 7)?);
    let nelmts = uint(&h, 8, ls)?;
    let block = uint(&h, 8 + ls, os)?;
    if is_undefined(block, offset_size) {
        return Ok(Vec::new());
    }
    let prefix = 4 + 1 + 1 + os;
    let per_page = (page_bits > 0 && page_bits < 64)
        .then(|| 1u64 << page_bits)
        .filter(|&per_page| nelmts > per_page);
    let Some(per_page) = per_page else {
        let len = run_len(nelmts, entry_size)?.saturating_add(prefix);
        return check(storage, block, len, "fixed array data block").map(|()| Vec::new());
    };
    let pages = nelmts.div_ceil(per_page);
    let bitmap_len = to_usize(pages.div_ceil(8))?;
    let head = read(
        storage,
        block,
        prefix + bitmap_len + 4,
        "fixed array data block",
    )?;
    verify(&head, block, "fixed array data block")?;
    let bitmap = &head[prefix..prefix + bitmap_len];
    let mut position = add(block, (prefix + bitmap_len + 4) as u64)?;
    let mut damage = Vec::new();
    for page in 0..pages {
        let first = page * per_page;
        let entries = per_page.min(nelmts - first);
        let len = run_len(entries, entry_size)?;
        if bit(bitmap, page) {
            if let Err(reason) = check(storage, position, len, "fixed array data block page") {
                damage.push(Damage {
                    elements: first..first + entries,
                    reason,
                });
            }
        }
        position = add(position, len as u64)?;
    }
    Ok(damage)
}

/// Verifies the checksums of the index block, secondary blocks and data blocks (and pages) of
/// the extensible array whose header is at `header`; the blocks below the index block that
/// fail.
///
/// # Errors
/// A message naming the index block when its checksum does not match or it cannot be read.
pub(crate) fn verify_extensible_array(
    storage: &dyn Storage,
    header: u64,
    offset_size: u8,
    length_size: u8,
) -> Result<Vec<Damage>, String> {
    let (os, ls) = (usize::from(offset_size), usize::from(length_size));
    let h = read(
        storage,
        header,
        12 + 6 * ls + os + 4,
        "extensible array header",
    )?;
    let array = ArrayParams::new(&h, offset_size)?;
    let index_block = uint(&h, 12 + 6 * ls, os)?;
    if is_undefined(index_block, offset_size) {
        return Ok(Vec::new());
    }
    let layout = array.super_blocks()?;
    let direct_super_blocks =
        (2 * array.sec_blk_min_ptrs.trailing_zeros() as usize).min(layout.len());
    let direct_blocks = 2 * (usize::from(array.sec_blk_min_ptrs) - 1);
    let secondary = layout.len() - direct_super_blocks;
    let inline = usize::from(array.idx_blk_elmts) * usize::from(array.element_size);
    let len = 4 + 1 + 1 + os + inline + (direct_blocks + secondary) * os + 4;
    let ib = read(storage, index_block, len, "extensible array index block")?;
    verify(&ib, index_block, "extensible array index block")?;
    let mut damage = Vec::new();
    // Elements are numbered through the index block's own, then each super block's.
    let mut first = u64::from(array.idx_blk_elmts);
    let mut at = 4 + 1 + 1 + os + inline;
    let direct_sizes = layout[..direct_super_blocks]
        .iter()
        .flat_map(|&(elmts, blocks)| (0..blocks).map(move |_| elmts));
    for elmts in direct_sizes.take(direct_blocks) {
        let address = uint(&ib, at, os)?;
        at += os;
        if !is_undefined(address, offset_size) {
            let block = DataBlock {
                address,
                elmts,
                first,
                pages: None,
            };
            array.verify_data_block(storage, &block, &mut damage);
        }
        first = first.saturating_add(elmts);
    }
    at = 4 + 1 + 1 + os + inline + direct_blocks * os;
    for &(elmts, blocks) in &layout[direct_super_blocks..] {
        let address = uint(&ib, at, os)?;
        at += os;
        let count = elmts.saturating_mul(blocks);
        if !is_undefined(address, offset_size) {
            let found = array.verify_secondary_block(storage, address, elmts, blocks, first);
            match found {
                Ok(found) => damage.extend(found),
                Err(reason) => damage.push(Damage {
                    elements: first..first.saturating_add(count),
                    reason,
                }),
            }
        }
        first = first.saturating_add(count);
    }
    Ok(damage)
}

/// A data block of an extensible array to verify.
struct DataBlock<'a> {
    address: u64,
    /// Elements it holds.
    elmts: u64,
    /// Number of its first element.
    first: u64,
    /// For data blocks of a secondary block: its page bitmap and this block's first bit in it.
    pages: Option<(&'a [u8], u64)>,
}

/// The creation parameters of an extensible array, from its header.
struct ArrayParams {
    offset_size: u8,
    element_size: u8,
    max_nelmts_bits: u8,
    idx_blk_elmts: u8,
    data_blk_min_elmts: u8,
    sec_blk_min_ptrs: u8,
    /// Elements per data block page; 0 when data blocks are never paged.
    page_nelmts: u64,
}

impl ArrayParams {
    fn new(h: &[u8], offset_size: u8) -> Result<Self, String> {
        let page_bits = byte(h, 11)?;
        let params = ArrayParams {
            offset_size,
            element_size: byte(h, 6)?,
            max_nelmts_bits: byte(h, 7)?,
            idx_blk_elmts: byte(h, 8)?,
            data_blk_min_elmts: byte(h, 9)?,
            sec_blk_min_ptrs: byte(h, 10)?,
            page_nelmts: match page_bits {
                0 => 0,
                1..=62 => 1u64 << page_bits,
                _ => {
                    return Err(format!(
                        "extensible array page bits {page_bits} are invalid"
                    ))
                }
            },
        };
        if !params.data_blk_min_elmts.is_power_of_two()
            || !params.sec_blk_min_ptrs.is_power_of_two()
            || params.max_nelmts_bits > 64
            || u32::from(params.max_nelmts_bits) < params.data_blk_min_elmts.trailing_zeros()
        {
            return Err("extensible array creation parameters are invalid".to_owned());
        }
        Ok(params)
    }

    /// Per super block: elements per data block and data blocks (`H5EA__hdr_init`).
    fn super_blocks(&self) -> Result<Vec<(u64, u64)>, String> {
        let count = u32::from(self.max_nelmts_bits) - self.data_blk_min_elmts.trailing_zeros() + 1;
        (0..count)
            .map(|u| -> Result<(u64, u64), String> {
                let elmts = u64::from(self.data_blk_min_elmts)
                    .checked_shl(u.div_ceil(2))
                    .ok_or("extensible array super block overflows")?;
                Ok((elmts, 1u64 << (u / 2)))
            })
            .collect()
    }

    /// Pages of a data block of `elmts` elements (0: not paged).
    fn pages(&self, elmts: u64) -> u64 {
        if self.page_nelmts == 0 || elmts <= self.page_nelmts {
            0
        } else {
            elmts.div_ceil(self.page_nelmts)
        }
    }

    fn prefix_len(&self) -> usize {
        4 + 1 + 1 + usize::from(self.offset_size) + usize::from(self.max_nelmts_bits).div_ceil(8)
    }

    /// The damage below a secondary block whose elements start at `first`; an error when the
    /// block itself fails.
    fn verify_secondary_block(
        &self,
        storage: &dyn Storage,
        address: u64,
        elmts: u64,
        blocks: u64,
        first: u64,
    ) -> Result<Vec<Damage>, String> {
        let os = usize::from(self.offset_size);
        let pages = self.pages(elmts);
        let bitmap_len = to_usize(blocks.saturating_mul(pages.div_ceil(8)))?;
        let addrs_len = to_usize(blocks.saturating_mul(os as u64))?;
        let len = self
            .prefix_len()
            .saturating_add(bitmap_len)
            .saturating_add(addrs_len)
            .saturating_add(4);
        let sb = read(storage, address, len, "extensible array secondary block")?;
        verify(&sb, address, "extensible array secondary block")?;
        let bitmap = &sb[self.prefix_len()..self.prefix_len() + bitmap_len];
        let mut at = self.prefix_len() + bitmap_len;
        let mut damage = Vec::new();
        for block in 0..blocks {
            let address = uint(&sb, at, os)?;
            at += os;
            if !is_undefined(address, self.offset_size) {
                let block = DataBlock {
                    address,
                    elmts,
                    first: first.saturating_add(block.saturating_mul(elmts)),
                    pages: Some((bitmap, block.saturating_mul(pages))),
                };
                self.verify_data_block(storage, &block, &mut damage);
            }
        }
        Ok(damage)
    }

    /// Adds to `damage` what of `block` fails: all of it, or some of its pages.
    fn verify_data_block(
        &self,
        storage: &dyn Storage,
        block: &DataBlock,
        damage: &mut Vec<Damage>,
    ) {
        let whole = |reason| Damage {
            elements: block.first..block.first.saturating_add(block.elmts),
            reason,
        };
        let what = "extensible array data block";
        let prefix = self.prefix_len();
        let page_count = self.pages(block.elmts);
        let checked = if page_count == 0 {
            run_len(block.elmts, self.element_size)
                .and_then(|len| check(storage, block.address, len.saturating_add(prefix), what))
        } else {
            check(storage, block.address, prefix + 4, what)
        };
        if let Err(reason) = checked {
            damage.push(whole(reason));
            return;
        }
        let (Some((bitmap, first_bit)), Ok(page_len)) =
            (block.pages, run_len(self.page_nelmts, self.element_size))
        else {
            return;
        };
        let mut position = block.address.saturating_add((prefix + 4) as u64);
        for page in 0..page_count {
            if bit(bitmap, first_bit.saturating_add(page)) {
                let what = "extensible array data block page";
                if let Err(reason) = check(storage, position, page_len, what) {
                    let first = block.first.saturating_add(page * self.page_nelmts);
                    let last = (first.saturating_add(self.page_nelmts))
                        .min(block.first.saturating_add(block.elmts));
                    damage.push(Damage {
                        elements: first..last,
                        reason,
                    });
                }
            }
            position = position.saturating_add(page_len as u64);
        }
    }
}

/// Reads `len` bytes at `address` and verifies the checksum in their last four.
fn check(storage: &dyn Storage, address: u64, len: usize, what: &str) -> Result<(), String> {
    let bytes = read(storage, address, len, what)?;
    verify(&bytes, address, what)
}

/// Whether the last four bytes of `bytes` are the lookup3 checksum of the others.
fn verify(bytes: &[u8], address: u64, what: &str) -> Result<(), String> {
    let Some(split) = bytes.len().checked_sub(4) else {
        return Err(format!("{what} at address {address} is too short"));
    };
    let (body, stored) = bytes.split_at(split);
    let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
    let computed = jenkins_lookup3(body);
    if stored != computed {
        return Err(format!(
            "checksum mismatch in the {what} at address {address} (stored {stored:#010x}, \
             computed {computed:#010x})"
        ));
    }
    Ok(())
}

fn read(storage: &dyn Storage, address: u64, len: usize, what: &str) -> Result<Vec<u8>, String> {
    let end = address.checked_add(len as u64);
    if end.is_none_or(|end| end > storage.len()) {
        return Err(format!(
            "{what} at address {address} ({len} bytes) runs past the end of the file"
        ));
    }
    storage
        .read_range(address, len)
        .map(|b| b.to_vec())
        .map_err(|e| format!("reading the {what} at address {address}: {e}"))
}

/// Bytes of `entries` entries of `entry_size` bytes and a checksum.
fn run_len(entries: u64, entry_size: u8) -> Result<usize, String> {
    entries
        .checked_mul(u64::from(entry_size))
        .and_then(|n| n.checked_add(4))
        .ok_or_else(|| "chunk index block size overflows".to_owned())
        .and_then(to_usize)
}

fn to_usize(n: u64) -> Result<usize, String> {
    usize::try_from(n).map_err(|_| format!("chunk index block size {n} is too large"))
}

fn add(a: u64, b: u64) -> Result<u64, String> {
    a.checked_add(b)
        .ok_or_else(|| "chunk index address overflows".to_owned())
}

fn byte(bytes: &[u8], at: usize) -> Result<u8, String> {
    bytes
        .get(at)
        .copied()
        .ok_or_else(|| "chunk index header is too short".to_owned())
}

/// A little-endian unsigned integer of `size` bytes at `at`.
fn uint(bytes: &[u8], at: usize, size: usize) -> Result<u64, String> {
    let field = bytes
        .get(at..at.saturating_add(size))
        .filter(|f| f.len() <= 8)
        .ok_or_else(|| "chunk index block is too short".to_owned())?;
    Ok(field
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Whether an address of `offset_size` bytes is the undefined address (all bits set).
fn is_undefined(address: u64, offset_size: u8) -> bool {
    match offset_size {
        8.. => address == u64::MAX,
        n => address == (1u64 << (8 * u32::from(n))) - 1,
    }
}

/// Bit `index` of a page bitmap, numbered from each byte's most significant bit.
fn bit(bitmap: &[u8], index: u64) -> bool {
    usize::try_from(index / 8)
        .ok()
        .and_then(|i| bitmap.get(i))
        .is_some_and(|b| b & (0x80 >> (index % 8)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdf5_reader::storage::BytesStorage;

    /// A block: `body` followed by its checksum.
    fn sealed(body: &[u8]) -> Vec<u8> {
        let mut b = body.to_vec();
        b.extend_from_slice(&jenkins_lookup3(body).to_le_bytes());
        b
    }

    /// A fixed array of `n` 8-byte entries: header at 0, data block at 64.
    fn fixed_array(n: u8) -> Vec<u8> {
        let mut file = vec![0u8; 64];
        let mut header = b"FAHD\x00\x00\x08\x00".to_vec();
        header.extend_from_slice(&u64::from(n).to_le_bytes());
        header.extend_from_slice(&64u64.to_le_bytes());
        let header = sealed(&header);
        file[..header.len()].copy_from_slice(&header);
        let mut block = b"FADB\x00\x00".to_vec();
        block.extend_from_slice(&0u64.to_le_bytes());
        for i in 0..u64::from(n) {
            block.extend_from_slice(&(4096 + i * 100).to_le_bytes());
        }
        file.extend(sealed(&block));
        file
    }

    fn verify_fa(file: Vec<u8>) -> Result<Vec<Damage>, String> {
        verify_fixed_array(&BytesStorage::new(file), 0, 8, 8)
    }

    #[test]
    fn an_intact_fixed_array_passes_and_a_flipped_entry_bit_fails() {
        assert_eq!(verify_fa(fixed_array(5)), Ok(Vec::new()));
        let mut file = fixed_array(5);
        file[64 + 14 + 8] ^= 0x10;
        let err = verify_fa(file).unwrap_err();
        assert!(err.contains("checksum mismatch in the fixed array data block at address 64"));
    }

    #[test]
    fn a_truncated_fixed_array_block_is_an_error() {
        let mut file = fixed_array(5);
        file.truncate(file.len() - 3);
        assert!(verify_fa(file).unwrap_err().contains("past the end"));
    }

    #[test]
    fn undefined_addresses_have_every_bit_set() {
        assert!(is_undefined(u64::MAX, 8));
        assert!(is_undefined(0xffff_ffff, 4));
        assert!(!is_undefined(0xffff_fffe, 4));
    }
}
