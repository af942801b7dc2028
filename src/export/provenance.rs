//! How an exported store was made, recorded in its root's attributes as `atlasfs_export`:
//! the atlasfs version, a hash of the configuration, the exported path and a fingerprint of
//! every exported array's recipe and source versions (equal fingerprints mean equal chunks).

use serde_json::{json, Map, Value};
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

use super::{ExportError, ExportPlan};
use crate::keyspace::KeySpace;
use crate::operators::ArrayFingerprints;

/// The attribute holding the provenance.
pub const ATTRIBUTE: &str = "atlasfs_export";

/// The provenance of one export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// atlasfs's version.
    pub version: String,
    /// Hash of the configuration file's bytes (hex).
    pub config_hash: String,
    /// The exported tree path.
    pub path: String,
    /// Hash of every exported array's path and fingerprint (hex).
    pub source_fingerprint: String,
}

impl Provenance {
    /// The provenance of exporting `plan` from `keys` with the configuration `config` (its
    /// file's bytes).
    pub fn new(keys: &KeySpace, plan: &ExportPlan, config: &[u8]) -> Provenance {
        let mut hasher = Xxh3::new();
        for array in plan.array_nodes() {
            hasher.update(array.path.as_bytes());
            hasher.update(&[0]);
            hasher.update(&keys.digest(array).to_le_bytes());
        }
        Provenance {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            config_hash: format!("{:032x}", xxh3_128(config)),
            path: plan.root().to_owned(),
            source_fingerprint: format!("{:032x}", hasher.digest128()),
        }
    }

    fn value(&self) -> Value {
        json!({
            "version": self.version,
            "config_hash": self.config_hash,
            "path": self.path,
            "source_fingerprint": self.source_fingerprint,
        })
    }

    /// The attributes object `document` (a root metadata document with key `key`) carries
    /// the provenance in: a v3 `zarr.json`'s `attributes`, or a v2 `.zattrs` itself.
    ///
    /// # Errors
    /// [`ExportError::Metadata`] when the document is not a JSON object.
    pub(crate) fn stamp(&self, key: &str, document: &[u8]) -> Result<Vec<u8>, ExportError> {
        let bad = |reason: &str| ExportError::Metadata {
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        let mut value: Value = serde_json::from_slice(document).map_err(|e| bad(&e.to_string()))?;
        let object = value
            .as_object_mut()
            .ok_or_else(|| bad("not a JSON object"))?;
        let attributes = if key == ".zattrs" {
            object
        } else {
            object
                .entry("attributes")
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .ok_or_else(|| bad("attributes are not an object"))?
        };
        attributes.insert(ATTRIBUTE.to_owned(), self.value());
        serde_json::to_vec_pretty(&value).map_err(|e| bad(&e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provenance() -> Provenance {
        Provenance {
            version: "1.0".to_owned(),
            config_hash: "c".to_owned(),
            path: "sst".to_owned(),
            source_fingerprint: "f".to_owned(),
        }
    }

    #[test]
    fn a_v3_document_gets_the_provenance_among_its_attributes() {
        let doc = br#"{"zarr_format":3,"node_type":"group","attributes":{"title":"t"}}"#;
        let stamped: Value =
            serde_json::from_slice(&provenance().stamp("zarr.json", doc).unwrap()).unwrap();
        assert_eq!(stamped["attributes"]["title"], "t");
        assert_eq!(stamped["attributes"][ATTRIBUTE]["path"], "sst");
        assert_eq!(stamped["attributes"][ATTRIBUTE]["source_fingerprint"], "f");
        assert_eq!(stamped["node_type"], "group");
    }

    #[test]
    fn a_v3_document_without_attributes_gets_them() {
        let doc = br#"{"zarr_format":3,"node_type":"group"}"#;
        let stamped: Value =
            serde_json::from_slice(&provenance().stamp("zarr.json", doc).unwrap()).unwrap();
        assert_eq!(stamped["attributes"][ATTRIBUTE]["version"], "1.0");
    }

    #[test]
    fn a_v2_zattrs_is_the_attributes() {
        let stamped: Value =
            serde_json::from_slice(&provenance().stamp(".zattrs", br#"{"a":1}"#).unwrap()).unwrap();
        assert_eq!(stamped["a"], 1);
        assert_eq!(stamped[ATTRIBUTE]["config_hash"], "c");
    }

    #[test]
    fn a_document_that_is_no_object_is_refused() {
        for doc in [&b"[1]"[..], b"not json", br#"{"attributes":3}"#] {
            let err = provenance().stamp("zarr.json", doc).unwrap_err();
            assert!(matches!(err, ExportError::Metadata { .. }), "{err}");
        }
    }
}
