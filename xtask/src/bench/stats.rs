//! What a row's pairs say: the median ratio, its spread, and the verdict against a target.
//!
//! A row's figure is not one ratio but one per pair of runs (ours, then the peer's, back to
//! back), so that load which comes and goes on the machine hits both sides of a pair alike and
//! shows up as spread rather than as a different answer. The spread is the interquartile range
//! (the middle half of the ratios): one pair that a burst of load hit hard moves neither end,
//! while ratios that really scatter widen it.

/// The median of some figures and the range of their middle half.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    /// The first quartile.
    pub(crate) low: f64,
    /// The third quartile.
    pub(crate) high: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Spread {
    /// The spread of `values`; `None` without any, or if one is not a number.
    pub(crate) fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() || values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Spread {
            median: quantile(&sorted, 0.5),
            low: quantile(&sorted, 0.25),
            high: quantile(&sorted, 0.75),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        })
    }
}

/// The `q` quantile of sorted, non-empty `values`, interpolated linearly between the two
/// nearest (the default of R and NumPy), so that the quartiles of few pairs move smoothly.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    sorted[below] + (sorted[above] - sorted[below]) * (position - below as f64)
}

/// A row's answer to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The whole spread meets the target.
    Pass,
    /// The whole spread falls short of it.
    Miss,
    /// The target lies within the spread: this run cannot tell.
    Unsure,
}

impl Verdict {
    /// The verdict on ratios spread as `spread` for a target of at least `min_ratio`.
    pub(crate) fn of(spread: Spread, min_ratio: f64) -> Verdict {
        if spread.low >= min_ratio {
            Verdict::Pass
        } else if spread.high < min_ratio {
            Verdict::Miss
        } else {
            Verdict::Unsure
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Miss => "MISS",
            Verdict::Unsure => "UNSURE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_of_seven_pairs_is_their_middle_half() {
        let spread = Spread::of(&[7.0, 1.0, 6.0, 2.0, 5.0, 3.0, 4.0]).unwrap();
        assert_eq!(spread.median, 4.0);
        // Quartiles at positions 1.5 and 4.5 of the sorted seven.
        assert_eq!(spread.low, 2.5);
        assert_eq!(spread.high, 5.5);
        assert_eq!((spread.min, spread.max), (1.0, 7.0));
    }

    #[test]
    fn one_wild_pair_does_not_move_the_quartiles_much() {
        let calm = Spread::of(&[2.0, 2.1, 2.2, 2.3, 2.4, 2.5, 2.6]).unwrap();
        let wild = Spread::of(&[2.0, 2.1, 2.2, 2.3, 2.4, 2.5, 90.0]).unwrap();
        assert_eq!(calm.median, wild.median);
        assert_eq!(calm.low, wild.low);
        assert!((wild.high - calm.high).abs() < 1e-12);
        assert_eq!(wild.max, 90.0);
    }

    #[test]
    fn few_values_still_have_a_spread() {
        let one = Spread::of(&[3.0]).unwrap();
        assert_eq!((one.low, one.median, one.high), (3.0, 3.0, 3.0));
        let two = Spread::of(&[1.0, 2.0]).unwrap();
        assert_eq!((two.low, two.median, two.high), (1.25, 1.5, 1.75));
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn pass_needs_the_whole_spread_past_the_target() {
        let spread = |low, high| Spread {
            median: (low + high) / 2.0,
            low,
            high,
            min: low,
            max: high,
        };
        assert_eq!(Verdict::of(spread(2.0, 3.0), 2.0), Verdict::Pass);
        assert_eq!(Verdict::of(spread(2.5, 3.0), 2.0), Verdict::Pass);
        assert_eq!(Verdict::of(spread(1.9, 3.0), 2.0), Verdict::Unsure);
        assert_eq!(Verdict::of(spread(1.0, 2.0), 2.0), Verdict::Unsure);
        assert_eq!(Verdict::of(spread(1.0, 1.99), 2.0), Verdict::Miss);
        assert_eq!(Verdict::Unsure.as_str(), "UNSURE");
    }
}
