//! How the service words what it reports: the line naming a dataset left out of the tree, an
//! error with its causes each said once, and the check that a tree has something to serve.
//! Front ends print or log these lines; nothing here writes anywhere.

use crate::tree::{Tree, TreeError};

use super::ServiceError;

/// `left out <dataset>: <reason>`: a dataset the tree left out, with its reason.
pub fn left_out_line(error: &TreeError) -> String {
    format!("left out {}: {}", error.dataset, error.message)
}

/// `error: cause: cause …`, leaving out a cause whose text the previous link already contains.
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut links: Vec<String> = Vec::new();
    let mut link = Some(error);
    while let Some(error) = link {
        let text = error.to_string();
        if !links
            .last()
            .is_some_and(|previous| previous.contains(&text))
        {
            links.push(text);
        }
        link = error.source();
    }
    links.join(": ")
}

/// Fails when every dataset of `tree` was left out, so there is nothing to serve.
///
/// # Errors
/// [`ServiceError::NothingToServe`] naming each dataset left out and why.
pub(crate) fn ensure_usable(tree: &Tree) -> Result<(), ServiceError> {
    if tree.nothing_usable() {
        return Err(ServiceError::NothingToServe {
            left_out: tree.left_out.iter().map(left_out_line).collect(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::causes;
    use crate::service::ServiceError;
    use crate::sources::catalog::CatalogError;

    #[test]
    fn each_cause_is_said_once() {
        let error = ServiceError::Index(CatalogError::Write {
            path: "c.bin".into(),
            source: std::io::Error::other("denied"),
        });
        assert_eq!(
            causes(&error),
            "indexing failed: cannot write catalog c.bin: denied"
        );
    }
}
