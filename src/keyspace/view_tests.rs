//! A view end to end in-process: a test-only operator reads regions of a native array through
//! the region reader (so through the chunk cache) and doubles them, served zstd-encoded; zarrs
//! reads the served metadata and chunks back. Also: an input's failure names the input chunk and
//! source file, and a view's keys follow its input's.

use std::collections::BTreeMap;
use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;
use zarrs::array::Array;
use zarrs::storage::store::MemoryStore;
use zarrs::storage::{StoreKey, WritableStorageTraits};

use super::{KeyError, KeySpace, Kind};
use crate::config::ZarrFormat;
use crate::operators::{
    copy_box, ChunkError, ChunkErrorKind, Encoding, FingerprintWriter, Geometry, Operator,
    OperatorContext, Part, Recipe, Region,
};
use crate::sources::model::{DType, Endian, FileVersion, InlineData, Storage, VarMeta};
use crate::tree::{ArrayNode, GroupNode, Node, Tree};

const DAYS: u64 = 8;
const WIDTH: u64 = 5;

/// Doubles the values of an unsigned byte array into `u16`s, reading it region by region.
#[derive(Debug)]
struct Doubled {
    input: Arc<ArrayNode>,
}

impl Operator for Doubled {
    fn describe(&self, _: &Geometry) -> String {
        format!("twice {}", self.input.path)
    }

    fn fingerprint(&self, out: &mut FingerprintWriter<'_>) {
        out.write(&("doubled", 1u32));
        out.input(&self.input);
    }

    fn chunk_identity(&self, _: &[u128], _: &Region, _: &[u64], _: &mut Xxh3) {}

    fn inputs(&self, geometry: &Geometry, index: &[u64]) -> Vec<(Arc<ArrayNode>, Region)> {
        vec![(self.input.clone(), geometry.chunk_region(index))]
    }

