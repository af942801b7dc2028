//! Existing Zarr stores as sources (`zarr = "s3://bucket/era5.zarr"` or a directory): v2 or
//! v3, consolidated or not. Indexing lists the store once ([`listing`]), reads its hierarchy
//! from the metadata documents ([`metadata`]) and records the version of every stored chunk
//! object ([`ChunkVersions`]), so a chunk's cache key includes its object's version and a chunk
//! key the listing did not find reads as the fill value without a request. Each array is mapped
//! to what the tree serves by [`mod@array`]. The result is persisted in the catalog; a re-index
//! re-reads the metadata documents only when one changed.

pub mod array;
mod attrs;
pub mod listing;
pub mod metadata;
mod versions;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use array::{open_array, Decoder};
pub use versions::ChunkVersions;

use crate::config::{MountConfig, StorageSection};
use crate::sources::bytes::ByteSource;
use crate::sources::model::{Attr, DType, FileVersion};
use crate::sources::router::Sources;
use listing::{object_path, StoreListing};

/// Why a store could not be indexed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZarrStoreError {
    /// The store cannot be listed.
    #[error("cannot list the Zarr store {location}: {reason}")]
    List {
        /// The store.
        location: String,
        /// Why.
        reason: String,
    },
    /// Nothing at the store's root says it is a Zarr store.
    #[error("{location} is not a Zarr store: no zarr.json, .zmetadata or .zgroup at its root")]
    NoMetadata {
        /// The store.
        location: String,
    },
    /// The store's root is an array; a dataset is a group.
    #[error("the root of the Zarr store {location} is an array; name the group that holds it")]
    RootIsArray {
        /// The store.
        location: String,
    },
    /// A root metadata document cannot be read or parsed.
    #[error("Zarr store {location}: cannot use {key}: {reason}")]
    Document {
        /// The store.
        location: String,
        /// The document's key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// Zarr format of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ZarrVersion {
    /// Zarr v2 (`.zgroup`, `.zarray`, `.zattrs`, `.zmetadata`).
    V2,
    /// Zarr v3 (`zarr.json`).
    V3,
}

/// An indexed Zarr store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZarrStoreMeta {
    /// The store as the config names it: an absolute directory or an object-store URL, without
    /// a trailing `/`.
    pub location: String,
    /// Its Zarr format.
    pub format: ZarrVersion,
    /// Whether the hierarchy came from consolidated metadata.
    pub consolidated: bool,
    /// The metadata documents found by the listing, with their versions: the hierarchy is
    /// re-read only when these change.
    pub documents: Vec<(String, FileVersion)>,
    /// The root group.
    pub root: ZarrGroupMeta,
    /// What reading the metadata left out and why (kept while the documents are unchanged).
    pub metadata_notes: Vec<String>,
    /// What the listing left out and why.
    pub listing_notes: Vec<String>,
}

impl ZarrStoreMeta {
    /// Everything indexing left out and why.
    pub fn warnings(&self) -> impl Iterator<Item = &String> {
        self.metadata_notes.iter().chain(&self.listing_notes)
    }
}

/// A group of a store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ZarrGroupMeta {
    /// Attributes.
    pub attrs: Vec<Attr>,
    /// Child groups by name.
    pub groups: BTreeMap<String, ZarrGroupMeta>,
    /// Arrays by name.
    pub arrays: BTreeMap<String, Arc<ZarrArrayMeta>>,
}

/// An array of a store, as served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZarrArrayMeta {
    /// Path in the store (`sub/sst`).
    pub path: String,
    /// Zarr format of its metadata.
    pub format: ZarrVersion,
    /// Its metadata document (`zarr.json` or `.zarray`) without attributes: codecs, data type,
    /// fill value, chunk grid and chunk key encoding, for zarrs to decode chunks with.
    pub metadata: String,
    /// Dimension names.
    pub dims: Vec<String>,
    /// Shape.
    pub shape: Vec<u64>,
    /// Chunk shape (the regular grid's; a shard's for sharded arrays).
    pub chunks: Vec<u64>,
    /// Served type.
    pub dtype: DType,
    /// The array's fill value, little-endian.
    pub fill: Vec<u8>,
    /// Attributes, with the CF `_FillValue` as xarray reads it.
    pub attrs: Vec<Attr>,
    /// The stored chunk objects and their versions.
    pub stored: ChunkVersions,
}

/// The outcome of indexing every `zarr` dataset of a config.
#[derive(Debug, Default)]
pub struct StoreIndex {
    /// Per dataset name: its store, or why it could not be indexed.
    pub datasets: BTreeMap<String, Result<Arc<ZarrStoreMeta>, String>>,
    /// Per location: the stores to persist.
    pub persisted: HashMap<String, Arc<ZarrStoreMeta>>,
    /// Whether anything differs from what was persisted.
    pub changed: bool,
    /// One line per store: what the index found.
    pub summaries: Vec<(String, String)>,
}

/// Indexes the store of every dataset of `config` with `zarr` set, reusing the hierarchies of
/// `previous` (by location) whose metadata documents are unchanged.
pub fn index_all(
    config: &MountConfig,
    sources: &Sources,
    previous: &HashMap<String, Arc<ZarrStoreMeta>>,
) -> StoreIndex {
    let mut out = StoreIndex::default();
    for dataset in &config.datasets {
        let Some(location) = dataset.zarr.as_deref() else {
            continue;
        };
        let location = location.trim_end_matches('/');
        let known = out.persisted.get(location).cloned();
        let result = match known {
            Some(store) => Ok(store),
            None => {
                let old = previous.get(location).map(Arc::as_ref);
                index(location, &dataset.storage, sources, old).map(|(store, reread)| {
                    let store = Arc::new(store);
                    out.changed |= old != Some(store.as_ref());
                    out.summaries
                        .push((location.to_owned(), summary(&store, reread)));
                    out.persisted.insert(location.to_owned(), store.clone());
                    store
                })
            }
        };
        out.datasets
            .insert(dataset.name.clone(), result.map_err(|e| e.to_string()));
    }
    out.changed |= previous.keys().any(|l| !out.persisted.contains_key(l));
    out
}

