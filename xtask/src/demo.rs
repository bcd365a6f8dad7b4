//! `cargo xtask demo`: builds and runs the workspace examples, in order, in release mode,
//! then the MPI demo of proc-mpi under `mpirun` when MPI is installed (a loud `SKIPPED:`
//! otherwise, which does not fail the demo).

use std::fs;
use std::process::Command;

use crate::cmd::{Result, cargo, root, step, target_dir};

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

/// The MPI demos, in `crates/proc-mpi/examples/` (proc-mpi is outside the workspace), each
/// with the ranks `mpirun` starts it on.
pub(crate) const MPI_EXAMPLES: &[(&str, u32)] = &[("mpi_pool_tasks", 4)];

/// The package that owns `examples/`: the root package of the workspace.
const PACKAGE: &str = "procs-workspace-tests";

/// Runs every example of [`EXAMPLES`], or those named in `args`, and fails at the first one
/// that fails.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let (mpi, names): (Vec<&str>, Vec<&str>) = if args.is_empty() {
        (
            MPI_EXAMPLES.iter().map(|(name, _)| *name).collect(),
            EXAMPLES.to_vec(),
        )
    } else {
        args.iter()
            .map(String::as_str)
            .partition(|name| MPI_EXAMPLES.iter().any(|(mpi, _)| mpi == name))
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
    if !mpi.is_empty() {
        run_mpi(&mpi)?;
    }
    Ok(())
}

/// Builds the MPI demos named and runs each under `mpirun`, or says loudly why not.
fn run_mpi(names: &[&str]) -> Result<()> {
    if let Err(why) = crate::mpi::present() {
        println!("SKIPPED: the MPI demo ({}): {why}", names.join(", "));
        return Ok(());
    }
    let dir = target_dir().join("mpi");
    for name in names {
        step(
            cargo()
                .args(["build", "--release", "--manifest-path"])
                .arg(root().join("crates/proc-mpi/Cargo.toml"))
                .args(["--example", name])
                .env("CARGO_TARGET_DIR", &dir),
        )?;
        let ranks = MPI_EXAMPLES
            .iter()
            .find(|(mpi, _)| mpi == name)
            .map_or(2, |(_, ranks)| *ranks);
        step(
            Command::new("mpirun")
                .args(crate::mpi::MPIRUN_FLAGS)
                .args(["-n", &ranks.to_string()])
                .arg(dir.join("release").join("examples").join(name))
                .current_dir(root()),
        )?;
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
