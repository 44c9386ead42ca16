//! Which code answers a request: a `GET` of a read query goes straight to its handler, through
//! the same compression and tracking as every route; everything else goes through axum's
//! router.
//!
//! axum's router costs each request a path lookup, a method lookup, three request extensions (the
//! matched path, the path parameters and the original URI, in a map allocated per request), and
//! a clone, boxing and one-shot call of the route's boxed service. Measured with `valgrind --tool=callgrind` on
//! `/v1/near` at 1.2 km, that was about a tenth of a request's instructions, more than the radius
//! walk. The four query routes have fixed paths and one method, so an exact comparison finds
//! them; their handlers are the same functions the router holds, called as axum calls them
//! (`Handler::call`), so extraction and answers cannot differ between the two ways in.
//!
//! With CORS configured every request goes through the router, whose CORS layer answers
//! preflights and adds the headers.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::handler::Handler;
use axum::http::Method;
use axum::response::Response;
use axum::Router;
use tower::{Layer, Service};

use super::compress::{self, CompressLayer, MaybeCompress};
use super::track::{self, Track, TrackLayer};
use super::{routes, AppState};

/// A handler's answer, as axum's `Handler::call` gives it.
type HandlerFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

/// A handler bound to the server's state, as a service.
#[derive(Clone)]
struct Endpoint {
    state: AppState,
    call: fn(Request, AppState) -> HandlerFuture,
}

impl Service<Request> for Endpoint {
    type Response = Response;
    type Error = Infallible;
    type Future = Answering;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Answering {
        Answering((self.call)(req, self.state.clone()))
    }
}

/// An [`Endpoint`]'s answer on its way.
struct Answering(HandlerFuture);

impl Future for Answering {
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx).map(Ok)
    }
}

/// A route served without the router, with the layers the router gives every route.
type Lane = MaybeCompress<Track<Endpoint>>;

/// The routes served without the router.
struct Lanes {
    near: Lane,
    nearest: Lane,
    within: Lane,
    stats: Lane,
}

impl Lanes {
    fn new(state: &AppState) -> Lanes {
        let lane = |path: &str, call: fn(Request, AppState) -> HandlerFuture| -> Lane {
            let route = state.metrics.route(Some(path));
            CompressLayer.layer(TrackLayer::for_route(state.clone(), route).layer(Endpoint {
                state: state.clone(),
                call,
            }))
        };
        Lanes {
            near: lane("/v1/near", |req, s| {
                Handler::call(routes::query::near, req, s)
            }),
            nearest: lane("/v1/nearest", |req, s| {
                Handler::call(routes::query::nearest, req, s)
            }),
            within: lane("/v1/within", |req, s| {
                Handler::call(routes::query::within, req, s)
            }),
            stats: lane("/v1/stats", |req, s| {
                Handler::call(routes::query::stats, req, s)
            }),
        }
    }

    /// The lane that serves a request with this method and path, if any.
    fn find(&self, method: &Method, path: &str) -> Option<&Lane> {
        if method != Method::GET {
            return None;
        }
        match path {
            "/v1/near" => Some(&self.near),
            "/v1/nearest" => Some(&self.nearest),
            "/v1/within" => Some(&self.within),
            "/v1/stats" => Some(&self.stats),
            _ => None,
        }
    }
}

/// The whole HTTP application: what [`super::listen::serve_with_limits`] serves.
#[derive(Clone)]
pub struct App {
    router: Router,
    lanes: Option<Arc<Lanes>>,
}

impl App {
    /// The application for `state`: `router` (every route, with its layers) and, unless CORS is
    /// configured, the direct lanes of the query routes.
    pub(super) fn new(state: &AppState, router: Router) -> App {
        let lanes = state
            .config
            .cors_origin
            .is_none()
            .then(|| Arc::new(Lanes::new(state)));
        App { router, lanes }
    }

    /// `router` alone, for tests of the layers below the application.
    #[cfg(test)]
    pub(super) fn from_router(router: Router) -> App {
        App {
            router,
            lanes: None,
        }
    }
}

impl<B> Service<Request<B>> for App
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Dispatched;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both the router and the lanes are always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Dispatched {
        let lane = self
            .lanes
            .as_deref()
            .and_then(|l| l.find(req.method(), req.uri().path()));
        match lane {
            Some(lane) => Dispatched::Direct {
                fut: lane.clone().call(req.map(Body::new)),
            },
            None => Dispatched::Routed {
                fut: self.router.call(req),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// An answer on its way from a lane or from the router.
    #[project = DispatchedProj]
    pub enum Dispatched {
        /// From a query route's lane.
        Direct { #[pin] fut: compress::Answer<track::Tracked<Answering>> },
        /// From the router.
        Routed { #[pin] fut: axum::routing::future::RouteFuture<Infallible> },
    }
}

impl Future for Dispatched {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            DispatchedProj::Direct { fut } => fut.poll(cx),
            DispatchedProj::Routed { fut } => fut.poll(cx),
        }
    }
}
