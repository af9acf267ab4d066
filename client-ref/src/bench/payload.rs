//! The benchmark's payloads: a 12-byte header (`mqkb` and the send time in nanoseconds
//! since the Unix epoch, big-endian) followed by filler, cut from shared blocks so that a
//! publication costs no allocation of its own. The wall clock (not `Instant`) lets a
//! `bench sub` in another process on the same machine measure latency too.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

const MAGIC: [u8; 4] = *b"mqkb";

/// Bytes of the header; smaller payloads carry no timestamp (no latency is measured).
pub const HEADER_LEN: usize = 12;

/// Payload blocks are allocated this size (or one payload, if larger).
const BLOCK: usize = 64 * 1024;

/// Nanoseconds since the Unix epoch.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The send time in a benchmark payload, if it is one.
pub(crate) fn sent_at(payload: &[u8]) -> Option<u64> {
    let header = payload.get(..HEADER_LEN)?;
    let (magic, time) = header.split_at(MAGIC.len());
    (magic == MAGIC).then(|| u64::from_be_bytes(time.try_into().unwrap_or_default()))
}

/// Makes payloads of one size.
#[derive(Debug)]
pub(crate) struct Payloads {
    size: usize,
    block: BytesMut,
}

impl Payloads {
    pub(crate) fn new(size: usize) -> Self {
        Self { size, block: BytesMut::new() }
    }

    /// A payload stamped with `now_ns`.
    pub(crate) fn next(&mut self, now_ns: u64) -> Bytes {
        if self.block.capacity() - self.block.len() < self.size {
            self.block = BytesMut::with_capacity(BLOCK.max(self.size));
        }
        let header = if self.size >= HEADER_LEN {
            self.block.put_slice(&MAGIC);
            self.block.put_u64(now_ns);
            HEADER_LEN
        } else {
            0
        };
        self.block.put_bytes(b'x', self.size - header);
        self.block.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_their_send_time() {
        let mut payloads = Payloads::new(64);
        let a = payloads.next(42);
        let b = payloads.next(43);
        assert_eq!((a.len(), b.len()), (64, 64));
        assert_eq!((sent_at(&a), sent_at(&b)), (Some(42), Some(43)));
        assert!(a[HEADER_LEN..].iter().all(|&c| c == b'x'));
    }

    #[test]
    fn small_payloads_carry_no_time() {
        let mut payloads = Payloads::new(5);
        let p = payloads.next(42);
        assert_eq!(&p[..], b"xxxxx");
        assert_eq!(sent_at(&p), None);
        assert_eq!(Payloads::new(0).next(1).len(), 0);
        assert_eq!(sent_at(b"hello world, not a benchmark payload"), None);
    }

    #[test]
    fn blocks_are_reused_across_payloads() {
        let mut payloads = Payloads::new(100);
        for _ in 0..2000 {
            assert_eq!(payloads.next(1).len(), 100);
        }
        let big = Payloads::new(BLOCK * 2).next(7);
        assert_eq!((big.len(), sent_at(&big)), (BLOCK * 2, Some(7)));
    }
}
