//! Completion slots for publications: a reusable pool instead of a channel per message,
//! so that waiting for a PUBACK allocates nothing once the pool has grown to the number
//! of publications in flight.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use mqttkit_codec::ReasonCode;

use crate::error::PublishError;

pub(crate) type PublishResult = Result<ReasonCode, PublishError>;

#[derive(Debug)]
enum Slot {
    Free,
    Waiting(Option<Waker>),
    Done(PublishResult),
    /// The caller stopped waiting; the slot is freed when the result arrives.
    Abandoned,
}

#[derive(Debug, Default)]
struct Slots {
    entries: Vec<Slot>,
    free: Vec<u32>,
    /// The connection task ended: every slot is complete.
    closed: bool,
}

impl Slots {
    fn release(&mut self, id: u32) {
        if let Some(slot) = self.entries.get_mut(id as usize) {
            *slot = Slot::Free;
            self.free.push(id);
        }
    }
}

/// The pool, shared by the client handles and the connection task.
#[derive(Debug, Default)]
pub(crate) struct Completions {
    slots: Mutex<Slots>,
}

impl Completions {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot to wait on; already complete if the connection task has ended.
    pub fn acquire(self: &Arc<Self>) -> Pending {
        let mut slots = self.lock();
        let state = if slots.closed { Slot::Done(Err(PublishError::Closed)) } else { Slot::Waiting(None) };
        let id = match slots.free.pop() {
            Some(id) => {
                if let Some(slot) = slots.entries.get_mut(id as usize) {
                    *slot = state;
                }
                id
            }
            None => {
                slots.entries.push(state);
                u32::try_from(slots.entries.len() - 1).unwrap_or(u32::MAX)
            }
        };
        Pending { pool: Arc::clone(self), id, finished: false }
    }

    /// Deliver a result (from the connection task).
    pub fn complete(&self, id: u32, result: PublishResult) {
        let mut slots = self.lock();
        let Some(slot) = slots.entries.get_mut(id as usize) else { return };
        match std::mem::replace(slot, Slot::Free) {
            Slot::Waiting(waker) => {
                *slot = Slot::Done(result);
                drop(slots);
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
            Slot::Abandoned => slots.release(id),
            other => *slot = other,
        }
    }

    /// The connection task ended: complete everything with `Closed`.
    pub fn close(&self) {
        let mut wakers = Vec::new();
        let mut slots = self.lock();
        slots.closed = true;
        for id in 0..slots.entries.len() {
            let abandoned = match slots.entries.get_mut(id) {
                Some(slot @ Slot::Waiting(_)) => {
                    if let Slot::Waiting(Some(waker)) = std::mem::replace(slot, Slot::Done(Err(PublishError::Closed))) {
                        wakers.push(waker);
                    }
                    false
                }
                Some(Slot::Abandoned) => true,
                _ => false,
            };
            if abandoned {
                slots.release(u32::try_from(id).unwrap_or(u32::MAX));
            }
        }
        drop(slots);
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// Waits for one slot's result; gives the slot back when dropped.
#[derive(Debug)]
pub(crate) struct Pending {
    pool: Arc<Completions>,
    id: u32,
    finished: bool,
}

impl Pending {
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl Future for Pending {
    type Output = PublishResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<PublishResult> {
        let mut slots = self.pool.lock();
        let Some(slot) = slots.entries.get_mut(self.id as usize) else {
            return Poll::Ready(Err(PublishError::Closed));
        };
        match slot {
            Slot::Done(result) => {
                let result = *result;
                slots.release(self.id);
                drop(slots);
                self.finished = true;
                Poll::Ready(result)
            }
            Slot::Waiting(waker) => {
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Slot::Free | Slot::Abandoned => Poll::Ready(Err(PublishError::Closed)),
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut slots = self.pool.lock();
        let closed = slots.closed;
        match slots.entries.get_mut(self.id as usize) {
            Some(Slot::Done(_)) => slots.release(self.id),
            Some(Slot::Waiting(_)) if closed => slots.release(self.id),
            Some(slot @ Slot::Waiting(_)) => *slot = Slot::Abandoned,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_are_reused_and_results_delivered() {
        let pool = Arc::new(Completions::default());
        let a = pool.acquire();
        let b = pool.acquire();
        assert_eq!((a.id(), b.id()), (0, 1));
        pool.complete(a.id(), Ok(ReasonCode::SUCCESS));
        assert_eq!(a.await, Ok(ReasonCode::SUCCESS));
        // Slot 0 is free again; an abandoned slot is freed when its result arrives.
        let c = pool.acquire();
        assert_eq!(c.id(), 0);
        drop(b);
        pool.complete(1, Ok(ReasonCode::SUCCESS));
        assert_eq!(pool.acquire().id(), 1);
        pool.close();
        assert_eq!(c.await, Err(PublishError::Closed));
        assert_eq!(pool.acquire().await, Err(PublishError::Closed));
    }
}
