//! Where the core's bytes go. TCP and TLS are written from the connection task itself
//! (vectored, no task hop per packet); WebSocket goes through a writer task, because a
//! message send cannot be abandoned halfway as a `select!` branch may be.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::transport::{BoxedIo, Writer};

/// Bytes queued for a direct writer before the connection stops taking requests.
const DIRECT_LIMIT: usize = 1024 * 1024;
/// Chunks queued towards a writer task.
const TASK_QUEUE: usize = 64;
/// Buffers joined into one vectored write.
const MAX_SLICES: usize = 64;
/// How long a closing transport may take to flush its last bytes (e.g. DISCONNECT).
pub(super) const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) enum Output {
    Direct { writer: WriteHalf<BoxedIo>, queue: VecDeque<Bytes>, offset: usize, queued: usize, unflushed: bool },
    Task { queue: mpsc::Sender<Bytes>, handle: JoinHandle<io::Result<()>>, pending: Option<Bytes> },
}

impl Output {
    pub fn new(writer: Writer) -> Self {
        match writer {
            Writer::Stream(writer) => {
                Self::Direct { writer, queue: VecDeque::new(), offset: 0, queued: 0, unflushed: false }
            }
            websocket @ Writer::WebSocket(_) => {
                let (queue, rx) = mpsc::channel(TASK_QUEUE);
                Self::Task { queue, handle: tokio::spawn(write_loop(websocket, rx)), pending: None }
            }
        }
    }

    /// Whether [`Self::push`] takes more bytes now.
    pub fn accepts(&self) -> bool {
        match self {
            Self::Direct { .. } => true,
            Self::Task { pending, .. } => pending.is_none(),
        }
    }

    /// Whether the connection should stop producing (taking requests) for now.
    pub fn congested(&self) -> bool {
        match self {
            Self::Direct { queued, .. } => *queued >= DIRECT_LIMIT,
            Self::Task { pending, .. } => pending.is_some(),
        }
    }

    /// Queue bytes (only when [`Self::accepts`]).
    pub fn push(&mut self, bytes: Bytes) {
        match self {
            Self::Direct { queue, queued, .. } => {
                *queued += bytes.len();
                queue.push_back(bytes);
            }
            Self::Task { queue, pending, .. } => {
                if let Err(mpsc::error::TrySendError::Full(bytes)) = queue.try_send(bytes) {
                    *pending = Some(bytes);
                }
            }
        }
    }

    /// Whether [`Self::progress`] has something to do (a writer task is always watched,
    /// to notice when it fails).
    pub fn busy(&self) -> bool {
        match self {
            Self::Direct { queue, unflushed, .. } => !queue.is_empty() || *unflushed,
            Self::Task { .. } => true,
        }
    }

    /// One step: a write, a flush, or a hand-over to the writer task. `Err` when the
    /// transport failed. Cancel-safe.
    pub async fn progress(&mut self) -> Result<(), String> {
        match self {
            Self::Direct { writer, queue, offset, queued, unflushed } => {
                if queue.is_empty() {
                    writer.flush().await.map_err(|e| e.to_string())?;
                    *unflushed = false;
                    return Ok(());
                }
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let mut count = 0;
                for (i, chunk) in queue.iter().take(MAX_SLICES).enumerate() {
                    let chunk = if i == 0 { chunk.get(*offset..).unwrap_or_default() } else { chunk };
                    if let Some(slice) = slices.get_mut(i) {
                        *slice = IoSlice::new(chunk);
                        count = i + 1;
                    }
                }
                let written = writer.write_vectored(slices.get(..count).unwrap_or_default()).await;
                let mut written = match written {
                    Ok(0) => return Err("write returned zero bytes".into()),
                    Ok(n) => n,
                    Err(e) => return Err(e.to_string()),
                };
                *queued = queued.saturating_sub(written);
                *unflushed = true;
                while let Some(front) = queue.front() {
                    let left = front.len() - *offset;
                    if written < left {
                        *offset += written;
                        break;
                    }
                    written -= left;
                    *offset = 0;
                    queue.pop_front();
                }
                Ok(())
            }
            Self::Task { queue, handle, pending } => {
                tokio::select! {
                    permit = queue.reserve(), if pending.is_some() => {
                        match (permit, pending.take()) {
                            (Ok(permit), Some(bytes)) => permit.send(bytes),
                            _ => return Err("write side closed".into()),
                        }
                        Ok(())
                    }
                    ended = handle => Err(match ended {
                        Ok(Err(e)) => e.to_string(),
                        _ => "write side closed".into(),
                    }),
                }
            }
        }
    }

    /// Write what is queued, then shut the sending side down, in the background.
    pub fn close(self) -> JoinHandle<io::Result<()>> {
        match self {
            Self::Direct { mut writer, queue, offset, .. } => tokio::spawn(async move {
                for (i, chunk) in queue.into_iter().enumerate() {
                    let chunk = if i == 0 { chunk.slice(offset.min(chunk.len())..) } else { chunk };
                    writer.write_all(&chunk).await?;
                }
                writer.flush().await?;
                writer.shutdown().await
            }),
            Self::Task { queue, handle, pending } => {
                if let Some(bytes) = pending {
                    let _ = queue.try_send(bytes);
                }
                // Dropping the queue lets the writer task finish it, then shut down.
                drop(queue);
                handle
            }
        }
    }
}

/// The WebSocket writer task: write chunks as they come (joining small queued ones into
/// one message), then close once the queue is closed.
async fn write_loop(mut writer: Writer, mut queue: mpsc::Receiver<Bytes>) -> io::Result<()> {
    const JOIN_BELOW: usize = 16 * 1024;
    let mut joined = BytesMut::new();
    while let Some(first) = queue.recv().await {
        if first.len() >= JOIN_BELOW {
            writer.write(&first).await?;
            continue;
        }
        joined.clear();
        joined.extend_from_slice(&first);
        while joined.len() < JOIN_BELOW {
            match queue.try_recv() {
                Ok(more) => joined.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        writer.write(&joined).await?;
    }
    writer.close_now().await;
    Ok(())
}
