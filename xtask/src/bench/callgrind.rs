//! Instruction counts, beside the times, of the measurements that are pure CPU work in one
//! process ([`suite::COUNTED`]): valgrind's callgrind counts the same instructions on a loaded
//! machine as on an idle one, so a change to such a row can be judged on one run.
//!
//! Each measurement runs twice under callgrind, with [`ops`] and with twice as many operations;
//! the difference of the two counts over [`ops`] is one operation's, start-up, warm-up and exit
//! cancelling out. Only the program's own process is counted (no `--trace-children`), which for
//! these measurements is where the work is. From one run to the next the counts differ by a
//! few dozen instructions in millions.

use std::env;
use std::ffi::OsString;
use std::process::{Command, Stdio};

use super::suite::{self, Measure, Program};

/// The operations of the shorter counted run of `measure`: a hundredth of its timed ones,
/// which are set to take about half a second, so that a run under callgrind (some fifty times
/// slower) takes about as long as the program's start-up there (some seconds for Python).
fn ops(measure: &Measure) -> u32 {
    (measure.iterations / 100).max(1_000)
}

/// The instruction counts of a run, or why there are none.
#[derive(Debug)]
pub(crate) enum Counts {
    /// No count at all, and why (valgrind missing, or no counted row selected).
    Skipped(String),
    /// Instructions per operation of each counted measurement, or why one has none.
    Counted(Vec<(&'static str, Result<f64, String>)>),
}

impl Counts {
    /// The instructions of one operation of `id`, if counted.
    pub(crate) fn of(&self, id: &str) -> Option<f64> {
        match self {
            Counts::Skipped(_) => None,
            Counts::Counted(counts) => counts
                .iter()
                .find(|(counted, _)| *counted == id)
                .and_then(|(_, count)| count.as_ref().ok().copied()),
        }
    }
}

/// Counts the instructions of the measurements of `measures` that [`suite::COUNTED`] names.
pub(crate) fn count(measures: &[&'static Measure]) -> Counts {
    let counted: Vec<&Measure> = measures
        .iter()
        .copied()
        .filter(|m| suite::COUNTED.contains(&m.id))
        .collect();
    let has_valgrind = Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_valgrind {
        return Counts::Skipped(
            "valgrind not found (Debian/Ubuntu: apt-get install valgrind)".into(),
        );
    }
    let python = real_python();
    Counts::Counted(
        counted
            .into_iter()
            .map(|measure| {
                let count = per_op(measure, python.as_ref());
                match &count {
                    Ok(n) => println!("  {:<34} {n:>10.1} instructions per op", measure.id),
                    Err(why) => println!("  {:<34} FAILED: {why}", measure.id),
                }
                (measure.id, count)
            })
            .collect(),
    )
}

/// The interpreter itself: `python3` is often a shim script (pyenv) whose `exec` callgrind
/// would not follow, counting the shim instead.
fn real_python() -> Result<OsString, String> {
    let python = env::var_os("PYTHON").unwrap_or_else(|| OsString::from("python3"));
    let output = Command::new(&python)
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .map_err(|error| format!("{}: {error}", python.to_string_lossy()))?;
    let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() || path.is_empty() {
        return Err(format!(
            "{} does not say where its interpreter is",
            python.to_string_lossy()
        ));
    }
    Ok(path.into())
}

fn per_op(measure: &Measure, python: Result<&OsString, &String>) -> Result<f64, String> {
    let ops = ops(measure);
    let short = instructions(measure, ops, python)?;
    let long = instructions(measure, 2 * ops, python)?;
    if long <= short {
        return Err(format!(
            "{short} instructions for {ops} ops but {long} for {}",
            2 * ops
        ));
    }
    Ok((long - short) as f64 / f64::from(ops))
}

/// The instructions callgrind counts in one run of `measure` with `ops` operations.
fn instructions(
    measure: &Measure,
    ops: u32,
    python: Result<&OsString, &String>,
) -> Result<u64, String> {
    let mut command = Command::new("valgrind");
    command.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"]);
    match measure.program {
        Program::Rust(bin) => {
            command.arg(super::binary(bin));
        }
        Program::Python(script) => {
            command
                .arg(python.map_err(Clone::clone)?)
                .arg(super::python_dir().join(script))
                // String hashing is seeded at random otherwise, and so are the instructions.
                .env("PYTHONHASHSEED", "0");
        }
    }
    command
        .args(measure.args)
        .args(["--iterations", &ops.to_string()])
        .args(["--warmup", &measure.warmup.to_string()])
        // No budget: a run under callgrind is some fifty times slower, and must do all its ops.
        .args(["--budget-secs", "3600"])
        .current_dir(crate::cmd::root());
    let shown = crate::cmd::describe(&command);
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("`{shown}` could not start: {error}"))?;
    if !output.status.success() {
        return Err(format!("`{shown}` failed ({})", output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let done = super::parse_result(&stdout, measure.id).map(|sample| sample.iterations);
    if done != Some(ops) {
        return Err(format!("`{shown}` did not report {ops} ops"));
    }
    collected(&String::from_utf8_lossy(&output.stderr))
        .ok_or_else(|| format!("`{shown}`: callgrind printed no `Collected` line"))
}

/// The count on callgrind's `==<pid>== Collected : <n>` line.
fn collected(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|line| {
        let (_, rest) = line.split_once("Collected :")?;
        rest.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_collected_line() {
        let stderr = "==18855== Events    : Ir\n==18855== Collected : 9061767\n\
                      ==18855== I   refs:      9,061,767\n";
        assert_eq!(collected(stderr), Some(9_061_767));
        assert_eq!(collected("==1== I   refs: 12"), None);
    }

    #[test]
    fn counted_measures_exist() {
        for id in suite::COUNTED {
            assert!(suite::measure(id).is_some(), "no measure {id}");
        }
    }

    #[test]
    fn skipped_counts_give_no_figure() {
        let skipped = Counts::Skipped("valgrind not found".into());
        assert_eq!(skipped.of("lock_uncontended/ours"), None);
        let counted = Counts::Counted(vec![("a", Ok(79.0)), ("b", Err("failed".into()))]);
        assert_eq!(counted.of("a"), Some(79.0));
        assert_eq!(counted.of("b"), None);
        assert_eq!(counted.of("c"), None);
    }
}
