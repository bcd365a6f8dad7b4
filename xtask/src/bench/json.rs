//! The results as JSON, written by hand: the shape is small and fixed, and xtask keeps to the
//! standard library.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Row;
use super::callgrind::Counts;

/// The whole results file: the machine, how the run was made, every row with every pair, and
/// the instruction counts.
pub(crate) fn results(rows: &[Row], counts: &Counts, pairs: usize, pin: Option<&str>) -> String {
    let mut out = String::from("{\n");
    let unix_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(out, "  \"generated_unix_secs\": {unix_secs},");
    let _ = writeln!(out, "  \"os\": {},", string(std::env::consts::OS));
    let _ = writeln!(out, "  \"arch\": {},", string(std::env::consts::ARCH));
    let _ = writeln!(out, "  \"cpus\": {cpus},");
    let _ = writeln!(out, "  \"pairs\": {pairs},");
    let _ = writeln!(
        out,
        "  \"pinned_cpus\": {},",
        pin.map_or("null".into(), string)
    );
    let _ = writeln!(
        out,
        "  \"spread\": \"interquartile: ratio_low and ratio_high are the first and third \
         quartiles of the pairs' ratios\","
    );

    out.push_str("  \"rows\": [");
    for (i, row) in rows.iter().enumerate() {
        let optional = |x: Option<f64>| x.map_or("null".into(), number);
        let ratios = row.ratios();
        let of_ratios = |figure: fn(&super::Spread) -> f64| optional(ratios.as_ref().map(figure));
        let pairs: Vec<String> = row
            .pairs
            .iter()
            .map(|pair| {
                format!(
                    "{{\"ours_seconds\": {}, \"peer_seconds\": {}, \"ratio\": {}}}",
                    number(pair.ours),
                    number(pair.peer),
                    number(pair.ratio())
                )
            })
            .collect();
        let target = row.row.target;
        let _ = write!(
            out,
            "{}\n    {{\"name\": {}, \"ours\": {}, \"peer\": {}, \"peer_label\": {}, \
             \"ours_seconds\": {}, \"peer_seconds\": {}, \"ratio\": {}, \"ratio_low\": {}, \
             \"ratio_high\": {}, \"ratio_min\": {}, \"ratio_max\": {}, \"target\": {}, \
             \"target_min_ratio\": {}, \"verdict\": {}, \"error\": {}, \
             \"ours_instructions_per_op\": {}, \"peer_instructions_per_op\": {}, \
             \"pairs\": [{}]}}",
            if i == 0 { "" } else { "," },
            string(row.row.name),
            string(row.row.ours),
            string(row.row.peer),
            string(row.peer_label()),
            optional(row.ours_seconds()),
            optional(row.peer_seconds()),
            of_ratios(|s| s.median),
            of_ratios(|s| s.low),
            of_ratios(|s| s.high),
            of_ratios(|s| s.min),
            of_ratios(|s| s.max),
            target.map_or("null".into(), |t| string(t.text)),
            target.map_or("null".into(), |t| number(t.min_ratio)),
            row.verdict().map_or("null".into(), |v| string(v.as_str())),
            row.error.as_deref().map_or("null".into(), string),
            optional(row.ours_instructions),
            optional(row.peer_instructions),
            pairs.join(", "),
        );
    }
    out.push_str("\n  ],\n");

    match counts {
        Counts::Skipped(why) => {
            let _ = writeln!(out, "  \"instructions_skipped\": {},", string(why));
            out.push_str("  \"instructions\": []\n");
        }
        Counts::Counted(counted) => {
            out.push_str("  \"instructions_skipped\": null,\n  \"instructions\": [");
            for (i, (id, count)) in counted.iter().enumerate() {
                let (per_op, error) = match count {
                    Ok(n) => (number(*n), "null".into()),
                    Err(why) => ("null".into(), string(why)),
                };
                let _ = write!(
                    out,
                    "{}\n    {{\"id\": {}, \"instructions_per_op\": {per_op}, \"error\": {error}}}",
                    if i == 0 { "" } else { "," },
                    string(id),
                );
            }
            out.push_str("\n  ]\n");
        }
    }
    out.push_str("}\n");
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
    use crate::bench::Pair;

    #[test]
    fn every_pair_and_the_verdict_are_kept() {
        let comparison = crate::bench::suite::COMPARISONS
            .iter()
            .find(|row| row.name == "event set/wait round trip, 2 processes")
            .unwrap();
        let row = Row {
            pairs: vec![
                Pair {
                    ours: 1.0,
                    peer: 3.0,
                },
                Pair {
                    ours: 2.0,
                    peer: 5.0,
                },
            ],
            ..Row::new(comparison)
        };
        let json = results(
            &[row],
            &Counts::Skipped("valgrind not found".into()),
            2,
            None,
        );
        assert!(
            json.contains("\"pairs\": [{\"ours_seconds\": 1, \"peer_seconds\": 3, \"ratio\": 3}, ")
        );
        assert!(json.contains("\"ratio\": 2.75, \"ratio_low\": 2.625"));
        assert!(json.contains("\"verdict\": \"PASS\""));
        assert!(json.contains("\"instructions_skipped\": \"valgrind not found\""));
        assert!(json.contains("\"pinned_cpus\": null"));
    }

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
