//! `cargo xtask bench`: our benchmarks and the peers', side by side in one run.
//!
//! Builds the `procs-bench` programs in release mode, then runs each selected row
//! ([`suite::Comparison`]) as pairs of runs: our program, then the peer's, back to back, one
//! run each (each with its own warm-up before its timed stretch), [`PAIRS`] times. The rows
//! take turns, pair by pair, so that a row's pairs spread over the whole run. Each pair gives a
//! ratio `peer / ours` (above 1 means we are faster); the row prints the median ratio, the
//! spread of the ratios (their interquartile range, see [`stats`]) and a verdict against its
//! target: PASS when the whole spread meets it, MISS when all of it falls short, UNSURE
//! otherwise. A burst of load that hits both runs of a pair cancels out in its ratio; one that
//! hits a single run moves one ratio, which the quartiles shrug off.
//!
//! The rows that are pure CPU work in one process also get an instruction count (valgrind's
//! callgrind, see [`callgrind`]), which a loaded machine does not change, so that a change to
//! them can be judged on one run. Every pair goes to `target/bench/results.json`, and a chart
//! of the rows to `target/bench/results.svg`.

mod callgrind;
mod chart;
mod json;
mod stats;
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
use callgrind::Counts;
use stats::{Spread, Verdict};
use suite::{BUDGET_SECS, COMPARISONS, Comparison, Measure, Program};

const USAGE: &str = "\
usage: cargo xtask bench [--rows PATTERN] [--pairs N] [--pin[=CPUS]] [FILTER]

Runs each row as N pairs of runs, ours then the peer's, back to back, and prints the median
of the pairs' ratios (peer / ours: above 1x we are faster), their interquartile range and a
verdict: PASS when the whole range meets the target, MISS when it all falls short, UNSURE
otherwise. The rows of pure CPU work in one process also get valgrind's instruction count.

  --rows PATTERN  only the rows whose name or measurement id contains PATTERN, in any case;
                  `|` separates alternatives (--rows 'round trip|queue_100kb')
  FILTER          the same as --rows FILTER
  --pairs N       pairs of runs per row (default 7)
  --pin[=CPUS]    run every program, and so every process it starts, on CPUS (a taskset
                  list such as 0 or 0-1; default 0), ours and the peer's alike
  --help          this text

Writes target/bench/results.json (every pair) and target/bench/results.svg.";

/// How many pairs of runs a row gets unless `--pairs` says otherwise.
const PAIRS: usize = 7;

/// How long a measurement may run beyond its budget (warm-up, interpreter start) before it is
/// taken for hung and killed.
const GRACE: Duration = Duration::from_secs(60);

/// What one run of a measurement's program printed: the mean time of one operation over
/// `iterations` timed operations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    pub(crate) seconds: f64,
    pub(crate) iterations: u32,
}

/// The folder of the Python peers.
pub(crate) fn python_dir() -> PathBuf {
    root().join("xtask").join("bench").join("python")
}

/// The release build of the benchmark binary `bin`.
pub(crate) fn binary(bin: &str) -> PathBuf {
    target_dir()
        .join("release")
        .join(format!("{bin}{}", env::consts::EXE_SUFFIX))
}

/// The Python that runs the peers.
fn python() -> OsString {
    env::var_os("PYTHON").unwrap_or_else(|| OsString::from("python3"))
}

/// What the command line asked for.
#[derive(Debug, PartialEq)]
struct Options {
    /// Alternatives, in lower case; a row is selected when one is in its name or a
    /// measurement id. No alternative (no `--rows`) selects every row.
    patterns: Vec<String>,
    pairs: usize,
    /// The CPUs, as `taskset -c` takes them, that every program runs on.
    pin: Option<String>,
    help: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            patterns: Vec::new(),
            pairs: PAIRS,
            pin: None,
            help: false,
        };
        let mut rows: Option<String> = None;
        let mut set_rows = |pattern: String| match rows.replace(pattern) {
            Some(_) => Err("give one row pattern (`|` separates alternatives)".to_string()),
            None => Ok(()),
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_string())),
                _ => (arg.as_str(), None),
            };
            let mut value = |inline: Option<String>| {
                inline
                    .or_else(|| args.next().cloned())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag {
                "--rows" => set_rows(value(inline)?)?,
                "--pairs" => {
                    let text = value(inline)?;
                    options.pairs = match text.parse() {
                        Ok(n) if n >= 1 => n,
                        _ => return Err(format!("--pairs takes a number from 1, not {text:?}")),
                    };
                }
                "--pin" => {
                    let cpus = inline.unwrap_or_else(|| "0".to_string());
                    let valid = !cpus.is_empty()
                        && cpus
                            .chars()
                            .all(|c| c.is_ascii_digit() || c == ',' || c == '-');
                    if !valid {
                        return Err(format!(
                            "--pin takes a CPU list such as 0 or 0-1, not {cpus:?}"
                        ));
                    }
                    options.pin = Some(cpus);
                }
                "-h" | "--help" => options.help = true,
                flag if flag.starts_with('-') => return Err(format!("unknown flag {flag}")),
                _ => set_rows(arg.clone())?,
            }
        }
        options.patterns = rows
            .iter()
            .flat_map(|rows| rows.split('|'))
            .map(str::trim)
            .filter(|pattern| !pattern.is_empty())
            .map(str::to_lowercase)
            .collect();
        Ok(options)
    }

    fn selects(&self, row: &Comparison) -> bool {
        let names = [row.name, row.ours, row.peer].map(str::to_lowercase);
        self.patterns.is_empty()
            || self
                .patterns
                .iter()
                .any(|pattern| names.iter().any(|name| name.contains(pattern.as_str())))
    }
}

