//! Object-store URLs as the config and the catalog write them (`s3://bucket/key`,
//! `gs://…`, `az://…`, `https://host/path`): which store they live in, the key inside it, and
//! for a glob the literal prefix to list.

use super::RemoteError;

/// An object named by URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectUrl {
    /// The store: `scheme://bucket` (or `scheme://host[:port]` for HTTP).
    pub store: String,
    /// The key (path) inside the store, without a leading `/`.
    pub key: String,
}

impl ObjectUrl {
    /// Splits `url` into store and key.
    ///
    /// # Errors
    /// [`RemoteError::Url`] for an unknown scheme or a URL without a bucket or host.
    pub fn parse(url: &str) -> Result<ObjectUrl, RemoteError> {
        let bad = |reason: &str| RemoteError::Url {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("not a URL"))?;
        if !SCHEMES.contains(&scheme) {
            return Err(bad(
                "unknown scheme (s3, gs, gcs, az, azure, abfs, abfss, http and https are supported)",
            ));
        }
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket or host"));
        }
        Ok(ObjectUrl {
            store: format!("{scheme}://{bucket}"),
            key: key.trim_start_matches('/').to_owned(),
        })
    }

    /// The URL again: `store/key`.
    pub fn url(&self) -> String {
        join(&self.store, &self.key)
    }

    /// The URL scheme.
    pub fn scheme(&self) -> &str {
        self.store.split_once("://").map_or("", |(s, _)| s)
    }
}

/// Schemes atlasfs reads.
const SCHEMES: &[&str] = &[
    "s3", "s3a", "gs", "gcs", "az", "azure", "abfs", "abfss", "adl", "http", "https",
];

/// `store/key`.
pub fn join(store: &str, key: &str) -> String {
    if key.is_empty() {
        store.to_owned()
    } else {
        format!("{store}/{key}")
    }
}

/// The literal directory prefix of a key glob: everything before the last `/` that precedes the
/// first wildcard (`*`, `?`, `[`). Listing starts there.
pub fn glob_prefix(key_glob: &str) -> &str {
    let first_wild = key_glob.find(['*', '?', '[']).unwrap_or(key_glob.len());
    match key_glob[..first_wild].rfind('/') {
        Some(slash) => &key_glob[..=slash],
        None => "",
    }
}

/// Whether a key glob has wildcards.
pub fn has_wildcards(key_glob: &str) -> bool {
    key_glob.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_store_and_key() {
        let url = ObjectUrl::parse("s3://bucket/a/b/*.nc").unwrap();
        assert_eq!(url.store, "s3://bucket");
        assert_eq!(url.key, "a/b/*.nc");
        assert_eq!(url.scheme(), "s3");
        assert_eq!(url.url(), "s3://bucket/a/b/*.nc");
        let http = ObjectUrl::parse("http://127.0.0.1:9000/x/y.nc").unwrap();
        assert_eq!(http.store, "http://127.0.0.1:9000");
        assert_eq!(http.key, "x/y.nc");
        assert!(ObjectUrl::parse("ftp://x/y").is_err());
        assert!(ObjectUrl::parse("s3:///key").is_err());
    }

    #[test]
    fn glob_prefixes() {
        assert_eq!(glob_prefix("MUR/**/*.nc"), "MUR/");
        assert_eq!(glob_prefix("a/b/c*.nc"), "a/b/");
        assert_eq!(glob_prefix("*.nc"), "");
        assert_eq!(glob_prefix("a/b/c.nc"), "a/b/");
        assert!(has_wildcards("a/*.nc"));
        assert!(!has_wildcards("a/b.nc"));
    }
}
