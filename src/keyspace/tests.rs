//! Key-space tests over a small synthetic tree (values kept inline, so no source files): the
//! two-tier cache across key spaces, open keys, read-ahead, warm shards and the next snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::warm::{Shard, Warmed};
use super::{KeySpace, ReadAheadConfig};
use crate::cache::{CacheLock, ChunkCache, DiskCache, LockMode};
use crate::config::ZarrFormat;
use crate::operators::{Geometry, Part, Recipe};
use crate::sources::bytes::LocalFiles;
use crate::sources::model::{DType, FileVersion, InlineData, Storage, VarMeta};
use crate::tree::{ArrayNode, GroupNode, Node, Tree};

const DAYS: u64 = 12;
const WIDTH: u64 = 6;

/// `ds/v`: `DAYS` one-day parts of `WIDTH` bytes, served one day per chunk; value = day * 10 + x.
fn tree() -> Arc<Tree> {
    tree_of(DAYS, None)
}

/// `ds/v` over `days` days, the file of day `touched` at a newer version.
fn tree_of(days: u64, touched: Option<u64>) -> Arc<Tree> {
    let parts = (0..days)
        .map(|day| Part {
            path: format!("/nowhere/day{day}.nc").into(),
            version: FileVersion {
                size: 1,
                mtime_ns: if touched == Some(day) { 2 } else { 1 },
                etag: 0,
            },
            var: Arc::new(VarMeta {
                name: "v".into(),
                dims: vec!["time".into(), "x".into()],
                shape: vec![1, WIDTH],
                dtype: DType::U8,
                attrs: Vec::new(),
                fill: vec![0],
                storage: Storage::Inline(InlineData::Bytes(
                    (0..WIDTH).map(|x| (day * 10 + x) as u8).collect(),
                )),
            }),
            origin: vec![day, 0],
            transform: None,
        })
        .collect();
    let array = ArrayNode {
        id: 0,
        path: "ds/v".into(),
        dims: vec!["time".into(), "x".into()],
        geometry: Geometry {
            shape: vec![days, WIDTH],
            chunks: vec![1, WIDTH],
            dtype: DType::U8,
            fill: vec![0],
        },
        attrs: Vec::new(),
        recipe: Recipe::native(parts),
    };
    let mut ds = GroupNode::default();
    ds.children.insert("v".into(), Node::Array(Arc::new(array)));
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

fn keys(tree: &Arc<Tree>, cache: ChunkCache) -> KeySpace {
    KeySpace::with_cache(
        tree.clone(),
        ZarrFormat::V3,
        Arc::new(LocalFiles::default()),
        Arc::new(cache),
    )
}

fn disk(dir: &std::path::Path) -> DiskCache {
    DiskCache::open(
        dir,
        1 << 20,
        CacheLock::acquire(dir, LockMode::Exclusive).unwrap(),
    )
    .unwrap()
}

fn day(d: u64) -> Vec<u8> {
    (0..WIDTH).map(|x| (d * 10 + x) as u8).collect()
}

#[test]
fn chunks_computed_by_one_key_space_are_read_from_disk_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let tree = tree();
    let first = keys(&tree, ChunkCache::new(1 << 20, Some(disk(dir.path()))));
    assert_eq!(&*first.read("ds/v/c/3/0", 0, 100).unwrap(), &day(3)[..]);
    assert_eq!(first.cache_stats().computed, 1);
    drop(first);
    let second = keys(&tree, ChunkCache::new(1 << 20, Some(disk(dir.path()))));
    let open = second.open("ds/v/c/3/0").unwrap();
    assert!(open.is_current());
    assert_eq!(&*second.read_open(&open, 2, 3).unwrap(), &day(3)[2..5]);
    assert_eq!(&*second.read_open(&open, 0, 100).unwrap(), &day(3)[..]);
    let stats = second.cache_stats();
    assert_eq!((stats.computed, stats.disk.unwrap().hits), (0, 1));
    assert!(second.open("ds/v").is_none(), "directories are not opened");
    assert!(second.open("ds/v/c/99/0").is_none());
}

