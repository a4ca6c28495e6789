//! Quotas that read right.

use std::num::NonZeroU32;
use std::time::Duration;

/// How many requests (or cost units) a key may spend per period, with an explicit burst.
///
/// `Quota::per_minute(100)` means a hundred per minute, refilled evenly (one every 600 ms),
/// with a burst of 100 unless [`Quota::burst`] says otherwise. (tower_governor's
/// `per_second(n)` means "one every n seconds", a known footgun; these constructors mean what
/// they say.)
///
/// A unit refills in a whole number of nanoseconds (microseconds in the Redis store), rounded
/// up: a limit is never looser than asked, but a very high rate is enforced below it (by
/// under 1 % up to 10^7 a second, 10^4 in Redis; at most 10^9 a second, 10^6 in Redis).
///
/// ```
/// use std::num::NonZeroU32;
/// use hardening_ratelimit::Quota;
///
/// let q = Quota::per_minute(NonZeroU32::new(100).unwrap()).burst(NonZeroU32::new(50).unwrap());
/// assert_eq!(q.count(), 100);
/// assert_eq!(q.burst_size(), 50);
/// assert_eq!(q.period().as_secs(), 60);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    count: NonZeroU32,
    period: Duration,
    burst: NonZeroU32,
}

impl Quota {
    /// `count` per second.
    pub const fn per_second(count: NonZeroU32) -> Self {
        Self::per(count, Duration::from_secs(1))
    }

    /// `count` per minute.
    pub const fn per_minute(count: NonZeroU32) -> Self {
        Self::per(count, Duration::from_secs(60))
    }

    /// `count` per hour.
    pub const fn per_hour(count: NonZeroU32) -> Self {
        Self::per(count, Duration::from_secs(3600))
    }

    /// `count` per day.
    pub const fn per_day(count: NonZeroU32) -> Self {
        Self::per(count, Duration::from_secs(86_400))
    }

    const fn per(count: NonZeroU32, period: Duration) -> Self {
        Self {
            count,
            period,
            burst: count,
        }
    }

    /// How many may be spent at once from a full bucket (default: `count`).
    ///
    /// A bucket holds at most 2^63 ns of refill (about 292 years): a larger burst (a unit a
    /// day with a burst of a million) counts as that much (106 751 units of a day), in every
    /// store.
    #[must_use]
    pub const fn burst(mut self, burst: NonZeroU32) -> Self {
        self.burst = burst;
        self
    }

    /// Requests per period.
    pub const fn count(&self) -> u32 {
        self.count.get()
    }

    /// The period.
    pub const fn period(&self) -> Duration {
        self.period
    }

    /// The burst.
    pub const fn burst_size(&self) -> u32 {
        self.burst.get()
    }

    /// Time to refill one unit, in nanoseconds (at least 1), rounded up: a rate that is not a
    /// whole number of nanoseconds a unit is enforced a little below what was asked, never
    /// above (rounded down, `per_second(600_000_000)` allowed 10^9 a second).
    pub(crate) fn emission_interval_nanos(&self) -> u64 {
        self.period
            .as_nanos()
            .div_ceil(u128::from(self.count.get()))
            .clamp(1, u128::from(u64::MAX)) as u64
    }

    /// The emission interval in a store that counts time in units of `nanos_per_unit` ns,
    /// rounded up to a whole unit (at least one).
    pub(crate) fn interval_in(&self, nanos_per_unit: u64) -> u64 {
        self.emission_interval_nanos()
            .div_ceil(nanos_per_unit)
            .max(1)
    }

    /// How many units a full bucket holds: the burst, or fewer when its refill is capped at
    /// 2^63 ns (see [`burst`](Self::burst)).
    pub(crate) fn effective_burst(&self) -> u32 {
        self.effective_burst_in(1)
    }

    /// [`effective_burst`](Self::effective_burst) in a store that counts time in units of
    /// `nanos_per_unit` (1 in memory, 1000 in Redis), its interval rounded up to one: a
    /// capped burst can hold fewer units there.
    pub(crate) fn effective_burst_in(&self, nanos_per_unit: u64) -> u32 {
        let interval = self.interval_in(nanos_per_unit);
        u32::try_from(self.capacity(interval, nanos_per_unit) / interval).unwrap_or(u32::MAX)
    }

    /// Time to refill the whole burst from empty, in the unit of `interval` (nanoseconds, or
    /// the Redis store's microseconds: `nanos_per_unit` 1 or 1000), at most
    /// [`MAX_REFILL_NANOS`].
    pub(crate) fn capacity(&self, interval: u64, nanos_per_unit: u64) -> u64 {
        interval
            .saturating_mul(u64::from(self.burst.get()))
            .min(MAX_REFILL_NANOS / nanos_per_unit)
    }