/// Runs the benchmarks as `args` asks (see [`USAGE`]).
pub(crate) fn run(args: &[String]) -> Result<()> {
    let options = Options::parse(args).map_err(|why| format!("{why}\n\n{USAGE}"))?;
    if options.help {
        println!("{USAGE}");
        return Ok(());
    }
    let started = Instant::now();
    let mut rows: Vec<Row> = COMPARISONS
        .iter()
        .filter(|row| options.selects(row))
        .map(Row::new)
        .collect();
    if rows.is_empty() {
        return Err(format!("no benchmark row matches {:?}", options.patterns.join("|")).into());
    }
    let mpi_row = |row: &Row| {
        [row.row.ours, row.row.peer]
            .iter()
            .any(|id| suite::measure(id).is_some_and(|m| m.ranks.is_some()))
    };
    let mut mpi_skipped = None;
    if rows.iter().any(mpi_row)
        && let Err(why) = crate::mpi::present()
    {
        let skipped = rows.iter().filter(|row| mpi_row(row)).count();
        rows.retain(|row| !mpi_row(row));
        let why = format!("{skipped} MPI rows: {why}");
        println!("SKIPPED: {why}");
        mpi_skipped = Some(why);
        if rows.is_empty() {
            return Ok(());
        }
    }
    let measures: Vec<&'static Measure> = suite::MEASURES
        .iter()
        .filter(|m| {
            rows.iter()
                .any(|row| row.row.ours == m.id || row.row.peer == m.id)
        })
        .collect();
    if let Some(cpus) = &options.pin {
        check_pin(cpus)?;
    }

    // Only the binaries the rows need: another package's binary in the making cannot stop it.
    // The MPI ones are built apart, with the `mpi` feature, so that the others do not link MPI.
    for mpi in [false, true] {
        let mut build = cargo();
        build.args(["build", "--release", "-p", "procs-bench"]);
        if mpi {
            build.args(["--features", "mpi"]);
        }
        let mut bins: Vec<&str> = Vec::new();
        for measure in &measures {
            if let Program::Rust(bin) = measure.program
                && measure.ranks.is_some() == mpi
                && !bins.contains(&bin)
            {
                bins.push(bin);
                build.args(["--bin", bin]);
            }
        }
        if !bins.is_empty() {
            step(&mut build)?;
        }
    }
    for module in ["loky", "mpi4py"] {
        if measures.iter().any(|m| m.label.starts_with(module)) {
            ensure_python_module(module);
        }
    }

    let pin = options.pin.as_deref();
    let pairs = options.pairs;
    // A measurement that failed in one row is not run again for another: its figure is gone.
    let mut failed: Vec<(&str, String)> = Vec::new();
    for pair in 1..=pairs {
        header(&format!(
            "bench: pair {pair} of {pairs} (ours, then the peer's; ratio = peer / ours){}",
            pin.map_or(String::new(), |cpus| format!(", pinned to CPUs {cpus}"))
        ));
        for row in &mut rows {
            if row.error.is_some() {
                continue;
            }
            let gone = failed
                .iter()
                .find(|(id, _)| *id == row.row.ours || *id == row.row.peer);
            if let Some((id, why)) = gone {
                row.error = Some(format!("{id}: {why}"));
                continue;
            }
            match run_pair(row.row, pin) {
                Ok(pair) => {
                    println!(
                        "  {:<56} {:>10} {:>10}  {}",
                        row.row.name,
                        format_time(pair.ours),
                        format_time(pair.peer),
                        format_ratio(pair.ratio())
                    );
                    row.pairs.push(pair);
                }
                Err((id, why)) => {
                    println!("  {:<56} FAILED: {why}", row.row.name);
                    row.error = Some(format!("{id}: {why}"));
                    failed.push((id, why));
                }
            }
        }
    }

    let counted = measures.iter().any(|m| suite::COUNTED.contains(&m.id));
    let counts = if counted {
        header("bench: instructions per operation (valgrind --tool=callgrind)");
        callgrind::count(&measures)
    } else {
        Counts::Skipped("no selected row is counted".into())
    };
    if let (true, Counts::Skipped(why)) = (counted, &counts) {
        println!("SKIPPED: no instruction counts: {why}");
    }
    for row in &mut rows {
        row.ours_instructions = counts.of(row.row.ours);
        row.peer_instructions = counts.of(row.row.peer);
    }

    header(&format!(
        "bench: results (ratio = peer / ours, above 1x we are faster: the median of {pairs} \
         pairs, and in brackets the middle half of them)"
    ));
    print_rows(&rows);

    let path = target_dir().join("bench").join("results.json");
    fs::create_dir_all(path.parent().expect("the file is in a folder"))?;
    fs::write(&path, json::results(&rows, &counts, pairs, pin))?;
    println!("\nwrote {}", path.display());
    let picture = path.with_file_name("results.svg");
    fs::write(&picture, chart::svg(&rows))?;
    println!("wrote {}", picture.display());

    let goals = rows.iter().filter(|r| r.row.target.is_some()).count();
    let verdicts = |verdict| rows.iter().filter(|r| r.verdict() == Some(verdict)).count();
    println!(
        "verdicts on {goals} targets: {} PASS, {} MISS, {} UNSURE",
        verdicts(Verdict::Pass),
        verdicts(Verdict::Miss),
        verdicts(Verdict::Unsure),
    );
    if let (true, Counts::Skipped(why)) = (counted, &counts) {
        println!("SKIPPED: instruction counts: {why}");
    }
    if let Some(why) = &mpi_skipped {
        println!("SKIPPED: {why}");
    }
    println!("took {:.1} min", started.elapsed().as_secs_f64() / 60.0);
    if !failed.is_empty() {
        let ids: Vec<&str> = failed.iter().map(|(id, _)| *id).collect();
        return Err(format!("measurements failed: {}", ids.join(", ")).into());
    }
    Ok(())
}

