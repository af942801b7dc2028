//! Declared fixes: a TOML file of rules, each with an optional match on a file's keys or path
//! and a set of actions (rename, attributes, scale, fill value, time encoding, flips, coordinate
//! values, casts, promoted attributes), applied to each file before it is joined.

mod apply;
mod rules;

pub use apply::{apply, Fixed};
pub use rules::{FixError, FixSet};
