//! The memory budget: object bytes the engine may hold at once, across every copy of a
//! process (`MAX_IN_FLIGHT_BYTES`).
//!
//! A copy reserves before it reads, and never reads more than it reserved: a small object's
//! body reserves its size, a streamed part a constant ([`STREAMED_PART_BYTES`]) whatever its
//! size. A reservation is taken whole or not at all (no copy holds part of one while waiting
//! for more, which could deadlock), and never larger than the budget itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What one part streamed from a ranged GET into UploadPart holds at most: the HTTP
/// client's read buffer on the source connection (hyper's default maximum is about
/// 400 KiB) and its write buffer on the destination one. The part's bytes flow through;
/// none of the part is collected.
pub const STREAMED_PART_BYTES: u64 = 1024 * 1024;

#[derive(Debug)]
struct Inner {
    permits: Arc<Semaphore>,
    capacity: u64,
    held: AtomicU64,
    peak: AtomicU64,
}

/// Shared by every copy of a process.
#[derive(Debug, Clone)]
pub struct Budget(Arc<Inner>);

/// A reservation; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
    bytes: u64,
    budget: Arc<Inner>,
}

impl Reservation {
    /// The bytes reserved: the most the holder may read into memory.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// Permits count KiB, so that any budget up to 4 TiB fits a semaphore.
fn kib(bytes: u64) -> u32 {
    bytes.div_ceil(1024).clamp(1, u32::MAX as u64) as u32
}

impl Budget {
    pub fn new(capacity: u64) -> Self {
        Self(Arc::new(Inner {
            permits: Arc::new(Semaphore::new(kib(capacity) as usize)),
            capacity,
            held: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        }))
    }

    pub fn capacity(&self) -> u64 {
        self.0.capacity
    }

    /// Waits until `bytes` can be held, then holds them. A request above the budget's
    /// capacity could never be granted: it is a bug in the caller's plan, so it panics
    /// rather than wait for ever.
    pub async fn reserve(&self, bytes: u64) -> Reservation {
        assert!(
            bytes <= self.0.capacity,
            "a reservation of {bytes} bytes exceeds the budget of {}",
            self.0.capacity
        );
        let permit = self
            .0
            .permits
            .clone()
            .acquire_many_owned(kib(bytes))
            .await
            .expect("the budget's semaphore is never closed");
        let held = self.0.held.fetch_add(bytes, Ordering::SeqCst) + bytes;
        self.0.peak.fetch_max(held, Ordering::SeqCst);
        Reservation {
            _permit: permit,
            bytes,
            budget: self.0.clone(),
        }
    }

    /// The most bytes held at once since the process started.
    pub fn peak(&self) -> u64 {
        self.0.peak.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_are_counted_and_given_back() {
        let budget = Budget::new(10 * 1024);
        let a = budget.reserve(6 * 1024).await;
        let b = budget.reserve(4 * 1024).await;
        assert_eq!(budget.peak(), 10 * 1024);
        drop((a, b));
        let c = budget.reserve(10 * 1024).await;
        assert_eq!(c.bytes(), 10 * 1024);
        assert_eq!(budget.peak(), 10 * 1024);
    }

    #[tokio::test]
    #[should_panic(expected = "exceeds the budget")]
    async fn a_reservation_above_the_budget_is_a_bug_not_a_wait() {
        Budget::new(1024).reserve(2048).await;
    }
}
