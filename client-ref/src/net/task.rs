//! The connection task: owns the core, reads the transport, writes the core's bytes
//! ([`Output`]), runs the timers, and turns core events into results for the handles.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::output::{FLUSH_TIMEOUT, Output};
use super::{Command, RequestReply, Shared};
use crate::core::{Core, Event, State};
use crate::message::{CloseReason, ConnectionEvent, Message};
use crate::options::Options;
use crate::transport::{Connector, Reader, Writer};

/// Requests taken from the channel in one go (their packets leave in one write).
const COMMAND_BATCH: usize = 64;

/// Why the loop woke up (owned, so that acting on it may borrow the task freely).
enum Wake {
    Progress,
    OutputFailed(String),
    Read(io::Result<usize>),
    Opened(io::Result<(Reader, Writer)>),
    Command(Option<Command>),
    Timer,
}

type Opening = Pin<Box<dyn Future<Output = io::Result<(Reader, Writer)>> + Send>>;

pub(super) struct Task {
    core: Core,
    connectors: Vec<Connector>,
    options: Options,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    messages: mpsc::Sender<Message>,
    first: Option<oneshot::Sender<Result<(), CloseReason>>>,
    replies: HashMap<u64, RequestReply>,
    next_tag: u64,
    disconnect_waiters: Vec<oneshot::Sender<()>>,
    opening: Option<Opening>,
    reader: Option<Reader>,
    /// The sending side of the open transport.
    output: Option<Output>,
    /// Transports closing (flushing their last bytes).
    closing_writers: Vec<JoinHandle<io::Result<()>>>,
    /// Messages waiting for room in the message channel (reading pauses meanwhile).
    pending_messages: VecDeque<Message>,
    commands_open: bool,
}

impl Task {
    pub(super) fn new(
        core: Core,
        connectors: Vec<Connector>,
        options: Options,
        shared: Arc<Shared>,
        commands: mpsc::Receiver<Command>,
        messages: mpsc::Sender<Message>,
        first: oneshot::Sender<Result<(), CloseReason>>,
    ) -> Self {
        Self {
            core,
            connectors,
            options,
            shared,
            commands,
            messages,
            first: Some(first),
            replies: HashMap::new(),
            next_tag: 0,
            disconnect_waiters: Vec::new(),
            opening: None,
            reader: None,
            output: None,
            closing_writers: Vec::new(),
            pending_messages: VecDeque::new(),
            commands_open: true,
        }
    }

