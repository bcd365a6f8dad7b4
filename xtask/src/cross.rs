//! `cargo xtask cross`: the checks for the platforms this machine does not run.
//!
//! For each target, the standard library is installed with rustup when it is missing, then
//! clippy checks the whole workspace for it, tests included. For Windows the workspace's
//! tests (doctests too) are also built and run, under wine (see [`crate::wine`]).
//!
//! Whatever cannot be had is reported with a loud `SKIPPED:` line; under CI (`CI=true`) a skip
//! fails the run unless `PROCS_ALLOW_SKIP=1` says it may pass. A test that fails under wine
//! fails the run.

use std::process::{Command, Stdio};
use std::time::Instant;

use crate::cmd::{Result, cargo, env_flag, header, step};
use crate::wine;

/// The targets checked, by rustc's name.
pub(crate) const TARGETS: &[&str] = &[
    wine::TARGET,
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
    let mut checked = Vec::new();
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
        checked.push(target);
    }
    // The tests under wine come last: they take the longest, and a failure there should not
    // hide what clippy says about the other targets.
    if checked.contains(&wine::TARGET) {
        match windows_tests() {
            Ok(()) => {}
            Err(NotPassed::Skipped(why)) => {
                let skip = format!("{} tests under wine: {why}", wine::TARGET);
                println!("SKIPPED: {skip}");
                skipped.push(skip);
            }
            Err(NotPassed::Failed(error)) => return Err(error),
        }
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
            "{} check(s) skipped under CI; install what the SKIPPED lines above name, or set \
             PROCS_ALLOW_SKIP=1 to let the run pass without them",
            skipped.len()
        )
        .into());
    }
    Ok(())
}

/// Why the Windows tests did not pass: they could not run here, or they failed.
enum NotPassed {
    Skipped(String),
    Failed(crate::cmd::Error),
}

/// Builds the workspace's tests for Windows and runs them under wine.
fn windows_tests() -> Result<(), NotPassed> {
    header(&format!("cross: {} tests under wine", wine::TARGET));
    let start = Instant::now();
    let wine = wine::setup().map_err(NotPassed::Skipped)?;
    let with_packages = |command: &mut Command| {
        command.args(["--workspace", "--no-fail-fast"]);
        for package in HOST_ONLY_PACKAGES {
            command.args(["--exclude", package]);
        }
    };
    // Built first, without a time limit: a slow build is no hung test.
    let mut build = wine.cargo_test();
    with_packages(&mut build);
    build.arg("--no-run");
    step(&mut build).map_err(NotPassed::Failed)?;

    let run = || {
        let server = wine.start_server().map_err(NotPassed::Skipped)?;
        let mut test = wine.cargo_test();
        with_packages(&mut test);
        wine::run_tests(&mut test, server).map_err(|e| NotPassed::Failed(e.into()))
    };
    let (mut status, mut summary) = run()?;
    if !status.success() && summary.failed_only_to_start() {
        // Wine failed to start a test process (not a test that failed): the run is
        // repeated once, and that run's verdict stands.
        println!(
            "wine could not start {} test process(es); running the tests under wine again",
            summary.not_started
        );
        (status, summary) = run()?;
    }

    header(&format!(
        "cross: {} tests under wine: results",
        wine::TARGET
    ));
    for line in &summary.results {
        println!("{line}");
    }
    if !summary.ignored_tests.is_empty() {
        println!("ignored under wine:");
        for test in &summary.ignored_tests {
            println!("  {test}");
        }
    }
    if let Some(why) = wine::doctests_skipped() {
        // Informational: the doctests run on the host, and cargo cannot run them here.
        println!("SKIPPED: windows doctests: {why}");
    }
    println!(
        "wine: {} passed, {} failed, {} ignored in {:.1}s",
        summary.passed,
        summary.failed,
        summary.ignored,
        start.elapsed().as_secs_f64()
    );
    if !status.success() {
        return Err(NotPassed::Failed(
            format!("tests failed under wine ({status}); see the output above").into(),
        ));
    }
    if summary.results.is_empty() {
        return Err(NotPassed::Failed(
            "`cargo test` under wine printed no test results".into(),
        ));
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
