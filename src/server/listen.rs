//! The accept loop: bounded connections, a deadline for request heads, graceful shutdown.
//!
//! `axum::serve` gives hyper no timer, so a client that opens a connection and never finishes its
//! request head holds it (and its task) forever; enough of them exhaust file descriptors. Here a
//! connection that has waited longer than the head timeout for a request head (counted from its
//! opening or from the end of its last answer, whichever is later) is closed, the number of open
//! connections is capped (past the cap a new connection is closed at once rather than queued), and
//! heads are limited in size.
//!
//! The head deadline is kept by one watchdog task per connection, not by hyper's
//! `header_read_timeout`: hyper arms a fresh timer for every request head, a boxed sleep
//! registered in and removed from tokio's timer wheel per request. The watchdog sleeps a whole
//! timeout at a time and, on waking, reads two counters the service keeps for the connection
//! ([`Activity`]): while an answer is in flight, or the last one ended less than a timeout ago,
//! it sleeps on; otherwise it aborts the connection's task, which closes it. The same rule closes
//! an HTTP/2 connection that has had no stream for a timeout.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::response::Response;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tower::Service;

use super::App;

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Longest a connection may wait for a request head, counted from its opening or from the end
    /// of its last answer.
    pub header_read_timeout: Duration,
    /// Connections open at once; more are closed on accept.
    pub max_connections: usize,
    /// Largest request head hyper buffers, bytes (larger ones get hyper's 431).
    pub max_head_bytes: usize,
    /// Longest the server waits for open connections at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 4096,
            max_head_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// What one connection's service tells its watchdog: answers in flight and when the last ended.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds from `opened` to the end of the last answer (its body dropped by hyper).
    last_done_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
        }
    }

    /// Counts an answer in flight until the returned guard drops.
    fn serving(self: &Arc<Self>) -> Serving {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Serving(Arc::clone(self))
    }

    /// When the watchdog must look again, or `None` when the connection has waited `limit` for a
    /// request head and is to be closed.
    fn next_check(&self, limit: Duration, now: Instant) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Some(now + limit);
        }
        let idle_since =
            self.opened + Duration::from_millis(self.last_done_ms.load(Ordering::Acquire));
        let deadline = idle_since + limit;
        (deadline > now).then_some(deadline)
    }
}

/// One answer in flight on a connection; dropping it stamps the connection's last activity.
#[derive(Debug)]
struct Serving(Arc<Activity>);

impl Drop for Serving {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        // The stamp goes first, so a watchdog that sees no answer in flight sees its end.
        self.0.last_done_ms.fetch_max(ms, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body carrying its [`Serving`] guard: hyper drops the body once it is written, so
/// an answer counts as in flight until its last byte is handed to the connection.
#[derive(Debug)]
struct Counted {
    body: Body,
    _serving: Serving,
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// `app` as one connection's hyper service, counting its answers in `activity`.
fn counted_service(
    app: App,
    activity: Arc<Activity>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Counted>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Counted>, Infallible>> + Send + 'static,
> + Send
       + 'static {
    hyper::service::service_fn(move |req: Request<Incoming>| {
        let serving = activity.serving();
        // The app is always ready, and a clone is two reference counts.
        let answer = app.clone().call(req);
        async move {
            let response = answer.await?;
            Ok(response.map(|body| Counted {
                body,
                _serving: serving,
            }))
        }
    })
}

/// A connection's watchdog: aborts its task (closing it) once it has waited `limit` for a request
/// head, and ends with the connection.
///
/// A task of its own rather than a timer polled beside the connection: the connection's task is
/// woken for every request, and polling a timer there cost every request.
async fn close_when_idle(
    conn: AbortHandle,
    mut ended: oneshot::Receiver<Infallible>,
    activity: Arc<Activity>,
    limit: Duration,
    peer: SocketAddr,
) {
    let mut at = activity.opened + limit;
    loop {
        tokio::select! {
            _ = &mut ended => return,
            () = tokio::time::sleep_until(at) => {}
        }
        match activity.next_check(limit, Instant::now()) {
            Some(next) => at = next,
            None => {
                tracing::debug!(%peer, "no request head within the head timeout: closing");
                conn.abort();
                return;
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in flight finish
/// (for at most the grace period).
pub async fn serve_with_limits(
    listener: TcpListener,
    app: App,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(limits.max_head_bytes.max(8192));
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let head_limit = limits.header_read_timeout;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = limits.max_connections, "too many connections: closing a new one");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let service = counted_service(app.clone(), Arc::clone(&activity));
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        let (ended, ended_rx) = oneshot::channel::<Infallible>();
        let served = tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            // Ending (or being aborted) lets the watchdog go at once.
            drop(ended);
            drop(permit);
        });
        tokio::spawn(close_when_idle(
            served.abort_handle(),
            ended_rx,
            activity,
            head_limit,
            peer,
        ));
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period: closing them");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(10);

    #[test]
    fn a_connection_waiting_a_whole_limit_from_its_opening_is_closed() {
        let a = Activity::new();
        let at = a.opened + Duration::from_secs(3);
        assert_eq!(a.next_check(LIMIT, at), Some(a.opened + LIMIT));
        assert_eq!(a.next_check(LIMIT, a.opened + LIMIT), None);
    }

    #[test]
    fn an_answer_in_flight_holds_the_connection_open_however_long_it_takes() {
        let a = Arc::new(Activity::new());
        let serving = a.serving();
        let late = a.opened + LIMIT * 5;
        assert_eq!(a.next_check(LIMIT, late), Some(late + LIMIT));
        drop(serving);
        assert_eq!(a.in_flight.load(Ordering::Acquire), 0);
    }

    #[test]
    fn the_wait_counts_from_the_end_of_the_last_answer() {
        let a = Arc::new(Activity::new());
        a.last_done_ms.store(7_000, Ordering::Release);
        let idle_since = a.opened + Duration::from_secs(7);
        let now = a.opened + Duration::from_secs(12);
        assert_eq!(a.next_check(LIMIT, now), Some(idle_since + LIMIT));
        assert_eq!(a.next_check(LIMIT, idle_since + LIMIT), None);
    }

    #[test]
    fn overlapping_answers_keep_the_latest_end() {
        let a = Arc::new(Activity::new());
        let first = a.serving();
        let second = a.serving();
        a.last_done_ms.store(60_000, Ordering::Release);
        drop(first); // ends "now", well before the 60 s stamped above: the later stamp stays
        assert_eq!(a.last_done_ms.load(Ordering::Acquire), 60_000);
        assert!(a.next_check(LIMIT, a.opened + LIMIT * 3).is_some());
        drop(second);
        assert_eq!(a.in_flight.load(Ordering::Acquire), 0);
    }
}
