//! The task of one connection: read and hand bytes to the core, write what the socket
//! did not take at once, and the final flush when the core closes the connection.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::tcp::OwnedWriteHalf;
use tracing::debug;

use super::{CLOSE_FLUSH, Link, MAX_SLICES, Shared, flush};
use crate::core::ConnId;

/// Reads handled in one poll before the task lets the others run.
const READS_PER_POLL: usize = 8;

/// Why a connection's task ends.
enum End {
    /// The peer closed the connection or it failed.
    Gone,
    /// The core closed it: flush these bytes, then close.
    Closing(Vec<Bytes>),
}

pub(super) async fn run(shared: Rc<Shared>, id: ConnId, link: Rc<Link>, mut reader: OwnedReadHalf) {
    let end = poll_fn(|cx| poll_connection(&shared, id, &link, &mut reader, cx)).await;
    match end {
        End::Gone => {
            debug!(?id, "connection closed by peer");
            shared.links.borrow_mut().remove(&id);
            shared.core.borrow_mut().connection_closed(id, Instant::now());
            flush(&shared);
        }
        End::Closing(unsent) => {
            // Boxed: only closing connections pay for the flush's state.
            let writer = link.writer.borrow_mut().take();
            if let Some(writer) = writer {
                Box::pin(close(writer, unsent)).await;
            }
        }
    }
    *link.waker.borrow_mut() = None;
    drop(reader);
    let left = shared.tasks.get().saturating_sub(1);
    shared.tasks.set(left);
    if left == 0 {
        shared.all_closed.notify_waiters();
    }
}

/// Write what was queued before the close (for a while at most), then close.
async fn close(mut writer: OwnedWriteHalf, unsent: Vec<Bytes>) {
    let _ = tokio::time::timeout(CLOSE_FLUSH, async {
        for chunk in &unsent {
            writer.write_all(chunk).await?;
        }
        writer.shutdown().await
    })
    .await;
}

fn poll_connection(
    shared: &Shared,
    id: ConnId,
    link: &Link,
    reader: &mut OwnedReadHalf,
    cx: &mut Context<'_>,
) -> Poll<End> {
    {
        let mut waker = link.waker.borrow_mut();
        if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *waker = Some(cx.waker().clone());
        }
    }
    if let Some(unsent) = link.closing.borrow_mut().take() {
        return Poll::Ready(End::Closing(unsent));
    }
    if link.broken.get() {
        return Poll::Ready(End::Gone);
    }
    if link.blocked.get() && poll_write(shared, id, link, cx).is_err() {
        return Poll::Ready(End::Gone);
    }
    for _ in 0..READS_PER_POLL {
        if !shared.core.borrow().wants_input(id) {
            // The outbound queue is full: read again once it drains (the writer wakes us).
            link.paused.set(true);
            return Poll::Pending;
        }
        link.paused.set(false);
        let read = {
            let mut scratch = shared.scratch.borrow_mut();
            let mut buf = ReadBuf::new(&mut scratch[..]);
            match Pin::new(&mut *reader).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(None),
                Poll::Ready(Ok(())) => {
                    shared.core.borrow_mut().handle_bytes(id, buf.filled(), Instant::now());
                    Poll::Ready(Some(()))
                }
                Poll::Ready(Err(_)) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        };
        match read {
            Poll::Ready(Some(())) => {
                flush(shared);
                if let Some(unsent) = link.closing.borrow_mut().take() {
                    return Poll::Ready(End::Closing(unsent));
                }
                if link.broken.get() {
                    return Poll::Ready(End::Gone);
                }
            }
            Poll::Ready(None) => return Poll::Ready(End::Gone),
            Poll::Pending => return Poll::Pending,
        }
    }
    // Let the other tasks run; continue at once.
    cx.waker().wake_by_ref();
    Poll::Pending
}

/// Write what is waiting for a blocked connection while the socket takes it; registers for
/// writability when it does not. An error means the connection is gone.
fn poll_write(shared: &Shared, id: ConnId, link: &Link, cx: &mut Context<'_>) -> io::Result<()> {
    loop {
        let written = {
            let mut core = shared.core.borrow_mut();
            let mut slices = [io::IoSlice::new(&[]); MAX_SLICES];
            let n = core.transmit(id, &mut slices);
            if n == 0 {
                link.blocked.set(false);
                return Ok(());
            }
            let mut writer = link.writer.borrow_mut();
            let Some(w) = writer.as_mut() else { return Ok(()) };
            match Pin::new(w).poll_write_vectored(cx, &slices[..n]) {
                Poll::Ready(Ok(written)) => written,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => return Ok(()),
            }
        };
        shared.core.borrow_mut().transmitted(id, written, Instant::now());
        if shared.core.borrow().pending_bytes(id) == 0 {
            link.blocked.set(false);
            // Writing made room: what waited for it (and other connections) goes out.
            flush(shared);
            return Ok(());
        }
    }
}
