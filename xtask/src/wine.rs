//! The Windows tests under wine: the tools, the prefix, the stand-in DLL and the runner.
//!
//! `cargo xtask cross` builds the workspace's tests for [`TARGET`] with mingw and runs them
//! (doctests included) with wine as cargo's runner. Everything that this takes is set up
//! here, so that a fresh Debian machine gets it:
//!
//! - Debian's `gcc-mingw-w64-x86-64` (the linker) and `wine`/`wine64`, installed with apt when
//!   their commands are missing and `dpkg` does not list them (which needs root; a machine
//!   that has them does nothing).
//! - A stand-in `bcryptprimitives.dll` built from `xtask/wine/bcryptprimitives.c`: Rust's std
//!   needs its `ProcessPrng`, which wine 8.0 lacks, and no Rust program starts without it.
//! - The runner `run.exe`, built from `xtask/wine/run.c`, which starts each test binary as a
//!   Windows child of its own (so that it has a Windows parent, as under cargo on Windows) and
//!   lets merged doctests run one process per doctest (see the C source for both).
//! - A private wine prefix under `target/wine/prefix`, made once and kept (a new one costs
//!   seconds), with the DLL in its `system32`, where every test and doctest binary finds it.
//! - One wine server kept running for the whole run (`wineserver -p`) and stopped at the end
//!   (`wineserver -k`), which also ends any Windows process a test left behind.
//! - A time limit on every test binary (coreutils' `timeout` in the runner) and on the whole
//!   run, so that a hang is a failure with a name instead of a stuck CI job.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::{Result, cargo, describe, header, root, target_dir};

/// The Windows target whose tests run under wine.
pub(crate) const TARGET: &str = "x86_64-pc-windows-gnu";

/// Debian's packages for the linker and for wine. `wine64` is the 64-bit loader; `wine` puts
/// the `wine` and `wineserver` commands on the PATH.
const PACKAGES: &[&str] = &["gcc-mingw-w64-x86-64", "wine", "wine64"];

/// The linker for [`TARGET`], from `gcc-mingw-w64-x86-64`.
const LINKER: &str = "x86_64-w64-mingw32-gcc";

/// The names of wine's commands on the PATH.
const WINE: &[&str] = &["wine", "wine64"];
const WINESERVER: &[&str] = &["wineserver"];

/// The environment variables that point cargo at the linker and the runner.
const LINKER_VAR: &str = "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER";
const RUNNER_VAR: &str = "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER";

/// Wine's own DLL settings: no debugger on a crash (a crashing test must end, not wait for
/// winedbg), and no Mono or Gecko installers when the prefix is made.
const DLL_OVERRIDES: &str = "winedbg.exe=d;mscoree,mshtml=";

/// How long one test binary (or doctest) may run under wine; `PROCS_WINE_TEST_TIMEOUT`
/// (seconds) changes it.
const TEST_TIMEOUT: Duration = Duration::from_secs(300);

/// How long the whole test run under wine may take; `PROCS_WINE_TIMEOUT` (seconds) changes
/// it.
const RUN_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// The Rust version from which cargo runs doctests for another target through the runner
/// (doctest-xcompile became stable in 1.89).
const DOCTEST_XCOMPILE_MINOR: u32 = 89;

/// What running the tests under wine takes, once it is set up.
#[derive(Debug)]
pub(crate) struct Wine {
    wine: PathBuf,
    wineserver: PathBuf,
    prefix: PathBuf,
    /// The runner program, `run.exe`.
    run: PathBuf,
}

