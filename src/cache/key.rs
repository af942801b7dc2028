//! The identity of a cached chunk: a 128-bit hash of what its bytes depend on (the recipe, the
//! versions of the sources it reads and the chunk index), computed by the operators. The cache
//! treats it as opaque but for one bit: the lowest says whether the chunk is *retained* (a
//! sample of a sample set, kept once cached rather than cycled by the LRU; see `disk.rs`), so
//! the class survives a restart with the entry's file name.

use std::fmt;

/// A cached chunk's key. Equal keys mean equal bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkKey(pub u128);

impl ChunkKey {
    /// The key of a chunk hashed to `hash`, retained or not.
    pub fn of(hash: u128, retained: bool) -> ChunkKey {
        ChunkKey((hash & !1) | u128::from(retained))
    }

    /// Whether the chunk is retained once cached (see [`ChunkKey::of`]).
    pub fn is_retained(self) -> bool {
        self.0 & 1 == 1
    }

    /// 32 lowercase hex digits.
    pub fn hex(self) -> String {
        format!("{:032x}", self.0)
    }

    /// The shard directory of the entry: the first two hex digits.
    pub fn shard(self) -> String {
        format!("{:02x}", (self.0 >> 120) as u8)
    }

    /// Parses the 32-hex-digit file name of an entry.
    pub fn from_hex(name: &str) -> Option<ChunkKey> {
        if name.len() != 32 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(name, 16).ok().map(ChunkKey)
    }
}

impl fmt::Display for ChunkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_shards_by_the_first_byte() {
        let key = ChunkKey(0xab00_0000_0000_0000_0000_0000_0000_0001);
        assert_eq!(key.hex(), "ab000000000000000000000000000001");
        assert_eq!(key.shard(), "ab");
        assert_eq!(ChunkKey::from_hex(&key.hex()), Some(key));
        assert_eq!(ChunkKey::from_hex("ab"), None);
        assert_eq!(ChunkKey::from_hex("zz000000000000000000000000000001"), None);
    }
}
