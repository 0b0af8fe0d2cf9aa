//! Rate limiting: a GCRA (generic cell rate algorithm) limiter per key.
//!
//! A limit of `n` per minute allows a burst of `n` and then one request every
//! `60/n` seconds; a refused request learns exactly when to retry. State is
//! in this process: with several replicas each enforces its own limit (see
//! the operations docs). Time comes from the caller (the app's clock).

use std::{collections::HashMap, sync::Mutex};

use chrono::{DateTime, Duration, Utc};

/// Keys kept before expired entries are swept.
const SWEEP_ABOVE: usize = 50_000;

#[derive(Debug, Default)]
pub struct RateLimiter {
    /// Theoretical arrival time per key.
    tat: Mutex<HashMap<String, DateTime<Utc>>>,
}

/// Which limit a key counts against, for the error message and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Registration,
    Credential,
    ClientIp,
    Login,
    Token,
}

impl LimitKind {
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            LimitKind::Registration => "registration",
            LimitKind::Credential => "credential",
            LimitKind::ClientIp => "client_ip",
            LimitKind::Login => "login",
            LimitKind::Token => "token",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Registration => "registration",
            LimitKind::Credential => "credential",
            LimitKind::ClientIp => "client IP",
            LimitKind::Login => "login",
            LimitKind::Token => "token endpoint",
        }
    }
}

impl RateLimiter {
    /// Count one request of `key` at `now` against `per_minute` (0: no limit).
    /// On refusal, returns how long until a request would be accepted.
    pub fn check(&self, key: &str, per_minute: u32, now: DateTime<Utc>) -> Result<(), Duration> {
        if per_minute == 0 {
            return Ok(());
        }
        let interval = Duration::microseconds(60_000_000 / i64::from(per_minute));
        let tolerance = interval * (per_minute as i32 - 1);
        let mut map = self.tat.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, tat| *tat > now);
        }
        let tat = map.get(key).copied().unwrap_or(now).max(now);
        let wait = tat - now - tolerance;
        if wait > Duration::zero() {
            return Err(wait);
        }
        map.insert(key.to_owned(), tat + interval);
        Ok(())
    }
}

/// Check `key` against `per_minute` with the app's clock, as a domain error.
pub fn enforce(
    state: &crate::state::AppState,
    kind: LimitKind,
    key: &str,
    per_minute: u32,
) -> crate::error::Result<()> {
    let scoped = format!("{}:{key}", kind.as_str());
    state
        .limiter
        .check(&scoped, per_minute, state.clock.now())
        .map_err(|wait| {
            state.metrics.rate_limited(kind.label());
            crate::error::Error::RateLimited {
                kind: kind.as_str(),
                retry_after_secs: retry_after_secs(wait),
            }
        })
}

/// Whole seconds to put in `Retry-After` (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    let micros = wait.num_microseconds().unwrap_or(i64::MAX).max(0) as u64;
    micros.div_ceil(1_000_000).max(1)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "fixtures and waits of the tests")]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let l = RateLimiter::default();
        let t0 = Utc::now();
        for _ in 0..10 {
            assert!(l.check("ip", 10, t0).is_ok());
        }
        let wait = l.check("ip", 10, t0).unwrap_err();
        assert_eq!(retry_after_secs(wait), 6, "one slot every 6 s");
        assert!(l.check("other", 10, t0).is_ok(), "keys are independent");
        assert!(l.check("ip", 10, t0 + Duration::seconds(5)).is_err());
        assert!(l.check("ip", 10, t0 + Duration::seconds(6)).is_ok());
        assert!(l.check("ip", 10, t0 + Duration::seconds(6)).is_err());
        // A full minute of silence restores the whole burst.
        let later = t0 + Duration::seconds(120);
        for _ in 0..10 {
            assert!(l.check("ip", 10, later).is_ok());
        }
        assert!(l.check("ip", 10, later).is_err());
    }

    #[test]
    fn zero_means_unlimited_and_retry_is_at_least_a_second() {
        let l = RateLimiter::default();
        let t0 = Utc::now();
        for _ in 0..1000 {
            assert!(l.check("k", 0, t0).is_ok());
        }
        assert_eq!(retry_after_secs(Duration::milliseconds(1)), 1);
        assert_eq!(retry_after_secs(Duration::milliseconds(1500)), 2);
    }
}
