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
//! [`serve`] runs it on the calling thread (the binary does that). Listeners (TCP, TLS,
//! WebSocket) live in [`crate::listeners`] and hand their streams to [`register`].

mod connection;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::AsyncWrite;

use tokio::sync::{Notify, oneshot};

use self::connection::{Io, ReadyQueue};
use tracing::{debug, info, warn};

use tokio::sync::mpsc::UnboundedReceiver;

use crate::admin::{self, BoundAdmin};
use crate::config::Config;
use crate::core::{ConnId, Core, Output};
use crate::listeners::{self, BoundListener, BoxedStream, Origin, Transport};
use crate::persist;

/// Starts brokers.
#[derive(Debug, Clone, Copy)]
pub struct Broker;

/// A running broker.
#[derive(Debug)]
pub struct BrokerHandle {
    local_addr: SocketAddr,
    listeners: Vec<(Transport, SocketAddr)>,
    admin: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    stopped: Option<oneshot::Receiver<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Broker {
    /// Read the files the configuration names, bind its listeners (use port 0 for an
    /// ephemeral port) and start serving on a thread of its own.
    pub async fn start(mut config: Config) -> io::Result<BrokerHandle> {
        config.load_files().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.0))?;
        let bound = Bound::bind(&config)?;
        let listeners = bound.addresses();
        let admin = bound.admin_addr();
        let local_addr = listeners.first().map(|(_, a)| *a).ok_or_else(|| io::Error::other("no listener"))?;
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let (stopped_tx, stopped_rx) = oneshot::channel();
        let thread = std::thread::Builder::new().name("mqttkit-broker".into()).spawn(move || {
            if let Err(e) = serve(bound, config, async {
                let _ = shutdown_rx.await;
            }) {
                warn!(error = %e, "broker stopped with an error");
            }
            let _ = stopped_tx.send(());
        })?;
        Ok(BrokerHandle {
            local_addr,
            listeners,
            admin,
            shutdown: Some(shutdown_tx),
            stopped: Some(stopped_rx),
            thread: Some(thread),
        })
    }
}

/// The sockets of a broker, bound before it runs (so that a busy address is reported at
/// once, naming it).
#[derive(Debug)]
pub struct Bound {
    listeners: Vec<BoundListener>,
    admin: Option<BoundAdmin>,
}

impl Bound {
    /// Bind every listener of `config` and the management API; errors name the address or
    /// file at fault.
    pub fn bind(config: &Config) -> io::Result<Self> {
        let listeners = config.effective_listeners().iter().map(BoundListener::bind).collect::<io::Result<_>>()?;
        let admin = config.admin.as_ref().map(BoundAdmin::bind).transpose()?;
        Ok(Self { listeners, admin })
    }

    /// The management API's address.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|a| a.local_addr)
    }

    /// Each listener's transport and address.
    pub fn addresses(&self) -> Vec<(Transport, SocketAddr)> {
        self.listeners.iter().map(|l| (l.config.protocol, l.local_addr)).collect()
    }
}

