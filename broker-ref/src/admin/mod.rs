//! The management API and dashboard (`[admin]` in the configuration): an HTTP server
//! (axum) on the broker's own thread, bound to 127.0.0.1 by default, every API request
//! authenticated by a bearer token or basic authentication.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /api/v1/status` | version, uptime, listeners, counts ([`model::Status`]) |
//! | `GET /api/v1/clients` | every session ([`model::Client`]) |
//! | `GET /api/v1/clients/{id}` | one session |
//! | `DELETE /api/v1/clients/{id}` | disconnect the client (5.0: DISCONNECT 0x98) |
//! | `GET /api/v1/subscriptions` | every subscription with its client id |
//! | `GET /api/v1/retained` | retained messages ([`model::Retained`]) |
//! | `DELETE /api/v1/retained/{topic}` | remove a retained message |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /` | the dashboard (a page; the data it shows comes from the API) |
//!
//! Handlers do not touch the broker: they send an [`Request`] to a task on the broker's
//! thread ([`answer`] runs there, with the core) and wait for its reply.

pub mod client;
mod metrics;
pub mod model;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use ring::rand::SystemRandom;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::auth::{Authenticator, PasswordHash};
use crate::core::{ClientDetail, Core, VERSION};

/// `[admin]`: the management API and the dashboard, over HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address to serve on. Default `127.0.0.1:18083` (loopback only; EMQX's dashboard
    /// port).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// A bearer token (`Authorization: Bearer TOKEN`), at least 16 characters.
    pub token: Option<String>,
    /// Basic authentication: user name.
    pub username: Option<String>,
    /// Basic authentication: the password's hash (`mqttkit-broker passwd --print USER`).
    pub password: Option<String>,
}

fn default_listen() -> String {
    "127.0.0.1:18083".into()
}

impl AdminConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.token.as_deref().is_some_and(|t| t.len() < 16) {
            return Err("token must be at least 16 characters".into());
        }
        match (&self.username, &self.password) {
            (Some(_), Some(hash)) => {
                PasswordHash::parse(hash).map_err(|e| format!("password: {e}"))?;
            }
            (None, None) if self.token.is_some() => {}
            (None, None) => return Err("set token, or username and password (the API is never open)".into()),
            _ => return Err("username and password go together".into()),
        }
        Ok(())
    }
}

/// What a handler asks of the broker.
#[derive(Debug)]
pub enum Request {
    /// `GET /api/v1/status`.
    Status,
    /// `GET /api/v1/clients`.
    Clients,
    /// `GET /api/v1/clients/{id}`.
    Client(String),
    /// `DELETE /api/v1/clients/{id}`.
    Disconnect(String),
    /// `GET /api/v1/subscriptions`.
    Subscriptions,
    /// `GET /api/v1/retained`.
    Retained,
    /// `DELETE /api/v1/retained/{topic}`.
    DeleteRetained(String),
    /// `GET /metrics`.
    Metrics,
}

