//! The tokio front end: one thread, a current-thread runtime, and no channels.
//!
//! Every task of the broker runs on one thread and shares the [`Core`] (a `RefCell`,
//! never borrowed across an `.await`). Connections have no task each: one driver task
//! polls the connections whose sockets became ready (each registers its own small waker).
//! A connection is read into one scratch buffer shared by all, the bytes go to the core,
//! and what the core queued for any connection is written at once, with one vectored
//! write per connection (so a read that carries many messages gives one write per
//! subscriber). Only a connection whose socket does not take everything waits until it is
//! writable; the core drops QoS 0 messages for it while its queue is full, keeps QoS 1/2
//! in its session, stops reading from it, and closes it only if it accepts nothing for
//! the write timeout.
//!
//! An idle connection costs its socket, a small [`connection::Io`] and a waker, and the
//! core's state: no task, no read or write buffer while nothing is in flight.
//!
//! [`Broker::start`] runs all this on a thread of its own and returns a handle;
//! [`serve`] runs it on the calling thread (the binary does that).

mod connection;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};

use self::connection::{Io, ReadyQueue};
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::core::{ConnId, Core, Output};

/// Starts brokers.
#[derive(Debug, Clone, Copy)]
pub struct Broker;

/// A running broker.
#[derive(Debug)]
pub struct BrokerHandle {
    local_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    stopped: Option<oneshot::Receiver<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Broker {
    /// Bind `config.listen` (use port 0 for an ephemeral port) and start serving on a
    /// thread of its own.
    pub async fn start(config: Config) -> io::Result<BrokerHandle> {
        let listener = bind(&config.listen)?;
        let local_addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let (stopped_tx, stopped_rx) = oneshot::channel();
        let thread = std::thread::Builder::new().name("mqttkit-broker".into()).spawn(move || {
            if let Err(e) = serve(listener, config, async {
                let _ = shutdown_rx.await;
            }) {
                warn!(error = %e, "broker stopped with an error");
            }
            let _ = stopped_tx.send(());
        })?;
        Ok(BrokerHandle { local_addr, shutdown: Some(shutdown_tx), stopped: Some(stopped_rx), thread: Some(thread) })
    }
}

/// Bind a listening socket for [`serve`], naming the address in the error.
pub fn bind(address: &str) -> io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(address)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {address}: {e}")))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

impl BrokerHandle {
    /// The address the broker listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Disconnect every client (5.0: DISCONNECT 0x8B), stop listening and wait until the
    /// connections are closed.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(stopped) = self.stopped.take() {
            let _ = stopped.await;
        }
        if let Some(thread) = self.thread.take() {
            // It has stopped: joining does not block.
            let _ = thread.join();
        }
    }
}

impl Drop for BrokerHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Serve on the calling thread until `shutdown` completes, then disconnect every client
/// and return once the connections are closed.
pub fn serve(listener: std::net::TcpListener, config: Config, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run(listener, config, shutdown))
}

/// What the tasks of one broker share.
struct Shared {
    core: RefCell<Core>,
    /// The open connections' I/O.
    conns: RefCell<HashMap<ConnId, Rc<Io>>>,
    /// Connections woken by their sockets, for the driver.
    ready: Arc<ReadyQueue>,
    /// The read buffer of every connection (one read is handled before the next).
    scratch: RefCell<Box<[u8]>>,
    /// The deadline the timer task sleeps until; it is woken when the core's next one is
    /// earlier.
    timer_at: Cell<Option<Instant>>,
    timer: Notify,
    /// Closed connections still flushing, and a signal when none is left open.
    closing: Cell<usize>,
    all_closed: Notify,
}

impl Shared {
    fn maybe_all_closed(&self) {
        if self.closing.get() == 0 && self.conns.borrow().is_empty() {
            self.all_closed.notify_waiters();
        }
    }
}

/// The size of the shared read buffer.
const SCRATCH: usize = 64 * 1024;
/// How long a closing connection may take to flush what was queued for it.
const CLOSE_FLUSH: Duration = Duration::from_secs(1);
/// Slices per vectored write.
const MAX_SLICES: usize = 64;

