//! The mount configuration: a TOML file naming the datasets, the Zarr format to serve and the
//! cache directory. Owns parsing, defaults, path resolution and the checks that need no source
//! file (keys named by `groups`, `merge` and `new_dims` are fields of the `pattern`, compiled with
//! [`crate::sources::pattern`]); knows nothing of FUSE. What a key names inside the files
//! (`concat_dim`, `chunks`) is checked when the tree is built.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod regrid;
mod samples;
mod units;
mod view;
pub use regrid::{AxisRange, HealpixGrid, RegridMethod, RegridParams, TargetGrid};
pub use samples::SamplesConfig;
use units::{de_refresh, de_size};
pub use units::{parse_duration, parse_size};
pub use view::{
    order as view_order, producer, Codec, ExprParams, PackParams, PackRange, Producer,
    PyramidParams, ViewConfig, ViewOperation,
};

/// Errors while loading a mount configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// What the TOML parser said, with the line.
        message: String,
    },
    /// The file parses but its content is inconsistent.
    #[error("invalid config {path}: {message}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Zarr format served by the key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZarrFormat {
    /// Zarr v2: `.zgroup`, `.zarray`, `.zattrs`, `.zmetadata`.
    V2,
    /// Zarr v3: `zarr.json` with inline consolidated metadata.
    #[default]
    V3,
}

impl<'de> Deserialize<'de> for ZarrFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u8::deserialize(d)? {
            2 => Ok(ZarrFormat::V2),
            3 => Ok(ZarrFormat::V3),
            other => Err(serde::de::Error::custom(format!(
                "zarr_format must be 2 or 3, not {other}"
            ))),
        }
    }
}

/// The `[mount]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountSection {
    /// Zarr format of the served tree.
    #[serde(default)]
    pub zarr_format: ZarrFormat,
    /// How often a running mount re-indexes and swaps in a new snapshot, e.g. `"10m"`; `None`
    /// (the default) re-indexes only on SIGHUP.
    #[serde(default, deserialize_with = "de_refresh")]
    pub refresh: Option<Duration>,
    /// Who opens files: the daemon (checks each open) or the kernel (no round trip per open).
    #[serde(default)]
    pub open: OpenBy,
}

/// `[mount] open`: who handles the opening of a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpenBy {
    /// Every open asks the daemon, which checks the file's sources and may hand a cached chunk
    /// to the kernel (passthrough).
    #[default]
    Daemon,
    /// The kernel opens files without asking the daemon, saving a round trip per open; it keeps
    /// the pages it has read until a reload retires the file.
    Kernel,
}

/// The `[cache]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    /// Where the catalog, logs and cached chunks live.
    #[serde(default = "default_cache_dir")]
    pub dir: PathBuf,
    /// Upper bound of the memory cache of computed chunks, e.g. `"512MiB"`.
    #[serde(default = "default_memory", deserialize_with = "de_size")]
    pub memory: u64,
    /// Upper bound of the disk cache of computed chunks, e.g. `"50GiB"` (default 10GiB; 0
    /// turns the disk tier off).
    #[serde(default = "default_max_size", deserialize_with = "de_size")]
    pub max_size: u64,
    /// A tier of computed chunks shared by every node, on object storage
    /// (`s3://bucket/prefix`, `gs://…`, `az://…`).
    #[serde(default)]
    pub shared: Option<String>,
    /// How to reach `shared` (as a dataset's `[dataset.storage]`).
    #[serde(default)]
    pub storage: StorageSection,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            dir: default_cache_dir(),
            memory: default_memory(),
            max_size: default_max_size(),
            shared: None,
            storage: StorageSection::default(),
        }
    }
}

/// One `[[dataset]]` entry: a group at `/<name>` made of the files its glob matches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// Path of the dataset under the mount root.
    pub name: String,
    /// A glob of source files (`**` recurses); relative globs are relative to the config file.
    /// Empty when `catalog` names the files.
    #[serde(default)]
    pub files: String,
    /// An intake-esm catalog (ESM collection spec JSON) naming the files and their keys,
    /// instead of `files` and `pattern`.
    #[serde(default)]
    pub catalog: Option<PathBuf>,
    /// A pattern of `{key}`, `{key:d}` and `{key:%Y%m}` fields matched against each file's path
    /// relative to the glob's base directory; the keys structure the dataset.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Keys whose values become DataTree levels, outermost first.
    #[serde(default)]
    pub groups: Vec<String>,
    /// A key whose files hold different variables of one dataset: they are merged.
    #[serde(default)]
    pub merge: Option<String>,
    /// Keys that become new leading dimensions (NcML joinNew), in this order.
    #[serde(default)]
    pub new_dims: Vec<String>,
    /// A fix file (TOML) of per-file corrections applied before joining.
    #[serde(default)]
    pub fixes: Option<PathBuf>,
    /// Join the files along this existing dimension, ordered by its coordinate values.
    #[serde(default)]
    pub concat_dim: Option<String>,
    /// Served chunk length per dimension, overriding the default chunking.
    #[serde(default)]
    pub chunks: BTreeMap<String, u64>,
    /// An existing Zarr store (v2 or v3, a directory or an object-store URL) re-exposed as this
    /// dataset, instead of `files` or `catalog`.
    #[serde(default)]
    pub zarr: Option<String>,
    /// How to reach object storage for `files` or `zarr` URLs.
    #[serde(default)]
    pub storage: StorageSection,
}

