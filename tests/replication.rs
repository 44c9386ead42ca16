//! A primary and replicas as real processes on loopback ports.

mod common;

use std::time::{Duration, Instant};

use common::proc::{call, free_port, Served};

const WRITE: &str = "w-token";
const REPL: &str = "r-token";

fn build(db: &str, n: usize, dir: &std::path::Path, tag: &str) {
    let input = dir.join(format!("{tag}.tsv"));
    let text: String = (0..n)
        .map(|i| {
            format!(
                "{tag}{i}\t{}\t{}\tc{}\n",
                (i % 30) as f64 * 0.01,
                (i / 30) as f64 * 0.01,
                i % 3
            )
        })
        .collect();
    std::fs::write(&input, text).unwrap();
    common::proc::kdsled_ok(
        &common::tsv_build(db, input.to_str().unwrap(), &["--force"]),
        "",
    );
}

fn primary(db: &str, port: u16) -> Served {
    let addr = format!("127.0.0.1:{port}");
    Served::start(&[
        "serve",
        "--db",
        db,
        "--addr",
        &addr,
        "--write-token",
        WRITE,
        "--replication-token",
        REPL,
        "--retain-changes",
        "40",
    ])
}

fn replica(db: &str, primary: &str) -> Served {
    Served::start(&[
        "serve",
        "--db",
        db,
        "--addr",
        "127.0.0.1:0",
        "--follow",
        primary,
        "--replication-token",
        REPL,
        "--follower-name",
        db,
    ])
}

