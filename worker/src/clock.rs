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
    /// The system clock.
    pub fn system() -> Clock {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as Instant);
        Clock::starting_at(now)
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

    #[tokio::test(start_paused = true)]
    async fn follows_tokio_time() {
        let c = Clock::starting_at(1_000);
        assert_eq!(c.now(), 1_000);
        assert_eq!(c.until(1_010), Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(15)).await;
        assert_eq!(c.now(), 1_015);
        assert_eq!(c.until(1_010), Duration::ZERO);
    }
}