/// The `[dataset.storage]` table: how to reach an object store. Everything is optional; by
/// default credentials and region come from the standard environment variables, profile files
/// and instance metadata.
#[derive(Clone, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Region (S3), e.g. `"us-west-2"`.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint of an S3-compatible store; `http://` allows plain HTTP. Implies path-style
    /// addressing.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Send unsigned requests (public buckets).
    #[serde(default)]
    pub anonymous: bool,
    /// A named profile of the AWS shared credentials and config files.
    #[serde(default)]
    pub profile: Option<String>,
    /// Further `object_store` configuration keys and values (e.g. credentials), per dataset.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Retries of a failing request (5xx, throttling, timeouts, truncated bodies); default 4.
    #[serde(default)]
    pub retries: Option<usize>,
    /// Requests in flight per store; default 32.
    #[serde(default)]
    pub concurrency: Option<usize>,
}

/// Redacts option values: they may hold credentials, which never reach a log.
impl std::fmt::Debug for StorageSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageSection")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("anonymous", &self.anonymous)
            .field("profile", &self.profile)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .field("retries", &self.retries)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

/// Whether `location` names an object-store URL rather than a local path.
pub fn is_url(location: &str) -> bool {
    location.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+')
    })
}

/// A whole mount configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountConfig {
    /// `[mount]`.
    #[serde(default)]
    pub mount: MountSection,
    /// `[cache]`.
    #[serde(default)]
    pub cache: CacheSection,
    /// `[[dataset]]` entries.
    #[serde(default, rename = "dataset")]
    pub datasets: Vec<DatasetConfig>,
    /// `[[view]]` entries, in file order.
    #[serde(default, rename = "view")]
    pub views: Vec<ViewConfig>,
    /// `[[samples]]` entries (sample sets), in file order.
    #[serde(default)]
    pub samples: Vec<SamplesConfig>,
    /// The file this configuration was read from.
    #[serde(skip)]
    pub path: PathBuf,
}

