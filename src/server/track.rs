//! What every request passes through: counted, timed, bounded by the request deadline and the
//! body limit, refused early when its target is too long or the replica is still loading, and
//! its error answers made JSON.
//!
//! A hand-written service rather than `axum::middleware::from_fn` plus `tower_http`'s timeout:
//! those box the middleware's future and the rest of the chain's once each per request and start
//! a timer for every request. Measured with `valgrind --tool=callgrind` on `kdsled serve`
//! answering `/healthz` (see the note on issue 15), the request path spent about a third of its
//! instructions in those layers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::limits;
use super::metrics::RouteId;
use super::timeout::Deadline;
use super::AppState;

/// Wraps each route in [`Track`].
#[derive(Clone)]
pub struct TrackLayer {
    state: AppState,
    route: Option<RouteId>,
}

impl TrackLayer {
    /// Tracking for the server with this state (its metrics, deadline and replica status), for
    /// routes axum's router matched (their counters are found by the matched path).
    pub fn new(state: AppState) -> Self {
        TrackLayer { state, route: None }
    }

    /// Tracking for one route served without axum's router, whose counters are `route`.
    pub fn for_route(state: AppState, route: RouteId) -> Self {
        TrackLayer {
            state,
            route: Some(route),
        }
    }
}

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            state: self.state.clone(),
            route: self.route,
        }
    }
}

/// The service [`TrackLayer`] puts around a route.
#[derive(Clone)]
pub struct Track<S> {
    inner: S,
    state: AppState,
    route: Option<RouteId>,
}

/// Whose counters a request updates.
enum Counted {
    /// A route's, known beforehand.
    Route(RouteId),
    /// The route axum's router matched (none: a 404).
    Matched(Option<MatchedPath>),
}

impl<S> tower::Service<Request> for Track<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let started = Instant::now();
        let route = match self.route {
            Some(id) => Counted::Route(id),
            None => Counted::Matched(req.extensions().get::<MatchedPath>().cloned()),
        };
        // The method and target are kept only for the debug log line, which is off by default.
        let logged = tracing::enabled!(tracing::Level::DEBUG)
            .then(|| (req.method().clone(), req.uri().clone()));
        let refused = limits::refuse_long_uri(req.uri())
            .or_else(|| limits::limit_body(&mut req, self.state.config.max_body_bytes))
            .or_else(|| {
                (self.state.is_loading() && req.uri().path().starts_with("/v1/")).then(|| {
                    let primary = self.state.config.follow.as_deref().unwrap_or("the primary");
                    ApiError::new(
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                        "this replica is loading its first snapshot from {primary}: retry shortly"
                    ),
                    )
                    .into_response()
                })
            });
        let stage = match refused {
            Some(resp) => Stage::Ready { resp: Some(resp) },
            None => Stage::Inner {
                fut: Deadline::new(
                    self.inner.call(req),
                    started + self.state.config.request_timeout,
                ),
            },
        };
        Tracked {
            stage,
            state: self.state.clone(),
            started,
            route,
            logged,
        }
    }
}

pin_project_lite::pin_project! {
    #[project = StageProj]
    enum Stage<F> {
        // The route's answer under the request deadline.
        Inner { #[pin] fut: Deadline<F> },
        // An error answer being rewritten as JSON (it may have to read the body).
        Errors { fut: Pin<Box<dyn Future<Output = Response> + Send>> },
        // An answer given before the route ran.
        Ready { resp: Option<Response> },
    }
}

pin_project_lite::pin_project! {
    /// A request in flight through [`Track`].
    pub struct Tracked<F> {
        #[pin]
        stage: Stage<F>,
        state: AppState,
        started: Instant,
        route: Counted,
        logged: Option<(axum::http::Method, axum::http::Uri)>,
    }
}

impl<F> Future for Tracked<F>
where
    F: Future<Output = Result<Response, std::convert::Infallible>> + Send + 'static,
{
    type Output = Result<Response, std::convert::Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let resp = loop {
            match this.stage.as_mut().project() {
                StageProj::Inner { fut } => {
                    let Ok(resp) = std::task::ready!(fut.poll(cx));
                    if !limits::needs_json_error(&resp) {
                        break resp;
                    }
                    let state = this.state.clone();
                    this.stage.set(Stage::Errors {
                        fut: Box::pin(async move { limits::json_errors(&state, resp).await }),
                    });
                }
                StageProj::Errors { fut } => break std::task::ready!(fut.as_mut().poll(cx)),
                StageProj::Ready { resp } => match resp.take() {
                    Some(resp) => break resp,
                    // Polled again after it answered: a caller bug, answered rather than panicking.
                    None => break axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                },
            }
        };
        let elapsed = this.started.elapsed();
        let status = resp.status().as_u16();
        let metrics = &this.state.metrics;
        let route = match this.route {
            Counted::Route(id) => *id,
            Counted::Matched(m) => metrics.route(m.as_ref().map(MatchedPath::as_str)),
        };
        metrics.request(route, status, elapsed);
        if let Some((method, uri)) = this.logged.take() {
            tracing::debug!(%method, %uri, status, micros = elapsed.as_micros() as u64, "request");
        }
        Poll::Ready(Ok(resp))
    }
}