fn put(base: &str, id: &str, lon: f64, lat: f64) {
    let body = format!(r#"{{"lon": {lon}, "lat": {lat}, "properties": {{"k": "{id}"}}}}"#);
    let (st, v) = call("PUT", &format!("{base}/v1/points/{id}"), Some(WRITE), &body);
    assert!(st == 200 || st == 201, "{st} {v}");
}

/// The Prometheus text of a server.
fn metrics(base: &str) -> String {
    call("GET", &format!("{base}/metrics"), None, "")
        .1
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn sequence(base: &str) -> u64 {
    call("GET", &format!("{base}/healthz"), None, "").1["sequence"]
        .as_u64()
        .unwrap()
}

/// Waits until the replica has applied everything the primary has, then checks both answer
/// the same queries identically.
fn converge(primary: &str, replica: &str) {
    let want = sequence(primary);
    let deadline = Instant::now() + Duration::from_secs(20);
    // Ready: the first snapshot is in (until then the replica answers 503) and it caught up.
    let ready = || call("GET", &format!("{replica}/readyz"), None, "").0 == 200;
    while sequence(replica) != want || !ready() {
        assert!(
            Instant::now() < deadline,
            "replica stuck at {} of {want}: {}",
            sequence(replica),
            call("GET", &format!("{replica}/healthz"), None, "").1
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for q in [
        "/v1/near?lon=0.1&lat=0.05&radius=8000&limit=10000",
        "/v1/nearest?lon=0.2&lat=0.2&k=25",
        "/v1/stats?lon=0.1&lat=0.1&radius=30000&group_by=col3",
        "/healthz",
    ] {
        let (a, b) = (
            call("GET", &format!("{primary}{q}"), None, "").1,
            call("GET", &format!("{replica}{q}"), None, "").1,
        );
        if q == "/healthz" {
            assert_eq!(
                (&a["points"], &a["generation"], &a["sequence"]),
                (&b["points"], &b["generation"], &b["sequence"])
            );
        } else {
            assert_eq!(a["results"], b["results"], "{q}");
            assert_eq!(a["count"], b["count"], "{q}");
            assert_eq!(a["groups"], b["groups"], "{q}");
        }
    }
}

#[test]
fn replicas_follow_bootstrap_resume_and_resnapshot() {
    let dir = tempfile::tempdir().unwrap();
    let pdb = dir.path().join("primary");
    let pdb = pdb.to_str().unwrap().to_string();
    build(&pdb, 300, dir.path(), "a");
    let port = free_port();
    let mut p = primary(&pdb, port);
    let base = p.base.clone();

    // Tokens guard writes and replication.
    let (st, _) = call(
        "PUT",
        &format!("{base}/v1/points/x"),
        None,
        r#"{"lon": 0, "lat": 0}"#,
    );
    assert_eq!(st, 401);
    let (st, _) = call(
        "PUT",
        &format!("{base}/v1/points/x"),
        Some("wrong"),
        r#"{"lon": 0, "lat": 0}"#,
    );
    assert_eq!(st, 401);
    assert_eq!(
        call(
            "GET",
            &format!("{base}/v1/replication/changes?since=0"),
            None,
            ""
        )
        .0,
        401
    );
    assert_eq!(
        call("GET", &format!("{base}/v1/replication/snapshot"), None, "").0,
        401
    );
    assert_eq!(sequence(&base), 0);

    let r1db = dir.path().join("r1");
    let r1db = r1db.to_str().unwrap().to_string();
    let r1 = replica(&r1db, &base);
    converge(&base, &r1.base);
    let deadline = Instant::now() + Duration::from_secs(10);
    while call("GET", &format!("{}/readyz", r1.base), None, "").0 != 200 {
        assert!(Instant::now() < deadline, "the replica never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }

    for i in 0..25 {
        put(&base, &format!("n{i}"), 0.05 + i as f64 * 1e-3, 0.05);
    }
    call("DELETE", &format!("{base}/v1/points/a7"), Some(WRITE), "");
    converge(&base, &r1.base);
    // Replicas refuse writes, naming the primary.
    let (st, v) = call(
        "PUT",
        &format!("{}/v1/points/z", r1.base),
        Some(WRITE),
        r#"{"lon": 0, "lat": 0}"#,
    );
    assert_eq!(st, 405);
    assert!(v["error"].as_str().unwrap().contains(&base), "{v}");
    let h = call("GET", &format!("{}/healthz", r1.base), None, "").1;
    assert_eq!(h["replication"]["lag_sequences"], 0);
    assert!(metrics(&r1.base).contains("kdsled_replication_lag_sequences 0"));
    let pm = call("GET", &format!("{base}/metrics"), None, "").1;
    assert!(
        pm.as_str().unwrap().contains(&format!(
            "kdsled_replication_follower_sequence{{follower=\"{r1db}\"}}"
        )),
        "{pm}"
    );

    // A replica killed and restarted resumes from its own sequence: nothing lost, nothing twice.
    r1.kill();
    for i in 25..35 {
        put(&base, &format!("n{i}"), 0.05 + i as f64 * 1e-3, 0.06);
    }
    let r1 = replica(&r1db, &base);
    converge(&base, &r1.base);
    assert!(
        metrics(&r1.base).contains("kdsled_replication_snapshots_total 0"),
        "resumed, not re-snapshotted"
    );

    // A second replica bootstrapped mid-stream ends identical.
    let r2db = dir.path().join("r2");
    let r2 = replica(r2db.to_str().unwrap(), &base);
    converge(&base, &r2.base);
    r2.kill();

    // The primary restarts; the replica retries and keeps serving meanwhile.
    p.terminate();
    let (st, _) = call(
        "GET",
        &format!("{}/v1/near?lon=0.1&lat=0.1&radius=1000", r1.base),
        None,
        "",
    );
    assert_eq!(st, 200);
    p = primary(&pdb, port);
    for i in 35..40 {
        put(&base, &format!("n{i}"), 0.1, 0.1 + i as f64 * 1e-3);
    }
    converge(&base, &r1.base);

    // A replica further behind than the retained history (40 writes) re-snapshots.
    r1.kill();
    for i in 0..60 {
        put(&base, &format!("m{i}"), 0.2, 0.2 + i as f64 * 1e-4);
    }
    let r1 = replica(&r1db, &base);
    converge(&base, &r1.base);
    let m = metrics(&r1.base);
    assert!(m.contains("kdsled_replication_snapshots_total 1"), "{m}");

    // The primary is rebuilt (a new history) at the same address: the replica re-snapshots
    // rather than apply changes from another history.
    p.terminate();
    build(&pdb, 120, dir.path(), "b");
    let p = primary(&pdb, port);
    put(&p.base, "after-rebuild", 0.0, 0.0);
    converge(&base, &r1.base);
    assert_eq!(
        call("GET", &format!("{}/healthz", r1.base), None, "").1["points"],
        121
    );
    drop(p);
}