impl MountConfig {
    /// Reads and validates a config file, resolving relative paths against its directory.
    ///
    /// # Errors
    /// [`ConfigError`] when the file cannot be read, is not valid TOML, has unknown keys, or
    /// names datasets inconsistently.
    pub fn load(path: &Path) -> Result<MountConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses config text as if it had been read from `path`.
    ///
    /// # Errors
    /// As [`MountConfig::load`].
    pub fn parse(text: &str, path: &Path) -> Result<MountConfig, ConfigError> {
        let mut config: MountConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.path = path.to_owned();
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = std::path::absolute(&base).unwrap_or(base);
        if config.cache.dir.is_relative() {
            config.cache.dir = base.join(&config.cache.dir);
        }
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        if let Some(shared) = &config.cache.shared {
            if !is_url(shared)
                || crate::sources::remote::location::ObjectUrl::parse(shared).is_err()
            {
                return Err(invalid(format!(
                    "[cache] shared = {shared:?} must be an object-store URL such as \
                     s3://bucket/prefix, gs://bucket/prefix or az://container/prefix"
                )));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for dataset in &mut config.datasets {
            if !valid_name(&dataset.name) {
                return Err(invalid(format!(
                    "dataset name {:?} must be a non-empty path segment without '/', '.' prefixes or control characters",
                    dataset.name
                )));
            }
            if !seen.insert(dataset.name.clone()) {
                return Err(invalid(format!(
                    "dataset {:?} is named twice",
                    dataset.name
                )));
            }
            if let Some(&0) = dataset.chunks.values().find(|&&n| n == 0) {
                return Err(invalid(format!(
                    "dataset {:?}: chunk lengths must be at least 1",
                    dataset.name
                )));
            }
            let sources = usize::from(!dataset.files.is_empty())
                + usize::from(dataset.catalog.is_some())
                + usize::from(dataset.zarr.is_some());
            if sources != 1 {
                return Err(invalid(format!(
                    "dataset {:?} needs exactly one of `files` (a glob or URL), `catalog` or `zarr`",
                    dataset.name
                )));
            }
            if dataset.zarr.is_some()
                && (dataset.pattern.is_some()
                    || dataset.concat_dim.is_some()
                    || dataset.fixes.is_some()
                    || !dataset.groups.is_empty()
                    || !dataset.new_dims.is_empty()
                    || dataset.merge.is_some()
                    || !dataset.chunks.is_empty())
            {
                return Err(invalid(format!(
                    "dataset {:?}: a `zarr` store is served as it is; `pattern`, `groups`, `merge`, `new_dims`, `concat_dim`, `fixes` and `chunks` do not apply",
                    dataset.name
                )));
            }
            if dataset.catalog.is_some() && dataset.pattern.is_some() {
                return Err(invalid(format!(
                    "dataset {:?}: `pattern` does not apply to a catalog (its columns are the keys)",
                    dataset.name
                )));
            }
            check_keys(dataset)
                .map_err(|message| invalid(format!("dataset {:?}: {message}", dataset.name)))?;
            for location in [Some(&mut dataset.files), dataset.zarr.as_mut()]
                .into_iter()
                .flatten()
            {
                if !location.is_empty() && !is_url(location) && Path::new(location).is_relative() {
                    *location = base.join(&*location).to_string_lossy().into_owned();
                }
            }
            for path in [&mut dataset.catalog, &mut dataset.fixes]
                .into_iter()
                .flatten()
            {
                if path.is_relative() {
                    *path = base.join(&*path);
                }
            }
        }
        let names: Vec<&str> = config.datasets.iter().map(|d| d.name.as_str()).collect();
        for view in &config.views {
            if !seen.insert(view.name.clone()) {
                return Err(invalid(format!(
                    "view {:?} is named twice (or like a dataset)",
                    view.name
                )));
            }
        }
        view_order(&names, &config.views).map_err(invalid)?;
        for set in &mut config.samples {
            set.resolve(&base).map_err(invalid)?;
            if !seen.insert(set.name.clone()) {
                return Err(invalid(format!(
                    "samples {:?} is named twice (or like a dataset or view)",
                    set.name
                )));
            }
        }
        Ok(config)
    }

    /// The views in dependency order.
    pub fn ordered_views(&self) -> Vec<&ViewConfig> {
        let names: Vec<&str> = self.datasets.iter().map(|d| d.name.as_str()).collect();
        view_order(&names, &self.views)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| self.views.get(i))
            .collect()
    }

    /// The log file used by a background daemon.
    pub fn log_file(&self) -> PathBuf {
        self.cache.dir.join("atlasfs.log")
    }

    /// The persisted catalog.
    pub fn catalog_file(&self) -> PathBuf {
        self.cache.dir.join("catalog.bin")
    }
}

/// Checks what the keys of a dataset name without reading a file: a catalog's aggregation
/// control is its layout; otherwise `groups`, `merge` and `new_dims` are fields of `pattern`, and
/// a local `files` glob is valid.
fn check_keys(dataset: &DatasetConfig) -> Result<(), String> {
    let keyed: Vec<(&str, &String)> = dataset
        .groups
        .iter()
        .map(|k| ("groups", k))
        .chain(dataset.merge.iter().map(|k| ("merge", k)))
        .chain(dataset.new_dims.iter().map(|k| ("new_dims", k)))
        .collect();
    if dataset.catalog.is_some() {
        let set = keyed
            .iter()
            .map(|(key, _)| *key)
            .chain(dataset.concat_dim.iter().map(|_| "concat_dim"))
            .next();
        return match set {
            Some(key) => Err(format!(
                "`{key}` does not apply to a catalog: its aggregation_control sets the layout"
            )),
            None => Ok(()),
        };
    }
    if !dataset.files.is_empty() && !is_url(&dataset.files) {
        glob::Pattern::new(&dataset.files)
            .map_err(|e| format!("files = {:?} is not a valid glob: {e}", dataset.files))?;
    }
    let pattern = dataset
        .pattern
        .as_deref()
        .map(crate::sources::pattern::Pattern::new)
        .transpose()
        .map_err(|e| e.to_string())?;
    let Some((key, value)) = keyed.first() else {
        return Ok(());
    };
    let Some(pattern) = pattern else {
        return Err(format!(
            "{key} = {value:?} names a key, but there is no `pattern` to take keys from"
        ));
    };
    let text = pattern.text();
    let fields = pattern.kinds();
    match keyed.iter().find(|(_, k)| !fields.contains_key(*k)) {
        Some((key, unknown)) => Err(format!(
            "{key}: {unknown:?} is not a field of pattern {text:?} (fields: {})",
            fields.keys().cloned().collect::<Vec<_>>().join(", ")
        )),
        None => Ok(()),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains('/')
        && !name.chars().any(char::is_control)
}

fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("atlasfs");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("atlasfs"),
        None => std::env::temp_dir().join("atlasfs-cache"),
    }
}

