//! `cargo xtask bench`: our benchmarks and the peers', side by side in one run.
//!
//! Builds the `procs-bench` programs in release mode, runs every measurement of
//! [`suite::MEASURES`] that a selected row needs, one program run each, then prints one row per
//! [`suite::Comparison`]: our time, the peer's, the ratio `peer / ours` (above 1 means we are
//! faster) and the goal with PASS or MISS. The rows also go to `target/bench/results.json`.
//!
//! Each measurement runs [`ROUNDS`] times, the rounds interleaved so that a burst of load
//! on the machine hits ours and the peer's alike, and its time is the median of the rounds'
//! means. Still, these are times on a shared machine: compare ratios within one run, not
//! figures across runs.

mod chart;
mod json;
mod suite;

use std::env;
use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::cmd::{Result, cargo, describe, header, root, step, target_dir};
use suite::{BUDGET_SECS, COMPARISONS, Comparison, Measure, Program};

/// How many times each measurement runs; its time is the median of the rounds.
const ROUNDS: usize = 3;

/// How long a measurement may run beyond its budget (warm-up, interpreter start) before it is
/// taken for hung and killed.
const GRACE: Duration = Duration::from_secs(60);

/// What a measurement gave: the time of one operation, or why there is none.
pub(crate) type Outcome = Result<Timing, String>;

/// What one run of a measurement's program printed: the mean time of one operation over
/// `iterations` timed operations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    pub(crate) seconds: f64,
    pub(crate) iterations: u32,
}

/// A measurement's time over all its rounds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Timing {
    /// The median of the rounds' mean seconds per operation.
    pub(crate) seconds: f64,
    /// The operations timed in all rounds.
    pub(crate) iterations: u32,
    /// Each round's mean seconds per operation, in the order they ran.
    pub(crate) rounds: Vec<f64>,
}

impl Timing {
    /// The timing of the rounds' samples; `None` without any.
    pub(crate) fn of(samples: &[Sample]) -> Option<Timing> {
        let rounds: Vec<f64> = samples.iter().map(|s| s.seconds).collect();
        let mut sorted = rounds.clone();
        sorted.sort_by(f64::total_cmp);
        let seconds = match sorted.len() {
            0 => return None,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Some(Timing {
            seconds,
            iterations: samples.iter().map(|s| s.iterations).sum(),
            rounds,
        })
    }
}

/// The folder of the Python peers.
pub(crate) fn python_dir() -> PathBuf {
    root().join("xtask").join("bench").join("python")
}

/// Runs the benchmarks whose row name contains the filter in `args` (all without one).
pub(crate) fn run(args: &[String]) -> Result<()> {
    let filter = match args {
        [] => "",
        [filter] => filter.as_str(),
        _ => return Err("`bench` takes at most one argument, a filter on row names".into()),
    };
    let rows: Vec<&Comparison> = COMPARISONS
        .iter()
        .filter(|row| row.name.contains(filter))
        .collect();
    if rows.is_empty() {
        return Err(format!("no benchmark row matches {filter:?}").into());
    }
    let measures: Vec<&Measure> = suite::MEASURES
        .iter()
        .filter(|m| rows.iter().any(|row| row.ours == m.id || row.peer == m.id))
        .collect();

    step(cargo().args(["build", "--release", "-p", "procs-bench", "--bins"]))?;
    if measures.iter().any(|m| m.label == "loky") {
        ensure_loky();
    }

    let mut samples: Vec<Result<Vec<Sample>, String>> = vec![Ok(Vec::new()); measures.len()];
    for round in 1..=ROUNDS {
        header(&format!("bench: measuring, round {round} of {ROUNDS}"));
        for (measure, samples) in measures.iter().zip(&mut samples) {
            // A measurement that failed once is not run again: its figure is gone anyway.
            let Ok(done) = samples else { continue };
            match run_measure(measure) {
                Ok(sample) => {
                    println!(
                        "  {:<34} {:>10}   ({} ops)",
                        measure.id,
                        format_time(sample.seconds),
                        sample.iterations
                    );
                    done.push(sample);
                }
                Err(why) => {
                    println!("  {:<34} FAILED: {why}", measure.id);
                    *samples = Err(why);
                }
            }
        }
    }
    let outcomes: Vec<(&Measure, Outcome)> = measures
        .into_iter()
        .zip(samples)
        .map(|(measure, samples)| {
            let timing = samples.and_then(|s| Timing::of(&s).ok_or("no rounds".to_string()));
            (measure, timing)
        })
        .collect();

    header(&format!(
        "bench: results (median of {ROUNDS} rounds; ratio = peer / ours, above 1x we are faster)"
    ));
    let reports: Vec<Row> = rows.iter().map(|row| Row::new(row, &outcomes)).collect();
    print_rows(&reports);

    let path = target_dir().join("bench").join("results.json");
    fs::create_dir_all(path.parent().expect("the file is in a folder"))?;
    fs::write(&path, json::results(&reports, &outcomes))?;
    println!("\nwrote {}", path.display());
    let picture = path.with_file_name("results.svg");
    fs::write(&picture, chart::svg(&reports))?;
    println!("wrote {}", picture.display());

    let met = reports.iter().filter(|r| r.met() == Some(true)).count();
    let goals = reports.iter().filter(|r| r.row.target.is_some()).count();
    println!("targets met: {met} of {goals}");
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|(_, outcome)| outcome.is_err())
        .map(|(measure, _)| measure.id)
        .collect();
    if !failed.is_empty() {
        return Err(format!("measurements failed: {}", failed.join(", ")).into());
    }
    Ok(())
}