#[test]
fn a_sequential_reader_finds_the_next_chunks_computed_ahead() {
    let tree = tree();
    let keys = keys(&tree, ChunkCache::new(1 << 20, None)).with_readahead(ReadAheadConfig {
        depth: 3,
        workers: 1,
        busy: 2,
    });
    for d in 0..2 {
        let open = keys.open(&format!("ds/v/c/{d}/0")).unwrap();
        assert_eq!(&*keys.read_open(&open, 0, 100).unwrap(), &day(d)[..]);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while keys.readahead_stats().computed < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(keys.readahead_stats().computed, 3);
    let hits = keys.cache_stats().memory.hits;
    for d in 2..5 {
        assert_eq!(
            &*keys.read(&format!("ds/v/c/{d}/0"), 0, 100).unwrap(),
            &day(d)[..]
        );
    }
    assert_eq!(
        keys.cache_stats().memory.hits,
        hits + 3,
        "served from memory"
    );
}

#[test]
fn shards_cover_every_chunk_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let tree = tree();
    let keys = keys(&tree, ChunkCache::new(0, Some(disk(dir.path()))));
    let plan = keys.warm_plan(&["/".into(), "ds/v".into()]).unwrap();
    assert_eq!((plan.total(), plan.arrays()), (DAYS, 1));
    let mut seen = Vec::new();
    for k in 0..5 {
        let shard = Shard { index: k, count: 5 };
        for i in 0..plan.shard_len(shard) {
            let (_, index) = plan.chunk(shard, i).unwrap();
            seen.push(index[0]);
        }
        assert!(plan.chunk(shard, plan.shard_len(shard)).is_none());
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..DAYS).collect::<Vec<_>>());
    let (array, index) = plan.chunk(Shard::ALL, 4).unwrap();
    assert_eq!(
        keys.warm_chunk(&array, &index).unwrap(),
        Warmed::Computed(WIDTH)
    );
    assert_eq!(
        keys.warm_chunk(&array, &index).unwrap(),
        Warmed::AlreadyCached
    );
    assert!(keys.warm_plan(&["ds/nope".into()]).is_err());
}

#[test]
fn the_next_snapshot_shares_the_cache_and_changes_only_the_keys_it_must() {
    let first = keys(&tree(), ChunkCache::new(1 << 20, None));
    assert_eq!(&*first.read("ds/v/c/3/0", 0, 100).unwrap(), &day(3)[..]);
    let known = [
        "ds",
        "ds/zarr.json",
        "ds/v",
        "ds/v/zarr.json",
        "ds/v/c/0",
        "ds/v/c/3/0",
        "ds/v/c/11/0",
    ];
    assert!(first.changed_keys(&first, known).is_empty());

    // One more day: the documents change (shape), no existing chunk does.
    let longer = first.successor(tree_of(DAYS + 1, None), ZarrFormat::V3);
    assert_eq!(
        first.changed_keys(&longer, known),
        ["ds/zarr.json", "ds/v/zarr.json"]
    );
    assert_eq!(&*longer.read("ds/v/c/3/0", 0, 100).unwrap(), &day(3)[..]);
    assert_eq!(longer.cache_stats().computed, 1, "the cache is shared");
    assert_eq!(longer.cache_stats().memory.hits, 1);

    // A rewritten file changes its chunk only; a shorter tree loses the last chunk.
    let touched = first.successor(tree_of(DAYS, Some(3)), ZarrFormat::V3);
    assert_eq!(first.changed_keys(&touched, known), ["ds/v/c/3/0"]);
    let shorter = first.successor(tree_of(DAYS - 1, None), ZarrFormat::V3);
    assert_eq!(
        first.changed_keys(&shorter, known),
        ["ds/zarr.json", "ds/v/zarr.json", "ds/v/c/11/0"]
    );
    // Another format serves other keys.
    let v2 = first.successor(tree(), ZarrFormat::V2);
    assert_eq!(
        first.changed_keys(&v2, known),
        [
            "ds/zarr.json",
            "ds/v/zarr.json",
            "ds/v/c/0",
            "ds/v/c/3/0",
            "ds/v/c/11/0"
        ]
    );
}
