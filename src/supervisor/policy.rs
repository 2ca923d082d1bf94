//! Restart policy and crash back-off, pure: time is passed in.
//!
//! First restart immediate, then 1 s doubling to at most 30 s; the back-off resets once
//! a run stayed up for 60 s. Heroku cools crashed dynos off for up to 20 minutes; locally
//! seconds are what a developer waits through.

use std::time::Duration;

const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(30);
/// A run that stayed up this long is healthy: the next crash starts the back-off afresh.
const RESET_AFTER: Duration = Duration::from_secs(60);

/// Consecutive-crash counter of one instance.
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    consecutive: u32,
}

impl Backoff {
    /// The wait before the next start, given how long the run that just ended lasted.
    pub fn next_delay(&mut self, run_lasted: Duration) -> Duration {
        if run_lasted >= RESET_AFTER {
            self.consecutive = 0;
        }
        let delay = match self.consecutive {
            0 => Duration::ZERO,
            n => FIRST_DELAY
                .saturating_mul(1 << (n - 1).min(16))
                .min(MAX_DELAY),
        };
        self.consecutive = self.consecutive.saturating_add(1);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn first_restart_is_immediate_then_doubles_to_thirty_seconds() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..8).map(|_| b.next_delay(secs(0)).as_secs()).collect();
        assert_eq!(waits, [0, 1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn a_long_healthy_run_resets_the_backoff() {
        let mut b = Backoff::default();
        for _ in 0..5 {
            b.next_delay(secs(1));
        }
        assert_eq!(b.next_delay(secs(60)), Duration::ZERO);
        assert_eq!(b.next_delay(secs(59)), secs(1));
    }

    #[test]
    fn many_crashes_do_not_overflow() {
        let mut b = Backoff::default();
        for _ in 0..10_000 {
            assert!(b.next_delay(secs(0)) <= MAX_DELAY);
        }
    }
}
