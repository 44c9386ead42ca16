//! Limits an anonymous client meets: body and URI sizes, slow heads, follower names, long ids;
//! and every error answer is JSON with a message.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::build_index;
use common::proc::call;
use kdsled::server::listen::ConnLimits;
use kdsled::server::ServerConfig;
use kdsled::Metric;

fn server(config: ServerConfig) -> (common::inproc::InProc, common::TestIndex) {
    let pts: Vec<Vec<f64>> = (0..100).map(|i| vec![i as f64 * 0.01, 1.0]).collect();
    let t = build_index(Metric::Haversine, 2, &pts);
    (common::inproc::serve(Arc::clone(&t.index), config), t)
}

/// A JSON error answer: the status and its message.
fn error_of(status: u16, v: &serde_json::Value) -> String {
    assert!(status >= 400, "status {status}: {v}");
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("status {status}: not a JSON error: {v}"))
        .to_string()
}

/// `n` points as one JSON array of about `bytes` bytes.
fn batch_of_bytes(bytes: usize) -> String {
    let pad = "x".repeat(900);
    let mut items = Vec::new();
    let mut len = 2;
    let mut i = 0;
    while len < bytes {
        let item = format!(r#"{{"id":"b{i}","lon":0.5,"lat":1.0,"properties":{{"pad":"{pad}"}}}}"#);
        len += item.len() + 1;
        items.push(item);
        i += 1;
    }
    format!("[{}]", items.join(","))
}

#[test]
fn the_configured_body_limit_is_the_one_in_force_and_its_413_is_json() {
    let (s, t) = server(ServerConfig {
        max_body_bytes: 4 * 1024 * 1024,
        ..ServerConfig::default()
    });
    // 3 MiB: over axum's 2 MiB default, under the configured 4 MiB.
    let body = batch_of_bytes(3 * 1024 * 1024);
    let (st, v) = call("POST", &format!("{}/v1/points", s.base), None, &body);
    assert_eq!(st, 200, "{v}");
    assert!(t.index.meta().count > 3000);
    // The server may answer before the whole body is sent and close: send it raw and read the
    // answer whatever happens to the rest of the body.
    let body = batch_of_bytes(5 * 1024 * 1024);
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut conn = TcpStream::connect(&addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "POST /v1/points HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).expect("head");
    let _ = conn.write_all(body.as_bytes());
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let (status_line, rest) = answer.split_once("\r\n").expect("an answer");
    let st: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let json = rest.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap_or_default();
    assert_eq!(st, 413, "{answer}");
    assert!(t.index.meta().count < 6000);
    assert!(error_of(st, &v).contains("4194304 bytes"), "{v}");
}

#[test]
fn error_answers_from_every_layer_are_json() {
    let (s, _t) = server(ServerConfig {
        request_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    });
    let long = format!(
        "{}/v1/near?lon=1&lat=1&radius=10&pad={}",
        s.base,
        "a".repeat(9000)
    );
    let (st, v) = call("GET", &long, None, "");
    assert_eq!(st, 414);
    error_of(st, &v);
    // Invalid UTF-8 in a path segment.
    let (st, v) = call("GET", &format!("{}/v1/points/%FF%FE", s.base), None, "");
    error_of(st, &v);
    // The timeout layer's 408: a long-poll that outlasts the request limit.
    let (st, v) = call(
        "GET",
        &format!("{}/v1/replication/changes?since=0&wait=5", s.base),
        None,
        "",
    );
    assert_eq!(st, 408, "{v}");
    error_of(st, &v);
    // A body that is not JSON, a method not allowed, a missing route.
    let (st, v) = call("PUT", &format!("{}/v1/points/a", s.base), None, "{nope");
    assert_eq!(st, 400);
    error_of(st, &v);
    let (st, v) = call("PATCH", &format!("{}/v1/points/a", s.base), None, "");
    assert_eq!(st, 405);
    error_of(st, &v);
    let (st, v) = call("GET", &format!("{}/nowhere", s.base), None, "");
    assert_eq!(st, 404);
    error_of(st, &v);
}

/// A server whose request heads must arrive within a second, and a connection to it.
fn one_second_head_timeout() -> (common::inproc::InProc, common::TestIndex, TcpStream) {
    let (s, t) = server(ServerConfig {
        conn_limits: ConnLimits {
            header_read_timeout: Duration::from_secs(1),
            ..ConnLimits::default()
        },
        ..ServerConfig::default()
    });
    let addr = s.base.trim_start_matches("http://").to_string();
    let conn = TcpStream::connect(&addr).expect("connect");
    // Far longer than the head timeout: a read that hits it means the server never closed.
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    (s, t, conn)
}

#[test]
fn an_unfinished_request_head_is_closed_after_the_head_timeout() {
    let (s, _t, mut conn) = one_second_head_timeout();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .expect("partial head");
    let started = Instant::now();
    let mut buf = Vec::new();
    // The server ends the connection (with hyper's 408, or none) instead of waiting forever.
    let _ = conn.read_to_end(&mut buf);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(15),
        "the connection stayed open {waited:?}"
    );
    // A well-behaved client is still served.
    let (st, _) = call("GET", &format!("{}/healthz", s.base), None, "");
    assert_eq!(st, 200);
}

/// Reads one `/healthz` answer (its head and its body, by `Content-Length`) from `conn`.
fn read_answer(conn: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(
            conn.read(&mut byte).expect("answer head"),
            1,
            "closed early"
        );
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).expect("answer body");
    head
}

