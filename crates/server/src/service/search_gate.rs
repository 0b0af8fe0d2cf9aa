//! At most a few searches per account at a time (all its credentials
//! together: a tenant cannot multiply its share by minting keys), so one
//! tenant cannot hold the connection pool or the CPU with slow queries. A
//! search past the bound waits briefly for a turn (`search_queue_ms`), then is
//! refused with 429 and `Retry-After`. One semaphore per account with searches
//! running or waiting; the entry is removed when its last search ends, so the
//! map holds only the accounts searching right now. State is in this process:
//! with several replicas each enforces its own bound.
//!
//! Behind the per-account bound, searches of all accounts together hold at
//! most [`global_slots`] turns (one per core, at most half the pool), so many
//! accounts searching at once queue for the CPU and leave connections for
//! every other request, instead of starving them.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

use crate::error::{Error, Result};

/// `Retry-After` of a refused search (seconds).
const RETRY_AFTER_SECS: u64 = 1;

#[derive(Debug)]
pub struct SearchGate {
    /// Per account: its semaphore and how many searches hold or await it.
    running: Mutex<HashMap<String, (Arc<Semaphore>, usize)>>,
    /// Turns of all accounts together.
    global: Semaphore,
}

impl Default for SearchGate {
    fn default() -> Self {
        Self::new(Semaphore::MAX_PERMITS)
    }
}

/// Searches of all accounts that may run at once: one per core, at most
/// half of the connection pool (at least one).
pub fn global_slots(pool_size: u32) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.min(pool_size as usize / 2).max(1)
}

/// A turn to search; dropping it ends the turn.
pub struct SearchTurn<'a> {
    gate: &'a SearchGate,
    key: String,
    _permit: Option<OwnedSemaphorePermit>,
    _global: Option<SemaphorePermit<'a>>,
}

impl SearchGate {
    pub fn new(global: usize) -> Self {
        Self {
            running: Mutex::default(),
            global: Semaphore::new(global.max(1)),
        }
    }

    /// Wait up to `wait` for one of the `per_key` turns of `key`.
    pub async fn enter(&self, key: &str, per_key: usize, wait: Duration) -> Result<SearchTurn<'_>> {
        let semaphore = {
            let mut map = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = map
                .entry(key.to_owned())
                .or_insert_with(|| (Arc::new(Semaphore::new(per_key.max(1))), 0));
            entry.1 += 1;
            entry.0.clone()
        };
        // From here on the count is released by the turn's drop, including
        // when the permit is never obtained.
        let mut turn = SearchTurn {
            gate: self,
            key: key.to_owned(),
            _permit: None,
            _global: None,
        };
        let until = tokio::time::Instant::now() + wait;
        let permit = match semaphore.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) if wait.is_zero() => None,
            Err(_) => tokio::time::timeout_at(until, semaphore.acquire_owned())
                .await
                .ok()
                .and_then(|p| p.ok()),
        };
        let Some(permit) = permit else {
            return Err(refused("account's concurrent searches"));
        };
        turn._permit = Some(permit);
        let global = match self.global.try_acquire() {
            Ok(p) => Some(p),
            Err(_) if wait.is_zero() => None,
            Err(_) => tokio::time::timeout_at(until, self.global.acquire())
                .await
                .ok()
                .and_then(|p| p.ok()),
        };
        let Some(global) = global else {
            return Err(refused("server's concurrent searches"));
        };
        turn._global = Some(global);
        Ok(turn)
    }

    /// Accounts with searches running or waiting.
    pub fn len(&self) -> usize {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn refused(kind: &'static str) -> Error {
    Error::RateLimited {
        kind,
        retry_after_secs: RETRY_AFTER_SECS,
    }
}

impl Drop for SearchTurn<'_> {
    fn drop(&mut self) {
        // Release the permits before the entry can go.
        self._global = None;
        self._permit = None;
        let mut map = self
            .gate
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = map.get_mut(&self.key) {
            entry.1 -= 1;
            if entry.1 == 0 {
                map.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "fixtures and waits of the tests")]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_per_credential_and_forgotten_when_idle() {
        let gate = SearchGate::default();
        let wait = Duration::from_millis(20);
        let a1 = gate.enter("a", 2, wait).await.expect("first");
        let a2 = gate.enter("a", 2, wait).await.expect("second");
        let refused = gate.enter("a", 2, wait).await;
        assert!(matches!(
            refused,
            Err(Error::RateLimited {
                retry_after_secs: 1,
                ..
            })
        ));
        let b = gate.enter("b", 2, wait).await.expect("another account");
        assert_eq!(gate.len(), 2);
        drop(a1);
        let a3 = gate.enter("a", 2, wait).await.expect("a freed turn");
        drop((a2, a3, b));
        assert!(gate.is_empty(), "idle credentials leave the map");
    }

    #[tokio::test]
    async fn all_accounts_together_share_the_global_turns() {
        let gate = SearchGate::new(1);
        let wait = Duration::from_millis(20);
        let a = gate.enter("a", 2, wait).await.expect("first");
        assert!(
            gate.enter("b", 2, wait).await.is_err(),
            "no global turn left"
        );
        drop(a);
        gate.enter("b", 2, wait).await.expect("freed");
        assert!(gate.is_empty());
    }

    #[tokio::test]
    async fn a_waiting_search_gets_the_next_turn() {
        let gate = Arc::new(SearchGate::default());
        let first = gate.enter("a", 1, Duration::ZERO).await.expect("first");
        let g = gate.clone();
        let waiter =
            tokio::spawn(async move { g.enter("a", 1, Duration::from_secs(5)).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        waiter.await.expect("task").expect("got the turn");
        assert!(gate.is_empty());
    }
}
