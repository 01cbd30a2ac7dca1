//! Time: the invocation's deadline, the question "stop now?" a multipart copy asks before
//! each part, wall-clock milliseconds, and the backoff between engine-level retries.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Asked before each part of a multipart copy: stop now? (The invocation's deadline; tests
/// stop at a given part.) It also tells how much time is left, when a deadline is known.
#[derive(Clone, Default)]
pub struct Stop {
    check: Option<Arc<dyn Fn(u64) -> bool + Send + Sync>>,
    deadline: Option<Instant>,
}

impl Stop {
    pub fn never() -> Self {
        Self::default()
    }

    pub fn at(deadline: Option<Instant>) -> Self {
        Self {
            check: deadline.map(|d| {
                Arc::new(move |_| Instant::now() >= d) as Arc<dyn Fn(u64) -> bool + Send + Sync>
            }),
            deadline,
        }
    }

    /// Stops when `f(part_number)` says so.
    pub fn when(f: impl Fn(u64) -> bool + Send + Sync + 'static) -> Self {
        Self {
            check: Some(Arc::new(f)),
            deadline: None,
        }
    }

    /// Whether the copy should start no new part (`part` is the part it would start).
    pub fn now(&self, part: u64) -> bool {
        self.check.as_ref().is_some_and(|f| f(part))
    }

    /// Time left before the deadline; `None` when there is none.
    pub fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The deadline, when there is one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.check, self.deadline) {
            (_, Some(d)) => write!(
                f,
                "Stop(in {:?})",
                d.saturating_duration_since(Instant::now())
            ),
            (Some(_), None) => f.write_str("Stop(when…)"),
            (None, None) => f.write_str("Stop(never)"),
        }
    }
}

/// The longest a copy can work on one thing: Lambda's longest invocation (15 minutes) and a
/// margin. A multipart upload's record is held this long unless released, and an upload no
/// record names is abandoned once it is older than this.
pub const UPLOAD_LEASE_MS: i64 = 16 * 60 * 1000;

/// Converts the Lambda context's deadline (milliseconds since the epoch) into an `Instant`.
///
/// A value before 2001 cannot be a real deadline: `cargo lambda watch` sends the function's
/// timeout there (600000) instead of a point in time, so such a value is taken as a budget
/// from now.
pub fn deadline_instant(deadline_ms: u64) -> Instant {
    const EPOCH_2001_MS: u64 = 978_307_200_000;
    if deadline_ms < EPOCH_2001_MS {
        return Instant::now() + Duration::from_millis(deadline_ms);
    }
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    Instant::now()
        + deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Waits before retry `attempt` (1-based) of an engine-level retry: exponential from 100 ms,
/// capped at 5 s, with "full jitter" so that parts failing together do not retry together.
pub async fn backoff(attempt: u32) {
    let cap = Duration::from_millis(100)
        .saturating_mul(1 << attempt.min(6))
        .min(Duration::from_secs(5));
    // Jitter from the clock's nanoseconds: no dependency, and good enough to spread retries.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let fraction = f64::from(nanos % 1000) / 1000.0;
    tokio::time::sleep(cap.mul_f64(0.5 + fraction / 2.0)).await;
}

/// `2026-01-01T00:00:00Z`: a time in milliseconds since the epoch, to the second.
pub fn rfc3339(ms: i64) -> String {
    aws_smithy_types::DateTime::from_secs(ms.div_euclid(1000))
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_are_points_in_time_or_budgets() {
        let now = now_ms() as u64;
        let left = |d: Instant| d.saturating_duration_since(Instant::now()).as_secs();
        assert!((58..=60).contains(&left(deadline_instant(now + 60_000))));
        assert_eq!(left(deadline_instant(now - 5_000)), 0);
        assert!((598..=600).contains(&left(deadline_instant(600_000))));
    }

    #[test]
    fn stop_when_and_at() {
        let s = Stop::when(|p| p >= 3);
        assert!(!s.now(2) && s.now(3));
        assert!(s.time_left().is_none());
        assert!(!Stop::never().now(1));
        assert!(Stop::at(Some(Instant::now())).now(1));
    }
}
