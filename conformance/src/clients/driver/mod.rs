//! Drivers: how the runner makes a client library act. A driver receives commands
//! (`connect`, `publish`, `subscribe`, `unsubscribe`, `disconnect`) and reports what the
//! library tells its application (`connected`, `message`, `published`, …), as JSON objects,
//! one per line (`conformance/CLIENT-DRIVERS.md`).
//!
//! Three kinds share that protocol: a child process named by a driver file
//! (`conformance/drivers/<name>/driver.toml`), the embedded mqttkit-client (in-process, the
//! default), and in-process drivers given by code (tests' fake clients).

mod embedded;
mod process;

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value as Json, json};
use tokio::sync::mpsc;

use crate::client::Trace;
use crate::observed::{Observed, Value};
use crate::outcome::Direction;
use crate::version::Version;

pub use embedded::embedded_driver;

/// Environment variable holding the URL of the runner's listener, for drivers that want it
/// before the first `connect` command (which carries it too).
pub const BROKER_URL_ENV: &str = "MQTTKIT_BROKER_URL";

/// The two ends of an in-process driver: commands in, messages out (`hello` first).
#[derive(Debug)]
pub struct DriverIo {
    /// Commands from the runner.
    pub commands: mpsc::UnboundedReceiver<Json>,
    /// Messages to the runner.
    pub events: mpsc::UnboundedSender<Json>,
}

/// Starts an in-process driver for one scenario run: called with the listener's URL.
pub type InProcessStart = Arc<dyn Fn(String, DriverIo) + Send + Sync>;

/// A driver file (`driver.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriverFile {
    /// Library name for reports (the driver's `hello` may refine it with a version).
    pub name: String,
    /// Program and arguments; `{dir}` is the driver file's folder, `{cache}` the install
    /// folder (`target/client-drivers/<folder name>`, or `$MQTTKIT_DRIVERS_DIR/<folder>`).
    pub command: Vec<String>,
    /// Extra environment variables (same placeholders).
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// What installs it (documentation; `conformance/drivers/driver.sh install NAME` runs it).
    #[serde(default)]
    pub install: Option<String>,
}

/// How to start the client under test.
#[derive(Clone)]
pub enum Driver {
    /// A child process speaking JSON lines on stdin / stdout.
    Process {
        /// Name for reports.
        name: String,
        /// Program and arguments, placeholders expanded.
        command: Vec<String>,
        /// Extra environment.
        env: Vec<(String, String)>,
    },
    /// A driver running in the runner's process.
    InProcess {
        /// Name for reports.
        name: String,
        /// Starts one instance.
        start: InProcessStart,
    },
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Process { name, command, .. } => write!(f, "Driver::Process({name}: {command:?})"),
            Self::InProcess { name, .. } => write!(f, "Driver::InProcess({name})"),
        }
    }
}

impl Driver {
    /// The name given in reports.
    pub fn name(&self) -> &str {
        match self {
            Self::Process { name, .. } | Self::InProcess { name, .. } => name,
        }
    }

    /// Load a driver by name (a folder under `drivers_dir`) or by path to a `driver.toml`.
    pub fn load(name_or_path: &str, drivers_dir: &Path, cache_dir: &Path) -> Result<Self, String> {
        let as_path = PathBuf::from(name_or_path);
        let file = if as_path.extension().is_some_and(|e| e == "toml") {
            as_path
        } else {
            drivers_dir.join(name_or_path).join("driver.toml")
        };
        let text = std::fs::read_to_string(&file).map_err(|e| {
            let known = known_drivers(drivers_dir);
            format!(
                "no driver `{name_or_path}` ({}: {e}); drivers: mqttkit-client (embedded, the default){}",
                file.display(),
                known.iter().map(|k| format!(", {k}")).collect::<String>()
            )
        })?;
        let spec: DriverFile = toml::from_str(&text).map_err(|e| format!("{}: {}", file.display(), e.message()))?;
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let folder = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let cache = cache_dir.join(&folder);
        let expand = |text: &str| {
            text.replace("{dir}", &dir.display().to_string()).replace("{cache}", &cache.display().to_string())
        };
        if spec.command.is_empty() {
            return Err(format!("{}: `command` is empty", file.display()));
        }
        Ok(Self::Process {
            name: spec.name.clone(),
            command: spec.command.iter().map(|c| expand(c)).collect(),
            env: spec.env.iter().map(|(k, v)| (k.clone(), expand(v))).collect(),
        })
    }
}

