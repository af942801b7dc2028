//! What can go wrong while describing grids or computing weights between them.

/// A grid that cannot be regridded, or a pair of grids with no weights between them.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RegridError {
    /// Coordinates that do not describe cells: not monotonic, not finite, too few.
    #[error("{axis}: {reason}")]
    BadAxis {
        /// The axis (its coordinate name).
        axis: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A projection that is not supported, or parameters that do not describe one.
    #[error("projection: {0}")]
    Projection(String),
    /// Anything else that makes a grid unusable (shapes that disagree, bounds of the wrong shape).
    #[error("{0}")]
    Grid(String),
    /// Stored weights that do not decode or whose rows are inconsistent.
    #[error("stored regrid weights: {0}")]
    Weights(String),
}
