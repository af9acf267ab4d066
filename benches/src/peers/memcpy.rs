//! Baseline: copy the sample into a preallocated buffer and nothing else.
//!
//! This is the floor for any decoder that has to look at every byte, and it
//! is also the cost of the `BytesMut` refill an owned-buffer decoder would pay
//! per socket read.

/// A buffer large enough for every sample (the 5.0 stream is 522,000 bytes).
pub fn output() -> Vec<u8> {
    Vec::with_capacity(1 << 20)
}

/// Copy `src` into `dst` (cleared first; never reallocates when `dst` comes
/// from [`output`]). Returns the number of bytes copied.
#[inline]
pub fn copy(src: &[u8], dst: &mut Vec<u8>) -> usize {
    dst.clear();
    dst.extend_from_slice(src);
    dst.len()
}
