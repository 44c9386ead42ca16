//! Replication throughput and lag, primary and follower in one process over loopback HTTP.
//!
//! `cargo bench --bench replication` serves cities1000 as a primary, bootstraps a follower from
//! its snapshot (timed), then:
//! - a steady load of single-point writes at `KDSLED_REPL_RATE` per second (default 1000) for
//!   10 s, reporting the delay from each commit on the primary to its apply on the follower
//!   (p50, p99, max) and the largest lag in sequence numbers;
//! - a burst of 200 writes of 100 points each, as fast as the primary takes them, reporting the
//!   changes/s and points/s the follower applies.

#[path = "../tests/common/inproc.rs"]
mod inproc;
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use kdsled::index::{NewPoint, WriteOp};
use kdsled::replication::follower::{self, FollowStatus, FollowerConfig, Host};
use kdsled::server::{AppState, ServerConfig};
use kdsled::{Index, PointId};
use support::*;

#[global_allocator]
static GLOBAL: kdsled::Allocator = kdsled::Allocator;

/// The follower's index, and when each sequence was applied.
struct Replica {
    index: RwLock<Arc<Index>>,
    applied_at: Mutex<HashMap<u64, Instant>>,
}

impl Host for Replica {
    fn index(&self) -> Arc<Index> {
        self.index.read().expect("lock").clone()
    }
    fn replace(&self, index: Arc<Index>) {
        *self.index.write().expect("lock") = index;
    }
    fn applied(&self, seq: u64) {
        self.applied_at
            .lock()
            .expect("lock")
            .insert(seq, Instant::now());
    }
}

fn point(id: String, p: [f64; 2]) -> NewPoint {
    NewPoint {
        id: PointId::Str(id),
        coords: p.to_vec(),
        properties: vec![],
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0)
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pts = cities();
    let pdir = tmp.path().join("primary");
    build_at(&pdir, &pts);
    let state = AppState::new(
        Arc::new(Index::open(&pdir, 256).expect("open")),
        ServerConfig::default(),
    )
    .expect("server state");
    let server = inproc::serve_state(state.clone());
    let base = server.base.clone();

    let cfg = FollowerConfig {
        primary: base,
        token: None,
        dir: tmp.path().join("replica"),
        cache_mb: 256,
        name: "bench".into(),
        wait_s: 20,
    };
    let status = Arc::new(Mutex::new(FollowStatus::default()));
    let t = Instant::now();
    let (dir, _) = follower::open_replica(&cfg).expect("replica directory");
    let index = follower::load_first_snapshot(&cfg, &dir, &status);
    println!(
        "bootstrap from snapshot: {} points in {:.2} s",
        index.meta().count,
        t.elapsed().as_secs_f64()
    );
    let replica = Arc::new(Replica {
        index: RwLock::new(Arc::new(index)),
        applied_at: Mutex::default(),
    });
    let host: Arc<dyn Host> = replica.clone();
    std::thread::spawn(move || follower::run(cfg, dir, false, host, status));

    let write = |ops: Vec<WriteOp>| {
        let out = state.index().write(&ops).expect("write");
        state.committed(out.sequence);
        (out.sequence, Instant::now())
    };
    let replica_seq = || replica.index().meta().sequence;

    // Steady load.
    let rate: u64 = std::env::var("KDSLED_REPL_RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let mut committed: Vec<(u64, Instant)> = Vec::new();
    let mut max_lag = 0u64;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(10) {
        let due = start + Duration::from_secs_f64(n as f64 / rate as f64);
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let p = pts[(n as usize * 7919) % pts.len()];
        committed.push(write(vec![WriteOp::Upsert(point(format!("s{n}"), p))]));
        max_lag = max_lag.max(committed.last().map(|c| c.0).unwrap_or(0) - replica_seq());
        n += 1;
    }
    let last = committed.last().map(|c| c.0).unwrap_or(0);
    while replica_seq() < last {
        std::thread::sleep(Duration::from_millis(5));
    }
    let applied = replica.applied_at.lock().expect("lock").clone();
    let mut delays: Vec<f64> = committed
        .iter()
        .filter_map(|(seq, at)| {
            applied
                .get(seq)
                .map(|a| a.saturating_duration_since(*at).as_secs_f64() * 1e3)
        })
        .collect();
    let achieved = n as f64 / start.elapsed().as_secs_f64();
    println!(
        "steady load: {achieved:.0} writes/s on the primary for 10 s; commit-to-apply delay p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; max lag {max_lag} sequences",
        pct(&mut delays, 0.5),
        pct(&mut delays, 0.99),
        pct(&mut delays, 1.0)
    );

    // Burst.
    let t = Instant::now();
    let mut last = 0;
    for b in 0..200u64 {
        let ops: Vec<WriteOp> = (0..100u64)
            .map(|i| {
                WriteOp::Upsert(point(
                    format!("b{b}-{i}"),
                    pts[((b * 100 + i) as usize * 31) % pts.len()],
                ))
            })
            .collect();
        last = write(ops).0;
    }
    let primary_s = t.elapsed().as_secs_f64();
    while replica_seq() < last {
        std::thread::sleep(Duration::from_millis(2));
    }
    let total = t.elapsed().as_secs_f64();
    println!(
        "burst: 200 changes of 100 points committed in {primary_s:.2} s; the follower had them all after {total:.2} s: {:.0} changes/s, {:.0} points/s",
        200.0 / total,
        20_000.0 / total
    );
    assert_eq!(replica.index().meta().count, state.index().meta().count);
}
