//! `cargo xtask mpi`: the MPI leg of CI (issue 13) — proc-mpi's checks and its tests under
//! `mpirun`.
//!
//! proc-mpi is outside the workspace (rsmpi needs an MPI implementation and libclang to
//! build), so the plain steps of `ci` never see it; this task installs Debian's packages with
//! apt when they are missing (as root), then:
//!
//! 1. clippy (`-D warnings`), the unit tests and doctests, and rustdoc (`-D warnings`) of
//!    proc-mpi, in its own target folder (`target/mpi`), the facade's `mpi` feature test,
//!    and clippy of the MPI bench program (`bench-mpi`, procs-bench's `mpi` feature);
//! 2. `examples/mpi_suite` under `mpirun --allow-run-as-root --oversubscribe -n 3` (submit,
//!    map, a panicking task, tasks sent in bundles, `wait`/`as_completed`, shutdown), which
//!    must exit 0;
//! 3. the same checks after a dynamic launch: `mpirun -n 1 mpi_suite --spawn`, and the
//!    singleton `mpi_suite --spawn` without mpirun (oversubscription allowed through the
//!    environment), whose first executor spawns two workers with `MPI_Comm_spawn`;
//! 4. singletons that must fail clearly: `mpi_suite --no-workers` says that there are no
//!    worker ranks, `mpi_suite --too-many` that 512 workers cannot be spawned (no
//!    oversubscription);
//! 5. `examples/mpi_comm` under `mpirun -n 3`: `comm_executor` in a program that starts MPI
//!    itself, rooted at rank 1, then 0, then on a split communicator;
//! 6. `examples/mpi_mismatch` as rank 0 with a copy of itself (a newer modification time,
//!    so another build fingerprint) as ranks 1 and 2: every task must be refused with
//!    `Error::BuildMismatch`;
//! 7. `examples/mpi_abort`, in which a task calls `std::process::abort` on a worker rank,
//!    under `mpirun -n 3`, under `mpirun -n 1` with spawned workers, and as a singleton with
//!    spawned workers: each job must end by itself with a non-zero exit and a message about
//!    the dead rank (mpirun's, or the singleton's own before its `MPI_Abort`), within
//!    [`ABORT_LIMIT`].
//!
//! Where MPI cannot be had it prints a loud `SKIPPED:` line; under CI (`CI=true`) a skip
//! fails the run unless `PROCS_ALLOW_SKIP=1`, as for `cross` and `checks`.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::cmd::{Result, cargo, describe, header, root, skipped, step, target_dir};
use crate::wine::{ensure_packages, find_program};

/// Debian's Open MPI (library, headers and `mpirun`) and libclang for rsmpi's bindgen.
const PACKAGES: &[&str] = &["libopenmpi-dev", "openmpi-bin", "libclang-dev"];

/// How long the whole test suite may take under `mpirun`.
const SUITE_LIMIT: Duration = Duration::from_secs(300);

/// How long the aborted job may take to end: much more than Open MPI needs (about a
/// second), much less than a hang.
const ABORT_LIMIT: Duration = Duration::from_secs(60);

/// The `mpirun` flags of every run here and in `bench` and `demo`: root is allowed (CI
/// containers run as root), and more ranks than cores may share them.
pub(crate) const MPIRUN_FLAGS: &[&str] = &["--allow-run-as-root", "--oversubscribe"];

/// Whether MPI is here to build and run proc-mpi, without installing anything (`bench` and
/// `demo` skip their MPI parts otherwise): `mpirun`, and `mpicc` for its headers.
pub(crate) fn present() -> Result<(), String> {
    for program in ["mpirun", "mpicc"] {
        if find_program(&[program], &[]).is_none() {
            return Err(format!(
                "no `{program}` on the PATH; install Open MPI (Debian: libopenmpi-dev \
                 openmpi-bin libclang-dev), or run `cargo xtask mpi` as root, which does"
            ));
        }
    }
    Ok(())
}