fn default_memory() -> u64 {
    512 << 20
}

fn default_max_size() -> u64 {
    10 << 30
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_against_the_config_directory() {
        let text = "[cache]\ndir = \"cache\"\n[[dataset]]\nname = \"sst\"\nfiles = \"data/*.nc\"\nconcat_dim = \"time\"\n";
        let config = MountConfig::parse(text, Path::new("/etc/atlas/sst.toml")).unwrap();
        assert_eq!(config.cache.dir, PathBuf::from("/etc/atlas/cache"));
        assert_eq!(config.datasets[0].files, "/etc/atlas/data/*.nc");
        assert_eq!(config.mount.zarr_format, ZarrFormat::V3);
        assert_eq!(config.cache.max_size, 10 << 30);
        let sized =
            MountConfig::parse("[cache]\nmax_size = \"2GiB\"\n", Path::new("x.toml")).unwrap();
        assert_eq!(sized.cache.max_size, 2 << 30);
    }

    #[test]
    fn unknown_keys_and_bad_formats_are_errors() {
        let err =
            MountConfig::parse("[mount]\nzarr_fromat = 2\n", Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("zarr_fromat"), "{err}");
        let err =
            MountConfig::parse("[mount]\nzarr_format = 4\n", Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("2 or 3"), "{err}");
        let err = MountConfig::parse("[mount]\nrefresh = \"10 parsecs\"\n", Path::new("x.toml"))
            .unwrap_err();
        assert!(err.to_string().contains("parsecs"), "{err}");
        let twice = "[[dataset]]\nname = \"a\"\nfiles = \"*.nc\"\n[[dataset]]\nname = \"a\"\nfiles = \"*.nc\"\n";
        assert!(MountConfig::parse(twice, Path::new("x.toml")).is_err());
    }

    #[test]
    fn layout_keys_must_be_fields_of_the_pattern() {
        let config = |extra: &str| {
            MountConfig::parse(
                &format!("[[dataset]]\nname = \"d\"\nfiles = \"*.nc\"\n{extra}"),
                Path::new("x.toml"),
            )
        };
        let pattern = "pattern = \"{site}/{year:d}.nc\"\n";
        assert!(config(&format!(
            "{pattern}groups = [\"site\"]\nnew_dims = [\"year\"]\n"
        ))
        .is_ok());
        for (extra, named) in [
            ("groups = [\"stie\"]\n", "groups: \"stie\""),
            ("new_dims = [\"yeer\"]\n", "new_dims: \"yeer\""),
            ("merge = \"var\"\n", "merge: \"var\""),
        ] {
            let err = config(&format!("{pattern}{extra}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(named) && err.contains("site, year"), "{err}");
        }
        let err = config("groups = [\"site\"]\n").unwrap_err().to_string();
        assert!(err.contains("no `pattern`"), "{err}");
        let err = config("pattern = \"{site\"\n").unwrap_err().to_string();
        assert!(err.contains("not closed"), "{err}");
    }

    #[test]
    fn layout_keys_do_not_apply_to_a_catalog() {
        let text = "[[dataset]]\nname = \"d\"\ncatalog = \"c.json\"\nconcat_dim = \"time\"\n";
        let err = MountConfig::parse(text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("concat_dim") && err.contains("aggregation_control"),
            "{err}"
        );
    }

    #[test]
    fn refresh_takes_humane_durations() {
        let config = |text: &str| MountConfig::parse(text, Path::new("x.toml"));
        assert_eq!(config("").unwrap().mount.refresh, None);
        assert_eq!(
            config("[mount]\nrefresh = \"10m\"\n")
                .unwrap()
                .mount
                .refresh,
            Some(Duration::from_secs(600))
        );
        let err = config("[mount]\nrefresh = \"100ms\"\n").unwrap_err();
        assert!(err.to_string().contains("at least"), "{err}");
        assert!(config("[mount]\nrefresh = 600\n").is_err());
    }

    #[test]
    fn open_names_who_opens_files() {
        let config = |text: &str| MountConfig::parse(text, Path::new("x.toml"));
        assert_eq!(config("").unwrap().mount.open, OpenBy::Daemon);
        assert_eq!(
            config("[mount]\nopen = \"kernel\"\n").unwrap().mount.open,
            OpenBy::Kernel
        );
        let err = config("[mount]\nopen = \"kernal\"\n").unwrap_err();
        assert!(err.to_string().contains("kernal"), "{err}");
    }
}