/// Driver folders with a `driver.toml`.
pub fn known_drivers(drivers_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(drivers_dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().join("driver.toml").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// What a driver says about itself in its first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Library name.
    pub library: String,
    /// Library version.
    pub version: String,
    /// Protocol versions it can drive.
    pub versions: Vec<Version>,
    /// Optional abilities (e.g. `disconnect-reason-codes`: it reports the reason code of a
    /// server's DISCONNECT).
    pub capabilities: Vec<String>,
}

impl Hello {
    fn parse(message: &Json) -> Result<Self, String> {
        let text = |key: &str| message.get(key).and_then(Json::as_str).unwrap_or_default().to_owned();
        let list = |key: &str| -> Vec<String> {
            message
                .get(key)
                .and_then(Json::as_array)
                .map(|items| items.iter().filter_map(Json::as_str).map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let versions = list("versions").iter().map(|v| v.parse::<Version>()).collect::<Result<Vec<_>, _>>()?;
        if versions.is_empty() {
            return Err(format!("the driver's hello names no protocol version: {message}"));
        }
        Ok(Self {
            library: text("library"),
            version: text("library_version"),
            versions,
            capabilities: list("capabilities"),
        })
    }

    /// `library version`.
    pub fn describe(&self) -> String {
        if self.version.is_empty() { self.library.clone() } else { format!("{} {}", self.library, self.version) }
    }
}

/// Why a driver stopped being usable: the run's verdict is `error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverFailure {
    /// It could not be started.
    Start(String),
    /// It did not answer in time.
    Hung(String),
    /// It exited, or closed its output, without being asked to.
    Crashed(String),
    /// It wrote something that is not a protocol message.
    Garbled(String),
}

impl fmt::Display for DriverFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Start(why) => write!(f, "the driver could not be started: {why}"),
            Self::Hung(why) => write!(f, "the driver hung: {why}"),
            Self::Crashed(why) => write!(f, "the driver crashed: {why}"),
            Self::Garbled(why) => write!(f, "the driver broke the protocol: {why}"),
        }
    }
}

/// The driver's answer to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Accepted (it runs on; completion comes as an event).
    Ack,
    /// The library cannot do this: the scenario is skipped.
    Unsupported(String),
    /// The library refused the command.
    Error(String),
}

/// What comes out of a driver, as the runner's channel carries it.
#[derive(Debug)]
pub(crate) enum Output {
    /// A protocol message.
    Message(Json),
    /// A line that is not one.
    Garbled(String),
    /// The driver ended (with how, and its last words on stderr).
    Ended(String),
}

/// One started driver, for one scenario run.
pub struct DriverSession {
    commands: mpsc::UnboundedSender<Json>,
    output: mpsc::UnboundedReceiver<Output>,
    /// Events received while waiting for a reply, in order.
    pending: VecDeque<Observed>,
    /// Set once the driver has ended or broken the protocol.
    failure: Option<DriverFailure>,
    quitting: bool,
    next_id: u64,
    /// Command names by id, to label completion events.
    names: Vec<(u64, String)>,
    trace: Trace,
    version: Version,
    child: Option<process::Child>,
}

impl fmt::Debug for DriverSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriverSession").field("failure", &self.failure).finish_non_exhaustive()
    }
}

