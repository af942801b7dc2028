//! The conformance suite of key reads: one walk of a whole tree — every listing, every
//! metadata document, every chunk's bytes and every size — run against the key space
//! in-process (the library's service, no FUSE) and through a real FUSE mount of the same
//! config, which must agree key for key and byte for byte. The tree holds an aggregated
//! dataset and views of every kind (pack with zstd, a pyramid, a regrid, a Web Mercator tile
//! pyramid, expressions with a band dimension, and chains of them), in both Zarr formats. Front ends are thin: whatever a
//! front end serves is what the key space serves. Over HTTP (`atlasfs serve`, read with zarrs'
//! HTTP store) every file key of the walk answers its bytes and HEAD its size, and every
//! directory key is missing (HTTP has no listings).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use atlasfs::config::MountConfig;
use atlasfs::keyspace::{KeySpace, Kind};
use atlasfs::service::{Service, ServiceOptions};

#[path = "support/day_files.rs"]
mod day_files;
#[path = "support/serve.rs"]
mod serve;
use day_files::write_day_file;
use zarrs::storage::{ReadableStorageTraits, StoreKey};
use zarrs_http::HTTPStore;

/// What a walk found at a key: a directory with its entries, or a file with its bytes.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Dir(Vec<String>),
    File(Vec<u8>),
}

/// Something the suite can walk: the key space in-process, or a mounted directory.
trait Keys {
    /// The entries of directory `key` (`""` is the root), sorted; `None` for a file.
    fn list(&self, key: &str) -> Option<Vec<String>>;
    /// The size reported for file `key` before reading it, and its bytes.
    fn file(&self, key: &str) -> (u64, Vec<u8>);
}

impl Keys for KeySpace {
    fn list(&self, key: &str) -> Option<Vec<String>> {
        if self.stat(key)? != Kind::Dir {
            return None;
        }
        let listing = KeySpace::list(self, key)?;
        let mut names: Vec<String> = (0..listing.len())
            .filter_map(|i| listing.get(i).map(|(name, _)| name))
            .collect();
        names.sort();
        Some(names)
    }

    fn file(&self, key: &str) -> (u64, Vec<u8>) {
        let Some(Kind::File(size)) = self.stat(key) else {
            panic!("{key} is not a file");
        };
        let bytes = self
            .read(key, 0, size as usize + 1)
            .unwrap_or_else(|e| panic!("reading {key}: {e}"));
        (size, bytes.to_vec())
    }
}

/// A mounted tree.
struct Mounted(PathBuf);

impl Keys for Mounted {
    fn list(&self, key: &str) -> Option<Vec<String>> {
        let path = self.0.join(key);
        if !std::fs::metadata(&path).ok()?.is_dir() {
            return None;
        }
        let mut names: Vec<String> = std::fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("listing {}: {e}", path.display()))
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Some(names)
    }

    fn file(&self, key: &str) -> (u64, Vec<u8>) {
        let path = self.0.join(key);
        let size = std::fs::metadata(&path).unwrap().len();
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {key}: {e}"));
        (size, bytes)
    }
}

/// Walks everything under the root: every key with what it holds. Sizes reported before a
/// read must equal the bytes read.
fn walk(keys: &dyn Keys) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut pending = vec![String::new()];
    while let Some(key) = pending.pop() {
        match keys.list(&key) {
            Some(names) => {
                for name in &names {
                    pending.push(if key.is_empty() {
                        name.clone()
                    } else {
                        format!("{key}/{name}")
                    });
                }
                out.insert(key, Entry::Dir(names));
            }
            None => {
                let (size, bytes) = keys.file(&key);
                assert_eq!(size, bytes.len() as u64, "size of {key} before reading it");
                out.insert(key, Entry::File(bytes));
            }
        }
    }
    out
}

/// Every key of a walk over HTTP: a file's bytes with GET and its size with HEAD, equal to the
/// walk's; a directory is no key.
fn agrees_over_http(url: &str, walked: &BTreeMap<String, Entry>) {
    let store = HTTPStore::new(url).unwrap();
    for (key, entry) in walked.iter().filter(|(key, _)| !key.is_empty()) {
        let store_key = StoreKey::new(key.as_str()).unwrap();
        let got = store
            .get(&store_key)
            .unwrap_or_else(|e| panic!("GET {key}: {e}"));
        match entry {
            Entry::Dir(_) => assert!(got.is_none(), "{key} is a directory, not a key"),
            Entry::File(bytes) => {
                assert!(
                    got.as_deref() == Some(&bytes[..]),
                    "{key} differs over HTTP"
                );
                let size = store.size_key(&store_key).unwrap();
                assert_eq!(size, Some(bytes.len() as u64), "HEAD {key}");
            }
        }
    }
}