/// The broker's answer: status code, content type, body.
pub type Reply = (StatusCode, &'static str, String);

/// A request and where its reply goes.
pub type Envelope = (Request, oneshot::Sender<Reply>);

/// What the broker knows besides the core, for the status.
#[derive(Debug, Clone)]
pub struct BrokerInfo {
    /// The MQTT listeners: transport and address.
    pub listeners: Vec<(String, SocketAddr)>,
    /// When the broker started (wall clock).
    pub started_at: SystemTime,
    /// The persistent store's file.
    pub persistence: Option<String>,
}

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Answer a request with the core (on the broker's thread).
pub fn answer(core: &mut Core, info: &BrokerInfo, request: Request, now: Instant) -> Reply {
    let wall = SystemTime::now();
    match request {
        Request::Status => json(&status(core, info, now)),
        Request::Clients => {
            let clients: Vec<model::Client> = core.clients(now).iter().map(|c| client(c, wall)).collect();
            json(&clients)
        }
        Request::Client(id) => match core.client(&id, now) {
            Some(c) => json(&client(&c, wall)),
            None => not_found(&format!("no session for client id {id:?}")),
        },
        Request::Disconnect(id) => {
            if core.disconnect_client(&id, now) {
                (StatusCode::NO_CONTENT, TEXT, String::new())
            } else {
                not_found(&format!("client {id:?} is not connected"))
            }
        }
        Request::Subscriptions => {
            let subs: Vec<model::Subscription> = core
                .clients(now)
                .iter()
                .flat_map(|c| {
                    c.subscriptions.iter().map(|(filter, opts)| model::Subscription {
                        client_id: Some(c.client_id.to_string()),
                        ..subscription(filter, opts)
                    })
                })
                .collect();
            json(&subs)
        }
        Request::Retained => {
            let retained: Vec<model::Retained> = core
                .retained_messages(now)
                .into_iter()
                .map(|r| {
                    let (payload, encoding) = match std::str::from_utf8(&r.payload) {
                        Ok(text) => (text.to_owned(), "utf-8"),
                        Err(_) => (STANDARD.encode(&r.payload), "base64"),
                    };
                    model::Retained {
                        topic: r.topic.to_string(),
                        qos: r.qos.as_u8(),
                        size: r.payload.len(),
                        payload,
                        encoding: encoding.into(),
                        expires_in: r.expires_in.map(|d| d.as_secs()),
                        publisher: r.publisher.map(|p| p.to_string()),
                    }
                })
                .collect();
            json(&retained)
        }
        Request::DeleteRetained(topic) => {
            if core.remove_retained(&topic) {
                (StatusCode::NO_CONTENT, TEXT, String::new())
            } else {
                not_found(&format!("no retained message on {topic:?}"))
            }
        }
        Request::Metrics => (StatusCode::OK, PROMETHEUS, metrics::render(core, now)),
    }
}

fn status(core: &Core, info: &BrokerInfo, now: Instant) -> model::Status {
    let stats = core.stats();
    let uptime = now.saturating_duration_since(core.started());
    model::Status {
        version: VERSION.into(),
        uptime_secs: uptime.as_secs(),
        started_at: unix_secs(info.started_at),
        listeners: info
            .listeners
            .iter()
            .map(|(t, a)| model::Listener { transport: t.clone(), address: a.to_string() })
            .collect(),
        connections: core.connection_count(),
        sessions: core.session_count(),
        subscriptions: core.subscription_count(),
        retained: core.retained_count(),
        messages_received: stats.messages_received,
        messages_sent: stats.messages_sent,
        messages_dropped: stats.messages_dropped,
        bytes_received: stats.bytes_received,
        bytes_sent: stats.bytes_sent,
        persistence: info.persistence.clone(),
    }
}

fn client(c: &ClientDetail, wall: SystemTime) -> model::Client {
    model::Client {
        client_id: c.client_id.to_string(),
        connected: c.connected,
        user: c.user.as_deref().map(str::to_owned),
        peer: c.peer.map(|p| p.to_string()),
        transport: c.transport.map(str::to_owned),
        protocol: c.protocol.clone(),
        keep_alive: c.keep_alive,
        session_expiry: (c.session_expiry != u32::MAX).then_some(c.session_expiry),
        connected_since: c.connected_for.and_then(|d| wall.checked_sub(d)).map(unix_secs),
        subscriptions: c.subscriptions.iter().map(|(f, o)| subscription(f, o)).collect(),
        inflight: c.inflight,
        queued: c.queued,
        dropped: c.dropped,
        bytes_in: c.traffic.bytes_in,
        bytes_out: c.traffic.bytes_out,
        messages_in: c.traffic.messages_in,
        messages_out: c.traffic.messages_out,
    }
}

fn subscription(filter: &str, opts: &crate::core::SubOptions) -> model::Subscription {
    model::Subscription {
        client_id: None,
        filter: filter.to_owned(),
        qos: opts.qos.as_u8(),
        no_local: opts.no_local,
        retain_as_published: opts.retain_as_published,
        subscription_id: opts.sub_id,
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn json<T: serde::Serialize>(value: &T) -> Reply {
    match serde_json::to_string(value) {
        Ok(body) => (StatusCode::OK, JSON, body),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, TEXT, e.to_string()),
    }
}

fn not_found(message: &str) -> Reply {
    (StatusCode::NOT_FOUND, TEXT, format!("{message}\n"))
}

/// The admin listener, bound before the broker runs (a busy address is reported at once).
#[derive(Debug)]
pub struct BoundAdmin {
    /// The address it serves on.
    pub local_addr: SocketAddr,
    socket: std::net::TcpListener,
    config: AdminConfig,
}

impl BoundAdmin {
    /// Bind `config.listen`; the error names the address.
    pub fn bind(config: &AdminConfig) -> std::io::Result<Self> {
        let socket = std::net::TcpListener::bind(&config.listen).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {} (management API): {e}", config.listen))
        })?;
        socket.set_nonblocking(true)?;
        Ok(Self { local_addr: socket.local_addr()?, socket, config: config.clone() })
    }
}

/// Checks the credentials of API requests.
#[derive(Debug)]
struct Gate {
    token: Option<(hmac::Key, hmac::Tag)>,
    basic: Option<(String, Authenticator)>,
}

impl Gate {
    fn new(config: &AdminConfig) -> Self {
        // The token is compared as an HMAC under a random key: constant time.
        let token = config.token.as_ref().and_then(|token| {
            let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new()).ok()?;
            let tag = hmac::sign(&key, token.as_bytes());
            Some((key, tag))
        });
        let basic = match (&config.username, config.password.as_deref().map(PasswordHash::parse)) {
            (Some(user), Some(Ok(hash))) => {
                let users = [(user.clone(), hash)].into_iter().collect();
                Some((user.clone(), Authenticator::new(users, true, false)))
            }
            _ => None,
        };
        Self { token, basic }
    }

    fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
        if let (Some(token), Some((key, tag))) = (value.strip_prefix("Bearer "), &self.token) {
            return hmac::verify(key, token.trim().as_bytes(), tag.as_ref()).is_ok();
        }
        if let (Some(encoded), Some((_, auth))) = (value.strip_prefix("Basic "), &self.basic) {
            let Ok(decoded) = STANDARD.decode(encoded.trim()) else { return false };
            let Ok(text) = String::from_utf8(decoded) else { return false };
            let Some((user, password)) = text.split_once(':') else { return false };
            return auth.check(Some(user), Some(password.as_bytes())).is_ok();
        }
        false
    }
}

