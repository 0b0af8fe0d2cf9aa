//! Key usage without a database write per request.
//!
//! Each authenticated request adds to an in-memory counter; a background task
//! flushes the counters every `usage_flush_interval_secs` (at most 10 s) and
//! once more on graceful shutdown. Each flush is one additive `UPDATE` per
//! key, so several replicas can flush concurrently without losing counts. A
//! failed flush puts its counts back for the next attempt.

use std::{collections::HashMap, sync::Mutex};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use crate::store;

/// Usage of an OAuth grant (its tokens) is tracked under `grant:<id>`; API key
/// ids are base62, so the two never collide.
pub const GRANT_PREFIX: &str = "grant:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub count: u64,
    pub last_used_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub struct UsageTracker {
    pending: Mutex<HashMap<String, Pending>>,
    /// Held for writing by a flush (from taking the counts until they are
    /// stored) and for reading by [`UsageTracker::snapshot`], so a reader
    /// never sees a count both in the database and still pending, or in
    /// neither.
    flushing: tokio::sync::RwLock<()>,
}

/// A consistent view: while it lives, no flush moves counts to the database.
pub struct Snapshot<'a> {
    tracker: &'a UsageTracker,
    _guard: tokio::sync::RwLockReadGuard<'a, ()>,
}

impl Snapshot<'_> {
    /// Uses of `key_id` not yet written.
    pub fn pending(&self, key_id: &str) -> Option<Pending> {
        self.tracker.pending(key_id)
    }
}

impl UsageTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count one use of `key_id` at `at`.
    pub fn record(&self, key_id: &str, at: DateTime<Utc>) {
        let mut pending = self.lock();
        match pending.get_mut(key_id) {
            Some(p) => {
                p.count += 1;
                p.last_used_at = p.last_used_at.max(at);
            }
            None => {
                pending.insert(
                    key_id.to_owned(),
                    Pending {
                        count: 1,
                        last_used_at: at,
                    },
                );
            }
        }
    }

    /// Uses of `key_id` not yet written (read through a [`Snapshot`]).
    fn pending(&self, key_id: &str) -> Option<Pending> {
        self.lock().get(key_id).copied()
    }

    fn merge_back(&self, key_id: String, p: Pending) {
        let mut pending = self.lock();
        let entry = pending.entry(key_id).or_insert(Pending {
            count: 0,
            last_used_at: p.last_used_at,
        });
        entry.count += p.count;
        entry.last_used_at = entry.last_used_at.max(p.last_used_at);
    }

    /// Hold off flushes while reading stored counts and adding [`Snapshot::pending`].
    pub async fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            tracker: self,
            _guard: self.flushing.read().await,
        }
    }

    /// Write every pending count. Returns how many keys were written; on
    /// error, every count not yet written is kept for the next flush.
    pub async fn flush(&self, db: &DatabaseConnection) -> Result<usize, sea_orm::DbErr> {
        let _exclusive = self.flushing.write().await;
        let batch: Vec<(String, Pending)> = std::mem::take(&mut *self.lock()).into_iter().collect();
        let mut iter = batch.into_iter();
        let mut written = 0;
        while let Some((key_id, p)) = iter.next() {
            let result = match key_id.strip_prefix(GRANT_PREFIX).map(uuid::Uuid::parse_str) {
                Some(Ok(grant)) => store::oauth::grant_used(db, grant, p.last_used_at).await,
                Some(Err(_)) => Ok(()),
                None => store::api_keys::add_usage(db, &key_id, p.count, p.last_used_at).await,
            };
            if let Err(e) = result {
                self.merge_back(key_id, p);
                for (k, p) in iter {
                    self.merge_back(k, p);
                }
                return Err(e);
            }
            written += 1;
        }
        Ok(written)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "fixtures and waits of the tests")]
mod tests {
    use super::*;

    #[test]
    fn counts_and_keeps_the_latest_time() {
        let t = UsageTracker::default();
        let t0 = Utc::now();
        t.record("a", t0);
        t.record("a", t0 - chrono::Duration::seconds(5));
        t.record("b", t0);
        assert_eq!(
            t.pending("a"),
            Some(Pending {
                count: 2,
                last_used_at: t0
            })
        );
        assert_eq!(t.pending("b").map(|p| p.count), Some(1));
        assert_eq!(t.pending("c"), None);
        t.merge_back(
            "a".into(),
            Pending {
                count: 3,
                last_used_at: t0,
            },
        );
        assert_eq!(t.pending("a").map(|p| p.count), Some(5));
    }
}