impl DriverSession {
    /// Start the driver and wait (up to `timeout`) for its `hello`.
    pub async fn start(
        driver: &Driver,
        url: &str,
        version: Version,
        trace: Trace,
        timeout: Duration,
    ) -> Result<(Self, Hello), DriverFailure> {
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (output_tx, output_rx) = mpsc::unbounded_channel();
        let child = match driver {
            Driver::Process { command, env, .. } => {
                Some(process::spawn(command, env, url, commands_rx, output_tx).map_err(DriverFailure::Start)?)
            }
            Driver::InProcess { start, .. } => {
                let (events_tx, mut events_rx) = mpsc::unbounded_channel::<Json>();
                start(url.to_owned(), DriverIo { commands: commands_rx, events: events_tx });
                tokio::spawn(async move {
                    while let Some(message) = events_rx.recv().await {
                        if output_tx.send(Output::Message(message)).is_err() {
                            return;
                        }
                    }
                    let _ = output_tx.send(Output::Ended("the in-process driver stopped".into()));
                });
                None
            }
        };
        let mut session = Self {
            commands: commands_tx,
            output: output_rx,
            pending: VecDeque::new(),
            failure: None,
            quitting: false,
            next_id: 1,
            names: Vec::new(),
            trace,
            version,
            child,
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let hello = match tokio::time::timeout_at(deadline, session.output.recv()).await {
            Err(_) => {
                return Err(DriverFailure::Hung(format!(
                    "no `hello` within {:.1} s of starting it{}",
                    timeout.as_secs_f64(),
                    session.stderr_tail()
                )));
            }
            Ok(None) => return Err(DriverFailure::Crashed("it ended before saying `hello`".into())),
            Ok(Some(Output::Ended(how))) => return Err(DriverFailure::Crashed(format!("before `hello`: {how}"))),
            Ok(Some(Output::Garbled(line))) => {
                return Err(DriverFailure::Garbled(format!("its first line is not a JSON `hello`: {line}")));
            }
            Ok(Some(Output::Message(message))) => message,
        };
        if hello.get("event").and_then(Json::as_str) != Some("hello") {
            return Err(DriverFailure::Garbled(format!("its first message is not `hello`: {hello}")));
        }
        let hello = Hello::parse(&hello).map_err(DriverFailure::Garbled)?;
        session.trace.record("driver", Direction::Event, format!("hello: {}", hello.describe()), &[]);
        Ok((session, hello))
    }

    /// Send a command (`{"cmd": ...}` plus arguments; the id is added) and wait up to
    /// `timeout` for its reply. Events arriving meanwhile are kept for [`Self::next_event`].
    pub async fn command(&mut self, mut command: Json, timeout: Duration) -> Result<(u64, Reply), DriverFailure> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        let id = self.next_id;
        self.next_id += 1;
        let name = command.get("cmd").and_then(Json::as_str).unwrap_or("?").to_owned();
        if let Some(object) = command.as_object_mut() {
            object.insert("id".into(), json!(id));
        }
        self.trace.record("driver", Direction::Sent, format!("command {command}"), &[]);
        self.names.push((id, name.clone()));
        if self.commands.send(command).is_err() {
            return Err(self.fail(DriverFailure::Crashed(format!("its input closed before `{name}`"))));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.output.recv()).await {
                Err(_) => {
                    return Err(self.fail(DriverFailure::Hung(format!(
                        "no answer to `{name}` within {:.1} s (a driver answers every command at once){}",
                        timeout.as_secs_f64(),
                        self.stderr_tail()
                    ))));
                }
                Ok(output) => self.absorb(output)?,
            };
            let Some(message) = message else { continue };
            let kind = message.get("event").and_then(Json::as_str).unwrap_or_default();
            let for_this = message.get("id").and_then(Json::as_u64) == Some(id);
            let reason = || {
                ["reason", "message"]
                    .iter()
                    .find_map(|k| message.get(*k).and_then(Json::as_str))
                    .unwrap_or("(no reason given)")
                    .to_owned()
            };
            match (kind, for_this) {
                ("ack", true) => return Ok((id, Reply::Ack)),
                ("unsupported", true) => return Ok((id, Reply::Unsupported(reason()))),
                ("error", true) => return Ok((id, Reply::Error(reason()))),
                _ => {
                    let observed = self.observe(&message);
                    self.pending.push_back(observed);
                }
            }
        }
    }

    /// The next event (not a reply) before `deadline`; `Ok(None)` on timeout.
    pub async fn next_event(&mut self, deadline: tokio::time::Instant) -> Result<Option<Observed>, DriverFailure> {
        if let Some(event) = self.pending.pop_front() {
            return Ok(Some(event));
        }
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        loop {
            let output = match tokio::time::timeout_at(deadline, self.output.recv()).await {
                Err(_) => return Ok(None),
                Ok(output) => output,
            };
            if let Some(message) = self.absorb(output)? {
                return Ok(Some(self.observe(&message)));
            }
        }
    }

    /// Put events a step passed over back, in their order, ahead of newer ones.
    pub fn requeue(&mut self, events: Vec<Observed>) {
        for event in events.into_iter().rev() {
            self.pending.push_front(event);
        }
    }

    /// Ask the driver to stop, then make sure it has: a driver that had already ended on
    /// its own reports that as its failure.
    pub async fn finish(mut self) -> Option<DriverFailure> {
        // Whatever it said last (e.g. an exit) is still in the channel.
        while let Ok(output) = self.output.try_recv() {
            if let Ok(Some(message)) = self.absorb(Some(output)) {
                let observed = self.observe(&message);
                self.pending.push_back(observed);
            }
        }
        let failure = self.failure.clone();
        self.quitting = true;
        let _ = self.commands.send(json!({"cmd": "quit"}));
        if let Some(child) = self.child.take() {
            child.stop(Duration::from_millis(500)).await;
        }
        failure
    }

    /// The driver's last lines on stderr, for failure reports.
    fn stderr_tail(&self) -> String {
        match self.child.as_ref().map(process::Child::stderr_tail) {
            Some(tail) if !tail.is_empty() => format!("; its stderr ends with: {tail}"),
            _ => String::new(),
        }
    }

    fn fail(&mut self, failure: DriverFailure) -> DriverFailure {
        self.trace.record("driver", Direction::Event, failure.to_string(), &[]);
        self.failure = Some(failure.clone());
        failure
    }

    /// Turn one output into a message, or a failure.
    fn absorb(&mut self, output: Option<Output>) -> Result<Option<Json>, DriverFailure> {
        match output {
            None => Err(self.fail(DriverFailure::Crashed("its output closed".into()))),
            Some(Output::Ended(how)) => {
                let tail = self.stderr_tail();
                Err(self.fail(DriverFailure::Crashed(format!("{how}{tail}"))))
            }
            Some(Output::Garbled(line)) => Err(self.fail(DriverFailure::Garbled(format!("not a JSON object: {line}")))),
            Some(Output::Message(message)) => {
                if message.get("event").and_then(Json::as_str) == Some("log") {
                    let text = message.get("message").and_then(Json::as_str).unwrap_or_default();
                    self.trace.record("driver", Direction::Event, format!("log: {text}"), &[]);
                    return Ok(None);
                }
                Ok(Some(message))
            }
        }
    }

    /// A driver event as an observation: its type upper-cased (`MESSAGE`), its fields,
    /// `payload`/`payload_hex` as bytes, 5.0 properties by their names.
    fn observe(&self, message: &Json) -> Observed {
        let kind = message.get("event").and_then(Json::as_str).unwrap_or("?").to_ascii_uppercase();
        let mut observed = Observed::new(&kind);
        observed.version = Some(self.version);
        if let Some(object) = message.as_object() {
            for (key, value) in object {
                match key.as_str() {
                    "event" => {}
                    "id" => {
                        if let Some(name) = value
                            .as_u64()
                            .and_then(|id| self.names.iter().find(|(known, _)| *known == id))
                            .map(|(_, n)| n.clone())
                        {
                            observed.field("command", Value::Str(name));
                        }
                    }
                    "payload_hex" => {
                        let bytes = value.as_str().and_then(|h| crate::matcher::parse_hex(h).ok()).unwrap_or_default();
                        observed.field("payload", Value::Bytes(bytes));
                    }
                    "payload" => {
                        let text = value.as_str().unwrap_or_default();
                        observed.field("payload", Value::Bytes(text.as_bytes().to_vec()));
                    }
                    "properties" => {
                        if let Some(properties) = value.as_object() {
                            for (name, value) in properties {
                                let value = if name == "correlation_data" {
                                    Value::Bytes(
                                        value
                                            .as_str()
                                            .and_then(|h| crate::matcher::parse_hex(h).ok())
                                            .unwrap_or_default(),
                                    )
                                } else {
                                    json_value(value)
                                };
                                observed.properties.insert(name.clone(), value);
                            }
                        }
                    }
                    _ if value.is_null() => {}
                    _ => observed.field(key, json_value(value)),
                }
            }
        }
        self.trace.record("driver", Direction::Received, observed.to_string(), &[]);
        observed
    }
}

/// A JSON value as a pattern-matchable value.
fn json_value(value: &Json) -> Value {
    match value {
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => Value::Int(n.as_u64().unwrap_or_default()),
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) => Value::List(items.iter().map(json_value).collect()),
        Json::Null => Value::Str(String::new()),
        Json::Object(_) => Value::Str(value.to_string()),
    }
}
