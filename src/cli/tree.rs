//! `atlasfs tree CONFIG [PATH]`: prints groups and arrays (shape, dtype, chunks) without mounting.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use atlasfs::config::MountConfig;
use atlasfs::service::{ServiceOptions, Startup};
use atlasfs::tree::{GroupNode, Node, NodeRef};

/// Builds the tree and prints it.
pub(super) fn run(config_path: &Path, path: Option<&str>) -> anyhow::Result<ExitCode> {
    let config = MountConfig::load(config_path)?;
    let startup = Startup::open(config, ServiceOptions::inspect())?;
    let indexed = super::index::index_with_progress(startup)?;
    super::index::print_report(indexed.report());
    let service = indexed.build()?;
    super::index::report_left_out(&service)?;
    let tree = service.tree();
    for note in &tree.notes {
        println!("{note}");
    }
    let path = path.unwrap_or("").trim_matches('/');
    match tree.node(path) {
        Some(NodeRef::Group(group)) => {
            println!("{}/", if path.is_empty() { "" } else { path });
            print_group(group, 1);
        }
        Some(NodeRef::Array(_)) => {
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
            if let Some(NodeRef::Group(group)) = tree.node(parent) {
                if let Some(node) = group.children.get(name) {
                    print_node(name, node, 0);
                }
            }
        }
        None => bail!("no node at {path:?} in the tree"),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_group(group: &GroupNode, depth: usize) {
    for (name, node) in &group.children {
        print_node(name, node, depth);
    }
}

fn print_node(name: &str, node: &Node, depth: usize) {
    let indent = "  ".repeat(depth);
    match node {
        Node::Group(g) => {
            println!("{indent}{name}/");
            print_group(g, depth + 1);
        }
        Node::Array(a) => {
            let g = &a.geometry;
            let dims: Vec<String> = a
                .dims
                .iter()
                .zip(&g.shape)
                .map(|(d, n)| format!("{d}: {n}"))
                .collect();
            let from = a.recipe.operator.describe(g);
            println!(
                "{indent}{name}  ({})  {:?}  chunks {:?}  {from}",
                dims.join(", "),
                g.dtype,
                g.chunks,
            );
        }
    }
}
