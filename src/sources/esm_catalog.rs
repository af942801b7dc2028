//! intake-esm catalogs (the ESM collection spec): a JSON description plus a CSV (plain or
//! gzip-compressed) of assets, one row per file. Rows become dataset members whose keys are the
//! columns; `aggregation_control` becomes the dataset's layout (groups, merge, joins).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::membership::{Layout, Member};

/// A catalog that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("intake-esm catalog {path}: {reason}")]
pub struct EsmCatalogError {
    /// The catalog JSON (or its CSV).
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

#[derive(Deserialize)]
struct Spec {
    assets: Assets,
    #[serde(default)]
    aggregation_control: Option<AggregationControl>,
    #[serde(default)]
    catalog_file: Option<String>,
    #[serde(default)]
    catalog_dict: Option<Vec<BTreeMap<String, serde_json::Value>>>,
}

#[derive(Deserialize)]
struct Assets {
    column_name: String,
}

#[derive(Deserialize)]
struct AggregationControl {
    #[serde(default)]
    groupby_attrs: Vec<String>,
    #[serde(default)]
    aggregations: Vec<Aggregation>,
}

#[derive(Deserialize)]
struct Aggregation {
    #[serde(rename = "type")]
    kind: String,
    attribute_name: String,
    #[serde(default)]
    options: BTreeMap<String, serde_json::Value>,
}

/// Reads the catalog at `path`: its members (paths made absolute against the JSON's
/// directory) and the layout its aggregation control describes.
///
/// # Errors
/// [`EsmCatalogError`] when the JSON or CSV cannot be read or lacks required fields.
pub fn read(path: &Path) -> Result<(Vec<Member>, Layout), EsmCatalogError> {
    let fail = |p: &Path, reason: String| EsmCatalogError {
        path: p.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(path, e.to_string()))?;
    let spec: Spec = serde_json::from_str(&text).map_err(|e| fail(path, e.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let rows: Vec<BTreeMap<String, String>> = match (&spec.catalog_file, &spec.catalog_dict) {
        (Some(file), _) => {
            let csv_path = base.join(file);
            read_csv(&csv_path).map_err(|reason| fail(&csv_path, reason))?
        }
        (None, Some(dict)) => dict
            .iter()
            .map(|row| {
                row.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                        )
                    })
                    .collect()
            })
            .collect(),
        (None, None) => return Err(fail(path, "neither catalog_file nor catalog_dict".into())),
    };
    let mut members = Vec::with_capacity(rows.len());
    for (i, mut row) in rows.into_iter().enumerate() {
        let asset = row.remove(&spec.assets.column_name).ok_or_else(|| {
            fail(
                path,
                format!("row {} has no {:?} column", i + 1, spec.assets.column_name),
            )
        })?;
        let asset_path = if Path::new(&asset).is_absolute() {
            PathBuf::from(&asset)
        } else {
            base.join(&asset)
        };
        let path = if crate::config::is_url(&asset) {
            asset
        } else {
            std::path::absolute(&asset_path)
                .unwrap_or(asset_path)
                .to_string_lossy()
                .into_owned()
        };
        members.push(Member {
            path,
            keys: row,
            version: None,
        });
    }
    let mut layout = Layout::default();
    if let Some(control) = spec.aggregation_control {
        layout.groups = control.groupby_attrs;
        for aggregation in control.aggregations {
            match aggregation.kind.as_str() {
                "union" => layout.merge = Some(aggregation.attribute_name),
                "join_existing" => {
                    let dim = aggregation
                        .options
                        .get("dim")
                        .and_then(|d| d.as_str())
                        .ok_or_else(|| fail(path, "join_existing needs options.dim".into()))?;
                    layout.concat_dim = Some(dim.to_owned());
                    layout.joined_keys.push(aggregation.attribute_name);
                }
                "join_new" => layout.new_dims.push(aggregation.attribute_name),
                other => return Err(fail(path, format!("unknown aggregation type {other:?}"))),
            }
        }
    }
    Ok((members, layout))
}

fn read_csv(path: &Path) -> Result<Vec<BTreeMap<String, String>>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut csv = csv::Reader::from_reader(reader);
    let headers = csv.headers().map_err(|e| e.to_string())?.clone();
    let mut rows = Vec::new();
    for record in csv.records() {
        let record = record.map_err(|e| e.to_string())?;
        rows.push(
            headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect(),
        );
    }
    Ok(rows)
}
