//! The project's tasks, run as `cargo xtask <task>` (the alias lives in `.cargo/config.toml`).
//!
//! One module per task; only the standard library, so that the tasks build in seconds on a
//! fresh machine.

use std::process::ExitCode;

mod bench;
mod checks;
mod ci;
mod cmd;
mod cross;
mod demo;
mod mpi;
mod soak;
mod wine;

const USAGE: &str = "\
usage: cargo xtask <task> [args]

tasks:
  ci                 fmt check, clippy, tests, docs, then `cross`: the project's test command
  cross [TARGET..]   clippy for the other platforms (Windows, macOS, FreeBSD), and the
                     Windows tests under wine (installs mingw and wine with apt if needed)
  checks             the minimum Rust version, each facade feature alone, a lone
                     proc-sync without rayon, Miri on the queue ring's arithmetic
  demo [EXAMPLE..]   build and run the examples, in order
  bench [--rows PATTERN] [--pairs N] [--pin[=CPUS]]
                     run our benchmarks and the peers' in pairs, back to back, and print
                     each row's median ratio, its spread and PASS, MISS or UNSURE;
                     `bench --help` for more
  mpi                proc-mpi (outside the workspace: it needs MPI) — clippy, tests, docs,
                     then its tests under `mpirun -n 3`; installs Debian's Open MPI and
                     libclang with apt if needed
  soak [--short] [--trials N] [--budget-secs S] [--hang-secs H] [--jobs J] [--seed X]
       [--fuzz DURATION] [--no-kill] [PRIMITIVE..]
                     SIGKILL processes at random points in every process primitive (N
                     trials each, default 1000, in J processes at once, default 4), check
                     survivors, items and resources after each trial, print the table;
                     then run the fuzz tests with fresh seeds (PROCS_FUZZ_SEED) for
                     DURATION (default 5m, 0 for none) (issue 15); --short is the minute
                     of kills and the one fuzz round that `ci` runs
  help               this text

environment:
  CI=true            `cross`, `checks` and `mpi` fail when something had to be skipped...
  PROCS_ALLOW_SKIP=1 ...unless this is set too
  PROCS_WINE_TIMEOUT seconds the Windows tests may take under wine in all (default 1200)
  PROCS_WINE_TEST_TIMEOUT  seconds one Windows test binary may take (default 300)
  PYTHON             the Python that `bench` runs (default: python3)";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let result = match task.as_deref() {
        Some("ci") => ci::run(&rest),
        Some("cross") => cross::run(&rest),
        Some("checks") => checks::run(),
        Some("demo") => demo::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("soak") => soak::run(&rest),
        Some("mpi") => mpi::run(&rest),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("xtask: unknown task {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
        None => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error}");
            ExitCode::FAILURE
        }
    }
}