impl BrokerHandle {
    /// The address of the first listener.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The management API's address, if `[admin]` is configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The address of the first listener of `transport`.
    pub fn listener_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.listeners.iter().find(|(t, _)| *t == transport).map(|(_, a)| *a)
    }

    /// Every listener's transport and address, in the configuration's order.
    pub fn listeners(&self) -> &[(Transport, SocketAddr)] {
        &self.listeners
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
pub fn serve(bound: Bound, config: Config, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run(bound, config, shutdown))
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
    /// The last connection id given.
    next_id: Cell<u64>,
    /// The persistent store's writer, and whether a batch is being written.
    store: Option<persist::Writer>,
    writing: Cell<bool>,
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

async fn run(bound: Bound, config: Config, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let handshake_timeout = config.connect_timeout();
    let info = admin::BrokerInfo {
        listeners: bound.addresses().into_iter().map(|(t, a)| (t.to_string(), a)).collect(),
        started_at: std::time::SystemTime::now(),
        persistence: config.persistence.clone(),
    };
    let mut core = Core::new(config, Instant::now());
    let (store, written) = match core.config().persistence.clone() {
        Some(path) => {
            let (writer, written) = persist::start(std::path::Path::new(&path), &mut core)?;
            (Some(writer), Some(written))
        }
        None => (None, None),
    };
    let shared = Rc::new(Shared {
        core: RefCell::new(core),
        conns: RefCell::new(HashMap::new()),
        ready: Arc::new(ReadyQueue::default()),
        scratch: RefCell::new(vec![0; SCRATCH].into_boxed_slice()),
        timer_at: Cell::new(None),
        timer: Notify::new(),
        closing: Cell::new(0),
        all_closed: Notify::new(),
        next_id: Cell::new(0),
        store,
        writing: Cell::new(false),
    });
    let persisting = written.map(|written| tokio::task::spawn_local(batches_written(shared.clone(), written)));
    // What the restart changed (wills published, sessions ended) is written first.
    flush(&shared);
    let timers = tokio::task::spawn_local(run_timers(shared.clone()));
    let driver = tokio::task::spawn_local(connection::drive(shared.clone()));
    let mut accepting = Vec::new();
    for listener in bound.listeners {
        info!(transport = %listener.config.protocol, local_addr = %listener.local_addr, "mqttkit-broker listening");
        let shared = shared.clone();
        let register: listeners::Register =
            Rc::new(move |stream, peer, origin| register(&shared, stream, peer, origin));
        accepting.push(tokio::task::spawn_local(listeners::accept_loop(listener, register, handshake_timeout)));
    }
    if let Some(bound_admin) = bound.admin {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        accepting.push(tokio::task::spawn_local(admin::serve(bound_admin, tx)));
        accepting.push(tokio::task::spawn_local(answer_admin(shared.clone(), info, rx)));
    }
    shutdown.await;
    for task in accepting {
        task.abort();
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
    if let Some(task) = persisting {
        task.abort();
    }
    info!("stopped");
    Ok(())
}

/// Hand an accepted connection (its handshakes done) to the core and the driver.
fn register(shared: &Rc<Shared>, stream: BoxedStream, peer: SocketAddr, origin: Origin) {
    let next_id = shared.next_id.get().wrapping_add(1);
    shared.next_id.set(next_id);
    let id = ConnId(next_id);
    let io = Rc::new(Io::new(id, stream, &shared.ready));
    shared.conns.borrow_mut().insert(id, io.clone());
    debug!(?id, %peer, transport = %origin.transport, "connection opened");
    shared.core.borrow_mut().connection_opened_from(
        id,
        peer,
        origin.transport.as_str(),
        origin.certificate_user,
        Instant::now(),
    );
    flush(shared);
    // The first poll registers the connection for readiness.
    io.wake();
}

/// Answer the management API's requests with the core.
async fn answer_admin(shared: Rc<Shared>, info: admin::BrokerInfo, mut requests: UnboundedReceiver<admin::Envelope>) {
    while let Some((request, reply)) = requests.recv().await {
        let answer = admin::answer(&mut shared.core.borrow_mut(), &info, request, Instant::now());
        // Disconnecting a client or removing a retained message has outputs.
        flush(&shared);
        let _ = reply.send(answer);
    }
}

/// Carry out what the core asked for: write to every connection that has bytes waiting
/// (one vectored write each), hand closed connections to the driver for their final
/// flush, and wake the timer task if the next deadline moved earlier.
fn flush(shared: &Shared) {
    // A batch with nothing to write releases what waited for it at once.
    while flush_outputs(shared) {}
}

/// One round of [`flush`]; whether taking a batch left new outputs.
fn flush_outputs(shared: &Shared) -> bool {
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
    write_batch(shared);
    shared.core.borrow().has_output()
}

/// Hand the core's changes to the store's writer, unless a batch is being written (the
/// next one is taken when it is done).
fn write_batch(shared: &Shared) {
    let Some(store) = &shared.store else { return };
    if shared.writing.get() {
        return;
    }
    let batch = shared.core.borrow_mut().take_batch(Instant::now(), persist::wall_ms());
    if let Some(batch) = batch {
        if store.send(batch) {
            shared.writing.set(true);
        } else {
            warn!("the persistent store's writer stopped");
        }
    }
}

/// Batches written: release what waited for them, and write the next.
async fn batches_written(shared: Rc<Shared>, mut written: persist::Written) {
    while let Some((id, result)) = written.recv().await {
        if let Err(e) = result {
            tracing::error!(error = %e, "persistence write failed: what was acknowledged since may not survive a restart");
        }
        shared.writing.set(false);
        shared.core.borrow_mut().batch_written(id);
        flush(&shared);
    }
}

/// Write what the core has for `id` without waiting; what the socket does not take is
/// written when the driver polls the connection again, once it is writable.
fn write_now(shared: &Shared, id: ConnId, conn: &Io) {
    // A write that cannot complete registers this connection's waker for writability.
    let waker = conn.waker();
    let mut cx = Context::from_waker(&waker);
    let mut core = shared.core.borrow_mut();
    loop {
        let result = {
            let mut slices = [io::IoSlice::new(&[]); MAX_SLICES];
            let n = core.transmit(id, &mut slices);
            if n == 0 {
                break;
            }
            let total: usize = slices[..n].iter().map(|s| s.len()).sum();
            let mut writer = conn.writer.borrow_mut();
            let Some(w) = writer.as_mut() else { break };
            match Pin::new(w).poll_write_vectored(&mut cx, &slices[..n]) {
                Poll::Ready(result) => result.map(|written| (written, total)),
                Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
            }
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
    if !conn.blocked.get() && !conn.broken.get() {
        match conn.flush_stream(&mut cx) {
            Ok(true) => {}
            // TLS or WebSocket bytes still buffered: finished once the socket is writable.
            Ok(false) => conn.blocked.set(true),
            Err(_) => {
                conn.broken.set(true);
                conn.wake();
            }
        }
    }
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