/// One comparison with its figures.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) row: &'static Comparison,
    /// Our seconds per operation, if measured.
    pub(crate) ours: Option<f64>,
    /// The peer's seconds per operation, if measured.
    pub(crate) peer: Option<f64>,
}

impl Row {
    fn new(row: &'static Comparison, outcomes: &[(&Measure, Outcome)]) -> Row {
        let timing = |id: &str| {
            outcomes
                .iter()
                .find(|(measure, _)| measure.id == id)
                .and_then(|(_, outcome)| outcome.as_ref().ok())
                .map(|timing| timing.seconds)
        };
        Row {
            row,
            ours: timing(row.ours),
            peer: timing(row.peer),
        }
    }

    /// `peer / ours`: above 1, we are faster.
    pub(crate) fn ratio(&self) -> Option<f64> {
        Some(self.peer? / self.ours?)
    }

    /// Whether the row meets its goal; `None` without a goal or without figures.
    pub(crate) fn met(&self) -> Option<bool> {
        Some(self.ratio()? >= self.row.target?.min_ratio)
    }

    pub(crate) fn peer_label(&self) -> &'static str {
        suite::measure(self.row.peer).map_or(self.row.peer, |m| m.label)
    }
}

fn print_rows(rows: &[Row]) {
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let time = |t: Option<f64>| t.map_or("n/a".to_string(), format_time);
            let goal = match (r.row.target, r.met()) {
                (None, _) => String::new(),
                (Some(target), Some(true)) => format!("target {} PASS", target.text),
                (Some(target), Some(false)) => format!("target {} MISS", target.text),
                (Some(target), None) => format!("target {} ERROR", target.text),
            };
            [
                r.row.name.to_string(),
                format!("ours {}", time(r.ours)),
                format!("{} {}", r.peer_label(), time(r.peer)),
                format!(
                    "ratio {}",
                    r.ratio().map_or("n/a".to_string(), format_ratio)
                ),
                goal,
            ]
        })
        .collect();
    let mut widths = [0; 5];
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in &cells {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
}

/// A time per operation in milliseconds, with three significant digits.
pub(crate) fn format_time(seconds: f64) -> String {
    let ms = seconds * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else if ms >= 1.0 {
        format!("{ms:.2} ms")
    } else if ms >= 0.1 {
        format!("{ms:.3} ms")
    } else if ms >= 1e-4 {
        // Microsecond and nanosecond operations (locks, events) would all print as 0.000 ms.
        format!("{:.2} µs", ms * 1e3)
    } else {
        format!("{:.1} ns", ms * 1e6)
    }
}

/// A ratio with three significant digits.
pub(crate) fn format_ratio(ratio: f64) -> String {
    if ratio >= 100.0 {
        format!("{ratio:.0}x")
    } else if ratio >= 10.0 {
        format!("{ratio:.1}x")
    } else {
        format!("{ratio:.2}x")
    }
}

fn command(measure: &Measure) -> Command {
    let mut command = match measure.program {
        Program::Rust(bin) => Command::new(
            target_dir()
                .join("release")
                .join(format!("{bin}{}", env::consts::EXE_SUFFIX)),
        ),
        Program::Python(script) => {
            let mut python =
                Command::new(env::var_os("PYTHON").unwrap_or_else(|| OsString::from("python3")));
            python.arg(python_dir().join(script));
            python
        }
    };
    command
        .args(measure.args)
        .args(["--iterations", &measure.iterations.to_string()])
        .args(["--warmup", &measure.warmup.to_string()])
        .args(["--budget-secs", &BUDGET_SECS.to_string()])
        .current_dir(root());
    command
}

