//! The wall clock of a worker: Unix seconds that advance with tokio's clock, so a test that
//! pauses and advances tokio time moves it too, and `--start-time` can shift it.

use std::time::Duration;

use flowwatch_core::time::Instant;

/// A clock reading `start` at creation and advancing in real (tokio) time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start_unix: Instant,
    start: tokio::time::Instant,
}

impl Clock {
    /// The system clock. Its seconds turn when the system's do: a tick due at a second is
    /// evaluated at that second, not up to a second later.
    pub fn system() -> Clock {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let start = tokio::time::Instant::now();
        Clock {
            start_unix: since_epoch.as_secs() as Instant,
            start: start
                .checked_sub(Duration::from_nanos(since_epoch.subsec_nanos().into()))
                .unwrap_or(start),
        }
    }

    /// A clock that reads `t` now (the seed's time shift, for replaying history as if live).
    pub fn starting_at(t: Instant) -> Clock {
        Clock {
            start_unix: t,
            start: tokio::time::Instant::now(),
        }
    }

    /// Now, in Unix seconds.
    pub fn now(&self) -> Instant {
        self.start_unix + self.start.elapsed().as_secs() as Instant
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.start_unix * 1000 + self.start.elapsed().as_millis() as i64
    }

    /// How long until the clock reads `t` (zero if it has).
    pub fn until(&self, t: Instant) -> Duration {
        let elapsed = self.start.elapsed();
        let target = Duration::from_secs((t - self.start_unix).max(0) as u64);
        target.saturating_sub(elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_system_clock_turns_its_seconds_with_the_system() {
        let c = Clock::system();
        let wait = c.until(c.now() + 1);
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let to_next_second =
            Duration::from_secs(1) - Duration::from_nanos(system.subsec_nanos().into());
        let skew = wait.abs_diff(to_next_second);
        assert!(
            skew < Duration::from_millis(20),
            "{wait:?} vs {to_next_second:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn follows_tokio_time() {
        let c = Clock::starting_at(1_000);
        assert_eq!(c.now(), 1_000);
        assert_eq!(c.until(1_010), Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(15)).await;
        assert_eq!(c.now(), 1_015);
        assert_eq!(c.until(1_010), Duration::ZERO);
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(c.now_ms(), 1_015_250);
    }
}
