//! The circuit breaker of the Redis stores (feature `redis`): `hardening-ratelimit`'s limiter
//! and `hardening-auth`'s denylist.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Stops a store asking a Redis that does not answer: after `threshold` failures in a row
/// (no reply within the store's timeout, or an error), it is open for `cool_down`, and the
/// store answers at once by its failure mode instead of waiting out its timeout on every
/// request. Then one caller asks Redis again (a probe); the others keep away until it
/// answers (a success closes the breaker, a failure opens it again) or, should it be dropped
/// unanswered, for the store's timeout. Lock-free: a few atomics, read on every decision.
///
/// ```
/// use std::time::Duration;
/// use hardening_errors::RedisBreaker;
///
/// let breaker = RedisBreaker::new(2, Duration::from_secs(60), Duration::from_millis(100));
/// assert!(breaker.lets_through());
/// assert!(!breaker.failure(), "one failure of two");
/// assert!(breaker.failure(), "the one that opened it");
/// assert!(breaker.is_open() && !breaker.lets_through());
/// assert_eq!(breaker.retry_after(), Duration::from_secs(60));
/// assert!(breaker.success(), "Redis answered: the outage is over");
/// assert!(breaker.lets_through());
/// ```
pub struct RedisBreaker {
    failures: AtomicU32,
    /// Milliseconds since `start`.
    open_until: AtomicU64,
    threshold: u32,
    cool_down: Duration,
    /// How long the others keep away while one request probes (ms, the store's timeout).
    probe_ms: u64,
    start: Instant,
}

impl fmt::Debug for RedisBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBreaker")
            .field("threshold", &self.threshold)
            .field("cool_down", &self.cool_down)
            .field("open", &self.is_open())
            .finish_non_exhaustive()
    }
}

impl RedisBreaker {
    /// Opens after `threshold` failures in a row (at least 1), for `cool_down`; a probe keeps
    /// the others away for the store's `timeout` at most.
    pub fn new(threshold: u32, cool_down: Duration, timeout: Duration) -> Self {
        Self {
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            threshold: threshold.max(1),
            cool_down,
            // Rounded up: a window of 0 ms would let every request probe.
            probe_ms: u64::try_from(timeout.as_micros().div_ceil(1000))
                .unwrap_or(u64::MAX)
                .max(1),
            start: Instant::now(),
        }
    }

    /// How many failures in a row open it.
    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// How long it stays open.
    pub fn cool_down(&self) -> Duration {
        self.cool_down
    }