fn summary(store: &ZarrStoreMeta, reread: bool) -> String {
    fn count(group: &ZarrGroupMeta) -> (usize, usize) {
        group.groups.values().map(count).fold(
            (
                group.arrays.len(),
                group.arrays.values().map(|a| a.stored.len()).sum(),
            ),
            |(a, c), (x, y)| (a + x, c + y),
        )
    }
    let (arrays, chunks) = count(&store.root);
    format!(
        "Zarr v{} store{}: {arrays} array(s), {chunks} stored chunk object(s); metadata {}",
        match store.format {
            ZarrVersion::V2 => 2,
            ZarrVersion::V3 => 3,
        },
        if store.consolidated {
            " (consolidated)"
        } else {
            ""
        },
        if reread { "read" } else { "unchanged" }
    )
}

/// Indexes one store; the flag says whether its metadata documents were read (rather than
/// taken from `previous`).
///
/// # Errors
/// [`ZarrStoreError`] when the store cannot be listed or has no usable root group.
pub fn index(
    location: &str,
    storage: &StorageSection,
    sources: &Sources,
    previous: Option<&ZarrStoreMeta>,
) -> Result<(ZarrStoreMeta, bool), ZarrStoreError> {
    let listing = listing::list(location, storage, sources)?;
    let documents = listing.documents();
    let reusable = previous.filter(|p| p.location == location && p.documents == documents);
    let (format, consolidated, mut root, metadata_notes) = match reusable {
        Some(previous) => (
            previous.format,
            previous.consolidated,
            previous.root.clone(),
            previous.metadata_notes.clone(),
        ),
        None => {
            let fetch = |key: &str| -> Result<Vec<u8>, String> {
                let version = listing.objects.get(key).copied().ok_or("not listed")?;
                sources
                    .read_all(&object_path(location, key), version)
                    .map_err(|e| e.to_string())
            };
            let h = metadata::read(location, &listing, &fetch)?;
            (h.format, h.consolidated, h.root, h.warnings)
        }
    };
    let mut listing_notes = listing.warnings.clone();
    attach_chunks(&mut root, &listing, &mut listing_notes);
    Ok((
        ZarrStoreMeta {
            location: location.to_owned(),
            format,
            consolidated,
            documents,
            root,
            metadata_notes,
            listing_notes,
        },
        reusable.is_none(),
    ))
}

/// Fills in each array's chunk versions from the listing: keys under the array that its chunk
/// key encoding spells (checked against zarrs' own spelling).
fn attach_chunks(root: &mut ZarrGroupMeta, listing: &StoreListing, warnings: &mut Vec<String>) {
    let mut arrays: Vec<(String, &mut Arc<ZarrArrayMeta>)> = Vec::new();
    collect_arrays(root, &mut arrays);
    let by_path: HashMap<&str, usize> = arrays
        .iter()
        .enumerate()
        .map(|(i, (path, _))| (path.as_str(), i))
        .collect();
    let mut found: Vec<Vec<(&str, &str, FileVersion)>> = vec![Vec::new(); arrays.len()];
    for (key, version) in &listing.objects {
        let owner = key
            .match_indices('/')
            .map(|(i, _)| &key[..i])
            .find_map(|prefix| by_path.get(prefix).map(|&i| (i, prefix.len())));
        if let Some((i, len)) = owner {
            found[i].push((key.as_str(), &key[len + 1..], *version));
        }
    }
    for ((path, array), keys) in arrays.into_iter().zip(found) {
        let (stored, stray) = chunk_versions(array, &keys);
        if stray > 0 {
            warnings.push(format!(
                "chunk keys of {path}: {stray} object(s) under the array are not chunks of its grid and are ignored"
            ));
        }
        Arc::make_mut(array).stored = stored;
    }
}

fn collect_arrays<'a>(
    group: &'a mut ZarrGroupMeta,
    out: &mut Vec<(String, &'a mut Arc<ZarrArrayMeta>)>,
) {
    for array in group.arrays.values_mut() {
        out.push((array.path.clone(), array));
    }
    for sub in group.groups.values_mut() {
        collect_arrays(sub, out);
    }
}

/// The chunk versions among `keys` (full key, key relative to the array, version), and how
/// many keys other than metadata documents named no chunk.
fn chunk_versions(
    array: &ZarrArrayMeta,
    keys: &[(&str, &str, FileVersion)],
) -> (ChunkVersions, usize) {
    let Ok(decoder) = open_array(array.format, &array.path, &array.metadata) else {
        return (ChunkVersions::default(), 0);
    };
    let doc: serde_json::Value = serde_json::from_str(&array.metadata).unwrap_or_default();
    let Some(encoding) = array::key_encoding(array.format, &doc) else {
        return (ChunkVersions::default(), 0);
    };
    let ndim = array.shape.len();
    let grid = decoder.chunk_grid_shape().to_vec();
    let mut stray = 0;
    let mut entries = Vec::new();
    for &(full, relative, version) in keys {
        if listing::DOCUMENTS.contains(&relative) {
            continue;
        }
        let index = encoding.parse(relative, ndim).filter(|index| {
            index.iter().zip(&grid).all(|(i, g)| i < g) && decoder.chunk_key(index).as_str() == full
        });
        match index {
            Some(index) => entries.push((index, version)),
            None => stray += 1,
        }
    }
    (ChunkVersions::new(grid, entries), stray)
}
