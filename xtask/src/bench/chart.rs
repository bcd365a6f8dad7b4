//! The picture next to `results.json`: one bar per row, the median ratio to the peer on a log
//! axis, a whisker over the middle half of the pairs' ratios, the target marked and the bar
//! coloured by the verdict, as a small hand-written SVG (no plotting dependency for a bar
//! chart).

use super::Row;
use super::stats::Verdict;

const ROW_HEIGHT: f64 = 22.0;
const LABEL_WIDTH: f64 = 430.0;
const PLOT_WIDTH: f64 = 520.0;
const TOP: f64 = 40.0;
/// The axis spans 0.1x to 1000x.
const LOG_MIN: f64 = -1.0;
const LOG_MAX: f64 = 3.0;

fn x_of(ratio: f64) -> f64 {
    let log = ratio.max(1e-3).log10().clamp(LOG_MIN, LOG_MAX);
    LABEL_WIDTH + (log - LOG_MIN) / (LOG_MAX - LOG_MIN) * PLOT_WIDTH
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart of `rows` as an SVG document.
pub(crate) fn svg(rows: &[Row]) -> String {
    let height = TOP + ROW_HEIGHT * rows.len() as f64 + 40.0;
    let width = LABEL_WIDTH + PLOT_WIDTH + 150.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"14\">cargo xtask bench: peer / ours, the \
         median of the pairs and their middle half (log axis; right of 1x we are faster; | marks \
         the target; green PASS, red MISS, orange UNSURE)</text>\n"
    );
    for decade in [0.1, 1.0, 10.0, 100.0, 1000.0] {
        let x = x_of(decade);
        out += &format!(
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ccc\"/>\n\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{decade}x</text>\n",
            height - 30.0,
            height - 15.0
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let y = TOP + ROW_HEIGHT * i as f64;
        out += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            LABEL_WIDTH - 8.0,
            y + 15.0,
            escape(row.row.name)
        );
        let Some(ratios) = row.ratios() else {
            out += &format!(
                "<text x=\"{LABEL_WIDTH}\" y=\"{:.1}\" fill=\"#888\">no figure</text>\n",
                y + 15.0
            );
            continue;
        };
        let color = match row.verdict() {
            Some(Verdict::Pass) => "#3a7d44",
            Some(Verdict::Miss) => "#c0392b",
            Some(Verdict::Unsure) => "#e67e22",
            None => "#7f8c8d",
        };
        let (start, end) = (x_of(1.0), x_of(ratios.median));
        let (left, bar) = (start.min(end), (start - end).abs().max(1.0));
        let (low, high) = (x_of(ratios.low), x_of(ratios.high));
        let middle = y + ROW_HEIGHT / 2.0;
        out += &format!(
            "<rect x=\"{left:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"{color}\"/>\n\
             <path d=\"M{low:.1} {:.1}V{:.1}M{low:.1} {middle:.1}H{high:.1}M{high:.1} {:.1}V{:.1}\" \
             stroke=\"#333\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            y + 4.0,
            ROW_HEIGHT - 8.0,
            middle - 4.0,
            middle + 4.0,
            middle - 4.0,
            middle + 4.0,
            start.max(end).max(high) + 4.0,
            y + 15.0,
            super::format_spread(ratios)
        );
        if let Some(target) = row.row.target {
            let x = x_of(target.min_ratio);
            out += &format!(
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"black\" \
                 stroke-width=\"2\"/>\n",
                y + 1.0,
                y + ROW_HEIGHT - 1.0
            );
        }
    }
    out + "</svg>\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Pair;
    use crate::bench::suite::COMPARISONS;

    #[test]
    fn every_row_gets_a_label_a_bar_and_a_whisker() {
        let rows: Vec<Row> = COMPARISONS
            .iter()
            .take(3)
            .map(|row| Row {
                pairs: vec![
                    Pair {
                        ours: 0.001,
                        peer: 0.009,
                    },
                    Pair {
                        ours: 0.001,
                        peer: 0.011,
                    },
                ],
                ..Row::new(row)
            })
            .collect();
        let svg = svg(&rows);
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<rect").count(), 1 + rows.len());
        assert_eq!(svg.matches("<path").count(), rows.len());
        assert!(svg.contains(&escape(COMPARISONS[0].name)));
        assert!(svg.contains("10.0x (9.50-10.5x)"));
    }

    #[test]
    fn the_axis_is_logarithmic() {
        let one = x_of(1.0);
        assert!((x_of(10.0) - one - (x_of(100.0) - x_of(10.0))).abs() < 1e-9);
        assert_eq!(x_of(1e9), x_of(1000.0));
    }
}
