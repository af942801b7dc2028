//! The errors of the start-up chain and of reloads: one variant per link (config, cache,
//! sources, index, tree), each wrapping the typed error of the module that failed. A link that
//! adds nothing to its source's message is transparent, so a chain of causes says each thing
//! once.

use crate::cache::LockError;
use crate::config::ConfigError;
use crate::sources::catalog::CatalogError;
use crate::sources::remote::RemoteError;
use crate::tree::TreeError;

/// Why a service could not start or reload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The config cannot be read or is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The cache dir is in use by another process in a conflicting mode.
    #[error(transparent)]
    Cache(#[from] LockError),
    /// A disk cache is required (`atlasfs warm`) but `[cache] max_size` is 0.
    #[error("[cache] max_size is 0: there is no disk cache to warm")]
    DiskCacheOff,
    /// A disk cache is required but its directory cannot be used (the cache logged why).
    #[error("the disk cache in {} cannot be used (see the warning above)", dir.display())]
    DiskCacheUnusable {
        /// The cache dir.
        dir: std::path::PathBuf,
    },
    /// An object store of the config cannot be reached or configured.
    #[error(transparent)]
    Sources(#[from] RemoteError),
    /// The shared cache tier (`[cache] shared`) cannot be configured.
    #[error("[cache] shared: {0}")]
    SharedTier(#[source] RemoteError),
    /// Indexing the sources failed (an invalid glob or pattern, an unwritable catalog).
    #[error("indexing failed")]
    Index(#[source] CatalogError),
    /// The config names something the files do not have: the whole config is refused.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// Every dataset was left out: there is nothing to serve.
    #[error("no dataset can be served: {}", left_out.join("; "))]
    NothingToServe {
        /// `left out <dataset>: <reason>` for each dataset.
        left_out: Vec<String>,
    },
}
