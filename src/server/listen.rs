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
//!
//! Shutdown reaches each connection without a shared lock on its path. `hyper_util`'s
//! `GracefulShutdown` polls a `watch` channel's change beside the connection, and every poll of
//! a pending change takes the lock of that one channel's waiter list, which all connections
//! share: two or three times a request, the same lock word moving between the cores serving
//! them (and ~190 of a 1.2 km request's ~20k instructions under callgrind). Here a connection's
//! task reads one flag that only shutdown writes ([`UntilStopped`]); an idle connection, whose
//! task is not being polled, is woken by its watchdog, which does wait on a channel, but only
//! between its own rare wake-ups. The connections still open are counted by the connection
//! slots: shutdown waits until every slot is free again.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use atomic_waker::AtomicWaker;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::response::Response;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Semaphore};
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

/// What one connection's service tells its watchdog (answers in flight and when the last
/// ended), and how the watchdog wakes the connection's task.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds from `opened` to the end of the last answer (its body dropped by hyper).
    last_done_ms: AtomicU64,
    /// The connection's task, as of its last poll.
    task: AtomicWaker,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
            task: AtomicWaker::new(),
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

pin_project_lite::pin_project! {
    /// A connection that begins hyper's graceful shutdown (finish the answers in flight, take no
    /// new request, send HTTP/2's GOAWAY) at the first poll after `stopping` is set.
    struct UntilStopped<C> {
        #[pin]
        conn: C,
        stopping: Arc<AtomicBool>,
        activity: Arc<Activity>,
        shutting_down: bool,
    }
}

impl<C: GracefulConnection> Future for UntilStopped<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let mut this = self.project();
        if !*this.shutting_down {
            // Registered before the flag is read: a shutdown that sets the flag after this read
            // wakes the waker registered here, so the task is polled again and sees it.
            this.activity.task.register(cx.waker());
            if this.stopping.load(Ordering::Acquire) {
                *this.shutting_down = true;
                this.conn.as_mut().graceful_shutdown();
            }
        }
        this.conn.poll(cx)
    }
}

/// A connection's watchdog: aborts its task (closing it) once it has waited `limit` for a request
/// head, wakes it when the server stops (so an idle connection learns of it), and ends with the
/// connection.
///
/// A task of its own rather than a timer polled beside the connection: the connection's task is
/// woken for every request, and polling a timer there cost every request.
async fn close_when_idle(
    conn: AbortHandle,
    mut ended: oneshot::Receiver<Infallible>,
    activity: Arc<Activity>,
    limit: Duration,
    peer: SocketAddr,
    mut stop: watch::Receiver<()>,
) {
    let mut at = activity.opened + limit;
    let mut stopped = false;
    loop {
        tokio::select! {
            _ = &mut ended => return,
            () = tokio::time::sleep_until(at) => {}
            // A closed channel means the server is gone: as good as a stop. Once only, since
            // a changed or closed channel stays ready.
            _ = stop.changed(), if !stopped => {
                stopped = true;
                activity.task.wake();
                continue;
            }
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
    // At most u32::MAX, so that shutdown can wait for every slot in one `acquire_many`.
    let max_connections = limits.max_connections.clamp(1, u32::MAX as usize);
    let slots = Arc::new(Semaphore::new(max_connections));
    let stopping = Arc::new(AtomicBool::new(false));
    // The flag is the shutdown's one state; the channel only wakes the watchdogs.
    let (stop, stop_rx) = watch::channel(());
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
        let conn = UntilStopped {
            conn: builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned(),
            stopping: Arc::clone(&stopping),
            activity: Arc::clone(&activity),
            shutting_down: false,
        };
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
            stop_rx.clone(),
        ));
    }
    drop(listener);
    // The flag first: a watchdog woken by the channel wakes a task that must then see it.
    stopping.store(true, Ordering::Release);
    stop.send_replace(());
    // Every connection's task holds a slot until it ends, so all slots free means all closed.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.shutdown_grace, slots.acquire_many(all))
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

    /// An HTTP/1.1 answer read off `s`: its head and its body (by `Content-Length`), or `None`
    /// when the server closed the connection first.
    async fn answer(s: &mut tokio::net::TcpStream) -> Option<String> {
        use tokio::io::AsyncReadExt;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_string())
                    })
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if got.len() >= end + 4 + length {
                    return Some(text);
                }
            }
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    }

    async fn ask(s: &mut tokio::net::TcpStream, path: &str) {
        use tokio::io::AsyncWriteExt;
        let head = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
        s.write_all(head.as_bytes()).await.expect("send a request");
    }

    #[test]
    fn shutdown_finishes_answers_in_flight_and_closes_idle_connections_at_once() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let router = axum::Router::new()
                .route(
                    "/slow",
                    axum::routing::get(|| async {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        "done"
                    }),
                )
                .route("/fast", axum::routing::get(|| async { "fast" }));
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("address");
            // Timeouts far beyond the test's bounds: only the shutdown may close anything.
            let limits = ConnLimits {
                header_read_timeout: Duration::from_secs(120),
                shutdown_grace: Duration::from_secs(120),
                ..ConnLimits::default()
            };
            let (stop, stopped) = oneshot::channel::<()>();
            let server = tokio::spawn(serve_with_limits(
                listener,
                App::from_router(router),
                limits,
                async move {
                    let _ = stopped.await;
                },
            ));
            let mut idle = tokio::net::TcpStream::connect(addr).await.expect("connect");
            ask(&mut idle, "/fast").await;
            let first = answer(&mut idle).await.expect("an answer");
            assert!(
                first.starts_with("HTTP/1.1 200") && first.ends_with("fast"),
                "{first}"
            );
            let mut busy = tokio::net::TcpStream::connect(addr).await.expect("connect");
            ask(&mut busy, "/slow").await;
            tokio::time::sleep(Duration::from_millis(100)).await;

            let _ = stop.send(());
            let bound = Duration::from_secs(20);
            let finished = tokio::time::timeout(bound, answer(&mut busy))
                .await
                .expect("the answer in flight came")
                .expect("the answer in flight was not cut off");
            assert!(
                finished.starts_with("HTTP/1.1 200") && finished.ends_with("done"),
                "{finished}"
            );
            // The idle connection is not being polled: only its watchdog's wake-up tells it.
            let closed = tokio::time::timeout(bound, answer(&mut idle))
                .await
                .expect("the idle connection was closed at shutdown, not left open");
            assert!(closed.is_none(), "{closed:?}");
            tokio::time::timeout(bound, server)
                .await
                .expect("the server returned once its connections closed")
                .expect("the server task")
                .expect("the server");
        });
    }

    #[test]
    fn a_connection_first_polled_after_shutdown_began_ends_without_a_request() {
        // The flag is read at every poll, so a connection that saw no wake-up still stops.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let stopping = Arc::new(AtomicBool::new(true));
            let activity = Arc::new(Activity::new());
            let (client, server) = tokio::io::duplex(1024);
            let router = axum::Router::new().route("/", axum::routing::get(|| async { "x" }));
            let service = counted_service(App::from_router(router), Arc::clone(&activity));
            let conn = UntilStopped {
                conn: Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(server), service)
                    .into_owned(),
                stopping,
                activity,
                shutting_down: false,
            };
            let ended = tokio::time::timeout(Duration::from_secs(20), conn).await;
            assert!(
                ended.is_ok(),
                "a connection told to stop before any request ends"
            );
            drop(client);
        });
    }
}