/// Gets wine ready: the packages, the DLL, the prefix. `Err` says why the tests cannot run
/// here (the caller reports it as a skip); nothing in here is a test failure.
pub(crate) fn setup() -> Result<Wine, String> {
    if [WINE, WINESERVER, &[LINKER][..]]
        .iter()
        .any(|names| find_program(names, &[]).is_none())
    {
        ensure_packages("wine", PACKAGES)?;
    }
    let wine = find_program(WINE, &["/usr/lib/wine/wine64"])
        .ok_or("no `wine` command after installing wine")?;
    let wineserver = find_program(WINESERVER, &["/usr/lib/wine/wineserver64"])
        .ok_or("no `wineserver` command after installing wine")?;
    find_program(&[LINKER], &[]).ok_or(format!("no `{LINKER}` after installing mingw"))?;
    let dir = target_dir().join("wine");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let dll = build(
        &dir,
        "bcryptprimitives.dll",
        &["-shared"],
        &["bcryptprimitives.def", "-ladvapi32"],
    )?;
    let run = build(&dir, "run.exe", &[], &[])?;
    let wine = Wine {
        wine,
        wineserver,
        prefix: dir.join("prefix"),
        run,
    };
    wine.ensure_prefix()?;
    wine.install_dll(&dll)?;
    Ok(wine)
}

/// Installs Debian's `packages` with apt unless dpkg lists them all as installed; `task`
/// names who asks, in the header (`cargo xtask mpi` uses it too).
pub(crate) fn ensure_packages(task: &str, packages: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|package| !dpkg_installed(package))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if find_program(&["apt-get"], &[]).is_none() {
        return Err(format!(
            "{list} missing and no apt-get here; install them (or their equivalents) by hand"
        ));
    }
    if !is_root() {
        return Err(format!(
            "{list} missing; run as root (or `sudo apt-get install -y {list}`) to install them"
        ));
    }
    header(&format!("{task}: installing {list}"));
    for args in [
        vec!["update"],
        [&["install", "-y"][..], &missing[..]].concat(),
    ] {
        let status = Command::new("apt-get")
            .args(&args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("apt-get could not start: {e}"))?;
        if !status.success() {
            return Err(format!("`apt-get {}` failed ({status})", args.join(" ")));
        }
    }
    Ok(())
}

/// Whether dpkg lists `package` as installed.
fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| {
            out.status.success() && String::from_utf8_lossy(&out.stdout).ends_with(" installed")
        })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// The first of `names` found on the PATH, else the first of `paths` that exists.
pub(crate) fn find_program(names: &[&str], paths: &[&str]) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    names
        .iter()
        .flat_map(|name| env::split_paths(&path).map(move |dir| dir.join(name)))
        .chain(paths.iter().map(PathBuf::from))
        .find(|candidate| candidate.is_file())
}

/// Builds `name` (`bcryptprimitives.dll`, `run.exe`) into `dir` from its C source in
/// `xtask/wine/`, with `flags` before the source and `after` (a `.def` file, libraries)
/// behind it. It takes a fraction of a second, so it is always rebuilt and never stale.
fn build(dir: &Path, name: &str, flags: &[&str], after: &[&str]) -> Result<PathBuf, String> {
    let source = root().join("xtask").join("wine");
    let stem = name.split('.').next().unwrap_or(name);
    let output = dir.join(name);
    let mut gcc = Command::new(LINKER);
    gcc.args(["-O2", "-s", "-Wall"])
        .args(flags)
        .arg("-o")
        .arg(&output)
        .arg(source.join(format!("{stem}.c")));
    for arg in after {
        if arg.starts_with('-') {
            gcc.arg(arg);
        } else {
            gcc.arg(source.join(arg));
        }
    }
    let status = gcc
        .status()
        .map_err(|e| format!("`{}` could not start: {e}", describe(&gcc)))?;
    if !status.success() {
        return Err(format!("`{}` failed ({status})", describe(&gcc)));
    }
    Ok(output)
}

