//! The tokio front end: [`Client`] handles talk to one connection task that owns the
//! [`Core`], reads the transport, and hands bytes to a writer task. Back-pressure runs end
//! to end: a slow network stops the task taking requests, a slow message consumer stops
//! it reading, and no queue grows without bound.

mod completion;
mod output;
mod task;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use mqttkit_codec::{QoS, ReasonCode};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use self::completion::Completions;
use crate::core::Core;
use crate::error::{ConnectError, OptionsError, PublishError, RequestError};
use crate::message::{
    CloseReason, Connected, ConnectionEvent, Message, Publication, RequestProperties, Subscription, Topic,
};
use crate::options::Options;
use crate::transport::{Address, Connector};

/// A request from a handle to the connection task.
#[derive(Debug)]
enum Command {
    Publish { publication: Publication, slot: Option<u32> },
    Subscribe { subscriptions: Vec<Subscription>, properties: RequestProperties, reply: RequestReply },
    Unsubscribe { filters: Vec<String>, properties: RequestProperties, reply: RequestReply },
    Disconnect { quiesce: Duration, code: ReasonCode, session_expiry: Option<u32>, done: oneshot::Sender<()> },
}

type RequestReply = oneshot::Sender<Result<Vec<ReasonCode>, RequestError>>;

/// State shared by the handles and the task.
#[derive(Debug)]
struct Shared {
    completions: Arc<Completions>,
    events: broadcast::Sender<ConnectionEvent>,
    /// The message stream, until [`Client::messages`] takes it.
    messages: Mutex<Option<mpsc::Receiver<Message>>>,
    messages_taken: AtomicBool,
    /// The CONNACK in force while connected.
    connection: Mutex<Option<Connected>>,
    /// Set once the client stopped for good.
    closed: watch::Sender<Option<CloseReason>>,
}

