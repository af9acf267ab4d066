//! Connections without a task each: one driver task polls the connections whose sockets
//! became ready. Each connection registers its own small waker with the I/O driver; waking
//! it queues the connection's id and wakes the driver. A connection costs its socket, an
//! [`Io`] and that waker — no task, no buffer while idle.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tracing::debug;

use super::{CLOSE_FLUSH, MAX_SLICES, Shared, flush};
use crate::core::ConnId;
use crate::listeners::BoxedStream;

/// The halves of a connection's stream (TCP, TLS or WebSocket).
type Reader = ReadHalf<BoxedStream>;
pub(super) type Writer = WriteHalf<BoxedStream>;

/// Connections polled by the driver before it lets other tasks run.
const POLLS_PER_TURN: usize = 64;
/// Reads handled for one connection in one poll, so that others get their turn.
const READS_PER_POLL: usize = 8;

/// The I/O side of one connection, shared by the driver and whoever writes to it.
pub(super) struct Io {
    reader: RefCell<Reader>,
    pub(super) writer: RefCell<Option<Writer>>,
    /// Queues this connection for the driver.
    waker: Arc<ConnWaker>,
    /// The socket did not take everything: the rest is written when it is writable.
    pub(super) blocked: Cell<bool>,
    /// Reading stopped because the core wants no input.
    pub(super) paused: Cell<bool>,
    /// A write failed: the connection is gone.
    pub(super) broken: Cell<bool>,
    /// The core closed the connection: these bytes are still to be written.
    pub(super) closing: RefCell<Option<Vec<Bytes>>>,
}

impl Io {
    pub(super) fn new(id: ConnId, stream: BoxedStream, ready: &Arc<ReadyQueue>) -> Self {
        let (reader, writer) = tokio::io::split(stream);
        let waker = Arc::new(ConnWaker { id, queued: AtomicBool::new(false), ready: ready.clone() });
        Self {
            reader: RefCell::new(reader),
            writer: RefCell::new(Some(writer)),
            waker,
            blocked: Cell::new(false),
            paused: Cell::new(false),
            broken: Cell::new(false),
            closing: RefCell::new(None),
        }
    }

    /// Have the driver poll this connection.
    pub(super) fn wake(&self) {
        Wake::wake_by_ref(&self.waker);
    }

    /// The waker that has the driver poll this connection.
    pub(super) fn waker(&self) -> Waker {
        Waker::from(self.waker.clone())
    }

    /// Push out what the stream itself buffers (TLS records, WebSocket frames; nothing for
    /// TCP). `false` if it could not all be written yet: the connection waits until the
    /// socket is writable, as if the core still had bytes for it.
    pub(super) fn flush_stream(&self, cx: &mut Context<'_>) -> io::Result<bool> {
        let mut writer = self.writer.borrow_mut();
        let Some(w) = writer.as_mut() else { return Ok(true) };
        match Pin::new(w).poll_flush(cx) {
            Poll::Ready(Ok(())) => Ok(true),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Ok(false),
        }
    }
}

/// Connections to poll, and the driver to wake when there are some.
pub(super) struct ReadyQueue {
    ids: Mutex<VecDeque<ConnId>>,
    driver: Mutex<Option<Waker>>,
}

/// Room in the ready queue allocated at start (the I/O driver reports at most 1,024
/// events at a time): growing it later, while connections come and go, would leave a
/// long-lived buffer above their freed memory, which the allocator then cannot return.
const READY_CAPACITY: usize = 4096;

impl Default for ReadyQueue {
    fn default() -> Self {
        Self { ids: Mutex::new(VecDeque::with_capacity(READY_CAPACITY)), driver: Mutex::new(None) }
    }
}

impl ReadyQueue {
    fn push(&self, id: ConnId) {
        self.ids.lock().unwrap_or_else(PoisonError::into_inner).push_back(id);
        if let Some(driver) = self.driver.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            driver.wake_by_ref();
        }
    }

    fn pop(&self) -> Option<ConnId> {
        self.ids.lock().unwrap_or_else(PoisonError::into_inner).pop_front()
    }

    fn register(&self, waker: &Waker) {
        let mut driver = self.driver.lock().unwrap_or_else(PoisonError::into_inner);
        if !driver.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *driver = Some(waker.clone());
        }
    }
}

/// The waker a connection registers with the I/O driver.
struct ConnWaker {
    id: ConnId,
    /// Already in the ready queue (cleared when the driver takes it).
    queued: AtomicBool,
    ready: Arc<ReadyQueue>,
}

impl Wake for ConnWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.ready.push(self.id);
        }
    }
}

