//! Counting global allocator, to report allocations per packet.
//!
//! The library only defines the allocator; a binary (bench or test) installs
//! it:
//!
//! ```ignore
//! use mqttkit_benches::alloc_counter::{self, CountingAlloc};
//!
//! #[global_allocator]
//! static ALLOC: CountingAlloc = CountingAlloc::new();
//!
//! let (check, stats) = alloc_counter::measure(|| peer::decode_publish_v4(&mut input));
//! println!("{} allocations", stats.allocs);
//! ```
//!
//! Two sets of counters are kept:
//! * global ones ([`global`]), relaxed atomics, shared by all threads;
//! * per-thread ones ([`thread`], [`measure`]), in a `const`-initialised
//!   `thread_local!` of `Cell`s: no lazy initialisation and no destructor, so
//!   touching them from inside the allocator cannot allocate or recurse. They
//!   are what [`measure`] uses, so criterion's or another thread's allocations
//!   do not pollute a measurement.
//!
//! If the allocator is not installed every count stays 0; [`is_installed`]
//! tells.
//!
//! The only `unsafe` is the `GlobalAlloc` impl itself, which forwards to
//! [`System`] unchanged.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Allocation counters (a snapshot, or the difference of two snapshots).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocStats {
    /// `alloc` + `alloc_zeroed` calls.
    pub allocs: u64,
    /// `dealloc` calls.
    pub deallocs: u64,
    /// `realloc` calls (not counted in `allocs`).
    pub reallocs: u64,
    /// Bytes requested by `alloc`/`alloc_zeroed`, plus growth requested by `realloc`.
    pub bytes: u64,
}

impl AllocStats {
    /// `self - earlier`, counter by counter.
    pub fn since(self, earlier: AllocStats) -> AllocStats {
        AllocStats {
            allocs: self.allocs.wrapping_sub(earlier.allocs),
            deallocs: self.deallocs.wrapping_sub(earlier.deallocs),
            reallocs: self.reallocs.wrapping_sub(earlier.reallocs),
            bytes: self.bytes.wrapping_sub(earlier.bytes),
        }
    }

    /// Allocation calls (`allocs + reallocs`) per operation.
    pub fn per_op(self, ops: u64) -> f64 {
        (self.allocs + self.reallocs) as f64 / ops.max(1) as f64
    }
}

/// `GlobalAlloc` that counts and forwards to [`System`].
#[derive(Debug)]
pub struct CountingAlloc;

impl CountingAlloc {
    pub const fn new() -> Self {
        CountingAlloc
    }
}

impl Default for CountingAlloc {
    fn default() -> Self {
        Self::new()
    }
}

static G_ALLOCS: AtomicU64 = AtomicU64::new(0);
static G_DEALLOCS: AtomicU64 = AtomicU64::new(0);
static G_REALLOCS: AtomicU64 = AtomicU64::new(0);
static G_BYTES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static T_ALLOCS: Cell<u64> = const { Cell::new(0) };
    static T_DEALLOCS: Cell<u64> = const { Cell::new(0) };
    static T_REALLOCS: Cell<u64> = const { Cell::new(0) };
    static T_BYTES: Cell<u64> = const { Cell::new(0) };
}

#[inline(always)]
fn bump(key: &'static std::thread::LocalKey<Cell<u64>>, global: &AtomicU64, n: u64) {
    global.fetch_add(n, Relaxed);
    // `try_with`: the slot may be gone while the thread is being torn down.
    let _ = key.try_with(|c| c.set(c.get().wrapping_add(n)));
}

// The workspace denies `unsafe_code`; a global allocator cannot be written
// without it, so it is allowed here only.
// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the counting touches only atomics and const thread-locals, which
// never allocate.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump(&T_ALLOCS, &G_ALLOCS, 1);
        bump(&T_BYTES, &G_BYTES, layout.size() as u64);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump(&T_ALLOCS, &G_ALLOCS, 1);
        bump(&T_BYTES, &G_BYTES, layout.size() as u64);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        bump(&T_DEALLOCS, &G_DEALLOCS, 1);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump(&T_REALLOCS, &G_REALLOCS, 1);
        bump(&T_BYTES, &G_BYTES, new_size.saturating_sub(layout.size()) as u64);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Counters of all threads since process start.
pub fn global() -> AllocStats {
    AllocStats {
        allocs: G_ALLOCS.load(Relaxed),
        deallocs: G_DEALLOCS.load(Relaxed),
        reallocs: G_REALLOCS.load(Relaxed),
        bytes: G_BYTES.load(Relaxed),
    }
}

/// Counters of the calling thread since it started.
pub fn thread() -> AllocStats {
    AllocStats {
        allocs: T_ALLOCS.with(Cell::get),
        deallocs: T_DEALLOCS.with(Cell::get),
        reallocs: T_REALLOCS.with(Cell::get),
        bytes: T_BYTES.with(Cell::get),
    }
}

/// Run `f` and return its result with the allocations the calling thread made
/// meanwhile.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, AllocStats) {
    let before = thread();
    let r = f();
    let after = thread();
    (r, after.since(before))
}

/// Like [`measure`], run `f` `ops` times and return the allocation calls per
/// run (`(allocs + reallocs) / ops`).
pub fn allocs_per_op<R>(ops: u64, mut f: impl FnMut() -> R) -> f64 {
    let ((), stats) = measure(|| {
        for _ in 0..ops {
            std::hint::black_box(f());
        }
    });
    stats.per_op(ops)
}

/// Whether [`CountingAlloc`] is the global allocator of this process (it
/// allocates one box and looks at the thread counter).
pub fn is_installed() -> bool {
    let (b, s) = measure(|| std::hint::black_box(Box::new(0u64)));
    drop(b);
    s.allocs > 0
}
