//! `cargo xtask cross`: the checks for the platforms this machine does not run.
//!
//! For each target, the standard library is installed with rustup when it is missing, then
//! clippy checks the whole workspace for it. A target that cannot be had is reported with a
//! loud `SKIPPED:` line; under CI (`CI=true`) a skip fails the run unless `PROCS_ALLOW_SKIP=1`
//! says it may pass.

use std::process::{Command, Stdio};

use crate::cmd::{Result, cargo, env_flag, header, step};

/// The targets checked, by rustc's name.
// The Windows tests will also run here, under wine, once that is set up.
pub(crate) const TARGETS: &[&str] = &[
    "x86_64-pc-windows-gnu",
    "aarch64-apple-darwin",
    "x86_64-unknown-freebsd",
];

/// Workspace members left out of the cross checks: the benchmark programs, which call Unix
/// functions directly and depend on peers that need not build for every target.
const HOST_ONLY_PACKAGES: &[&str] = &["procs-bench"];

/// Checks the workspace for every target in [`TARGETS`], or for the targets named in `args`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let targets: Vec<&str> = if args.is_empty() {
        TARGETS.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    let installed = installed_targets();
    let mut skipped = Vec::new();
    for &target in &targets {
        header(&format!("cross: {target}"));
        if let Err(why) = ensure_installed(target, &installed) {
            println!("SKIPPED: {target}: {why}");
            skipped.push(format!("{target}: {why}"));
            continue;
        }
        let mut clippy = cargo();
        clippy.args(["clippy", "--workspace", "--all-targets", "--target", target]);
        for package in HOST_ONLY_PACKAGES {
            clippy.args(["--exclude", package]);
        }
        clippy.args(["--", "-D", "warnings"]);
        step(&mut clippy)?;
    }
    if skipped.is_empty() {
        return Ok(());
    }
    header("cross: some targets were NOT checked");
    for skip in &skipped {
        println!("SKIPPED: {skip}");
    }
    if env_flag("CI") && !env_flag("PROCS_ALLOW_SKIP") {
        return Err(format!(
            "{} target(s) skipped under CI; install them (rustup target add ...) or set \
             PROCS_ALLOW_SKIP=1 to let the run pass without them",
            skipped.len()
        )
        .into());
    }
    Ok(())
}

/// The targets rustup has installed, or why they cannot be known.
fn installed_targets() -> Result<Vec<String>, String> {
    let output = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| rustup_missing(&error))?;
    if !output.status.success() {
        return Err(format!(
            "`rustup target list --installed` failed ({})",
            output.status
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.trim().to_string())
        .collect())
}

/// Makes sure the standard library for `target` is there, or says why it is not. An installed
/// target is left alone, so that no download is tried when none is needed.
fn ensure_installed(target: &str, installed: &Result<Vec<String>, String>) -> Result<(), String> {
    let installed = installed.as_ref().map_err(String::clone)?;
    if installed.iter().any(|t| t == target) {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", target])
        .status()
        .map_err(|error| rustup_missing(&error))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`rustup target add {target}` failed ({status})"))
    }
}

fn rustup_missing(error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::NotFound {
        "rustup not found; it is needed to add targets".to_string()
    } else {
        format!("rustup could not run ({error})")
    }
}
