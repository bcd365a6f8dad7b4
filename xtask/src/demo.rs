//! `cargo xtask demo`: builds and runs the workspace examples, in order, in release mode.

use std::fs;

use crate::cmd::{Result, cargo, root, step};

/// The examples shown, in the order they run. Every example in `examples/` belongs here.
pub(crate) const EXAMPLES: &[&str] = &[
    "named_child",
    "task_subclass",
    "daemon_child",
    "join_or_not",
    "ticket_grabbing",
    "traffic_light",
    "semaphore_limit",
    "pipe_conversation",
    "bones_and_dogs",
    "pool_tasks",
    "map_vs_starmap",
    "pool_survives",
    "executor_as_completed",
    "imap_progress",
    "shared_dict_list",
    "remote_manager",
];

/// The package that owns `examples/`: the root package of the workspace.
const PACKAGE: &str = "procs-workspace-tests";

/// Runs every example of [`EXAMPLES`], or those named in `args`, and fails at the first one
/// that fails.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let names: Vec<&str> = if args.is_empty() {
        EXAMPLES.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    let on_disk = examples_on_disk()?;
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| !on_disk.iter().any(|found| found == name))
        .collect();
    if !missing.is_empty() {
        return Err(format!("no example named {} in examples/", missing.join(", ")).into());
    }
    for found in &on_disk {
        if !EXAMPLES.contains(&found.as_str()) {
            println!(
                "warning: examples/{found} is not in the demo list; add it to EXAMPLES in \
                 xtask/src/demo.rs"
            );
        }
    }
    for name in names {
        step(cargo().args(["run", "-p", PACKAGE, "--release", "--example", name]))?;
    }
    Ok(())
}

/// The names of the examples in `examples/`: `name.rs` files and `name/main.rs` folders.
fn examples_on_disk() -> Result<Vec<String>> {
    let mut names = Vec::new();
    let dir = root().join("examples");
    if !dir.is_dir() {
        return Ok(names);
    }
    for entry in fs::read_dir(&dir)? {
        let path = entry?.path();
        let name = if path.is_dir() && path.join("main.rs").is_file() {
            path.file_name()
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            path.file_stem()
        } else {
            None
        };
        if let Some(name) = name {
            names.push(name.to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}