impl Wine {
    /// A command for a wine tool with this prefix and quiet, crash-safe settings.
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        self.set_env(&mut command);
        command
    }

    /// The variables that every wine process of the run needs.
    fn set_env(&self, command: &mut Command) {
        command
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", DLL_OVERRIDES);
    }

    /// Makes the prefix unless a finished one is there for this wine. A prefix whose making
    /// was cut short has no stamp and is made anew.
    fn ensure_prefix(&self) -> Result<(), String> {
        let version = self
            .command(&self.wine)
            .arg("--version")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .map_err(|e| format!("wine could not start: {e}"))?;
        let stamp = self.prefix.join(".procs-prefix");
        if fs::read_to_string(&stamp).is_ok_and(|made_by| made_by == version) {
            return Ok(());
        }
        header(&format!(
            "wine: making the prefix {} ({version})",
            self.prefix.display()
        ));
        if self.prefix.exists() {
            fs::remove_dir_all(&self.prefix)
                .map_err(|e| format!("cannot remove the old prefix: {e}"))?;
        }
        let start = Instant::now();
        let mut boot = self.command(&self.wine);
        boot.args(["wineboot", "--init"]);
        run_quietly(&mut boot)?;
        // wineboot returns before the server has written the registry; the server writes it
        // when it exits, which it does a few seconds after its last process.
        run_quietly(self.command(&self.wineserver).arg("-w"))?;
        fs::write(&stamp, &version)
            .map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
        println!("--- prefix made in {:.1}s", start.elapsed().as_secs_f64());
        Ok(())
    }

    /// Puts the DLL in the prefix's `system32`, where wine looks for DLLs after the program's
    /// own folder: doctests run from temporary folders, so next to the program is not enough.
    fn install_dll(&self, dll: &Path) -> Result<(), String> {
        let system32 = self.prefix.join("drive_c/windows/system32");
        fs::copy(dll, system32.join("bcryptprimitives.dll"))
            .map(drop)
            .map_err(|e| format!("cannot copy the DLL into {}: {e}", system32.display()))
    }

    /// Starts the wine server that serves the whole run; it stops when the guard drops.
    pub(crate) fn start_server(&self) -> Result<Server<'_>, String> {
        // A server that an interrupted run left behind goes first, with its processes.
        let _ = self
            .command(&self.wineserver)
            .arg("-k")
            .stderr(Stdio::null())
            .status();
        // Started without a terminal: the server outlives nothing that waits for its output.
        let process = self
            .command(&self.wineserver)
            .args(["-f", "-p"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("wineserver could not start: {e}"))?;
        Ok(Server {
            wine: self,
            process,
        })
    }

    /// `cargo test` for [`TARGET`], linked by mingw and run by wine through `run.exe` (and
    /// `timeout`, where coreutils has it, so that one hung binary fails alone). Cargo splits
    /// the runner at spaces, so the paths in it must have none.
    pub(crate) fn cargo_test(&self) -> Command {
        let mut runner = OsString::new();
        if let Some(timeout) = find_program(&["timeout"], &[]) {
            let limit = env_secs("PROCS_WINE_TEST_TIMEOUT").unwrap_or(TEST_TIMEOUT);
            runner.push(timeout);
            runner.push(format!(" --kill-after=10 {} ", limit.as_secs()));
        }
        runner.push(&self.wine);
        runner.push(" ");
        runner.push(&self.run);
        let mut cargo = cargo();
        self.set_env(&mut cargo);
        cargo
            .env(LINKER_VAR, LINKER)
            .env(RUNNER_VAR, runner)
            .args(["test", "--target", TARGET]);
        cargo
    }
}

/// The wine server of a run; dropping it stops the server and every Windows process left.
#[derive(Debug)]
pub(crate) struct Server<'a> {
    wine: &'a Wine,
    process: Child,
}

impl Drop for Server<'_> {
    fn drop(&mut self) {
        let _ = self
            .wine
            .command(&self.wine.wineserver)
            .arg("-k")
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.process.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Runs `command` with the output hidden unless it fails.
fn run_quietly(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("`{}` could not start: {e}", describe(command)))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "`{}` failed ({}): {}{}",
        describe(command),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

fn env_secs(name: &str) -> Option<Duration> {
    env::var(name)
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Duration::from_secs)
}

/// What the test binaries said, from the lines that libtest prints.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
    pub(crate) ignored: u64,
    /// `test NAME ... ignored, REASON` lines.
    pub(crate) ignored_tests: Vec<String>,
    /// `test result: ...` lines, one per test binary.
    pub(crate) results: Vec<String>,
    /// Doctests that wine could not start at all (`failed to run command: ...`).
    pub(crate) not_started: u64,
}