    /// What a refusal for want of Redis says in `Retry-After`: the cool-down, at least a
    /// second (the least the field says).
    pub fn retry_after(&self) -> Duration {
        self.cool_down.max(Duration::from_secs(1))
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether it keeps callers away from Redis now (open, or a probe's window).
    pub fn is_open(&self) -> bool {
        self.now_ms() < self.open_until.load(Ordering::Relaxed)
    }

    /// Whether this caller may ask Redis. Once a cool-down is over, only the first to ask
    /// does (a probe); the others keep away until it answers (a success closes the breaker,
    /// a failure opens it again) or, should it be dropped unanswered, for the store's timeout.
    pub fn lets_through(&self) -> bool {
        let until = self.open_until.load(Ordering::Relaxed);
        let now = self.now_ms();
        if now < until {
            return false;
        }
        if self.failures.load(Ordering::Relaxed) < self.threshold {
            return true;
        }
        let probe_until = now.saturating_add(self.probe_ms);
        self.open_until
            .compare_exchange(until, probe_until, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Redis answered: closed (a probe's window, too). `true` for the one answer that closed
    /// a breaker that had opened: the outage is over.
    pub fn success(&self) -> bool {
        if self.failures.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let failures = self.failures.swap(0, Ordering::Relaxed);
        self.open_until.store(0, Ordering::Relaxed);
        failures >= self.threshold
    }

    /// Redis did not answer. `true` for the one failure that opened the breaker (the
    /// threshold's), not for the failed probes after it.
    pub fn failure(&self) -> bool {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= self.threshold {
            // Saturating: a cool-down near `u64::MAX` ms opens it for good, not for nothing
            // (nor a panic, in a debug build).
            let until = self
                .now_ms()
                .saturating_add(u64::try_from(self.cool_down.as_millis()).unwrap_or(u64::MAX));
            self.open_until.store(until, Ordering::Relaxed);
        }
        failures == self.threshold
    }
}

impl RedisBreaker {
    /// Whether `error` is Redis away, which the breaker counts as a [`failure`](Self::failure)
    /// (an outage): no reply (a timeout, a connection failed or lost), or a server that
    /// answers but cannot serve yet, so every command fails alike for seconds: loading its
    /// data set after a restart (`LOADING`), a replica cut off from its master
    /// (`MASTERDOWN`), a cluster down or moving slots (`CLUSTERDOWN`, `TRYAGAIN`). An error
    /// about the command itself (a full Redis refusing a write, `OOM`; a script error) is an
    /// answer: it fails that command only.
    ///
    /// ```
    /// use hardening_errors::RedisBreaker;
    /// use redis::{ErrorKind, RedisError, ServerErrorKind};
    ///
    /// let loading = RedisError::from((
    ///     ErrorKind::Server(ServerErrorKind::BusyLoading),
    ///     "Redis is loading the dataset in memory",
    /// ));
    /// assert!(RedisBreaker::is_outage(&loading));
    /// let full = RedisError::from((
    ///     ErrorKind::Server(ServerErrorKind::ResponseError),
    ///     "OOM command not allowed when used memory > 'maxmemory'",
    /// ));
    /// assert!(!RedisBreaker::is_outage(&full));
    /// ```
    pub fn is_outage(error: &redis::RedisError) -> bool {
        error.is_timeout()
            || error.is_io_error()
            || error.is_unrecoverable_error()
            || matches!(error.retry_method(), redis::RetryMethod::WaitAndRetry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_cool_down_opens_the_breaker_without_overflow() {
        for cool_down in [Duration::from_millis(u64::MAX), Duration::MAX] {
            let mut breaker = RedisBreaker::new(1, cool_down, Duration::from_millis(100));
            breaker.start = Instant::now() - Duration::from_secs(5);
            breaker.failure();
            assert!(breaker.is_open(), "{cool_down:?}");
        }
    }

    /// The breaker says which failure opened it and which success closed it after, once per
    /// outage, for the logs: not the failures before the threshold, nor failed probes after
    /// it, nor a success while it was closed.
    #[test]
    fn the_breaker_reports_opening_and_closing_once_per_outage() {
        let breaker = RedisBreaker::new(3, Duration::ZERO, Duration::from_millis(100));
        assert!(!breaker.success(), "no outage to end");
        assert_eq!(
            [breaker.failure(), breaker.failure(), breaker.failure()],
            [false, false, true]
        );
        assert!(!breaker.failure() && !breaker.failure(), "failed probes");
        assert!(breaker.success(), "the outage ends");
        assert!(!breaker.success());
        // Failures under the threshold, then an answer: no outage.
        assert!(!breaker.failure() && !breaker.failure());
        assert!(!breaker.success());
        assert!(!breaker.failure() && !breaker.failure() && breaker.failure());
    }

    /// Past the cool-down, one caller probes and the others keep away until it answers: a
    /// success lets everyone through at once, a failure keeps everyone away again.
    #[test]
    fn past_the_cool_down_one_caller_probes() {
        let breaker = RedisBreaker::new(2, Duration::ZERO, Duration::from_secs(60));
        assert!(breaker.lets_through() && breaker.lets_through());
        breaker.failure();
        assert!(breaker.lets_through(), "one failure of two: still closed");
        breaker.failure();
        assert!(breaker.lets_through(), "the probe");
        assert!(!breaker.lets_through() && !breaker.lets_through());
        assert!(breaker.is_open());
        breaker.success();
        assert!(!breaker.is_open());
        assert!(breaker.lets_through() && breaker.lets_through());
        breaker.failure();
        breaker.failure();
        assert!(breaker.lets_through(), "the next probe");
        // A failed probe keeps everyone away for the cool-down.
        let mut reopened = RedisBreaker::new(1, Duration::from_secs(60), Duration::from_millis(1));
        reopened.failure();
        assert!(!reopened.lets_through() && reopened.is_open());
        reopened.open_until.store(0, Ordering::Relaxed); // as if the minute had passed
        assert!(reopened.lets_through(), "the probe");
        reopened.failure();
        reopened.start -= Duration::from_secs(1); // a second on: past the probe's own window
        assert!(
            !reopened.lets_through() && reopened.is_open(),
            "a failed probe let others through"
        );
    }

    /// What a refusal says in `Retry-After`: the cool-down, never under a second.
    #[test]
    fn retry_after_is_the_cool_down_at_least_a_second() {
        let timeout = Duration::from_millis(100);
        for (cool_down, retry_after) in [
            (Duration::ZERO, Duration::from_secs(1)),
            (Duration::from_millis(300), Duration::from_secs(1)),
            (Duration::from_millis(2_500), Duration::from_millis(2_500)),
        ] {
            let breaker = RedisBreaker::new(0, cool_down, timeout);
            assert_eq!(breaker.retry_after(), retry_after);
            assert_eq!(breaker.threshold(), 1, "a threshold of 0 is 1");
        }
    }
}