/// One pair: the seconds per operation of our run and of the peer's run just after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Pair {
    pub(crate) ours: f64,
    pub(crate) peer: f64,
}

impl Pair {
    /// `peer / ours`: above 1, we are faster.
    pub(crate) fn ratio(self) -> f64 {
        self.peer / self.ours
    }
}

/// Runs one pair of `row`: ours, then the peer's. On failure, the measurement that failed and
/// why.
fn run_pair(row: &Comparison, pin: Option<&str>) -> Result<Pair, (&'static str, String)> {
    let run = |id: &'static str| {
        let measure = suite::measure(id).ok_or((id, "no such measurement".to_string()))?;
        run_measure(measure, pin)
            .map(|sample| sample.seconds)
            .map_err(|why| (id, why))
    };
    let ours = run(row.ours)?;
    let peer = run(row.peer)?;
    Ok(Pair { ours, peer })
}

/// One comparison with its pairs.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) row: &'static Comparison,
    /// Every pair, in the order they ran.
    pub(crate) pairs: Vec<Pair>,
    /// Why the row has no figure, when a run failed.
    pub(crate) error: Option<String>,
    /// Instructions per operation, for the counted measurements.
    pub(crate) ours_instructions: Option<f64>,
    pub(crate) peer_instructions: Option<f64>,
}

impl Row {
    fn new(row: &'static Comparison) -> Row {
        Row {
            row,
            pairs: Vec::new(),
            error: None,
            ours_instructions: None,
            peer_instructions: None,
        }
    }

    /// The pairs' figures by `figure`, none if a run failed.
    fn spread_of(&self, figure: impl Fn(&Pair) -> f64) -> Option<Spread> {
        if self.error.is_some() {
            return None;
        }
        Spread::of(&self.pairs.iter().map(figure).collect::<Vec<_>>())
    }

    /// The spread of the pairs' ratios, `peer / ours`.
    pub(crate) fn ratios(&self) -> Option<Spread> {
        self.spread_of(|pair| pair.ratio())
    }

    /// The median of our seconds per operation.
    pub(crate) fn ours_seconds(&self) -> Option<f64> {
        Some(self.spread_of(|pair| pair.ours)?.median)
    }

