//! A point in time that a wait must not pass, or none.

use std::time::{Duration, Instant};

/// When a wait gives up: a moment, or never.
///
/// [`Deadline::after`] accepts any `Duration`: one too large for an `Instant` (such as
/// `Duration::MAX`) means never, where `Instant::now() + timeout` would panic.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// use proc_core::internal::Deadline;
///
/// assert!(Deadline::after(Duration::MAX).is_never());
/// assert!(Deadline::after(Duration::ZERO).passed());
/// assert_eq!(Deadline::never().remaining(), None);
/// assert!(Deadline::after(Duration::from_secs(60)).remaining().unwrap() > Duration::from_secs(59));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// `timeout` from now; never when the sum does not fit an `Instant`.
    pub fn after(timeout: Duration) -> Deadline {
        Deadline(Instant::now().checked_add(timeout))
    }

    /// A deadline that never comes.
    pub const fn never() -> Deadline {
        Deadline(None)
    }

    /// `after(t)` for `Some(t)`, never for `None` (Python's `timeout=None`).
    pub fn from_timeout(timeout: Option<Duration>) -> Deadline {
        timeout.map_or(Deadline::never(), Deadline::after)
    }

    /// The moment itself, `None` for never.
    pub fn instant(self) -> Option<Instant> {
        self.0
    }

    /// Whether this is [`Deadline::never`].
    pub fn is_never(self) -> bool {
        self.0.is_none()
    }

    /// Whether the moment has come.
    pub fn passed(self) -> bool {
        self.0.is_some_and(|at| Instant::now() >= at)
    }

    /// The time left (zero once passed), `None` for never.
    pub fn remaining(self) -> Option<Duration> {
        self.0
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// The time left, at most `slice`: how long one look of a polling wait may sleep.
    pub fn slice(self, slice: Duration) -> Duration {
        self.remaining().map_or(slice, |left| left.min(slice))
    }

    /// The earlier of the two.
    pub fn min(self, other: Deadline) -> Deadline {
        match (self.0, other.0) {
            (Some(a), Some(b)) => Deadline(Some(a.min(b))),
            (a, b) => Deadline(a.or(b)),
        }
    }
}
