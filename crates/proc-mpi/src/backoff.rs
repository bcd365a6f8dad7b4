//! How the MPI threads wait for messages: nothing can wait on MPI messages together with
//! other events (the engine's command channel, say), and a blocking receive spins a core that
//! the other ranks on the node may need, so they poll, yielding first, then sleeping longer
//! and longer, up to half a millisecond.

use std::time::Duration;

/// The polls of one waiting thread since something last happened.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    quiet: u32,
}

/// How many polls only yield before the waits sleep.
const YIELDS: u32 = 64;

/// The longest sleep between two polls, in microseconds.
const MAX_SLEEP_MICROS: u32 = 500;

impl Backoff {
    /// Something happened: the next waits are short again.
    pub(crate) fn reset(&mut self) {
        self.quiet = 0;
    }

    /// Waits before the next poll: a yield, or, after [`YIELDS`] quiet polls, a sleep of as
    /// many microseconds as polls were quiet, up to [`MAX_SLEEP_MICROS`].
    pub(crate) fn wait(&mut self) {
        self.quiet = self.quiet.saturating_add(1);
        if self.quiet < YIELDS {
            std::thread::yield_now();
        } else {
            let micros = self.quiet.min(MAX_SLEEP_MICROS);
            std::thread::sleep(Duration::from_micros(u64::from(micros)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_count_until_something_happens() {
        let mut backoff = Backoff::default();
        for _ in 0..3 {
            backoff.wait();
        }
        assert_eq!(backoff.quiet, 3);
        // Past the yields, a wait sleeps, and the count goes on.
        backoff.quiet = YIELDS;
        backoff.wait();
        assert_eq!(backoff.quiet, YIELDS + 1);
        backoff.reset();
        assert_eq!(backoff.quiet, 0);
    }
}
