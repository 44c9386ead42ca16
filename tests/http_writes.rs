//! Writes over HTTP: PUT, POST batches (JSON and NDJSON), DELETE, bad bodies, read-only mode.

mod common;

use std::sync::Arc;

use common::build_index;
use kdsled::server::ServerConfig;
use kdsled::Metric;

struct Server {
    base: String,
    _server: common::inproc::InProc,
    t: common::TestIndex,
}

fn start(t: common::TestIndex, read_only: bool) -> Server {
    let config = ServerConfig {
        read_only,
        ..ServerConfig::default()
    };
    let server = common::inproc::serve(Arc::clone(&t.index), config);
    Server {
        base: server.base.clone(),
        _server: server,
        t,
    }
}

fn call(s: &Server, method: &str, path: &str, body: &str, ct: &str) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let req = axum::http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", s.base))
        .header("content-type", ct)
        .body(body.as_bytes().to_vec())
        .unwrap();
    let mut r = agent.run(req).unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, v)
}

#[test]
fn put_post_delete_round_trip() {
    let s = start(build_index(Metric::Haversine, 2, &[vec![0.0, 0.0]]), false);
    let (st, v) = call(
        &s,
        "PUT",
        "/v1/points/shop-1",
        r#"{"lon": 2.35, "lat": 48.85, "properties": {"kind": "bakery", "rank": 3}}"#,
        "application/json",
    );
    assert_eq!(st, 201, "a PUT that creates answers 201: {v}");
    assert_eq!(v["id"], "shop-1");
    let (st, v) = call(&s, "GET", "/v1/points/shop-1", "", "");
    assert_eq!(st, 200);
    assert_eq!(v["properties"]["kind"], "bakery");
    assert_eq!(v["properties"]["rank"], 3);
    // PUT again replaces position and attributes, and says so with 200.
    let (st, _) = call(
        &s,
        "PUT",
        "/v1/points/shop-1",
        r#"{"lon": 2.36, "lat": 48.86, "properties": {"kind": "cafe"}}"#,
        "application/json",
    );
    assert_eq!(st, 200);
    let (_, v) = call(&s, "GET", "/v1/points/shop-1", "", "");
    assert_eq!(
        (v["lon"].as_f64(), v["properties"]["kind"].as_str()),
        (Some(2.36), Some("cafe"))
    );
    assert!(v["properties"].get("rank").is_none());

    let batch = r#"[{"id": 1, "lon": 2.0, "lat": 48.0}, {"id": "b", "lon": 2.1, "lat": 48.1, "properties": {"x": null}}]"#;
    let (st, v) = call(&s, "POST", "/v1/points", batch, "application/json");
    assert_eq!((st, v["written"].as_u64()), (200, Some(2)), "{v}");
    let nd =
        "{\"id\": 7, \"lon\": 3.0, \"lat\": 47.0}\n\n{\"id\": 8, \"lon\": 3.1, \"lat\": 47.1}\n";
    let (st, v) = call(&s, "POST", "/v1/points", nd, "application/x-ndjson");
    assert_eq!((st, v["written"].as_u64()), (200, Some(2)), "{v}");
    let (_, v) = call(
        &s,
        "GET",
        "/v1/near?lon=3.05&lat=47.05&radius=20000",
        "",
        "",
    );
    assert_eq!(v["count"], 2);
    assert_eq!(s.t.index.meta().count, 6);

    let (st, _) = call(&s, "DELETE", "/v1/points/7", "", "");
    assert_eq!(st, 200);
    let (st, v) = call(&s, "DELETE", "/v1/points/7", "", "");
    assert_eq!(st, 404, "{v}");
    let (_, v) = call(
        &s,
        "GET",
        "/v1/near?lon=3.05&lat=47.05&radius=20000",
        "",
        "",
    );
    assert_eq!(v["count"], 1);
    assert!(s.t.index.verify().is_ok());
    let (_, h) = call(&s, "GET", "/healthz", "", "");
    assert_eq!(h["points"], 5);
}

#[test]
fn bad_bodies_get_400_and_write_nothing() {
    let s = start(build_index(Metric::Haversine, 2, &[vec![0.0, 0.0]]), false);
    let cases = [
        ("PUT", "/v1/points/a", "not json", "not JSON"),
        ("PUT", "/v1/points/a", "[1]", "object"),
        ("PUT", "/v1/points/a", r#"{"lat": 1}"#, "lon is required"),
        (
            "PUT",
            "/v1/points/a",
            r#"{"lon": "1", "lat": 1}"#,
            "lon must be a number",
        ),
        (
            "PUT",
            "/v1/points/a",
            r#"{"lon": 181, "lat": 1}"#,
            "longitude",
        ),
        (
            "PUT",
            "/v1/points/a",
            r#"{"lon": 1, "lat": -91}"#,
            "latitude",
        ),
        (
            "PUT",
            "/v1/points/a",
            r#"{"lon": 1, "lat": 1, "properties": [1]}"#,
            "properties",
        ),
        ("POST", "/v1/points", r#"{"id": 1}"#, "line 1"),
        (
            "POST",
            "/v1/points",
            r#"[{"id": 1, "lon": 1, "lat": 1}, {"id": 2, "lon": 1, "lat": 100}]"#,
            "item 1",
        ),
        (
            "POST",
            "/v1/points",
            r#"[{"lon": 1, "lat": 1}]"#,
            "id is required",
        ),
        (
            "POST",
            "/v1/points",
            "{\"id\": 1, \"lon\": 1, \"lat\": 1}\n{oops",
            "line 2",
        ),
        ("POST", "/v1/points", r#"{"a": 1"#, "line 1"),
        ("POST", "/v1/points", "42", "array"),
    ];
    for (method, path, body, needle) in cases {
        let (st, v) = call(&s, method, path, body, "application/json");
        assert_eq!(st, 400, "{method} {path} {body}: {v}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    assert_eq!(s.t.index.meta().count, 1);
    assert_eq!(s.t.index.meta().sequence, 0);
}

#[test]
fn read_only_refuses_writes_with_405() {
    let s = start(build_index(Metric::Haversine, 2, &[vec![0.0, 0.0]]), true);
    for (method, path, body) in [
        ("PUT", "/v1/points/a", r#"{"lon": 1, "lat": 1}"#),
        ("POST", "/v1/points", r#"[{"id": 1, "lon": 1, "lat": 1}]"#),
        ("DELETE", "/v1/points/0", ""),
    ] {
        let (st, v) = call(&s, method, path, body, "application/json");
        assert_eq!(st, 405, "{method} {path}");
        assert!(v["error"].as_str().unwrap().contains("read-only"));
    }
    assert_eq!(s.t.index.meta().count, 1);
    let (st, _) = call(&s, "GET", "/v1/points/0", "", "");
    assert_eq!(st, 200);
}

#[test]
fn euclidean_points_are_written_with_point() {
    let s = start(
        build_index(Metric::Euclidean, 3, &[vec![0.0, 0.0, 0.0]]),
        false,
    );
    let (st, v) = call(
        &s,
        "PUT",
        "/v1/points/star",
        r#"{"point": [1, 2, 3]}"#,
        "application/json",
    );
    assert_eq!(st, 201, "{v}");
    let (st, v) = call(
        &s,
        "PUT",
        "/v1/points/star",
        r#"{"point": [1, 2]}"#,
        "application/json",
    );
    assert_eq!(st, 400);
    assert!(v["error"].as_str().unwrap().contains("3"), "{v}");
    let (_, v) = call(&s, "GET", "/v1/near?point=1,2,3.5&radius=1", "", "");
    assert_eq!(v["results"][0]["id"], "star");
}
