//! Which granules a remote `files` value names: a URL glob (`s3://bucket/prefix/**/*.nc`,
//! listed from its literal prefix and matched key by key, `*` not crossing `/`), one object URL,
//! or a granule list (`….txt`, local or remote, one URL a line) for stores without listings
//! (plain HTTPS).

use glob::{MatchOptions, Pattern};

use super::location::{glob_prefix, has_wildcards, join};
use super::object::RemoteStore;
use super::{version_of, RemoteError};
use crate::sources::model::FileVersion;

/// Whether a `files` value is a granule list rather than a glob.
pub fn is_granule_list(files: &str) -> bool {
    files.ends_with(".txt")
}

/// The granule URLs of a granule list's text: one a line; blank lines and `#` comments skipped.
pub fn parse_granule_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The objects of `store` whose keys match `key_glob`, as URLs with their versions, in key
/// order. A glob without wildcards names one object (looked up with HEAD).
///
/// # Errors
/// [`RemoteError::List`] when the listing (or lookup) fails after retries, or the glob is invalid.
pub async fn glob(
    store: &RemoteStore,
    key_glob: &str,
) -> Result<Vec<(String, FileVersion)>, RemoteError> {
    let url = join(store.url(), key_glob);
    let failed = |error| RemoteError::List {
        url: url.clone(),
        error,
    };
    if !has_wildcards(key_glob) {
        let version = store.head(key_glob).await.map_err(failed)?;
        return Ok(vec![(url.clone(), version)]);
    }
    let pattern = Pattern::new(key_glob).map_err(|e| RemoteError::Url {
        url: url.clone(),
        reason: format!("invalid glob: {e}"),
    })?;
    let options = MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let mut found: Vec<(String, FileVersion)> = store
        .list(glob_prefix(key_glob))
        .await
        .map_err(failed)?
        .into_iter()
        .filter(|meta| pattern.matches_with(meta.location.as_ref(), options))
        .map(|meta| {
            let version = version_of(&meta);
            store.confirm(meta.location.as_ref(), version);
            (join(store.url(), meta.location.as_ref()), version)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granule_lists() {
        assert!(is_granule_list("https://host/granules.txt"));
        assert!(!is_granule_list("s3://b/*.nc"));
        let text = "# granules\nhttps://h/a.nc\n\n  https://h/b.nc  \n";
        assert_eq!(
            parse_granule_list(text),
            vec!["https://h/a.nc", "https://h/b.nc"]
        );
    }
}