    pub(super) async fn run(mut self) {
        self.core.connect(Instant::now());
        let mut rbuf = BytesMut::with_capacity(16 * 1024);
        loop {
            self.pump();
            if self.core.state() == State::Closed && self.output.as_ref().is_none_or(Output::accepts) {
                break;
            }
            let deadline = self.core.poll_timeout().map(tokio::time::Instant::from_std);
            let take_commands = self.commands_open
                && !self.output.as_ref().is_some_and(Output::congested)
                && self.core.queued() < self.options.max_queued
                && self.core.state() != State::Closed;
            let reading = self.reader.is_some() && self.pending_messages.is_empty();
            let wake = tokio::select! {
                progress = progress(self.output.as_mut()), if self.output.as_ref().is_some_and(Output::busy) => {
                    match progress {
                        Ok(()) => Wake::Progress,
                        Err(error) => Wake::OutputFailed(error),
                    }
                }
                permit = self.messages.reserve(), if !self.pending_messages.is_empty() => {
                    match permit {
                        Ok(permit) => {
                            if let Some(message) = self.pending_messages.pop_front() {
                                permit.send(message);
                            }
                            while let Some(message) = self.pending_messages.pop_front() {
                                if let Err(mpsc::error::TrySendError::Full(message)) = self.messages.try_send(message) {
                                    self.pending_messages.push_front(message);
                                    break;
                                }
                            }
                        }
                        // Nobody listens any more.
                        Err(_) => self.pending_messages.clear(),
                    }
                    Wake::Progress
                }
                read = read(self.reader.as_mut(), &mut rbuf), if reading => Wake::Read(read),
                opened = open(self.opening.as_mut()), if self.opening.is_some() => Wake::Opened(opened),
                command = self.commands.recv(), if take_commands => Wake::Command(command),
                () = sleep_until(deadline), if deadline.is_some() => Wake::Timer,
            };
            match wake {
                Wake::Progress => {}
                Wake::OutputFailed(error) => {
                    self.output = None;
                    self.reader = None;
                    self.core.transport_closed(Instant::now(), error);
                }
                Wake::Read(Ok(0)) => {
                    self.reader = None;
                    self.core.transport_closed(Instant::now(), "closed by the server");
                }
                Wake::Read(Ok(_)) => {
                    self.core.handle_bytes(&rbuf, Instant::now());
                    rbuf.clear();
                }
                Wake::Read(Err(e)) => {
                    self.reader = None;
                    self.core.transport_closed(Instant::now(), e.to_string());
                }
                Wake::Opened(opened) => {
                    self.opening = None;
                    match opened {
                        Ok((reader, writer)) => {
                            self.reader = Some(reader);
                            self.output = Some(Output::new(writer));
                            self.core.transport_opened(Instant::now());
                        }
                        Err(e) => self.core.transport_failed(Instant::now(), e.to_string()),
                    }
                }
                Wake::Command(Some(command)) => {
                    self.handle_command(command);
                    // Take what else is waiting, so that its packets share one write.
                    for _ in 1..COMMAND_BATCH {
                        self.flush_transmit();
                        let congested = self.output.as_ref().is_some_and(|o| o.congested() || !o.accepts());
                        if congested || self.core.queued() >= self.options.max_queued {
                            break;
                        }
                        match self.commands.try_recv() {
                            Ok(command) => self.handle_command(command),
                            Err(_) => break,
                        }
                    }
                }
                Wake::Command(None) => {
                    // Every handle is gone: disconnect.
                    self.commands_open = false;
                    self.core.disconnect(Instant::now(), Duration::ZERO, mqttkit_codec::ReasonCode::SUCCESS, None);
                }
                Wake::Timer => self.core.handle_timeout(Instant::now()),
            }
        }
        self.finish().await;
    }

