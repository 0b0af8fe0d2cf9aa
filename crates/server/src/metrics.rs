//! Prometheus metrics, kept in process and rendered as text at `/metrics`
//! (only when `metrics_enabled = true`; off by default, since the numbers
//! describe the deployment).
//!
//! Labels are bounded: the operation id of the route (never a raw path), the
//! status code, fixed outcome names.

use std::{collections::BTreeMap, fmt::Write, sync::Mutex, time::Duration};

/// Latency histogram bucket bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    auth: BTreeMap<(&'static str, &'static str), u64>,
    rate_limited: BTreeMap<&'static str, u64>,
    usage_flushes: BTreeMap<&'static str, u64>,
    tokens: BTreeMap<(&'static str, &'static str), u64>,
    logins: BTreeMap<&'static str, u64>,
    upstream_refreshes: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One served request.
    pub fn request(&self, operation: &str, method: &str, status: u16, latency: Duration) {
        let mut m = self.lock();
        *m.requests
            .entry((operation.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        m.latency
            .entry(operation.to_owned())
            .or_default()
            .observe(latency.as_secs_f64());
    }

    /// One authentication attempt: `kind` of credential, `outcome`.
    pub fn auth(&self, kind: &'static str, outcome: &'static str) {
        *self.lock().auth.entry((kind, outcome)).or_default() += 1;
    }

    /// One request refused by the limit named `limit`.
    pub fn rate_limited(&self, limit: &'static str) {
        *self.lock().rate_limited.entry(limit).or_default() += 1;
    }

    /// One usage flush, `ok` or `error`.
    pub fn usage_flush(&self, outcome: &'static str) {
        *self.lock().usage_flushes.entry(outcome).or_default() += 1;
    }

    /// One token-endpoint request: grant type and outcome (`ok` or the
    /// OAuth error code, a fixed set).
    pub fn token(&self, grant: &'static str, outcome: &'static str) {
        *self.lock().tokens.entry((grant, outcome)).or_default() += 1;
    }

    /// One refresh of a connection at its provider: `ok`, `invalid_grant`, `failed`.
    pub fn upstream_refresh(&self, outcome: &'static str) {
        *self.lock().upstream_refreshes.entry(outcome).or_default() += 1;
    }

    /// One web login attempt, `ok` or `failed`.
    pub fn login(&self, outcome: &'static str) {
        *self.lock().logins.entry(outcome).or_default() += 1;
    }

    /// The Prometheus text exposition, with the pool numbers given.
    pub fn render(&self, pool: Option<(u32, u32)>) -> String {
        let m = self.lock();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP mcpgate_http_requests_total HTTP requests by operation, method and status."
        );
        let _ = writeln!(out, "# TYPE mcpgate_http_requests_total counter");
        for ((op, method, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "mcpgate_http_requests_total{{operation=\"{op}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP mcpgate_http_request_duration_seconds Request latency by operation."
        );
        let _ = writeln!(
            out,
            "# TYPE mcpgate_http_request_duration_seconds histogram"
        );
        for (op, h) in &m.latency {
            for (bound, n) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(
                    out,
                    "mcpgate_http_request_duration_seconds_bucket{{operation=\"{op}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "mcpgate_http_request_duration_seconds_bucket{{operation=\"{op}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "mcpgate_http_request_duration_seconds_sum{{operation=\"{op}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "mcpgate_http_request_duration_seconds_count{{operation=\"{op}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(out, "# HELP mcpgate_auth_attempts_total Authentication attempts by credential kind and outcome.");
        let _ = writeln!(out, "# TYPE mcpgate_auth_attempts_total counter");
        for ((kind, outcome), n) in &m.auth {
            let _ = writeln!(
                out,
                "mcpgate_auth_attempts_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP mcpgate_rate_limited_total Requests refused by a rate limit."
        );
        let _ = writeln!(out, "# TYPE mcpgate_rate_limited_total counter");
        for (limit, n) in &m.rate_limited {
            let _ = writeln!(out, "mcpgate_rate_limited_total{{limit=\"{limit}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP mcpgate_usage_flushes_total Key-usage flushes by outcome."
        );
        let _ = writeln!(out, "# TYPE mcpgate_usage_flushes_total counter");
        for (outcome, n) in &m.usage_flushes {
            let _ = writeln!(
                out,
                "mcpgate_usage_flushes_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP mcpgate_oauth_token_requests_total Token-endpoint requests by grant type and outcome."
        );
        let _ = writeln!(out, "# TYPE mcpgate_oauth_token_requests_total counter");
        for ((grant, outcome), n) in &m.tokens {
            let _ = writeln!(
                out,
                "mcpgate_oauth_token_requests_total{{grant_type=\"{grant}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP mcpgate_logins_total Web login attempts by outcome."
        );
        let _ = writeln!(out, "# TYPE mcpgate_logins_total counter");
        for (outcome, n) in &m.logins {
            let _ = writeln!(out, "mcpgate_logins_total{{outcome=\"{outcome}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP mcpgate_upstream_refreshes_total Connection refreshes at providers by outcome."
        );
        let _ = writeln!(out, "# TYPE mcpgate_upstream_refreshes_total counter");
        for (outcome, n) in &m.upstream_refreshes {
            let _ = writeln!(
                out,
                "mcpgate_upstream_refreshes_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        if let Some((size, idle)) = pool {
            let _ = writeln!(
                out,
                "# HELP mcpgate_db_pool_connections Database pool connections by state."
            );
            let _ = writeln!(out, "# TYPE mcpgate_db_pool_connections gauge");
            let _ = writeln!(out, "mcpgate_db_pool_connections{{state=\"idle\"}} {idle}");
            let _ = writeln!(
                out,
                "mcpgate_db_pool_connections{{state=\"in_use\"}} {}",
                size.saturating_sub(idle)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.request("key_list", "GET", 200, Duration::from_millis(3));
        m.request("key_list", "GET", 200, Duration::from_millis(30));
        m.request("key_list", "GET", 401, Duration::from_micros(500));
        m.auth("api_key", "ok");
        m.rate_limited("credential");
        let text = m.render(Some((4, 3)));
        assert!(text.contains(
            "mcpgate_http_requests_total{operation=\"key_list\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "mcpgate_http_request_duration_seconds_bucket{operation=\"key_list\",le=\"0.001\"} 1"
        ));
        assert!(text.contains(
            "mcpgate_http_request_duration_seconds_bucket{operation=\"key_list\",le=\"0.005\"} 2"
        ));
        assert!(text.contains(
            "mcpgate_http_request_duration_seconds_bucket{operation=\"key_list\",le=\"+Inf\"} 3"
        ));
        assert!(text.contains("mcpgate_auth_attempts_total{kind=\"api_key\",outcome=\"ok\"} 1"));
        assert!(text.contains("mcpgate_rate_limited_total{limit=\"credential\"} 1"));
        assert!(text.contains("mcpgate_db_pool_connections{state=\"in_use\"} 1"));
    }
}