#[derive(Clone)]
struct AppState {
    gate: Arc<Gate>,
    broker: mpsc::UnboundedSender<Envelope>,
}

/// Serve the API and the dashboard until the broker stops; requests go to `broker`.
pub async fn serve(bound: BoundAdmin, broker: mpsc::UnboundedSender<Envelope>) {
    let state = AppState { gate: Arc::new(Gate::new(&bound.config)), broker };
    let router = Router::new()
        .route("/", get(dashboard))
        .route("/api/v1/status", get(|s: State<AppState>, h: HeaderMap| ask(s, h, Request::Status)))
        .route("/api/v1/clients", get(|s: State<AppState>, h: HeaderMap| ask(s, h, Request::Clients)))
        .route(
            "/api/v1/clients/{id}",
            get(|s: State<AppState>, h: HeaderMap, Path(id): Path<String>| ask(s, h, Request::Client(id)))
                .delete(|s: State<AppState>, h: HeaderMap, Path(id): Path<String>| ask(s, h, Request::Disconnect(id))),
        )
        .route("/api/v1/subscriptions", get(|s: State<AppState>, h: HeaderMap| ask(s, h, Request::Subscriptions)))
        .route("/api/v1/retained", get(|s: State<AppState>, h: HeaderMap| ask(s, h, Request::Retained)))
        .route(
            "/api/v1/retained/{*topic}",
            axum::routing::delete(|s: State<AppState>, h: HeaderMap, Path(topic): Path<String>| {
                ask(s, h, Request::DeleteRetained(topic))
            }),
        )
        .route("/metrics", get(|s: State<AppState>, h: HeaderMap| ask(s, h, Request::Metrics)))
        .with_state(state);
    let listener = match tokio::net::TcpListener::from_std(bound.socket) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(error = %e, "management API unusable");
            return;
        }
    };
    tracing::info!(local_addr = %bound.local_addr, "management API and dashboard listening");
    if let Err(e) = axum::serve(listener, router).await {
        tracing::warn!(error = %e, "management API stopped");
    }
}

async fn ask(State(state): State<AppState>, headers: HeaderMap, request: Request) -> Response {
    if !state.gate.allows(&headers) {
        let mut response = (StatusCode::UNAUTHORIZED, "authentication required\n").into_response();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"mqttkit\""));
        return response;
    }
    let (tx, rx) = oneshot::channel();
    if state.broker.send((request, tx)).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "the broker is stopping\n").into_response();
    }
    match tokio::time::timeout(Duration::from_secs(10), rx).await {
        Ok(Ok((status, content_type, body))) => {
            (status, [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response()
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, "the broker did not answer\n").into_response(),
    }
}

/// The dashboard: one self-contained page (no build step, no download; works offline).
async fn dashboard() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        include_str!("dashboard.html"),
    )
        .into_response()
}