    fn handle_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Publish { publication, slot } => {
                let tag = slot.map(u64::from);
                if let Err(e) = self.core.publish(publication, tag, now)
                    && let Some(slot) = slot
                {
                    self.shared.completions.complete(slot, Err(e));
                }
            }
            Command::Subscribe { subscriptions, properties, reply } => {
                let tag = self.tag();
                let taken = self.core.subscribe(subscriptions, properties, tag, now);
                self.await_reply(tag, taken, reply);
            }
            Command::Unsubscribe { filters, properties, reply } => {
                let tag = self.tag();
                let taken = self.core.unsubscribe(filters, properties, tag, now);
                self.await_reply(tag, taken, reply);
            }
            Command::Disconnect { quiesce, code, session_expiry, done } => {
                self.disconnect_waiters.push(done);
                self.core.disconnect(now, quiesce, code, session_expiry);
            }
        }
    }

    /// Let the transport write what is queued and shut down, in the background.
    fn close_writer(&mut self) {
        self.reader = None;
        if let Some(output) = self.output.take() {
            self.closing_writers.push(output.close());
        }
    }

    /// Keep `reply` for the acknowledgement of request `tag`, or answer at once if the
    /// core refused the request.
    fn await_reply(&mut self, tag: u64, taken: Result<(), crate::RequestError>, reply: RequestReply) {
        match taken {
            Ok(()) => {
                self.replies.insert(tag, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    fn tag(&mut self) -> u64 {
        self.next_tag = self.next_tag.wrapping_add(1);
        self.next_tag
    }

    /// Move the core's bytes to the output while it takes them; bytes with no
    /// transport to go to are dropped.
    fn flush_transmit(&mut self) {
        while self.output.as_ref().is_none_or(Output::accepts) {
            let Some(bytes) = self.core.poll_transmit() else { break };
            if let Some(output) = &mut self.output {
                output.push(bytes);
            }
        }
    }

    /// Act on the core's output until it has nothing more (or the writer is full).
    fn pump(&mut self) {
        loop {
            self.flush_transmit();
            if !self.output.as_ref().is_none_or(Output::accepts) {
                // Events may close the transport: first let these bytes out.
                return;
            }
            let Some(event) = self.core.poll_event() else { return };
            self.handle_event(event);
        }
    }

    fn handle_event(&mut self, event: Event) {
        match event {
            Event::OpenTransport { server } => {
                let connector = self.connectors.get(server).or(self.connectors.first()).cloned();
                self.opening = connector.map(|c| Box::pin(async move { c.connect().await }) as Opening);
            }
            Event::CloseTransport => {
                self.close_writer();
            }
            Event::Connection(event) => self.connection_event(event),
            Event::Message(message) => {
                if self.pending_messages.is_empty() {
                    match self.messages.try_send(message) {
                        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
                        Err(mpsc::error::TrySendError::Full(message)) => {
                            // Nobody took the stream yet: drop rather than stall the
                            // connection (acknowledgements included).
                            if self.shared.messages_taken.load(Ordering::Acquire) {
                                self.pending_messages.push_back(message);
                            }
                        }
                    }
                } else {
                    self.pending_messages.push_back(message);
                }
            }
            Event::Published { tag, result } => {
                if let Ok(slot) = u32::try_from(tag) {
                    self.shared.completions.complete(slot, result);
                }
            }
            Event::Subscribed { tag, result } | Event::Unsubscribed { tag, result } => {
                if let Some(reply) = self.replies.remove(&tag) {
                    let _ = reply.send(result);
                }
            }
        }
    }

    fn connection_event(&mut self, event: ConnectionEvent) {
        {
            let mut connection = self.shared.connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *connection = match &event {
                ConnectionEvent::Connected(info) => Some(info.clone()),
                _ => None,
            };
        }
        match &event {
            ConnectionEvent::Connected(_) => {
                if let Some(first) = self.first.take() {
                    let _ = first.send(Ok(()));
                }
            }
            ConnectionEvent::Closed(reason) => {
                if let Some(first) = self.first.take() {
                    let _ = first.send(Err(reason.clone()));
                }
                self.shared.closed.send_replace(Some(reason.clone()));
            }
            _ => {}
        }
        if let Some(handler) = &self.options.on_event {
            handler(&event);
        }
        let _ = self.shared.events.send(event);
    }

    /// The core stopped: let the last bytes out, then release everyone waiting.
    async fn finish(mut self) {
        self.close_writer();
        for handle in self.closing_writers.drain(..) {
            let _ = tokio::time::timeout(FLUSH_TIMEOUT, handle).await;
        }
        self.shared.completions.close();
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Publish { .. } => {}
                Command::Subscribe { reply, .. } | Command::Unsubscribe { reply, .. } => {
                    let _ = reply.send(Err(crate::RequestError::Closed));
                }
                Command::Disconnect { done, .. } => self.disconnect_waiters.push(done),
            }
        }
        for reply in self.replies.into_values() {
            let _ = reply.send(Err(crate::RequestError::Closed));
        }
        for done in self.disconnect_waiters {
            let _ = done.send(());
        }
        if self.shared.closed.borrow().is_none() {
            self.shared.closed.send_replace(Some(CloseReason::Disconnected));
        }
    }
}

async fn progress(output: Option<&mut Output>) -> Result<(), String> {
    match output {
        Some(output) => output.progress().await,
        None => std::future::pending().await,
    }
}

async fn read(reader: Option<&mut Reader>, buf: &mut BytesMut) -> io::Result<usize> {
    match reader {
        Some(reader) => reader.read_buf(buf).await,
        None => std::future::pending().await,
    }
}

async fn open(opening: Option<&mut Opening>) -> io::Result<(Reader, Writer)> {
    match opening {
        Some(opening) => opening.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
