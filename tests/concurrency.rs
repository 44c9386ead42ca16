//! Heatmap tiles, radius queries and writes at once must never wedge the server.
//!
//! The failure this guards against: a tile render held the index's read lock across a rayon join
//! on the query pool, a pool thread stole a queued radius query that asked for the read lock
//! again, a writer was queued for the write lock (std's `RwLock` then admits no new reader), and
//! handlers read the meta record through the same lock on the async threads, so every route,
//! `/healthz` included, stopped for good.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::build_index;
use kdsled::server::ServerConfig;
use kdsled::Metric;

/// Longer than any request here takes on a loaded CI machine, far shorter than "forever".
const BOUND: Duration = Duration::from_secs(30);

/// Runs `f` on its own thread and fails the test if it has not finished within `limit`: a
/// deadlock must fail the test, not hang the suite.
fn finishes_within(limit: Duration, what: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(())) => {}
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("{what} did not finish within {limit:?}: deadlock"),
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(BOUND))
        .build()
        .into()
}

#[test]
fn tiles_queries_and_writes_together_all_get_answers() {
    finishes_within(
        BOUND * 3,
        "tiles, queries and writes",
        tiles_queries_and_writes,
    );
}

fn tiles_queries_and_writes() {
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let pts: Vec<Vec<f64>> = (0..20_000)
        .map(|_| vec![-10.0 + 40.0 * next(), 35.0 + 25.0 * next()])
        .collect();
    let t = build_index(Metric::Haversine, 2, &pts);
    let config = ServerConfig {
        // Two pool threads, as on the 2-core machines the deadlock was found on.
        query_threads: 2,
        ..ServerConfig::default()
    };
    let server = common::inproc::serve(Arc::clone(&t.index), config);
    let base = server.base.clone();

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let mut loops = Vec::new();
    let paths: Vec<(String, &str)> = vec![
        (
            "/v1/tiles/heatmap/0/0/0.png?radius=50000".into(),
            "image/png",
        ),
        (
            "/v1/tiles/heatmap/0/0/0.png?radius=50000".into(),
            "image/png",
        ),
        ("/v1/near?lon=5&lat=45&radius=50000".into(), "json"),
        ("/v1/near?lon=10&lat=50&radius=50000".into(), "json"),
        ("/v1/near?lon=0&lat=40&radius=50000&limit=5".into(), "json"),
        ("/healthz".into(), "json"),
    ];
    for (path, kind) in paths {
        let (base, stop, answered) = (base.clone(), stop.clone(), answered.clone());
        loops.push(std::thread::spawn(move || {
            let agent = agent();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let resp = agent.get(&format!("{base}{path}")).call();
                let mut resp = resp.unwrap_or_else(|e| {
                    panic!("{path}: no answer within {BOUND:?} ({e}): the server is wedged")
                });
                assert_eq!(resp.status().as_u16(), 200, "{path}");
                let ct = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                assert!(ct.contains(kind), "{path}: content type {ct}");
                let body = resp.body_mut().read_to_vec().expect("body");
                assert!(!body.is_empty(), "{path}");
                assert!(
                    started.elapsed() < BOUND,
                    "{path} took {:?}",
                    started.elapsed()
                );
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    {
        let (base, stop, answered) = (base.clone(), stop.clone(), answered.clone());
        loops.push(std::thread::spawn(move || {
            let agent = agent();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let body = format!(
                    r#"{{"lon": {}, "lat": {}, "properties": {{"n": {i}}}}}"#,
                    -5.0 + (i % 300) as f64 * 0.1,
                    40.0 + (i % 170) as f64 * 0.1
                );
                let resp = agent
                    .put(&format!("{base}/v1/points/w{}", i % 500))
                    .header("content-type", "application/json")
                    .send(body.as_bytes())
                    .unwrap_or_else(|e| panic!("PUT: no answer within {BOUND:?} ({e})"));
                let code = resp.status().as_u16();
                assert!(code == 200 || code == 201, "PUT answered {code}");
                answered.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.join().expect("a request loop failed");
    }
    assert!(answered.load(Ordering::Relaxed) > 20, "too few answers");
    // And the server still answers afterwards.
    let resp = agent()
        .get(&format!("{base}/healthz"))
        .call()
        .expect("healthz after the load");
    assert_eq!(resp.status().as_u16(), 200);
}

#[test]
fn a_snapshot_nested_on_the_same_thread_does_not_wait_for_a_queued_writer() {
    finishes_within(BOUND, "a nested read", nested_snapshot);
}

fn nested_snapshot() {
    let pts: Vec<Vec<f64>> = (0..200).map(|i| vec![i as f64 * 0.01, 10.0]).collect();
    let t = build_index(Metric::Haversine, 2, &pts);
    let index = Arc::clone(&t.index);
    let outer = index.snapshot();
    // A writer queues behind the outer snapshot.
    let writer = {
        let index = Arc::clone(&index);
        std::thread::spawn(move || {
            index
                .upsert(kdsled::index::NewPoint {
                    id: kdsled::PointId::parse("late"),
                    coords: vec![1.0, 10.0],
                    properties: Default::default(),
                })
                .expect("write")
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    // What a stolen rayon job would do on this thread: read again while the writer waits.
    let inner = index
        .radius(&[0.5, 10.0], 5_000.0, 10)
        .expect("nested read");
    assert!(inner.count > 0);
    assert_eq!(outer.meta().count, 200, "the outer view does not move");
    drop(outer);
    writer.join().expect("writer");
    assert_eq!(index.meta().count, 201);
}
