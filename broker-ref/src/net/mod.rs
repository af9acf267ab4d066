//! The tokio front end: accept loop, per-connection tasks, and the actor that owns the
//! [`Core`]. A connection whose bounded outbound queue fills up is disconnected as a slow
//! consumer, so one misbehaving client never stalls the others.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::core::{ConnId, Core, Output};

/// Events from the I/O tasks to the core actor.
#[derive(Debug)]
enum Event {
    Opened { id: ConnId, peer: SocketAddr, out: mpsc::Sender<Bytes>, cancel: CancellationToken },
    Data(ConnId, Bytes),
    Closed(ConnId),
}

/// Starts brokers.
#[derive(Debug, Clone, Copy)]
pub struct Broker;

/// A running broker.
#[derive(Debug)]
pub struct BrokerHandle {
    local_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    actor: Option<JoinHandle<()>>,
}

struct Writer {
    out: mpsc::Sender<Bytes>,
    cancel: CancellationToken,
}

const EVENT_QUEUE: usize = 1024;
const READ_CHUNK: usize = 8 * 1024;

impl Broker {
    /// Bind `config.listen` (use port 0 for an ephemeral port) and start serving.
    pub async fn start(config: Config) -> io::Result<BrokerHandle> {
        let listener = TcpListener::bind(&config.listen).await?;
        let local_addr = listener.local_addr()?;
        info!(%local_addr, "mqttkit-broker listening");
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let actor = tokio::spawn(run(listener, config, shutdown_rx));
        Ok(BrokerHandle { local_addr, shutdown: Some(shutdown_tx), actor: Some(actor) })
    }
}

impl BrokerHandle {
    /// The address the broker listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Disconnect every client (5.0: DISCONNECT 0x8B), stop listening and wait for the
    /// connection tasks to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(actor) = self.actor.take() {
            let _ = actor.await;
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

async fn run(listener: TcpListener, config: Config, mut shutdown: oneshot::Receiver<()>) {
    let outbound_queue = config.outbound_queue.max(1);
    let mut core = Core::new(config, Instant::now());
    let (events_tx, mut events) = mpsc::channel::<Event>(EVENT_QUEUE);
    let tracker = TaskTracker::new();
    let stop_accept = CancellationToken::new();
    tracker.spawn(accept_loop(listener, events_tx, tracker.clone(), stop_accept.clone(), outbound_queue));
    let mut writers: BTreeMap<ConnId, Writer> = BTreeMap::new();
    loop {
        let deadline = core.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        // Timers run even when events never stop arriving.
        if deadline.is_some_and(|at| at <= Instant::now()) {
            core.handle_timeout(Instant::now());
            dispatch(&mut core, &mut writers);
            continue;
        }
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            event = events.recv() => match event {
                Some(Event::Opened { id, peer, out, cancel }) => {
                    debug!(?id, %peer, "connection opened");
                    writers.insert(id, Writer { out, cancel });
                    core.connection_opened(id, peer, Instant::now());
                }
                Some(Event::Data(id, bytes)) => core.handle_bytes(id, &bytes, Instant::now()),
                Some(Event::Closed(id)) => {
                    debug!(?id, "connection closed by peer");
                    writers.remove(&id);
                    core.connection_closed(id, Instant::now());
                }
                None => break,
            },
            () = sleep => core.handle_timeout(Instant::now()),
        }
        dispatch(&mut core, &mut writers);
    }
    info!("shutting down");
    stop_accept.cancel();
    core.shutdown(Instant::now());
    dispatch(&mut core, &mut writers);
    writers.clear();
    tracker.close();
    // Keep draining events so connection tasks never block on a full event queue.
    let wait = tracker.wait();
    tokio::pin!(wait);
    let deadline = tokio::time::sleep(Duration::from_secs(5));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut wait => break,
            () = &mut deadline => { warn!("connection tasks did not finish in time"); break }
            event = events.recv() => if event.is_none() { wait.as_mut().await; break },
        }
    }
    info!("stopped");
}

/// Hand the core's output to the connection tasks.
fn dispatch(core: &mut Core, writers: &mut BTreeMap<ConnId, Writer>) {
    while let Some(output) = core.poll_output() {
        match output {
            Output::Send(id, bytes) => {
                let Some(writer) = writers.get(&id) else { continue };
                match writer.out.try_send(bytes) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        warn!(?id, "outbound queue full: disconnecting slow consumer");
                        if let Some(w) = writers.remove(&id) {
                            w.cancel.cancel();
                        }
                        core.disconnect_slow_consumer(id, Instant::now());
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
            Output::Close(id, reason) => {
                debug!(?id, ?reason, "closing connection");
                // Dropping the sender lets the task flush what is queued, then close.
                writers.remove(&id);
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    events: mpsc::Sender<Event>,
    tracker: TaskTracker,
    stop: CancellationToken,
    outbound_queue: usize,
) {
    let mut next_id: u64 = 0;
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        next_id = next_id.wrapping_add(1);
        let id = ConnId(next_id);
        let (out_tx, out_rx) = mpsc::channel(outbound_queue);
        let cancel = CancellationToken::new();
        let opened = Event::Opened { id, peer, out: out_tx, cancel: cancel.clone() };
        if events.send(opened).await.is_err() {
            return;
        }
        tracker.spawn(connection(id, stream, events.clone(), out_rx, cancel));
    }
}

async fn connection(
    id: ConnId,
    stream: TcpStream,
    events: mpsc::Sender<Event>,
    mut out: mpsc::Receiver<Bytes>,
    cancel: CancellationToken,
) {
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut reading = true;
    let mut reported_closed = false;
    loop {
        if buf.capacity() < READ_CHUNK {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            read = rd.read_buf(&mut buf), if reading => match read {
                Ok(0) | Err(_) => {
                    reading = false;
                    reported_closed = true;
                    if events.send(Event::Closed(id)).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {
                    let data = buf.split().freeze();
                    if events.send(Event::Data(id, data)).await.is_err() {
                        break;
                    }
                }
            },
            next = out.recv() => match next {
                Some(bytes) => {
                    let bytes = coalesce(bytes, &mut out);
                    let written = tokio::select! {
                        () = cancel.cancelled() => break,
                        written = wr.write_all(&bytes) => written,
                    };
                    if written.is_err() {
                        break;
                    }
                }
                // The core closed the connection and everything queued was written.
                None => break,
            },
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
    if !reported_closed {
        let _ = events.send(Event::Closed(id)).await;
    }
}

/// Join small queued packets into one write (fewer system calls under load).
fn coalesce(first: Bytes, out: &mut mpsc::Receiver<Bytes>) -> Bytes {
    const SMALL: usize = 16 * 1024;
    if first.len() >= SMALL {
        return first;
    }
    let Ok(second) = out.try_recv() else { return first };
    let mut buf = BytesMut::with_capacity(first.len().saturating_add(second.len()));
    buf.extend_from_slice(&first);
    buf.extend_from_slice(&second);
    while buf.len() < SMALL {
        match out.try_recv() {
            Ok(more) => buf.extend_from_slice(&more),
            Err(_) => break,
        }
    }
    buf.freeze()
}