const VIEWS: &str = r#"
[[view]]
name = "packed"
from = "sst"
[view.pack]
dtype = "int16"
range = "data"
codec = "zstd"

[[view]]
name = "pyramid"
from = "sst"
variables = ["sst"]
[view.pyramid]
levels = 3
chunk = 4

[[view]]
name = "cases/bands"
from = "sst"
[view.expr]
delta = "dic - alt"
band = { experimental = "dic", delta = "dic - alt" }

[[view]]
name = "chain/pyramid-of-bands"
from = "cases/bands"
[view.pyramid]
levels = 2
chunk = 4

[[view]]
name = "regridded"
from = "sst"
[view.regrid]
method = "conservative"
grid = { lat = { start = -45.0, stop = 45.0, step = 15.0 }, lon = { start = 0.0, stop = 60.0, step = 15.0 } }
chunk = 3

[[view]]
name = "tiles"
from = "sst"
variables = ["sst"]
[view.pyramid]
levels = 2
crs = "EPSG:3857"
pixels_per_tile = 8

[[view]]
name = "chain/packed-level"
from = "chain/pyramid-of-bands/0"
[view.pack]
dtype = "uint8"
range = [1990.0, 2010.0]
codec = "gzip"
"#;

fn is_mounted(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let target = path.to_string_lossy();
    mounts
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(&*target))
}

/// Unmounts on drop, even when an assertion failed.
struct Mount {
    bin: PathBuf,
    path: PathBuf,
}

impl Drop for Mount {
    fn drop(&mut self) {
        for (program, args) in [
            (self.bin.as_path(), ["unmount"].as_slice()),
            (Path::new("fusermount3"), ["-uz"].as_slice()),
        ] {
            if !is_mounted(&self.path) {
                return;
            }
            let _ = Command::new(program)
                .args(args)
                .arg(&self.path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while is_mounted(&self.path) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn conformance(zarr_format: u8) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for i in 0..3 {
        write_day_file(&data.join(format!("day{i}.nc")), i);
    }
    let config_path = dir.path().join("atlasfs.toml");
    let text = format!(
        "[mount]\nzarr_format = {zarr_format}\n\n[cache]\ndir = {:?}\n\n[[dataset]]\nname = \"sst\"\nfiles = {:?}\nconcat_dim = \"time\"\n{VIEWS}",
        dir.path().join("cache"),
        data.join("*.nc"),
    );
    std::fs::write(&config_path, text).unwrap();

    let config = MountConfig::load(&config_path).unwrap();
    let service = Service::start(config, ServiceOptions::check(), &|_| {}).unwrap();
    let keys = service.keys();
    let in_process = walk(&*keys);
    drop(service);
    assert!(
        in_process.contains_key("chain/packed-level/delta")
            && in_process.contains_key("pyramid/0/sst")
            && in_process.contains_key("regridded/sst")
            && in_process.contains_key("tiles/1/sst"),
        "the views are in the tree: {:?}",
        in_process.keys().collect::<Vec<_>>()
    );
    let chunks = in_process
        .iter()
        .filter(|(k, v)| matches!(v, Entry::File(_)) && k.contains("pyramid/0/sst/"))
        .count();
    assert!(chunks > 0, "pyramid chunks are walked");

    let mountpoint = dir.path().join("mnt");
    std::fs::create_dir(&mountpoint).unwrap();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_atlasfs"));
    let mount = Mount {
        bin: bin.clone(),
        path: mountpoint.clone(),
    };
    let output = Command::new(&bin)
        .arg("mount")
        .arg(&config_path)
        .arg(&mountpoint)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success() && is_mounted(&mountpoint),
        "mount failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let over_fuse = walk(&Mounted(mountpoint.clone()));
    let keys_in: Vec<&String> = in_process.keys().collect();
    let keys_fuse: Vec<&String> = over_fuse.keys().collect();
    assert_eq!(keys_in, keys_fuse, "the same keys in-process and over FUSE");
    for (key, entry) in &in_process {
        assert!(
            over_fuse.get(key) == Some(entry),
            "{key} differs between the key space and the mount"
        );
    }
    drop(mount); // the server holds the cache dir as the mount did
    let mut server = serve::Server::start(&config_path, &[]);
    agrees_over_http(&server.url, &in_process);
    let stopped = server.stop();
    assert!(
        stopped.is_some_and(|s| s.success()),
        "{stopped:?}\n{}",
        server.log_text()
    );
}

#[test]
fn key_reads_agree_in_process_and_over_fuse_v3() {
    conformance(3);
}

#[test]
fn key_reads_agree_in_process_and_over_fuse_v2() {
    conformance(2);
}