/// Runs the MPI leg.
pub(crate) fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        return Err(format!("`mpi` takes no arguments, got {arg:?}").into());
    }
    let start = Instant::now();
    header("mpi: proc-mpi under mpirun");
    if let Err(why) = ready() {
        return skipped("mpi", &why);
    }
    let manifest = root().join("crates/proc-mpi/Cargo.toml");
    let dir = target_dir().join("mpi");
    let proc_mpi = |args: &[&str]| {
        let mut command = cargo();
        command
            .arg(args[0])
            .arg("--manifest-path")
            .arg(&manifest)
            .args(&args[1..])
            .env("CARGO_TARGET_DIR", &dir);
        command
    };
    step(&mut proc_mpi(&["fmt", "--", "--check"]))?;
    step(&mut proc_mpi(&[
        "clippy",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    step(&mut proc_mpi(&["test"]))?;
    step(proc_mpi(&["doc", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings"))?;
    step(cargo().args([
        "test",
        "-p",
        "procs",
        "--features",
        "mpi",
        "--test",
        "mpi_feature",
    ]))?;
    step(cargo().args([
        "clippy",
        "-p",
        "procs-bench",
        "--features",
        "mpi",
        "--bin",
        "bench-mpi",
        "--",
        "-D",
        "warnings",
    ]))?;
    step(&mut proc_mpi(&["build", "--examples"]))?;
    let examples = dir.join("debug").join("examples");
    let suite = examples.join("mpi_suite");

    step(mpirun(SUITE_LIMIT, 3).arg(&suite))?;
    step(mpirun(SUITE_LIMIT, 1).arg(&suite).arg("--spawn"))?;
    step(
        timeout(SUITE_LIMIT)
            .arg(&suite)
            .arg("--spawn")
            .env(OVERSUBSCRIBE, "1"),
    )?;
    step(
        timeout(Duration::from_secs(60))
            .arg(&suite)
            .arg("--no-workers"),
    )?;
    step(
        timeout(Duration::from_secs(60))
            .arg(&suite)
            .arg("--too-many")
            .env_remove(OVERSUBSCRIBE),
    )?;
    step(mpirun(SUITE_LIMIT, 3).arg(examples.join("mpi_comm")))?;

    // A copy gets a new modification time, hence another build fingerprint.
    let original = examples.join("mpi_mismatch");
    let copy = examples.join("mpi_mismatch_copy");
    std::fs::copy(&original, &copy)
        .map_err(|e| format!("cannot copy {}: {e}", original.display()))?;
    let mut mismatch = mpirun(SUITE_LIMIT, 1);
    mismatch.arg(&original).args([":", "-n", "2"]).arg(&copy);
    step(&mut mismatch)?;

    let abort = examples.join("mpi_abort");
    let by_mpirun: &[&str] = &["exited on signal 6", "Aborted"];
    abort_ends_the_job(mpirun(ABORT_LIMIT, 3).arg(&abort), by_mpirun)?;
    abort_ends_the_job(mpirun(ABORT_LIMIT, 1).arg(&abort).arg("--spawn"), by_mpirun)?;
    abort_ends_the_job(
        timeout(ABORT_LIMIT)
            .arg(&abort)
            .arg("--spawn")
            .env(OVERSUBSCRIBE, "1"),
        &["died; MPI cannot go on without it"],
    )?;
    println!(
        "--- mpi: every step passed in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Whether MPI and libclang are here, after installing them if they were not.
fn ready() -> Result<(), String> {
    if find_program(&["dpkg-query"], &[]).is_some() {
        ensure_packages("mpi", PACKAGES)?;
    }
    if find_program(&["mpirun"], &[]).is_none() {
        return Err(
            "no `mpirun` on the PATH; install Open MPI (Debian: libopenmpi-dev \
                    openmpi-bin libclang-dev)"
                .into(),
        );
    }
    if find_program(&["timeout"], &[]).is_none() {
        return Err("no `timeout` (coreutils) on the PATH to bound the mpirun runs".into());
    }
    Ok(())
}

/// `timeout` with a limit, killing with SIGKILL 5 s after SIGTERM is ignored.
fn timeout(limit: Duration) -> Command {
    let mut command = Command::new("timeout");
    command
        .args(["-k", "5"])
        .arg(limit.as_secs().to_string())
        .current_dir(root())
        .env("RUST_BACKTRACE", "0");
    command
}

/// Open MPI's setting that lets more processes than cores run, for a singleton (which has
/// no `mpirun` to take `--oversubscribe`).
const OVERSUBSCRIBE: &str = "OMPI_MCA_rmaps_base_oversubscribe";

/// `mpirun -n ranks` with [`MPIRUN_FLAGS`], under `timeout`.
fn mpirun(limit: Duration, ranks: u32) -> Command {
    let mut command = timeout(limit);
    command
        .arg("mpirun")
        .args(MPIRUN_FLAGS)
        .args(["-n", &ranks.to_string()]);
    command
}

/// Runs a job whose task aborts a worker rank: it must end by itself, non-zero, and say so
/// with one of `messages` (mpirun's, or the singleton's own).
fn abort_ends_the_job(job: &mut Command, messages: &[&str]) -> Result<()> {
    let title = describe(job);
    header(&title);
    let start = Instant::now();
    let output = job
        .output()
        .map_err(|e| format!("`{title}` could not start: {e}"))?;
    let took = start.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let code = output.status.code();
    // `timeout` exits 124 (or 137 after its SIGKILL) when the job did not end by itself.
    if matches!(code, Some(124 | 137)) || took >= ABORT_LIMIT {
        println!("{text}");
        return Err(format!(
            "`{title}` hung: a worker rank that aborts must end the MPI job, not stall it \
             (killed after {}s)",
            ABORT_LIMIT.as_secs()
        )
        .into());
    }
    if output.status.success() {
        println!("{text}");
        return Err(format!("`{title}` exited 0, but a worker rank aborted").into());
    }
    let Some(message) = text
        .lines()
        .find(|line| messages.iter().any(|m| line.contains(m)))
    else {
        println!("{text}");
        return Err(format!(
            "`{title}` ended ({}) without a message about the aborted rank",
            output.status
        )
        .into());
    };
    println!(
        "--- `{title}` ended the job as it must in {:.1}s ({}): {}",
        took.as_secs_f64(),
        output.status,
        message.trim()
    );
    Ok(())
}
