//! At most a few searches per credential at a time, so one tenant cannot hold
//! the connection pool with slow queries. A search past the bound waits
//! briefly for a turn (`search_queue_ms`), then is refused with 429 and
//! `Retry-After`. One semaphore per credential with searches running or
//! waiting; the entry is removed when its last search ends, so the map holds
//! only the credentials searching right now. State is in this process: with
//! several replicas each enforces its own bound.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

/// `Retry-After` of a refused search (seconds).
const RETRY_AFTER_SECS: u64 = 1;

#[derive(Debug, Default)]
pub struct SearchGate {
    /// Per credential id: its semaphore and how many searches hold or await it.
    running: Mutex<HashMap<String, (Arc<Semaphore>, usize)>>,
}

/// A turn to search; dropping it ends the turn.
pub struct SearchTurn<'a> {
    gate: &'a SearchGate,
    key: String,
    _permit: Option<OwnedSemaphorePermit>,
}

impl SearchGate {
    /// Wait up to `wait` for one of the `per_credential` turns of `key`.
    pub async fn enter(
        &self,
        key: &str,
        per_credential: usize,
        wait: Duration,
    ) -> Result<SearchTurn<'_>> {
        let semaphore = {
            let mut map = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = map
                .entry(key.to_owned())
                .or_insert_with(|| (Arc::new(Semaphore::new(per_credential.max(1))), 0));
            entry.1 += 1;
            entry.0.clone()
        };
        // From here on the count is released by the turn's drop, including
        // when the permit is never obtained.
        let mut turn = SearchTurn {
            gate: self,
            key: key.to_owned(),
            _permit: None,
        };
        let permit = match semaphore.clone().try_acquire_owned() {
            Ok(p) => Ok(p),
            Err(_) if wait.is_zero() => Err(()),
            Err(_) => match tokio::time::timeout(wait, semaphore.acquire_owned()).await {
                Ok(Ok(p)) => Ok(p),
                _ => Err(()),
            },
        };
        match permit {
            Ok(p) => {
                turn._permit = Some(p);
                Ok(turn)
            }
            Err(()) => Err(Error::RateLimited {
                kind: "credential's concurrent searches",
                retry_after_secs: RETRY_AFTER_SECS,
            }),
        }
    }

    /// Credentials with searches running or waiting.
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

impl Drop for SearchTurn<'_> {
    fn drop(&mut self) {
        // Release the permit before the entry can go.
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
        let b = gate.enter("b", 2, wait).await.expect("another credential");
        assert_eq!(gate.len(), 2);
        drop(a1);
        let a3 = gate.enter("a", 2, wait).await.expect("a freed turn");
        drop((a2, a3, b));
        assert!(gate.is_empty(), "idle credentials leave the map");
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