/// Poll every connection that was woken, for ever.
pub(super) async fn drive(shared: Rc<Shared>) {
    poll_fn(|cx| {
        shared.ready.register(cx.waker());
        for _ in 0..POLLS_PER_TURN {
            let Some(id) = shared.ready.pop() else { return Poll::Pending };
            let io = shared.conns.borrow().get(&id).cloned();
            if let Some(io) = io {
                // Taken off the queue: a wake from now on queues it again.
                io.waker.queued.store(false, Ordering::Release);
                poll_connection(&shared, id, &io);
            }
        }
        // Let the other tasks run; continue at once.
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

/// Why a connection ends.
enum End {
    /// The peer closed the connection or it failed.
    Gone,
    /// The core closed it: flush these bytes, then close.
    Closing(Vec<Bytes>),
}

fn poll_connection(shared: &Rc<Shared>, id: ConnId, io: &Rc<Io>) {
    let waker = io.waker();
    let mut cx = Context::from_waker(&waker);
    let end = match poll_io(shared, id, io, &mut cx) {
        Poll::Ready(end) => end,
        Poll::Pending => return,
    };
    {
        let mut conns = shared.conns.borrow_mut();
        conns.remove(&id);
        if conns.is_empty() {
            // Give the table back once every connection is gone.
            *conns = Default::default();
        }
    }
    match end {
        End::Gone => {
            debug!(?id, "connection closed by peer");
            shared.core.borrow_mut().connection_closed(id, Instant::now());
            flush(shared);
        }
        End::Closing(unsent) => {
            let writer = io.writer.borrow_mut().take();
            if let Some(writer) = writer {
                // A task only for the final flush of a closing connection.
                shared.closing.set(shared.closing.get().saturating_add(1));
                let shared = shared.clone();
                tokio::task::spawn_local(async move {
                    close(writer, unsent).await;
                    shared.closing.set(shared.closing.get().saturating_sub(1));
                    shared.maybe_all_closed();
                });
            }
        }
    }
    shared.maybe_all_closed();
}

/// Write what was queued before the close (for a while at most), then close.
async fn close(mut writer: Writer, unsent: Vec<Bytes>) {
    let _ = tokio::time::timeout(CLOSE_FLUSH, async {
        for chunk in &unsent {
            writer.write_all(chunk).await?;
        }
        writer.shutdown().await
    })
    .await;
}

fn poll_io(shared: &Shared, id: ConnId, io: &Io, cx: &mut Context<'_>) -> Poll<End> {
    if let Some(unsent) = io.closing.borrow_mut().take() {
        return Poll::Ready(End::Closing(unsent));
    }
    if io.broken.get() {
        return Poll::Ready(End::Gone);
    }
    if io.blocked.get() && poll_write(shared, id, io, cx).is_err() {
        return Poll::Ready(End::Gone);
    }
    for _ in 0..READS_PER_POLL {
        if !shared.core.borrow().wants_input(id) {
            // The outbound queue is full: read again once it drains (the writer wakes us).
            io.paused.set(true);
            return Poll::Pending;
        }
        io.paused.set(false);
        let read = {
            let mut scratch = shared.scratch.borrow_mut();
            let mut buf = ReadBuf::new(&mut scratch[..]);
            let mut reader = io.reader.borrow_mut();
            match Pin::new(&mut *reader).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(false),
                Poll::Ready(Ok(())) => {
                    shared.core.borrow_mut().handle_bytes(id, buf.filled(), Instant::now());
                    Poll::Ready(true)
                }
                Poll::Ready(Err(_)) => Poll::Ready(false),
                Poll::Pending => Poll::Pending,
            }
        };
        match read {
            Poll::Ready(true) => {
                flush(shared);
                if let Some(unsent) = io.closing.borrow_mut().take() {
                    return Poll::Ready(End::Closing(unsent));
                }
                if io.broken.get() {
                    return Poll::Ready(End::Gone);
                }
            }
            Poll::Ready(false) => return Poll::Ready(End::Gone),
            Poll::Pending => return Poll::Pending,
        }
    }
    // More to read: poll again after the others.
    io.wake();
    Poll::Pending
}

/// Write what is waiting for a blocked connection while the socket takes it; registers for
/// writability when it does not. An error means the connection is gone.
fn poll_write(shared: &Shared, id: ConnId, io: &Io, cx: &mut Context<'_>) -> io::Result<()> {
    loop {
        let written = {
            let mut core = shared.core.borrow_mut();
            let mut slices = [io::IoSlice::new(&[]); MAX_SLICES];
            let n = core.transmit(id, &mut slices);
            if n == 0 {
                drop(core);
                io.blocked.set(!io.flush_stream(cx)?);
                return Ok(());
            }
            let mut writer = io.writer.borrow_mut();
            let Some(w) = writer.as_mut() else { return Ok(()) };
            match Pin::new(w).poll_write_vectored(cx, &slices[..n]) {
                Poll::Ready(Ok(written)) => written,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => return Ok(()),
            }
        };
        shared.core.borrow_mut().transmitted(id, written, Instant::now());
        if shared.core.borrow().pending_bytes(id) == 0 {
            io.blocked.set(!io.flush_stream(cx)?);
            // Writing made room: what waited for it (and other connections) goes out.
            flush(shared);
            return Ok(());
        }
    }
}