/// Installs loky (the robust Python executor, a peer of the pool rows) with pip when it is
/// missing; if that fails, its measurements fail and say so.
fn ensure_loky() {
    let python = env::var_os("PYTHON").unwrap_or_else(|| OsString::from("python3"));
    let has = |python: &OsString| {
        Command::new(python)
            .args(["-c", "import loky"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has(&python) {
        return;
    }
    println!("bench: installing loky with pip");
    let installed = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "loky"])
        .status()
        .is_ok_and(|s| s.success());
    if !installed || !has(&python) {
        println!("bench: loky could not be installed; its rows will have no figure");
    }
}

/// Runs one measurement's program and reads its `RESULT` line. A program that runs past its
/// budget by [`GRACE`] is killed, so that a hung child cannot hang the benchmark.
fn run_measure(measure: &Measure) -> Result<Sample, String> {
    let mut command = command(measure);
    let shown = describe(&command);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| format!("`{shown}` could not start: {error}"))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let deadline = Instant::now() + Duration::from_secs_f64(BUDGET_SECS) + GRACE;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                // The kill can only fail if the program has just exited, which is fine.
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`{shown}` did not finish in time and was killed"));
            }
            Err(error) => return Err(format!("`{shown}`: {error}")),
        }
    };
    let stdout = reader
        .join()
        .map_err(|_| "the output reader panicked".to_string())?
        .map_err(|error| format!("`{shown}`: reading its output: {error}"))?;
    if !status.success() {
        return Err(format!("`{shown}` failed ({status})"));
    }
    parse_result(&stdout, measure.id)
        .ok_or_else(|| format!("`{shown}` printed no `RESULT {} ...` line", measure.id))
}

/// The timing on the line `RESULT <id> <seconds> <iterations>` of a program's output.
pub(crate) fn parse_result(output: &str, id: &str) -> Option<Sample> {
    output.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next()? != "RESULT" || words.next()? != id {
            return None;
        }
        let seconds: f64 = words.next()?.parse().ok()?;
        let iterations = words.next()?.parse().ok()?;
        (seconds.is_finite() && seconds > 0.0).then_some(Sample {
            seconds,
            iterations,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_result_line_of_its_measure() {
        let output = "warming up\nRESULT a/b 0.5 10\nRESULT a/c 0.000412 2000\n";
        assert_eq!(
            parse_result(output, "a/c"),
            Some(Sample {
                seconds: 0.000412,
                iterations: 2000
            })
        );
        assert_eq!(parse_result(output, "a"), None);
        assert_eq!(parse_result("RESULT a/b nan 1", "a/b"), None);
        assert_eq!(parse_result("RESULT a/b 0.1", "a/b"), None);
    }

    #[test]
    fn times_print_with_three_digits() {
        assert_eq!(format_time(0.000_412_3), "0.412 ms");
        assert_eq!(format_time(0.006_81), "6.81 ms");
        assert_eq!(format_time(0.064_25), "64.2 ms");
        assert_eq!(format_time(0.25), "250 ms");
        assert_eq!(format_time(0.000_014_12), "14.12 µs");
        assert_eq!(format_time(0.000_000_005_7), "5.7 ns");
        assert_eq!(format_ratio(16.63), "16.6x");
        assert_eq!(format_ratio(0.4523), "0.45x");
    }

    #[test]
    fn timing_is_the_median_of_the_rounds() {
        let sample = |seconds| Sample {
            seconds,
            iterations: 10,
        };
        let timing = Timing::of(&[sample(3.0), sample(1.0), sample(2.0)]).unwrap();
        assert_eq!(timing.seconds, 2.0);
        assert_eq!(timing.iterations, 30);
        assert_eq!(timing.rounds, [3.0, 1.0, 2.0]);
        assert_eq!(
            Timing::of(&[sample(1.0), sample(2.0)]).unwrap().seconds,
            1.5
        );
        assert_eq!(Timing::of(&[]), None);
    }

    #[test]
    fn ratio_is_peer_over_ours_and_meets_its_goal() {
        let row = &COMPARISONS[0];
        let report = Row {
            row,
            ours: Some(0.001),
            peer: Some(0.064),
        };
        assert_eq!(report.ratio(), Some(64.0));
        assert_eq!(report.met(), Some(true));
        let missing = Row {
            peer: None,
            ..report
        };
        assert_eq!(missing.ratio(), None);
        assert_eq!(missing.met(), None);
    }
}