/// A connected MQTT client (cheap to clone: all clones drive the same connection).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use mqttkit_client::{Client, Options, QoS};
///
/// let options = Options::new("mqtt://127.0.0.1:1883")
///     .client_id("push")
///     .keep_alive(Duration::from_secs(60))
///     .ping_timeout(Duration::from_secs(1))
///     .on_event(|event| eprintln!("{event:?}"));
/// let client = Client::connect(options).await?;
/// let code = client.publish("sensors/t", QoS::AtLeastOnce, true, "21.5").await?;
/// println!("PUBACK {code}");
/// client.disconnect(Duration::from_millis(250)).await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl Client {
    /// Connect: resolves once CONNACK accepted the first connection (or it failed, unless
    /// [`Options::connect_retry`] is set). The connection then lives in a tokio task until
    /// [`Client::disconnect`], a permanent failure, or every handle is dropped.
    pub async fn connect(options: Options) -> Result<Self, ConnectError> {
        let connectors = options
            .servers
            .iter()
            .map(|url| {
                let address = Address::parse(url).map_err(|e| OptionsError::Server(format!("{url}: {e}")))?;
                let connector = Connector::new(address, &options.tls).map_err(OptionsError::Server)?;
                Ok(connector.with_handshake_timeout(options.connect_timeout))
            })
            .collect::<Result<Vec<_>, OptionsError>>()?;
        let core = Core::new(options.clone(), Instant::now())?;
        let (commands_tx, commands_rx) = mpsc::channel(options.request_buffer.max(1));
        let (messages_tx, messages_rx) = mpsc::channel(options.message_buffer.max(1));
        let (events_tx, _) = broadcast::channel(64);
        let shared = Arc::new(Shared {
            completions: Arc::new(Completions::default()),
            events: events_tx,
            messages: Mutex::new(Some(messages_rx)),
            messages_taken: AtomicBool::new(false),
            connection: Mutex::new(None),
            closed: watch::Sender::new(None),
        });
        let (first_tx, first_rx) = oneshot::channel();
        let task = task::Task::new(core, connectors, options, Arc::clone(&shared), commands_rx, messages_tx, first_tx);
        tokio::spawn(task.run());
        match first_rx.await {
            Ok(Ok(())) => Ok(Self { commands: commands_tx, shared }),
            Ok(Err(reason)) => Err(ConnectError::from(reason)),
            Err(_) => Err(ConnectError::from(CloseReason::Disconnected)),
        }
    }

    /// Publish and wait for the QoS handshake: QoS 0 completes once written, QoS 1 on
    /// PUBACK, QoS 2 on PUBCOMP. Returns the reason code (5.0; 0x00 before), or
    /// [`PublishError::Rejected`] for a code of 0x80 or more. Publications made while the
    /// connection is down are sent after reconnecting.
    pub async fn publish(
        &self,
        topic: impl Into<Topic>,
        qos: QoS,
        retain: bool,
        payload: impl Into<Bytes>,
    ) -> Result<ReasonCode, PublishError> {
        self.publish_with(Publication::new(topic, qos, retain, payload)).await
    }

    /// [`Client::publish`] with a full [`Publication`] (5.0 properties).
    pub async fn publish_with(&self, publication: Publication) -> Result<ReasonCode, PublishError> {
        self.start_publish(publication).await?.await
    }

    /// Hand a publication over and get a token that resolves when its handshake completes
    /// (paho's token). Waits only while the client's queues are full. Publications handed
    /// over one after the other are sent in that order, so a producer can pipeline many
    /// without waiting for each acknowledgement.
    pub async fn start_publish(&self, publication: Publication) -> Result<PublishToken, PublishError> {
        let pending = self.shared.completions.acquire();
        let command = Command::Publish { publication, slot: Some(pending.id()) };
        if self.commands.send(command).await.is_err() {
            return Err(PublishError::Closed);
        }
        Ok(PublishToken { pending })
    }

    /// Hand a publication over without waiting for its handshake (errors are not
    /// reported). Waits only while the client's queues are full.
    pub async fn publish_detached(&self, publication: Publication) -> Result<(), PublishError> {
        let command = Command::Publish { publication, slot: None };
        self.commands.send(command).await.map_err(|_| PublishError::Closed)
    }

    /// Subscribe; returns the SUBACK reason codes, one per filter, in order (granted QoS
    /// 0x00–0x02, or an error code of 0x80 or more).
    pub async fn subscribe<I, S>(&self, subscriptions: I) -> Result<Vec<ReasonCode>, RequestError>
    where
        I: IntoIterator<Item = S>,
        S: Into<Subscription>,
    {
        let subscriptions = subscriptions.into_iter().map(Into::into).collect();
        self.subscribe_with(subscriptions, RequestProperties::default()).await
    }

    /// [`Client::subscribe`] with 5.0 properties (Subscription Identifier, User
    /// Properties).
    pub async fn subscribe_with(
        &self,
        subscriptions: Vec<Subscription>,
        properties: RequestProperties,
    ) -> Result<Vec<ReasonCode>, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.request(Command::Subscribe { subscriptions, properties, reply }, answer).await
    }

    /// Unsubscribe; returns the UNSUBACK reason codes (before 5.0, 0x00 for each filter).
    pub async fn unsubscribe<I, S>(&self, filters: I) -> Result<Vec<ReasonCode>, RequestError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let filters = filters.into_iter().map(Into::into).collect();
        self.unsubscribe_with(filters, RequestProperties::default()).await
    }

    /// [`Client::unsubscribe`] with 5.0 User Properties.
    pub async fn unsubscribe_with(
        &self,
        filters: Vec<String>,
        properties: RequestProperties,
    ) -> Result<Vec<ReasonCode>, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.request(Command::Unsubscribe { filters, properties, reply }, answer).await
    }

    async fn request(
        &self,
        command: Command,
        answer: oneshot::Receiver<Result<Vec<ReasonCode>, RequestError>>,
    ) -> Result<Vec<ReasonCode>, RequestError> {
        self.commands.send(command).await.map_err(|_| RequestError::Closed)?;
        answer.await.unwrap_or(Err(RequestError::Closed))
    }

    /// The received messages. The first call takes the stream; later calls get one that
    /// ends at once. Until it is taken, messages are buffered (up to
    /// [`Options::message_buffer`], then dropped); once taken, a full buffer pauses
    /// reading from the server instead.
    pub fn messages(&self) -> Messages {
        let taken = self.shared.messages.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        self.shared.messages_taken.store(true, Ordering::Release);
        Messages { receiver: taken }
    }

    /// Connection events from now on (connected, lost, reconnecting, closed). Events from
    /// before the call are not replayed: use [`Options::on_event`] to see them all.
    pub fn events(&self) -> Events {
        Events { receiver: self.shared.events.subscribe() }
    }

    /// What CONNACK granted, while connected.
    pub fn connection(&self) -> Option<Connected> {
        self.shared.connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Whether a connection is up.
    pub fn is_connected(&self) -> bool {
        self.connection().is_some()
    }

    /// Wait until the client stops for good, and say why.
    pub async fn closed(&self) -> CloseReason {
        let mut watch = self.shared.closed.subscribe();
        match watch.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or(CloseReason::Disconnected),
            Err(_) => CloseReason::Disconnected,
        }
    }

    /// Disconnect cleanly: wait up to `quiesce` for publications in flight and queued to
    /// complete (paho's quiesce), send DISCONNECT, and close. Returns once the connection
    /// is closed.
    pub async fn disconnect(&self, quiesce: Duration) {
        self.disconnect_with(quiesce, ReasonCode::SUCCESS, None).await;
    }

    /// [`Client::disconnect`] with a 5.0 reason code (e.g. 0x04 Disconnect with Will
    /// Message) and a new Session Expiry Interval.
    pub async fn disconnect_with(&self, quiesce: Duration, code: ReasonCode, session_expiry: Option<u32>) {
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Disconnect { quiesce, code, session_expiry, done }).await.is_ok() {
            let _ = finished.await;
        }
    }
}

/// Completes when a publication's QoS handshake does ([`Client::start_publish`]).
/// Dropping it stops waiting; the publication itself goes on.
#[derive(Debug)]
pub struct PublishToken {
    pending: completion::Pending,
}

impl Future for PublishToken {
    type Output = Result<ReasonCode, PublishError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.pending).poll(cx)
    }
}

/// The stream of received messages ([`Client::messages`]).
#[derive(Debug)]
pub struct Messages {
    receiver: Option<mpsc::Receiver<Message>>,
}

impl Messages {
    /// The next message; `None` once the client stopped.
    pub async fn recv(&mut self) -> Option<Message> {
        self.receiver.as_mut()?.recv().await
    }

    /// A message already received, without waiting.
    pub fn try_recv(&mut self) -> Option<Message> {
        self.receiver.as_mut()?.try_recv().ok()
    }
}

impl Stream for Messages {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        match self.receiver.as_mut() {
            Some(receiver) => receiver.poll_recv(cx),
            None => Poll::Ready(None),
        }
    }
}

/// The stream of connection events ([`Client::events`]).
#[derive(Debug)]
pub struct Events {
    receiver: broadcast::Receiver<ConnectionEvent>,
}

impl Events {
    /// The next event; `None` once the client stopped. Events missed by a slow reader
    /// are skipped.
    pub async fn recv(&mut self) -> Option<ConnectionEvent> {
        loop {
            match self.receiver.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