    /// The median of the peer's seconds per operation.
    pub(crate) fn peer_seconds(&self) -> Option<f64> {
        Some(self.spread_of(|pair| pair.peer)?.median)
    }

    /// The row's answer to its goal; `None` without a goal or without figures.
    pub(crate) fn verdict(&self) -> Option<Verdict> {
        Some(Verdict::of(self.ratios()?, self.row.target?.min_ratio))
    }

    pub(crate) fn peer_label(&self) -> &'static str {
        suite::measure(self.row.peer).map_or(self.row.peer, |m| m.label)
    }
}

fn print_rows(rows: &[Row]) {
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let time = |t: Option<f64>| t.map_or("n/a".to_string(), format_time);
            let goal = match (r.row.target, r.verdict()) {
                (None, _) => String::new(),
                (Some(target), Some(verdict)) => {
                    format!("target {} {}", target.text, verdict.as_str())
                }
                (Some(target), None) => format!("target {} ERROR", target.text),
            };
            let instructions = match (r.ours_instructions, r.peer_instructions) {
                (Some(ours), Some(peer)) => format!(
                    "instructions {ours:.0} vs {peer:.0} ({})",
                    format_ratio(peer / ours)
                ),
                _ => String::new(),
            };
            [
                r.row.name.to_string(),
                format!("ours {}", time(r.ours_seconds())),
                format!("{} {}", r.peer_label(), time(r.peer_seconds())),
                format!(
                    "ratio {}",
                    r.ratios().map_or("n/a".to_string(), format_spread)
                ),
                goal,
                instructions,
            ]
        })
        .collect();
    let mut widths = [0; 6];
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