    fn check(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<(), ChunkError> {
        context
            .regions
            .check_region(&self.input, &geometry.chunk_region(index))
    }

    fn compute(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<Vec<u8>, ChunkError> {
        let region = geometry.chunk_region(index);
        let values = context.regions.read_region(&self.input, &region)?;
        let doubled: Vec<u8> = values
            .iter()
            .flat_map(|&v| (u16::from(v) * 2).to_le_bytes())
            .collect();
        let mut out = vec![0u8; geometry.chunks.iter().product::<u64>() as usize * 2];
        let origin = vec![0; region.count.len()];
        copy_box(
            &doubled,
            &region.count,
            &origin,
            &mut out,
            &geometry.chunks,
            &origin,
            &region.count,
            2,
        );
        Ok(out)
    }
}

fn value(day: u64, x: u64) -> u8 {
    (day * 10 + x) as u8
}

/// `ds/v`: one part per day, one day per chunk, inline (or, for day `missing`, in a file that
/// does not exist); `ds/doubled`: twice `ds/v` as `u16`, two days per chunk, zstd-encoded.
fn tree(missing: Option<u64>, bump: i64) -> Arc<Tree> {
    let parts = (0..DAYS)
        .map(|day| Part {
            path: format!("/nowhere/day{day}.nc").into(),
            version: FileVersion {
                size: 100,
                mtime_ns: 1 + bump,
                etag: 0,
            },
            var: Arc::new(VarMeta {
                name: "v".into(),
                dims: vec!["time".into(), "x".into()],
                shape: vec![1, WIDTH],
                dtype: DType::U8,
                attrs: Vec::new(),
                fill: vec![0],
                storage: if missing == Some(day) {
                    Storage::Contiguous {
                        offset: 0,
                        endian: Endian::Little,
                        record_stride: None,
                    }
                } else {
                    Storage::Inline(InlineData::Bytes(
                        (0..WIDTH).map(|x| value(day, x)).collect(),
                    ))
                },
            }),
            origin: vec![day, 0],
            transform: None,
        })
        .collect();
    let dims = vec!["time".to_owned(), "x".to_owned()];
    let input = Arc::new(ArrayNode {
        id: 0,
        path: "ds/v".into(),
        dims: dims.clone(),
        geometry: Geometry {
            shape: vec![DAYS, WIDTH],
            chunks: vec![1, WIDTH],
            dtype: DType::U8,
            fill: vec![0],
        },
        attrs: Vec::new(),
        recipe: Recipe::native(parts),
    });
    let view = ArrayNode {
        id: 1,
        path: "ds/doubled".into(),
        dims,
        geometry: Geometry {
            shape: vec![DAYS, WIDTH],
            chunks: vec![2, WIDTH],
            dtype: DType::U16,
            fill: vec![0, 0],
        },
        attrs: Vec::new(),
        recipe: Recipe::new(
            Arc::new(Doubled {
                input: input.clone(),
            }),
            Encoding::Zstd { level: 3 },
        ),
    };
    let mut ds = GroupNode::default();
    ds.children.insert("v".into(), Node::Array(input));
    ds.children
        .insert("doubled".into(), Node::Array(Arc::new(view)));
    let mut root = GroupNode {
        attrs: Vec::new(),
        children: BTreeMap::new(),
    };
    root.children.insert("ds".into(), Node::Group(ds));
    Arc::new(Tree {
        root,
        notes: Vec::new(),
        left_out: Vec::new(),
        hidden: Vec::new(),
    })
}

fn read(keys: &KeySpace, key: &str) -> Result<Vec<u8>, KeyError> {
    keys.read(key, 0, usize::MAX).map(|s| s.to_vec())
}

#[test]
fn a_zstd_view_over_a_native_array_reads_back_doubled_with_zarrs() {
    let keys = KeySpace::new(tree(None, 0), ZarrFormat::V3);
    let store = MemoryStore::new();
    for key in ["zarr.json", "ds/zarr.json", "ds/doubled/zarr.json"] {
        store
            .set(
                &StoreKey::new(key).unwrap(),
                read(&keys, key).unwrap().into(),
            )
            .unwrap();
    }
    for chunk in 0..DAYS / 2 {
        let key = format!("ds/doubled/c/{chunk}/0");
        let bytes = read(&keys, &key).unwrap();
        // A compressed chunk's size is its length, computed on stat (here from the cache).
        assert_eq!(keys.stat(&key), Some(Kind::File(bytes.len() as u64)));
        assert_eq!(bytes[..4], [0x28, 0xb5, 0x2f, 0xfd], "a zstd frame");
        store
            .set(&StoreKey::new(key).unwrap(), bytes.into())
            .unwrap();
    }
    let array = Array::open(Arc::new(store), "/ds/doubled").unwrap();
    for chunk in 0..DAYS / 2 {
        let got: Vec<u16> = array.retrieve_chunk(&[chunk, 0]).unwrap();
        let expected: Vec<u16> = (chunk * 2..chunk * 2 + 2)
            .flat_map(|day| (0..WIDTH).map(move |x| u16::from(value(day, x)) * 2))
            .collect();
        assert_eq!(got, expected, "chunk {chunk}");
    }
    // Each view chunk read two input chunks through the cache: the native chunks are now
    // served from memory, not computed again.
    let computed = keys.cache_stats().computed;
    assert_eq!(computed, DAYS + DAYS / 2);
    for day in 0..DAYS {
        let native = read(&keys, &format!("ds/v/c/{day}/0")).unwrap();
        assert_eq!(
            native,
            (0..WIDTH).map(|x| value(day, x)).collect::<Vec<_>>()
        );
    }
    assert_eq!(keys.cache_stats().computed, computed);
}

#[test]
fn a_failed_input_names_the_input_chunk_and_source_file() {
    let keys = KeySpace::new(tree(Some(3), 0), ZarrFormat::V3);
    assert!(read(&keys, "ds/doubled/c/0/0").is_ok());
    let Err(KeyError::Chunk { array, key, source }) = read(&keys, "ds/doubled/c/1/0") else {
        panic!("reading a view over a missing file must fail");
    };
    assert_eq!((array.as_str(), key.as_str()), ("ds/doubled", "c/1/0"));
    let input = source.input.as_deref().unwrap();
    assert_eq!(
        (input.array.as_str(), input.index.as_slice()),
        ("ds/v", &[3u64, 0][..])
    );
    assert_eq!(source.source_path.as_deref(), Some("/nowhere/day3.nc"));
    assert_eq!(source.kind, ChunkErrorKind::Gone);
}

#[test]
fn a_view_key_changes_with_its_input() {
    let before = KeySpace::new(tree(None, 0), ZarrFormat::V3);
    let same = KeySpace::new(tree(None, 0), ZarrFormat::V3);
    let after = KeySpace::new(tree(None, 1), ZarrFormat::V3);
    let key = |keys: &KeySpace| {
        let node = keys
            .tree()
            .arrays()
            .into_iter()
            .find(|a| a.id == 1)
            .unwrap();
        keys.chunk_key(&node, &[0, 0])
    };
    assert_eq!(key(&before), key(&same));
    assert_ne!(key(&before), key(&after));
    assert_eq!(
        before.changed_keys(&same, ["ds/doubled/c/0/0"]),
        Vec::<&str>::new()
    );
    assert_eq!(
        before.changed_keys(&after, ["ds/doubled/c/0/0"]),
        ["ds/doubled/c/0/0"]
    );
}