    /// What the `RateLimit` header's reset leaves out: the nanoseconds by which a store's
    /// full refill (`capacity_nanos`, the burst at its rounded-up interval) exceeds the burst
    /// at the rate asked, rounded down, and under a second. `per_minute(7)`: 4 ns in memory,
    /// 3 µs in Redis. Made once per policy, so that the header reads `t=60`, not 61, for a
    /// burst drained at once, with no division per response.
    pub(crate) fn reset_slack(&self, capacity_nanos: u64) -> u64 {
        const UNDER_A_SECOND: u128 = 999_999_999;
        // At most a day's nanoseconds times `u32::MAX`: well within a u128.
        let asked = (self.period.as_nanos() * u128::from(self.burst.get()))
            .div_ceil(u128::from(self.count.get()));
        u128::from(capacity_nanos)
            .saturating_sub(asked)
            .min(UNDER_A_SECOND) as u64
    }
}

/// The longest a bucket may take to refill from empty: 2^63 - 1 ns, about 292 years (106 751
/// days). Both stores cap a burst here, so that they agree on it: a bucket one burst in debt
/// is two of these ahead of now, which the in-memory store's nanoseconds (`u64` since the
/// limiter was made) still hold. Uncapped, a unit a day with a burst of `u32::MAX` (11.7
/// million years) saturated them at `u64::MAX`, and a saturated bucket admitted every
/// request; in Redis its TAT passed 2^63 µs, which the script wrote as a negative number (a
/// full bucket). No burst that fitted before is changed.
pub(crate) const MAX_REFILL_NANOS: u64 = u64::MAX / 2;

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;
    use crate::{Policy, RateLimiter, RequestKeys};

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    /// The slack is what rounding the interval up adds to a whole burst, in each store's
    /// unit (ns in memory, µs in Redis), and under a second.
    #[test]
    fn the_reset_slack_is_the_rounding_of_a_whole_burst() {
        for (quota, memory, redis) in [
            (Quota::per_minute(nz(7)), 4, 3_000),
            (Quota::per_second(nz(3)), 2, 2_000),
            (Quota::per_hour(nz(7)), 2, 5_000),
            (Quota::per_minute(nz(7)).burst(nz(14)), 8, 6_000),
            (Quota::per_minute(nz(60)), 0, 0),
            (Quota::per_second(nz(1000)), 0, 0),
            (Quota::per_second(nz(u32::MAX)), 999_999_999, 999_999_999),
        ] {
            let interval = quota.emission_interval_nanos();
            let in_memory = quota.reset_slack(quota.capacity(interval, 1));
            let micros = interval.div_ceil(1000);
            let in_redis = quota.reset_slack(quota.capacity(micros, 1000) * 1000);
            assert_eq!((in_memory, in_redis), (memory, redis), "{quota:?}");
        }
        // A burst capped at `MAX_REFILL_NANOS` is shorter than asked: nothing left out.
        let capped = Quota::per_day(nz(1)).burst(nz(u32::MAX));
        let interval = capped.emission_interval_nanos();
        assert_eq!(capped.reset_slack(capped.capacity(interval, 1)), 0);
    }

    /// Rounded down, an interval allowed more than asked: `per_second(600_000_000)` refilled
    /// a unit every nanosecond, 10^9 a second.
    #[test]
    fn an_interval_is_rounded_up_to_the_nearest_nanosecond() {
        let counts = [
            1,
            3,
            7,
            60,
            999_500,
            10_000_001,
            600_000_000,
            1_000_000_000,
            u32::MAX,
        ];
        for count in counts {
            for quota in [
                Quota::per_second(nz(count)),
                Quota::per_minute(nz(count)),
                Quota::per_day(nz(count)),
            ] {
                let period = quota.period().as_nanos();
                let interval = u128::from(quota.emission_interval_nanos());
                assert!(
                    interval * u128::from(count) >= period,
                    "{quota:?}: too loose"
                );
                assert!(
                    interval == 1 || (interval - 1) * u128::from(count) < period,
                    "{quota:?}: tighter than it need be"
                );
            }
        }

        // Drained at 0, half a second refills 300 000 000 units, and not one more.
        let limiter =
            RateLimiter::new([Policy::global("bytes", Quota::per_second(nz(600_000_000)))]);
        let h = HeaderMap::new();
        let keys = RequestKeys::new(None, &h);
        assert!(limiter.check_at(&keys, 600_000_000, 0).is_admitted());
        assert!(
            !limiter
                .check_at(&keys, 300_000_001, 500_000_000)
                .is_admitted(),
            "more than was refilled"
        );
    }
}