/// The median ratio and, in brackets, the middle half of the ratios: `3.70x (3.51-3.92x)`.
pub(crate) fn format_spread(spread: Spread) -> String {
    let high = format_ratio(spread.high);
    format!(
        "{} ({}-{high})",
        format_ratio(spread.median),
        format_ratio(spread.low).trim_end_matches('x')
    )
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

/// The command of one timed run of `measure`, under `taskset -c CPUS` when pinned.
fn command(measure: &Measure, pin: Option<&str>) -> Command {
    let program = match measure.program {
        Program::Rust(bin) => binary(bin).into_os_string(),
        Program::Python(_) => python(),
    };
    // Under MPI, `mpirun -n RANKS` runs the program (and `taskset`, pinning, runs mpirun).
    let mut words: Vec<OsString> = Vec::new();
    if let Some(ranks) = measure.ranks {
        words.push("mpirun".into());
        words.extend(crate::mpi::MPIRUN_FLAGS.iter().map(OsString::from));
        words.extend(["-n".into(), ranks.to_string().into()]);
    }
    words.push(program);
    let mut command = match pin {
        Some(cpus) => {
            let mut taskset = Command::new("taskset");
            taskset.args(["-c", cpus]).args(&words);
            taskset
        }
        None => {
            let mut command = Command::new(&words[0]);
            command.args(&words[1..]);
            command
        }
    };
    if let Program::Python(script) = measure.program {
        if measure.ranks.is_some() {
            command.args(["-m", "mpi4py.futures"]);
        }
        command.arg(python_dir().join(script));
    }
    command
        .args(measure.args)
        .args(["--iterations", &measure.iterations.to_string()])
        .args(["--warmup", &measure.warmup.to_string()])
        .args(["--budget-secs", &BUDGET_SECS.to_string()])
        .current_dir(root());
    command
}

/// Fails unless `taskset` can run a program on `cpus`, before any build or run.
fn check_pin(cpus: &str) -> Result<()> {
    let works = Command::new("taskset")
        .args(["-c", cpus, "true"])
        .stdout(Stdio::null())
        .status();
    match works {
        Ok(status) if status.success() => Ok(()),
        Ok(_) => Err(format!(
            "--pin={cpus}: taskset cannot run a program on those CPUs (see `nproc`)"
        )
        .into()),
        Err(error) => Err(format!(
            "--pin needs taskset (Linux's util-linux), which could not start: {error}"
        )
        .into()),
    }
}

/// Installs a Python module that peers need with pip when it is missing: loky (the robust
/// executor, a peer of the pool rows) or mpi4py (whose `mpi4py.futures` is the peer of the
/// MPI rows; pip builds it against the MPI installed). If that fails, its measurements fail
/// and say so.
fn ensure_python_module(module: &str) {
    let python = python();
    let has = |python: &OsString| {
        Command::new(python)
            .args(["-c", &format!("import {module}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has(&python) {
        return;
    }
    println!("bench: installing {module} with pip");
    let installed = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", module])
        .status()
        .is_ok_and(|s| s.success());
    if !installed || !has(&python) {
        println!("bench: {module} could not be installed; its rows will have no figure");
    }
}

/// Runs one measurement's program and reads its `RESULT` line. A program that runs past its
/// budget by [`GRACE`] is killed, so that a hung child cannot hang the benchmark.
fn run_measure(measure: &Measure, pin: Option<&str>) -> Result<Sample, String> {
    let mut command = command(measure, pin);
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
    fn spreads_print_the_median_then_the_middle_half() {
        let spread = Spread::of(&[3.4, 3.51, 3.7, 3.92, 4.1]).unwrap();
        assert_eq!(format_spread(spread), "3.70x (3.51-3.92x)");
    }

    fn row(name: &str, pairs: &[(f64, f64)]) -> Row {
        let comparison = COMPARISONS.iter().find(|row| row.name == name).unwrap();
        Row {
            pairs: pairs
                .iter()
                .map(|&(ours, peer)| Pair { ours, peer })
                .collect(),
            ..Row::new(comparison)
        }
    }

    #[test]
    fn a_row_judges_its_pairs_ratios() {
        // Target >= 2x.
        let name = "event set/wait round trip, 2 processes";
        let pass = row(
            name,
            &[(1.0, 3.0), (2.0, 5.0), (1.0, 2.5), (1.0, 1.0), (1.0, 4.0)],
        );
        let ratios = pass.ratios().unwrap();
        assert_eq!(ratios.median, 2.5);
        assert_eq!((ratios.min, ratios.max), (1.0, 4.0));
        assert_eq!(pass.verdict(), Some(Verdict::Pass));
        assert_eq!(pass.ours_seconds(), Some(1.0));
        assert_eq!(pass.peer_seconds(), Some(3.0));
        let unsure = row(name, &[(1.0, 1.5), (1.0, 2.5), (1.0, 2.0), (1.0, 3.0)]);
        assert_eq!(unsure.verdict(), Some(Verdict::Unsure));
        let miss = row(name, &[(1.0, 1.5), (1.0, 1.9), (2.0, 3.0)]);
        assert_eq!(miss.verdict(), Some(Verdict::Miss));
    }

    #[test]
    fn a_row_without_target_or_figures_has_no_verdict() {
        let informs = row("process start+join (fork) vs OS floor", &[(1.0, 0.5)]);
        assert_eq!(informs.verdict(), None);
        assert!(informs.ratios().is_some());
        let name = "event set/wait round trip, 2 processes";
        assert_eq!(row(name, &[]).verdict(), None);
        let failed = Row {
            error: Some("event_roundtrip/python: failed".into()),
            ..row(name, &[(1.0, 3.0)])
        };
        assert_eq!(failed.ratios(), None);
        assert_eq!(failed.verdict(), None);
    }

    fn options(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_select_rows_by_any_alternative() {
        let all = options(&[]).unwrap();
        assert_eq!((all.pairs, all.pin.as_deref()), (PAIRS, None));
        assert!(COMPARISONS.iter().all(|row| all.selects(row)));
        let some = options(&["--rows", "Round Trip|queue_100kb/ours/simple"]).unwrap();
        let chosen: Vec<&str> = COMPARISONS
            .iter()
            .filter(|row| some.selects(row))
            .map(|row| row.name)
            .collect();
        assert!(chosen.contains(&"event set/wait round trip, 2 processes"));
        assert!(chosen.contains(&"simple queue 1 to 1, 100 KB items"));
        assert!(!chosen.contains(&"queue 1 to 1, 100 KB items"));
        // The positional filter of old is the same as --rows.
        assert_eq!(options(&["Pool"]), options(&["--rows=pool"]));
    }

    #[test]
    fn options_read_pairs_and_pins() {
        let parsed = options(&["--pairs", "9", "--pin", "--rows", "lock"]).unwrap();
        assert_eq!((parsed.pairs, parsed.pin.as_deref()), (9, Some("0")));
        let parsed = options(&["--pairs=3", "--pin=0-1"]).unwrap();
        assert_eq!((parsed.pairs, parsed.pin.as_deref()), (3, Some("0-1")));
        assert!(options(&["--help"]).unwrap().help);
        assert!(options(&["--pairs", "0"]).is_err());
        assert!(options(&["--pairs"]).is_err());
        assert!(options(&["--pin=all"]).is_err());
        assert!(options(&["--rows", "a", "b"]).is_err());
        assert!(options(&["--fast"]).is_err());
    }
}
