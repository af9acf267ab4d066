//! [`Check`]: a small fingerprint an adapter computes from a decoded packet.
//!
//! The fields are chosen so that a decoder cannot skip the work: they depend on
//! the packet id, on the lengths of every string/binary field and on the numeric
//! properties. What each field means per packet class:
//!
//! | class     | `id`            | `items`                                                                 | `len`                                                         |
//! |-----------|-----------------|-------------------------------------------------------------------------|---------------------------------------------------------------|
//! | PUBLISH   | packet id       | number of user properties + message expiry interval (5.0, else 0)        | topic + payload (+ content type, 5.0)                          |
//! | CONNECT   | keep alive      | will QoS + session expiry + receive maximum + maximum packet size + will delay interval (5.0 ones 0 in 3.1.1) | client id + will topic + will payload + username + password |
//! | SUBSCRIBE | packet id       | number of filters + sum of the requested QoS                            | sum of filter lengths                                          |
//! | PUBACK    | packet id       | reason code (5.0; 0 = success / absent)                                 | 0                                                             |
//!
//! `packets` is 1 for a single packet. For a stream the per-packet checks are
//! summed with `+` (ids wrap around nothing: they are `u64`).

use std::ops::{Add, AddAssign};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Check {
    pub packets: u64,
    pub id: u64,
    pub items: u64,
    pub len: u64,
}

impl Check {
    pub const fn new(id: u64, items: u64, len: u64) -> Self {
        Check { packets: 1, id, items, len }
    }
}

impl Add for Check {
    type Output = Check;
    fn add(self, o: Check) -> Check {
        Check {
            packets: self.packets + o.packets,
            id: self.id + o.id,
            items: self.items + o.items,
            len: self.len + o.len,
        }
    }
}

impl AddAssign for Check {
    fn add_assign(&mut self, o: Check) {
        *self = *self + o;
    }
}

/// Result of an adapter call. The error is the peer's error rendered with
/// `{:?}` (only formatted on the error path).
pub type PeerResult<T> = Result<T, String>;

/// Render any `Debug` error as the adapter error string.
pub fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}
