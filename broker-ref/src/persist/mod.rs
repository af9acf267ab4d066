//! The persistent store (`persistence = "FILE"`): a `redb` database with one record per
//! client id (persistent session, will) and one per retained topic ([`model`]).
//!
//! The core says what changed ([`crate::core::Core::take_batch`]); a writer thread of its
//! own commits each batch in one transaction, synced to disk (`redb`'s immediate
//! durability), and reports back; only then does the core let out what depended on it
//! (acknowledgements, deliveries). One batch is written at a time, and what changes
//! meanwhile forms the next one, so under load each commit carries many changes.

pub mod model;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableError};
use tokio::sync::mpsc::UnboundedSender;
use tracing::warn;

use self::model::{Batch, ClientRecord, DeliveryRecord, EntryChange, EntryState, MessageRecord, Snapshot};

const CLIENTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("clients");
const RETAINED: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("retained");
/// The messages of sessions, by client id and number, and their states (a state changes
/// without rewriting the message).
const MESSAGES: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("messages");
const STATES: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("states");
const META: TableDefinition<'_, &str, u32> = TableDefinition::new("meta");
/// Bumped when the records change incompatibly.
const FORMAT: u32 = 2;

/// The wall clock in milliseconds since the Unix epoch.
pub fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An open store.
#[derive(Debug)]
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Open (or create) the store at `path`; errors name the file.
    pub fn open(path: &Path) -> Result<Self, String> {
        let error = |e: &dyn std::fmt::Display| format!("persistence file {}: {e}", path.display());
        let db = Database::create(path).map_err(|e| error(&e))?;
        let store = Self { db, path: path.to_owned() };
        let txn = store.db.begin_write().map_err(|e| error(&e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| error(&e))?;
            let format = meta.get("format").map_err(|e| error(&e))?.map(|v| v.value());
            match format {
                None => {
                    meta.insert("format", FORMAT).map_err(|e| error(&e))?;
                }
                Some(FORMAT) => {}
                Some(other) => return Err(error(&format!("format {other}, this broker reads format {FORMAT}"))),
            }
            txn.open_table(CLIENTS).map_err(|e| error(&e))?;
            txn.open_table(RETAINED).map_err(|e| error(&e))?;
            txn.open_table(MESSAGES).map_err(|e| error(&e))?;
            txn.open_table(STATES).map_err(|e| error(&e))?;
        }
        txn.commit().map_err(|e| error(&e))?;
        Ok(store)
    }

    /// Everything stored. A record that cannot be decoded is skipped with a warning.
    pub fn load(&self) -> Result<Snapshot, String> {
        let error = |e: &dyn std::fmt::Display| format!("persistence file {}: {e}", self.path.display());
        let txn = self.db.begin_read().map_err(|e| error(&e))?;
        let mut snapshot = Snapshot::default();
        match txn.open_table(CLIENTS) {
            Ok(table) => {
                for item in table.iter().map_err(|e| error(&e))? {
                    let (key, value) = item.map_err(|e| error(&e))?;
                    match postcard::from_bytes::<ClientRecord>(value.value()) {
                        Ok(record) => snapshot.clients.push((key.value().to_owned(), record)),
                        Err(e) => warn!(client_id = key.value(), error = %e, "unreadable session record skipped"),
                    }
                }
            }
            Err(TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(error(&e)),
        }
        match (txn.open_table(MESSAGES), txn.open_table(STATES)) {
            (Ok(messages), Ok(states)) => {
                for item in states.iter().map_err(|e| error(&e))? {
                    let (key, value) = item.map_err(|e| error(&e))?;
                    let (client, seq) = key.value();
                    let state = postcard::from_bytes::<EntryState>(value.value());
                    let message = messages.get((client, seq)).map_err(|e| error(&e))?;
                    let record = message.map(|m| postcard::from_bytes::<DeliveryRecord>(m.value()));
                    match (state, record) {
                        (Ok(state), Some(Ok(record))) => snapshot.entries.push((client.to_owned(), seq, state, record)),
                        _ => warn!(client_id = client, seq, "unreadable queued message skipped"),
                    }
                }
            }
            (Err(TableError::TableDoesNotExist(_)), _) | (_, Err(TableError::TableDoesNotExist(_))) => {}
            (Err(e), _) | (_, Err(e)) => return Err(error(&e)),
        }
        match txn.open_table(RETAINED) {
            Ok(table) => {
                for item in table.iter().map_err(|e| error(&e))? {
                    let (key, value) = item.map_err(|e| error(&e))?;
                    match postcard::from_bytes::<MessageRecord>(value.value()) {
                        Ok(record) => snapshot.retained.push(record),
                        Err(e) => warn!(topic = key.value(), error = %e, "unreadable retained record skipped"),
                    }
                }
            }
            Err(TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(error(&e)),
        }
        Ok(snapshot)
    }

    /// Write a batch in one transaction, synced to disk before this returns.
    pub fn write(&self, batch: &Batch) -> Result<(), String> {
        let error = |e: &dyn std::fmt::Display| format!("persistence file {}: {e}", self.path.display());
        let mut txn = self.db.begin_write().map_err(|e| error(&e))?;
        txn.set_durability(Durability::Immediate).map_err(|e| error(&e))?;
        {
            let mut clients = txn.open_table(CLIENTS).map_err(|e| error(&e))?;
            for (client, record) in &batch.clients {
                match record {
                    Some(record) => {
                        let bytes = postcard::to_allocvec(record).map_err(|e| error(&e))?;
                        clients.insert(client.as_str(), bytes.as_slice()).map_err(|e| error(&e))?;
                    }
                    None => {
                        clients.remove(client.as_str()).map_err(|e| error(&e))?;
                    }
                }
            }
            let mut messages = txn.open_table(MESSAGES).map_err(|e| error(&e))?;
            let mut states = txn.open_table(STATES).map_err(|e| error(&e))?;
            for (client, seq, change) in &batch.entries {
                let key = (client.as_str(), *seq);
                match change {
                    EntryChange::Put(state, message) => {
                        let bytes = postcard::to_allocvec(state).map_err(|e| error(&e))?;
                        states.insert(key, bytes.as_slice()).map_err(|e| error(&e))?;
                        if let Some(message) = message {
                            let bytes = postcard::to_allocvec(message).map_err(|e| error(&e))?;
                            messages.insert(key, bytes.as_slice()).map_err(|e| error(&e))?;
                        }
                    }
                    EntryChange::Delete => {
                        states.remove(key).map_err(|e| error(&e))?;
                        messages.remove(key).map_err(|e| error(&e))?;
                    }
                }
            }
            let mut retained = txn.open_table(RETAINED).map_err(|e| error(&e))?;
            for (topic, record) in &batch.retained {
                match record {
                    Some(record) => {
                        let bytes = postcard::to_allocvec(record).map_err(|e| error(&e))?;
                        retained.insert(topic.as_str(), bytes.as_slice()).map_err(|e| error(&e))?;
                    }
                    None => {
                        retained.remove(topic.as_str()).map_err(|e| error(&e))?;
                    }
                }
            }
        }
        txn.commit().map_err(|e| error(&e))
    }
}

/// The writer thread: batches in, `(batch id, result)` out.
#[derive(Debug)]
pub struct Writer {
    batches: mpsc::Sender<Batch>,
}

impl Writer {
    /// Start the thread; results go to `done`.
    pub fn spawn(store: Store, done: UnboundedSender<(u64, Result<(), String>)>) -> std::io::Result<Self> {
        let (batches, incoming) = mpsc::channel::<Batch>();
        std::thread::Builder::new().name("mqttkit-store".into()).spawn(move || {
            while let Ok(batch) = incoming.recv() {
                let started = std::time::Instant::now();
                let result = store.write(&batch);
                tracing::trace!(
                    batch = batch.id,
                    clients = batch.clients.len(),
                    messages = batch.entries.len(),
                    retained = batch.retained.len(),
                    micros = started.elapsed().as_micros(),
                    "batch written"
                );
                if done.send((batch.id, result)).is_err() {
                    break;
                }
            }
        })?;
        Ok(Self { batches })
    }

    /// Hand a batch to the thread; `false` if it has stopped.
    pub fn send(&self, batch: Batch) -> bool {
        self.batches.send(batch).is_ok()
    }
}

/// Results of the writer: a batch id, and whether it was written.
pub type Written = tokio::sync::mpsc::UnboundedReceiver<(u64, Result<(), String>)>;

/// Open the store at `path`, restore what it holds into `core`, and start the writer.
/// Batch results arrive on the returned receiver.
pub fn start(path: &Path, core: &mut crate::core::Core) -> std::io::Result<(Writer, Written)> {
    let invalid = |e: String| std::io::Error::other(e);
    let store = Store::open(path).map_err(invalid)?;
    let snapshot = store.load().map_err(invalid)?;
    let (sessions, retained) = core.restore(snapshot, std::time::Instant::now(), wall_ms());
    tracing::info!(file = %path.display(), sessions, retained, "persistent store opened");
    let (done_tx, done_rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = Writer::spawn(store, done_tx)?;
    Ok((writer, done_rx))
}