async fn run(listener: std::net::TcpListener, config: Config, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    info!(local_addr = %listener.local_addr()?, "mqttkit-broker listening");
    let shared = Rc::new(Shared {
        core: RefCell::new(Core::new(config, Instant::now())),
        conns: RefCell::new(HashMap::new()),
        ready: Arc::new(ReadyQueue::default()),
        scratch: RefCell::new(vec![0; SCRATCH].into_boxed_slice()),
        timer_at: Cell::new(None),
        timer: Notify::new(),
        closing: Cell::new(0),
        all_closed: Notify::new(),
    });
    let timers = tokio::task::spawn_local(run_timers(shared.clone()));
    let driver = tokio::task::spawn_local(connection::drive(shared.clone()));
    tokio::select! {
        () = accept_loop(&shared, listener) => {}
        () = shutdown => {}
    }
    info!("shutting down");
    let wait = shared.all_closed.notified();
    shared.core.borrow_mut().shutdown(Instant::now());
    flush(&shared);
    if (shared.closing.get() > 0 || !shared.conns.borrow().is_empty())
        && tokio::time::timeout(Duration::from_secs(5), wait).await.is_err()
    {
        warn!(open = shared.conns.borrow().len(), "connections did not close in time");
    }
    timers.abort();
    driver.abort();
    info!("stopped");
    Ok(())
}

async fn accept_loop(shared: &Rc<Shared>, listener: TcpListener) {
    let mut next_id: u64 = 0;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors or the like: wait rather than spin.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        next_id = next_id.wrapping_add(1);
        let id = ConnId(next_id);
        let (reader, writer) = stream.into_split();
        let io = Rc::new(Io::new(id, reader, writer, &shared.ready));
        shared.conns.borrow_mut().insert(id, io.clone());
        debug!(?id, %peer, "connection opened");
        shared.core.borrow_mut().connection_opened(id, peer, Instant::now());
        flush(shared);
        // The first poll registers the connection for readiness.
        io.wake();
    }
}

/// Carry out what the core asked for: write to every connection that has bytes waiting
/// (one vectored write each), hand closed connections to the driver for their final
/// flush, and wake the timer task if the next deadline moved earlier.
fn flush(shared: &Shared) {
    loop {
        let output = shared.core.borrow_mut().poll_output();
        match output {
            None => break,
            Some(Output::Transmit(id)) => {
                let io = shared.conns.borrow().get(&id).cloned();
                if let Some(io) = io
                    && !io.blocked.get()
                {
                    write_now(shared, id, &io);
                }
            }
            Some(Output::Close { id, reason, unsent }) => {
                debug!(?id, ?reason, "closing connection");
                let io = shared.conns.borrow().get(&id).cloned();
                if let Some(io) = io {
                    *io.closing.borrow_mut() = Some(unsent);
                    io.wake();
                }
            }
        }
    }
    let next = shared.core.borrow().poll_timeout();
    if let Some(at) = next
        && shared.timer_at.get().is_none_or(|current| at < current)
    {
        shared.timer_at.set(Some(at));
        shared.timer.notify_one();
    }
}

/// Write what the core has for `id` without waiting; what the socket does not take is
/// written when the driver polls the connection again, once it is writable.
fn write_now(shared: &Shared, id: ConnId, conn: &Io) {
    let mut core = shared.core.borrow_mut();
    loop {
        let result = {
            let mut slices = [io::IoSlice::new(&[]); MAX_SLICES];
            let n = core.transmit(id, &mut slices);
            if n == 0 {
                break;
            }
            let total: usize = slices[..n].iter().map(|s| s.len()).sum();
            let writer = conn.writer.borrow();
            let Some(w) = writer.as_ref() else { break };
            w.try_write_vectored(&slices[..n]).map(|written| (written, total))
        };
        match result {
            // Everything offered was taken: more may wait (beyond `MAX_SLICES`).
            Ok((written, total)) if written == total => core.transmitted(id, written, Instant::now()),
            Ok((written, _)) => {
                // The socket buffer is full: the driver continues when it is writable.
                core.transmitted(id, written, Instant::now());
                conn.blocked.set(true);
                conn.wake();
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                core.transmitted(id, 0, Instant::now());
                conn.blocked.set(true);
                conn.wake();
                break;
            }
            Err(_) => {
                conn.broken.set(true);
                conn.wake();
                break;
            }
        }
    }
    drop(core);
    // Room was made: messages waiting for this connection may now be queued.
    if conn.paused.get() && shared.core.borrow().wants_input(id) {
        conn.wake();
    }
}

/// Sleep until the core's next deadline and run it.
async fn run_timers(shared: Rc<Shared>) {
    loop {
        let next = shared.core.borrow().poll_timeout();
        shared.timer_at.set(next);
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {
                        shared.core.borrow_mut().handle_timeout(Instant::now());
                        flush(&shared);
                    }
                    () = shared.timer.notified() => {}
                }
            }
            None => shared.timer.notified().await,
        }
    }
}
