//! The checks that keep the crates' promises: the minimum supported Rust version, each
//! feature of the facade alone, the dependencies of a lone `proc-sync`, and Miri on the
//! queue ring's index arithmetic.
//!
//! A check that cannot run here (rustup cannot install a toolchain, Miri is missing) prints
//! a loud `SKIPPED:` line; under CI (`CI=true`) a skip fails the run unless
//! `PROCS_ALLOW_SKIP=1` says it may pass, as for the cross checks.

use std::fs;
use std::process::{Command, Stdio};

use crate::cmd::{Result, cargo, env_flag, header, root, step, target_dir};

/// The features of the `procs` facade, each checked alone (`pool` brings `ipc` and `sync`).
const FEATURES: &[&str] = &["ipc", "sync", "pool"];

/// Runs every check of this module.
pub(crate) fn run() -> Result<()> {
    let mut skipped = Vec::new();
    if let Err(why) = msrv()? {
        skipped.push(format!("msrv: {why}"));
    }
    features()?;
    lone_sync()?;
    if let Err(why) = miri()? {
        skipped.push(format!("miri: {why}"));
    }
    finish(&skipped)
}

/// Fails the run for skips under CI, unless they are allowed.
fn finish(skipped: &[String]) -> Result<()> {
    if skipped.is_empty() {
        return Ok(());
    }
    header("checks: some checks were NOT run");
    for skip in skipped {
        println!("SKIPPED: {skip}");
    }
    if env_flag("CI") && !env_flag("PROCS_ALLOW_SKIP") {
        return Err(format!(
            "{} check(s) skipped under CI; install what the SKIPPED lines name, or set \
             PROCS_ALLOW_SKIP=1 to let the run pass without them",
            skipped.len()
        )
        .into());
    }
    Ok(())
}

/// The `rust-version` of the workspace's `Cargo.toml`.
fn rust_version() -> Result<String> {
    let manifest = fs::read_to_string(root().join("Cargo.toml"))?;
    manifest
        .lines()
        .find_map(|line| {
            let value = line.trim().strip_prefix("rust-version")?;
            let value = value.trim_start().strip_prefix('=')?;
            Some(value.trim().trim_matches('"').to_string())
        })
        .ok_or_else(|| "the workspace Cargo.toml has no rust-version".into())
}

/// Whether `rustup` runs here.
fn rustup_works() -> bool {
    Command::new("rustup")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Checks the workspace with the toolchain of its `rust-version`, installed with rustup
/// when missing. `Ok(Err(why))` when it cannot run here.
fn msrv() -> Result<Result<(), String>> {
    let version = rust_version()?;
    header(&format!("checks: the minimum Rust version, {version}"));
    if !rustup_works() {
        return Ok(Err("rustup is not available".into()));
    }
    let installed = Command::new("rustup")
        .args(["toolchain", "install", &version, "--profile", "minimal"])
        .status();
    if !installed.is_ok_and(|s| s.success()) {
        return Ok(Err(format!("rustup could not install Rust {version}")));
    }
    // A target folder of its own, so that the main one keeps its builds.
    let mut check = Command::new("rustup");
    check
        .current_dir(root())
        .env("CARGO_TARGET_DIR", target_dir().join("msrv"))
        .args([
            "run",
            &version,
            "cargo",
            "check",
            "--workspace",
            "--all-targets",
        ]);
    step(&mut check)?;
    Ok(Ok(()))
}

/// Builds and tests the facade with each of its features alone, and with none.
fn features() -> Result<()> {
    let mut sets: Vec<&str> = vec![""];
    sets.extend(FEATURES);
    for features in sets {
        let mut test = cargo();
        test.args(["test", "-p", "procs", "--no-default-features"]);
        if !features.is_empty() {
            test.args(["--features", features]);
        }
        step(&mut test)?;
    }
    Ok(())
}

/// A default build of `proc-sync` alone compiles no rayon (nor anything of the pools).
fn lone_sync() -> Result<()> {
    header("checks: what a lone proc-sync depends on");
    let output = cargo()
        .args([
            "tree",
            "-p",
            "proc-sync",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .output()?;
    if !output.status.success() {
        return Err("`cargo tree -p proc-sync` failed".into());
    }
    let tree = String::from_utf8_lossy(&output.stdout);
    let heavy: Vec<&str> = tree
        .lines()
        .filter(|line| {
            let name = line.split_whitespace().next().unwrap_or("");
            matches!(
                name,
                "rayon" | "rayon-core" | "proc-pool" | "crossbeam-deque"
            )
        })
        .collect();
    if !heavy.is_empty() {
        return Err(format!("proc-sync alone pulls in {}", heavy.join(", ")).into());
    }
    println!("--- proc-sync alone builds without rayon or the pools");
    Ok(())
}

/// Runs the ring's pure index arithmetic under Miri (nightly). `Ok(Err(why))` when Miri
/// is not to be had here.
fn miri() -> Result<Result<(), String>> {
    header("checks: Miri on the queue ring's index arithmetic");
    if !rustup_works() {
        return Ok(Err("rustup is not available".into()));
    }
    let added = Command::new("rustup")
        .args(["+nightly", "component", "add", "miri", "rust-src"])
        .status();
    if !added.is_ok_and(|s| s.success()) {
        return Ok(Err(
            "rustup could not add miri to a nightly toolchain".into()
        ));
    }
    // The start-up constructor of proc-core looks at the executable, which Miri's isolation
    // forbids; the code under test makes no system call.
    let mut miri = Command::new("rustup");
    miri.current_dir(root())
        .env("MIRIFLAGS", "-Zmiri-disable-isolation")
        .args([
            "run",
            "nightly",
            "cargo",
            "miri",
            "test",
            "-p",
            "proc-ipc",
            "--lib",
            "ring::arith",
        ]);
    step(&mut miri)?;
    Ok(Ok(()))
}
