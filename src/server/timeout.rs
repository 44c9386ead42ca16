//! The request deadline, armed only for requests that wait.
//!
//! `tower_http`'s `TimeoutLayer` starts a tokio timer for every request: a boxed entry in the
//! runtime's timer wheel, inserted and removed under its lock, and when no other timer is pending
//! a wake-up of the driver sleeping in `epoll_wait` (an eventfd write: `strace -c` counted one
//! extra `write` per request). Most requests here are answered on their first poll (a small
//! query over cached nodes runs inline), and those need no timer at all. [`Deadline`] polls the
//! request once and only then, if it is still pending, starts a timer for what is left of the
//! deadline, which still counts from when the request arrived.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::time::{Instant, Sleep};

pin_project_lite::pin_project! {
    /// A request's future under its deadline: `408 Request Timeout` (its work dropped) when it
    /// is still unfinished then.
    pub struct Deadline<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Option<Sleep>,
        deadline: Instant,
    }
}

impl<F> Deadline<F> {
    /// `inner` with its deadline (a point in time, normally its arrival plus the time limit).
    pub fn new(inner: F, deadline: std::time::Instant) -> Self {
        Deadline {
            inner,
            sleep: None,
            deadline: Instant::from_std(deadline),
        }
    }
}

impl<F, E> Future for Deadline<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(r) = this.inner.poll(cx) {
            return Poll::Ready(r);
        }
        if this.sleep.is_none() {
            this.sleep
                .set(Some(tokio::time::sleep_until(*this.deadline)));
        }
        match this.sleep.as_pin_mut().map(|sleep| sleep.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Ok(StatusCode::REQUEST_TIMEOUT.into_response())),
            _ => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime")
    }

    async fn work(d: Duration) -> Result<Response, Infallible> {
        tokio::time::sleep(d).await;
        Ok(StatusCode::OK.into_response())
    }

    fn status(r: Result<Response, Infallible>) -> StatusCode {
        match r {
            Ok(r) => r.status(),
            Err(never) => match never {},
        }
    }

    #[test]
    fn a_request_that_outlasts_the_deadline_gets_408_and_one_within_it_its_answer() {
        runtime().block_on(async {
            let limit = Instant::now().into_std() + Duration::from_secs(2);
            let slow = Deadline::new(work(Duration::from_secs(3)), limit);
            assert_eq!(status(slow.await), StatusCode::REQUEST_TIMEOUT);

            let limit = Instant::now().into_std() + Duration::from_secs(2);
            let quick = Deadline::new(work(Duration::from_secs(1)), limit);
            assert_eq!(status(quick.await), StatusCode::OK);
        });
    }

    #[test]
    fn the_deadline_counts_from_arrival_not_from_the_first_wait() {
        runtime().block_on(async {
            let arrived = Instant::now();
            let fut = Deadline::new(
                work(Duration::from_secs(3)),
                arrived.into_std() + Duration::from_secs(2),
            );
            // The request arrived, then sat unpolled for 1.5 s: only 0.5 s of its deadline is
            // left when it first waits, so it times out at 2 s in all, before its 3 s of work.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert_eq!(status(fut.await), StatusCode::REQUEST_TIMEOUT);
            assert_eq!(arrived.elapsed(), Duration::from_secs(2));
        });
    }

    #[test]
    fn only_a_request_still_pending_after_its_first_poll_starts_a_timer() {
        runtime().block_on(async {
            let limit = Instant::now().into_std() + Duration::from_secs(2);
            let waker = std::task::Waker::noop();
            let mut cx = Context::from_waker(waker);

            let ready = std::future::ready(Ok::<_, Infallible>(StatusCode::OK.into_response()));
            let mut fut = std::pin::pin!(Deadline::new(ready, limit));
            assert!(matches!(fut.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
            assert!(fut.as_ref().get_ref().sleep.is_none());

            let pending = std::future::pending::<Result<Response, Infallible>>();
            let mut fut = std::pin::pin!(Deadline::new(pending, limit));
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            assert!(fut.as_ref().get_ref().sleep.is_some());
        });
    }
}
