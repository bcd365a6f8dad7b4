//! `cargo xtask ci`: the project's test command, the one `.ci/run` calls.
//!
//! The steps run in order and the first failure stops the run with a non-zero exit, so the
//! log ends at the step that failed.

use crate::cmd::{Result, cargo, header, step};
use crate::{checks, cross, demo, mpi, soak};

/// Runs every check: formatting, clippy, the tests (doctests included), the docs, the
/// minimum Rust version, features and Miri ([`checks`]), the demo, the soak, the MPI leg
/// ([`mpi`]), and the checks for the other platforms.
pub(crate) fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        return Err(format!("`ci` takes no arguments, got {arg:?}").into());
    }
    step(cargo().args(["fmt", "--all", "--", "--check"]))?;
    step(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Plain `cargo test` runs the lib, bin, test and example targets and the doctests;
    // `--all-targets` would leave the doctests out.
    step(cargo().args(["test", "--workspace"]))?;
    step(
        cargo()
            .env("RUSTDOCFLAGS", "-D warnings")
            .args(["doc", "--workspace", "--no-deps"]),
    )?;
    checks::run()?;
    // The examples assert what they print: run them too.
    demo::run(&[])?;
    // A minute of kills at random points and one round of the fuzz tests from fresh seeds,
    // after the tests that explain a failure better.
    soak::run(&["--short".to_string()])?;
    // proc-mpi is outside the workspace: its checks and its tests under mpirun.
    mpi::run(&[])?;
    cross::run(&[])?;
    header("ci: every step passed");
    Ok(())
}
