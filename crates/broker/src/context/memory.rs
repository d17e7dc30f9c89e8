//! [`MemoryPool`]: byte budgets shared by every connection of a listener,
//! so what clients make the broker hold in memory has a ceiling however
//! many connect (Kafka's `queued.max.request.bytes`).
//!
//! In: a number of bytes to hold ([`MemoryPool::acquire`] waits while the
//! pool has not that many left). Out: a [`MemoryPermit`] that gives them
//! back when dropped. The listener takes a request's bytes from
//! [`Memory::requests`] before reading them and keeps them until the answer
//! is written; the Fetch handler takes the records it is about to read from
//! [`Memory::fetches`] and hands the permit to the connection with
//! [`hold_until_written`], so an answer a client does not read keeps its
//! bytes counted until it is written or the connection closes.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::BrokerConfig;

/// The listener's two budgets, both `queued.max.request.bytes` large.
#[derive(Clone, Debug)]
pub struct Memory {
    /// Request bytes read and being served.
    pub requests: MemoryPool,
    /// Record bytes of Fetch answers not yet written (consumers only: a
    /// verified follower's fetch never waits on clients).
    pub fetches: MemoryPool,
}

impl Memory {
    pub fn new(config: &BrokerConfig) -> Memory {
        Memory {
            requests: MemoryPool::new(config.queued_max_request_bytes),
            fetches: MemoryPool::new(config.queued_max_request_bytes),
        }
    }
}

/// A budget of bytes.
#[derive(Clone, Debug)]
pub struct MemoryPool {
    semaphore: Arc<Semaphore>,
    capacity: usize,
}

impl MemoryPool {
    /// A pool of `capacity` bytes (at least 1).
    pub fn new(capacity: usize) -> MemoryPool {
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        MemoryPool {
            semaphore: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// The pool's size.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes not held by anyone now.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// Waits until `bytes` are free and holds them. More than the whole
    /// pool holds the whole pool, so one large request still goes through
    /// (alone).
    pub async fn acquire(&self, bytes: usize) -> MemoryPermit {
        let n = bytes.min(self.capacity).min(u32::MAX as usize);
        if n == 0 {
            return MemoryPermit(None);
        }
        // The semaphore is never closed; n fits in u32.
        match self.semaphore.clone().acquire_many_owned(n as u32).await {
            Ok(permit) => MemoryPermit(Some(permit)),
            Err(_) => MemoryPermit(None),
        }
    }
}

/// Bytes held from a [`MemoryPool`], given back on drop.
#[derive(Debug)]
pub struct MemoryPermit(Option<OwnedSemaphorePermit>);

impl MemoryPermit {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |p| p.num_permits())
    }

    /// Gives back all but `bytes`.
    pub fn shrink_to(&mut self, bytes: usize) {
        let Some(permit) = self.0.as_mut() else {
            return;
        };
        let held = permit.num_permits();
        if bytes == 0 {
            self.0 = None;
        } else if bytes < held {
            drop(permit.split(held - bytes));
        }
    }
}

tokio::task_local! {
    static HELD: RefCell<Vec<MemoryPermit>>;
}

/// Runs `serve` (one request) and returns its output with the permits it
/// handed over with [`hold_until_written`]; the caller drops them once the
/// answer is written.
pub async fn holding<F: Future>(serve: F) -> (F::Output, Vec<MemoryPermit>) {
    HELD.scope(RefCell::new(Vec::new()), async move {
        let output = serve.await;
        let held = HELD
            .try_with(|h| std::mem::take(&mut *h.borrow_mut()))
            .unwrap_or_default();
        (output, held)
    })
    .await
}

/// Keeps `permit` until the answer of the request being served is written
/// (outside [`holding`], e.g. in a unit test, it is given back at once).
pub fn hold_until_written(permit: MemoryPermit) {
    let _ = HELD.try_with(|h| h.borrow_mut().push(permit));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn permits_wait_for_the_pool_and_give_back_on_drop() {
        let pool = MemoryPool::new(100);
        let mut a = pool.acquire(60).await;
        assert_eq!(pool.available(), 40);
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.acquire(50).await.bytes() }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        a.shrink_to(10);
        assert_eq!(waiting.await.expect("task"), 50);
        assert_eq!(pool.available(), 90);
        drop(a);
        assert_eq!(pool.acquire(1_000).await.bytes(), 100, "capped to the pool");
    }

    #[tokio::test]
    async fn held_permits_outlive_the_request() {
        let pool = MemoryPool::new(100);
        let ((), held) = holding(async {
            hold_until_written(pool.acquire(30).await);
        })
        .await;
        assert_eq!(pool.available(), 70);
        drop(held);
        assert_eq!(pool.available(), 100);
    }
}
