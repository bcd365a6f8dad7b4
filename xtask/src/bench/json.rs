//! The results as JSON, written by hand: the shape is small and fixed, and xtask keeps to the
//! standard library.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use super::suite::Measure;
use super::{Outcome, Row};

/// The whole results file: the machine, every measurement and every row.
pub(crate) fn results(rows: &[Row], outcomes: &[(&Measure, Outcome)]) -> String {
    let mut out = String::from("{\n");
    let unix_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(out, "  \"generated_unix_secs\": {unix_secs},");
    let _ = writeln!(out, "  \"os\": {},", string(std::env::consts::OS));
    let _ = writeln!(out, "  \"arch\": {},", string(std::env::consts::ARCH));
    let _ = writeln!(out, "  \"cpus\": {cpus},");

    out.push_str("  \"measurements\": [");
    for (i, (measure, outcome)) in outcomes.iter().enumerate() {
        let (seconds, iterations, rounds, error) = match outcome {
            Ok(t) => {
                let rounds: Vec<String> = t.rounds.iter().copied().map(number).collect();
                (
                    number(t.seconds),
                    t.iterations.to_string(),
                    format!("[{}]", rounds.join(", ")),
                    "null".into(),
                )
            }
            Err(why) => ("null".into(), "null".into(), "null".into(), string(why)),
        };
        let _ = write!(
            out,
            "{}\n    {{\"id\": {}, \"label\": {}, \"seconds_per_op\": {seconds}, \
             \"iterations\": {iterations}, \"rounds_seconds_per_op\": {rounds}, \
             \"error\": {error}}}",
            if i == 0 { "" } else { "," },
            string(measure.id),
            string(measure.label),
        );
    }
    out.push_str("\n  ],\n");

    out.push_str("  \"rows\": [");
    for (i, row) in rows.iter().enumerate() {
        let seconds = |t: Option<f64>| t.map_or("null".into(), number);
        let target = row.row.target;
        let _ = write!(
            out,
            "{}\n    {{\"name\": {}, \"ours\": {}, \"ours_seconds\": {}, \"peer\": {}, \
             \"peer_label\": {}, \"peer_seconds\": {}, \"ratio\": {}, \"target\": {}, \
             \"target_min_ratio\": {}, \"met\": {}}}",
            if i == 0 { "" } else { "," },
            string(row.row.name),
            string(row.row.ours),
            seconds(row.ours),
            string(row.row.peer),
            string(row.peer_label()),
            seconds(row.peer),
            row.ratio().map_or("null".into(), number),
            target.map_or("null".into(), |t| string(t.text)),
            target.map_or("null".into(), |t| number(t.min_ratio)),
            row.met().map_or("null".into(), |met| met.to_string()),
        );
    }
    out.push_str("\n  ]\n}\n");
    out
}

/// A JSON string.
fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number; JSON has no NaN or infinity, so those are `null`.
fn number(x: f64) -> String {
    if x.is_finite() {
        x.to_string()
    } else {
        "null".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(string("a \"b\"\\\n\u{1}"), "\"a \\\"b\\\"\\\\\\n\\u0001\"");
    }

    #[test]
    fn numbers_are_plain_or_null() {
        assert_eq!(number(0.000412), "0.000412");
        assert_eq!(number(f64::NAN), "null");
        assert_eq!(number(f64::INFINITY), "null");
    }
}