impl Summary {
    /// Takes in one line of a test binary's output.
    fn read(&mut self, line: &str) {
        if line.starts_with("failed to run command: ") {
            self.not_started += 1;
        }
        if let Some(rest) = line.strip_prefix("test result: ") {
            self.results.push(line.to_string());
            for part in rest.split(['.', ';']) {
                let mut words = part.split_whitespace();
                if let (Some(n), Some(what)) = (words.next(), words.next()) {
                    let n: u64 = n.parse().unwrap_or(0);
                    match what {
                        "passed" => self.passed += n,
                        "failed" => self.failed += n,
                        "ignored" => self.ignored += n,
                        _ => {}
                    }
                }
            }
        } else if let Some(test) = line.strip_prefix("test ")
            && let Some((name, verdict)) = test.split_once(" ... ")
            && verdict.starts_with("ignored")
        {
            self.ignored_tests.push(format!("{name} ({verdict})"));
        }
    }
}

/// Runs `command` with the wine `server` of the run, echoing its standard output line by line
/// and reading the test results from it, and stops it when `PROCS_WINE_TIMEOUT` (default 20
/// minutes) passes. The server is stopped as soon as `command` ends: a Windows process that a
/// test left behind would otherwise hold the output open.
pub(crate) fn run_tests(
    command: &mut Command,
    server: Server<'_>,
) -> Result<(ExitStatus, Summary), String> {
    let limit = env_secs("PROCS_WINE_TIMEOUT").unwrap_or(RUN_TIMEOUT);
    header(&describe(command));
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("`cargo test` could not start: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut summary = Summary::default();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            println!("{line}");
            summary.read(&line);
        }
        summary
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                drop(server);
                return Err(format!(
                    "the tests under wine did not finish within {} s and were stopped (the \
                     last `Running` line above names the binary); PROCS_WINE_TIMEOUT sets \
                     the limit",
                    limit.as_secs()
                ));
            }
            Err(e) => return Err(format!("cannot wait for `cargo test`: {e}")),
        }
    };
    drop(server);
    let summary = reader.join().unwrap_or_default();
    Ok((status, summary))
}

impl Summary {
    /// Whether every failure was a test process that wine could not start (it reports
    /// `ERROR_INTERNAL_ERROR` now and then under load): wine's failure, not the tests'.
    pub(crate) fn failed_only_to_start(&self) -> bool {
        self.failed > 0 && self.failed == self.not_started
    }
}

/// Why cargo would leave the doctests out for another target, if it would.
pub(crate) fn doctests_skipped() -> Option<String> {
    let output = cargo().arg("--version").output().ok()?;
    let version = String::from_utf8_lossy(&output.stdout).into_owned();
    let minor: u32 = version
        .split_whitespace()
        .nth(1)?
        .split('.')
        .nth(1)?
        .parse()
        .ok()?;
    (minor < DOCTEST_XCOMPILE_MINOR).then(|| {
        format!(
            "{} runs no doctests for another target (1.{DOCTEST_XCOMPILE_MINOR} and later do, \
             through the runner)",
            version.trim()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_adds_up_the_result_lines() {
        let mut summary = Summary::default();
        for line in [
            "test a ... ok",
            "test b ... ignored, wine: no signals",
            "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; \
             finished in 0.01s",
            "test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; \
             finished in 1.00s",
        ] {
            summary.read(line);
        }
        assert_eq!((summary.passed, summary.failed, summary.ignored), (5, 1, 1));
        assert_eq!(summary.ignored_tests, ["b (ignored, wine: no signals)"]);
        assert_eq!(summary.results.len(), 2);
        assert!(!summary.failed_only_to_start());
    }

    #[test]
    fn a_doctest_wine_could_not_start_is_told_apart() {
        let mut summary = Summary::default();
        for line in [
            "failed to run command: Os { code: 1359, kind: Uncategorized, message: \"Internal error.\" }",
            "test result: FAILED. 129 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; \
             finished in 3.47s",
        ] {
            summary.read(line);
        }
        assert!(summary.failed_only_to_start());
        summary.read("test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s");
        assert!(!summary.failed_only_to_start());
    }
}
