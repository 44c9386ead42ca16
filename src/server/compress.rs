//! gzip for answers worth it, and no cost for clients that never ask for it.
//!
//! `tower_http`'s compression wraps every answer's body and boxes it again for axum, even when
//! the client sent no `Accept-Encoding` (most API clients and load balancers): measured with
//! `valgrind --tool=callgrind`, about 3,000 instructions per request. Here a request whose
//! `Accept-Encoding` does not mention gzip skips that layer; it still gets the
//! `Vary: Accept-Encoding` the layer would have added, so a cache between client and server
//! keeps gzip and plain answers apart. Any request that mentions gzip (whatever its q-value)
//! goes through `tower_http`, which decides.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{ACCEPT_ENCODING, VARY};
use axum::http::HeaderValue;
use axum::response::Response;
use tower::ServiceExt;
use tower_http::compression::predicate::{DefaultPredicate, Predicate, SizeAbove};
use tower_http::compression::Compression;

/// Below 1 KiB the deflate state costs more time than the bytes saved (most one-place answers
/// and every error are smaller).
const MIN_COMPRESSED_BYTES: u16 = 1024;

type Worth = tower_http::compression::predicate::And<SizeAbove, DefaultPredicate>;

/// The size test goes first: it reads one header and settles most answers, while the default
/// predicate compares the content type against its exclusions on every answer it sees.
fn worth() -> Worth {
    SizeAbove::new(MIN_COMPRESSED_BYTES).and(DefaultPredicate::new())
}

/// Wraps each route in [`MaybeCompress`].
#[derive(Clone, Copy, Default)]
pub struct CompressLayer;

impl<S: Clone> tower::Layer<S> for CompressLayer {
    type Service = MaybeCompress<S>;

    fn layer(&self, inner: S) -> MaybeCompress<S> {
        MaybeCompress { plain: inner }
    }
}

/// A route whose answers are gzipped when the client accepts it.
///
/// `tower_http`'s compression service is built per gzip request instead of kept beside `plain`:
/// axum clones a route's whole service for every request, and a second copy of the route inside
/// it doubled that clone for the many requests that never ask for gzip.
#[derive(Clone)]
pub struct MaybeCompress<S> {
    plain: S,
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Whether any `Accept-Encoding` value names gzip (q-values are left to `tower_http`).
fn mentions_gzip(req: &Request) -> bool {
    req.headers()
        .get_all(ACCEPT_ENCODING)
        .iter()
        .any(|v| contains_ignore_case(v.as_bytes(), b"gzip"))
}

type Gzipped = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> tower::Service<Request> for MaybeCompress<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.plain.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if mentions_gzip(&req) {
            let gzip = Compression::new(self.plain.clone()).compress_when(worth());
            Answer::Gzip {
                fut: Box::pin(async move { gzip.oneshot(req).await.map(|r| r.map(Body::new)) }),
            }
        } else {
            Answer::Plain {
                inner: self.plain.call(req),
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// An answer on its way, through `tower_http`'s compression or without it.
    #[project = AnswerProj]
    pub enum Answer<F> {
        /// For a client that accepts gzip.
        Gzip { fut: Gzipped },
        /// For one that does not.
        Plain { #[pin] inner: F },
    }
}

impl<F> Future for Answer<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = match self.project() {
            AnswerProj::Gzip { fut } => return fut.as_mut().poll(cx),
            AnswerProj::Plain { inner } => inner,
        };
        let Ok(mut resp) = std::task::ready!(inner.poll(cx));
        if worth().should_compress(&resp)
            && !resp
                .headers()
                .get_all(VARY)
                .iter()
                .any(|v| contains_ignore_case(v.as_bytes(), b"accept-encoding"))
        {
            resp.headers_mut()
                .append(VARY, HeaderValue::from_static("accept-encoding"));
        }
        Poll::Ready(Ok(resp))
    }
}