/// Asks `/healthz` on `conn` and expects its 200.
fn healthz_on(conn: &mut TcpStream) {
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    let head = read_answer(conn);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

#[test]
fn the_head_timeout_counts_from_each_request_on_a_kept_alive_connection() {
    // Every head's deadline runs from when the server starts waiting for it: a client pausing
    // less than the timeout between requests is served on and on, and one that stalls in a
    // head is closed, however long the connection has been open.
    let (_s, _t, mut conn) = one_second_head_timeout();
    let started = Instant::now();
    for _ in 0..4 {
        healthz_on(&mut conn);
        std::thread::sleep(Duration::from_millis(600));
    }
    // Longer than one timeout in all: no deadline may count from an earlier request.
    assert!(started.elapsed() > Duration::from_millis(2000));
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .expect("partial head");
    let stalled = Instant::now();
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    let waited = stalled.elapsed();
    assert!(
        waited < Duration::from_secs(15),
        "the stalled connection stayed open {waited:?}"
    );
}

#[test]
fn an_answer_that_outlasts_the_head_timeout_is_not_cut_off() {
    // The head deadline is for clients that send nothing: a request being answered (here a
    // replication long-poll of 3 s against a 1 s head timeout) holds the connection open, and
    // the wait for the next head counts from the end of that answer.
    let (_s, _t, mut conn) = one_second_head_timeout();
    let asked = Instant::now();
    conn.write_all(b"GET /v1/replication/changes?since=0&wait=3 HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("long-poll");
    let head = read_answer(&mut conn);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        asked.elapsed() >= Duration::from_millis(2500),
        "the long-poll did not wait: {:?}",
        asked.elapsed()
    );
    std::thread::sleep(Duration::from_millis(500));
    healthz_on(&mut conn);
}

#[test]
fn follower_names_cannot_grow_the_metrics_without_bound() {
    let (s, _t) = server(ServerConfig::default());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    for i in 0..300 {
        let name = if i % 2 == 0 {
            format!("replica-{i}")
        } else {
            format!("bad name {i} {}", "z".repeat(200))
        };
        let r = agent
            .get(&format!("{}/v1/replication/changes?since=0", s.base))
            .header("x-kdsled-follower", &name)
            .call()
            .expect("changes");
        assert_eq!(r.status().as_u16(), 200);
    }
    let (_, m) = call("GET", &format!("{}/metrics", s.base), None, "");
    let text = m.as_str().expect("metrics text");
    let listed = text.lines().filter(|l| l.contains("follower=\"")).count();
    assert!(listed > 0 && listed <= 64, "{listed} followers listed");
    assert!(!text.contains("bad name"));
}

#[test]
fn an_id_too_long_to_address_is_refused_at_write_time() {
    let (s, t) = server(ServerConfig::default());
    let id = "i".repeat(600);
    let body = format!(r#"{{"id": "{id}", "lon": 1, "lat": 1}}"#);
    let (st, v) = call("POST", &format!("{}/v1/points", s.base), None, &body);
    assert_eq!(st, 400, "{v}");
    assert!(error_of(st, &v).contains("512"), "{v}");
    assert_eq!(t.index.meta().count, 100);
    let id = "i".repeat(512);
    let body = format!(r#"{{"id": "{id}", "lon": 1, "lat": 1}}"#);
    let (st, v) = call("POST", &format!("{}/v1/points", s.base), None, &body);
    assert_eq!(st, 200, "{v}");
    let (st, _) = call("GET", &format!("{}/v1/points/{id}", s.base), None, "");
    assert_eq!(st, 200);
    let (st, _) = call("DELETE", &format!("{}/v1/points/{id}", s.base), None, "");
    assert_eq!(st, 200);
}

#[test]
fn unknown_repeated_and_meaningless_parameters_are_400_naming_them() {
    let (s, _t) = server(ServerConfig::default());
    for (q, param) in [
        ("/v1/near?lon=0.5&lat=1&radius=1000&offset=10", "offset"),
        ("/v1/near?lon=0.5&lat=1&radius=1000&where=nocolon", "where"),
        ("/v1/near?lon=0.5&lat=1&radius=1000&radius=5", "radius"),
        ("/v1/nearest?lon=0.5&lat=1&k=3&limit=3", "limit"),
        ("/v1/within?bbox=0,0,1,2&radius=3", "radius"),
        (
            "/v1/stats?lon=0.5&lat=1&radius=5000&group_by=nope",
            "group_by",
        ),
        (
            "/v1/stats?lon=0.5&lat=1&radius=5000&group_by=cat&sum=cat",
            "sum",
        ),
        ("/v1/tiles/heatmap/3/4/3.png?radius=1000&zoom=3", "zoom"),
        ("/v1/replication/changes?since=0&offset=1", "offset"),
    ] {
        let (st, v) = call("GET", &format!("{}{q}", s.base), None, "");
        assert_eq!(st, 400, "{q}: {v}");
        assert_eq!(v["param"], param, "{q}: {v}");
    }
    // What the routes do take still works, numeric sums included.
    let (st, v) = call(
        "GET",
        &format!(
            "{}/v1/stats?lon=0.5&lat=1&radius=5000&group_by=cat&sum=w",
            s.base
        ),
        None,
        "",
    );
    assert_eq!(st, 200, "{v}");
}
