//! What API clients expect: GeoJSON in and out, content negotiation, CORS, batch errors that
//! name the item.

mod common;

use std::sync::Arc;

use common::build_index;
use common::proc::call;
use kdsled::server::ServerConfig;
use kdsled::Metric;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn lonlat_server(config: ServerConfig) -> (common::inproc::InProc, common::TestIndex) {
    let pts: Vec<Vec<f64>> = (0..50)
        .map(|i| vec![2.0 + i as f64 * 0.001, 48.0])
        .collect();
    let t = build_index(Metric::Haversine, 2, &pts);
    (common::inproc::serve(Arc::clone(&t.index), config), t)
}

#[test]
fn geojson_features_can_be_written_and_are_served_on_accept() {
    let (s, t) = lonlat_server(ServerConfig::default());
    let feature = r#"{"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.5, 48.5]},
                      "properties": {"kind": "bakery"}}"#;
    let (st, v) = call("PUT", &format!("{}/v1/points/f1", s.base), None, feature);
    assert_eq!(st, 201, "{v}");
    let collection = r#"{"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "f2", "geometry": {"type": "Point", "coordinates": [2.6, 48.6]}, "properties": {"kind": "cafe"}},
        {"type": "Feature", "id": 7001, "geometry": {"type": "Point", "coordinates": [2.7, 48.7]}}
    ]}"#;
    let (st, v) = call("POST", &format!("{}/v1/points", s.base), None, collection);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["written"], 2);
    assert_eq!(t.index.meta().count, 53);
    let (_, p) = call("GET", &format!("{}/v1/points/f2", s.base), None, "");
    assert_eq!(p["properties"]["kind"], "cafe");
    assert_eq!(p["lon"], 2.6);

    // A bad item rejects the batch and is named by its index.
    let bad = r#"[{"id": "ok", "lon": 1, "lat": 1}, {"id": "bad", "lon": 1, "lat": 99}]"#;
    let (st, v) = call("POST", &format!("{}/v1/points", s.base), None, bad);
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["item"], 1, "{v}");
    let bad = r#"{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0,0],[1,1]]}}]}"#;
    let (st, v) = call("POST", &format!("{}/v1/points", s.base), None, bad);
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["item"], 0);
    assert_eq!(t.index.meta().count, 53);

    // Accept: application/geo+json gets GeoJSON; an explicit format wins.
    let url = format!("{}/v1/near?lon=2.6&lat=48.6&radius=1000", s.base);
    let mut r = agent()
        .get(&url)
        .header("accept", "application/geo+json")
        .call()
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["type"], "FeatureCollection", "{v}");
    let mut r = agent()
        .get(&format!("{url}&format=json"))
        .header("accept", "application/geo+json")
        .call()
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert!(v["results"].is_array(), "{v}");
}

#[test]
fn geojson_is_refused_for_a_euclidean_index() {
    let pts: Vec<Vec<f64>> = (0..20).map(|i| vec![i as f64, 0.0, 1.0]).collect();
    let t = build_index(Metric::Euclidean, 3, &pts);
    let s = common::inproc::serve(Arc::clone(&t.index), ServerConfig::default());
    let (st, v) = call(
        "GET",
        &format!("{}/v1/near?point=1,0,1&radius=3&format=geojson", s.base),
        None,
        "",
    );
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["param"], "format");
    let feature = r#"{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}}"#;
    let (st, v) = call("PUT", &format!("{}/v1/points/x", s.base), None, feature);
    assert_eq!(st, 400, "{v}");
}

#[test]
fn cors_preflights_are_answered_for_the_configured_origin_only() {
    let (s, _t) = lonlat_server(ServerConfig {
        cors_origin: Some("https://maps.example.org".into()),
        ..ServerConfig::default()
    });
    let url = format!("{}/v1/points/a", s.base);
    let preflight = |origin: &str| {
        let req = axum::http::Request::builder()
            .method("OPTIONS")
            .uri(&url)
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type")
            .body(Vec::new())
            .unwrap();
        agent().run(req).unwrap()
    };
    let r = preflight("https://maps.example.org");
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://maps.example.org"
    );
    assert!(r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("PUT"));
    // Another origin is not allowed (the browser compares the one allowed origin with its own).
    let r = preflight("https://evil.example.com");
    assert_ne!(
        r.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://evil.example.com")
    );
    // A plain GET from the page carries the header too.
    let r = agent()
        .get(&format!("{}/healthz", s.base))
        .header("origin", "https://maps.example.org")
        .call()
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://maps.example.org"
    );
    // Without --cors-origin nothing is added.
    let (plain, _t2) = lonlat_server(ServerConfig::default());
    let r = agent()
        .get(&format!("{}/healthz", plain.base))
        .header("origin", "https://maps.example.org")
        .call()
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[test]
fn tiles_carry_an_etag_that_changes_with_the_index_and_answer_304() {
    let (s, _t) = lonlat_server(ServerConfig::default());
    let url = format!("{}/v1/tiles/heatmap/8/129/88.png?radius=2000", s.base);
    let r = agent().get(&url).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let tag = r.headers()["etag"].to_str().unwrap().to_string();
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    let r = agent()
        .get(&url)
        .header("if-none-match", &tag)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 304);
    // Another radius is another tile.
    let r = agent()
        .get(&format!("{url}0"))
        .header("if-none-match", &tag)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // A write changes the tag: the old one no longer matches.
    let (st, _) = call(
        "PUT",
        &format!("{}/v1/points/new", s.base),
        None,
        r#"{"lon": 2.02, "lat": 48.0}"#,
    );
    assert_eq!(st, 201);
    let mut r = agent()
        .get(&url)
        .header("if-none-match", &tag)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_ne!(r.headers()["etag"].to_str().unwrap(), tag);
    assert!(r.body_mut().read_to_vec().unwrap().starts_with(b"\x89PNG"));
    // TileJSON names the tile template.
    let (st, tj) = call(
        "GET",
        &format!("{}/v1/tiles/heatmap.json", s.base),
        None,
        "",
    );
    assert_eq!(st, 200);
    assert_eq!(tj["tilejson"], "3.0.0");
    assert!(tj["tiles"][0]
        .as_str()
        .unwrap()
        .ends_with("/v1/tiles/heatmap/{z}/{x}/{y}.png"));
}

#[test]
fn where_filters_during_the_walk_and_properties_choose_the_attributes() {
    let (s, _t) = lonlat_server(ServerConfig::default());
    let base = format!("{}/v1/near?lon=2.02&lat=48&radius=100000", s.base);
    let (_, all) = call("GET", &format!("{base}&limit=5"), None, "");
    assert_eq!(all["count"], 50);
    let (st, v) = call("GET", &format!("{base}&limit=5&where=cat:c1"), None, "");
    assert_eq!(st, 200, "{v}");
    // Points 1, 4, 7, ... are c1: 17 of 50, and the limit takes the nearest matching ones.
    assert_eq!(v["count"], 17);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert!(
        results.iter().all(|r| r["properties"]["cat"] == "c1"),
        "{v}"
    );
    let (_, v) = call("GET", &format!("{base}&limit=3&properties=w"), None, "");
    for r in v["results"].as_array().unwrap() {
        let props = r["properties"].as_object().unwrap();
        assert_eq!(props.keys().collect::<Vec<_>>(), vec!["w"], "{r}");
    }
    let (_, v) = call(
        "GET",
        &format!("{}/v1/nearest?lon=2.0&lat=48&k=2&where=cat:c2", s.base),
        None,
        "",
    );
    let ids: Vec<_> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, vec![serde_json::json!(2), serde_json::json!(5)], "{v}");
    let stats = format!(
        "{}/v1/stats?lon=2.02&lat=48&radius=100000&group_by=cat&where=cat:c0",
        s.base
    );
    let (_, v) = call("GET", &stats, None, "");
    assert_eq!(v["count"], 17, "{v}");
    // Again, now from the cached attribute columns on the runtime's thread: the same answer.
    let (_, again) = call("GET", &stats, None, "");
    assert_eq!(again, v);
    // Summing a text attribute is refused, naming a point that has text there: the first time
    // and once the columns are cached (the message's id needs the payload, so it gives way).
    for _ in 0..2 {
        let (st, v) = call(
            "GET",
            &format!(
                "{}/v1/stats?lon=2.02&lat=48&radius=100000&group_by=cat&sum=cat",
                s.base
            ),
            None,
            "",
        );
        assert_eq!((st, v["param"].as_str()), (400, Some("sum")), "{v}");
        let message = v["error"].as_str().unwrap_or_default();
        assert!(
            message.contains("\"cat\" is not numeric (point ") && message.contains("has \"c"),
            "{v}"
        );
    }
    let (st, v) = call("GET", &format!("{base}&where=nocolon"), None, "");
    assert_eq!((st, v["param"].as_str()), (400, Some("where")));
}

/// Follows `next` cursors from `first` and returns every page's ids.
fn all_pages(base: &str, first: &str) -> Vec<Vec<i64>> {
    let mut pages = Vec::new();
    let mut url = format!("{base}{first}");
    loop {
        let (st, v) = call("GET", &url, None, "");
        assert_eq!(st, 200, "{url}: {v}");
        pages.push(
            v["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_i64().unwrap())
                .collect(),
        );
        match v["next"].as_str() {
            Some(next) => url = format!("{base}{first}&after={next}"),
            None => break,
        }
        assert!(pages.len() < 100, "pages never end");
    }
    pages
}

#[test]
fn cursors_page_through_every_point_exactly_once_and_fail_clearly_after_a_write() {
    let (s, _t) = lonlat_server(ServerConfig::default());
    for first in [
        "/v1/within?bbox=-180,-90,180,90&limit=7",
        "/v1/near?lon=2.01&lat=48&radius=1000000&limit=7",
        "/v1/nearest?lon=2.01&lat=48&k=7",
        "/v1/near?lon=2.01&lat=48&radius=1000000&limit=4&where=cat:c1",
    ] {
        let pages = all_pages(&s.base, first);
        let mut ids: Vec<i64> = pages.iter().flatten().copied().collect();
        // nearest pages on too: the next k after the last, until the index runs out.
        let want: Vec<i64> = (0..50)
            .filter(|i| !first.contains("where") || i % 3 == 1)
            .collect();
        assert!(pages.iter().all(|p| p.len() <= 7), "{first}");
        ids.sort();
        assert_eq!(ids, want, "{first}");
    }
    // Near pages are in distance order across pages too.
    let pages = all_pages(&s.base, "/v1/near?lon=2.0&lat=48&radius=1000000&limit=10");
    let flat: Vec<i64> = pages.concat();
    assert_eq!(flat, (0..50).collect::<Vec<_>>());
    // A write between pages: the cursor is refused, not silently misapplied.
    let (_, v) = call(
        "GET",
        &format!("{}/v1/near?lon=2.0&lat=48&radius=1000000&limit=10", s.base),
        None,
        "",
    );
    let next = v["next"].as_str().unwrap().to_string();
    let (st, _) = call(
        "PUT",
        &format!("{}/v1/points/late", s.base),
        None,
        r#"{"lon": 2.0, "lat": 48.0}"#,
    );
    assert_eq!(st, 201);
    let (st, v) = call(
        "GET",
        &format!(
            "{}/v1/near?lon=2.0&lat=48&radius=1000000&limit=10&after={next}",
            s.base
        ),
        None,
        "",
    );
    assert_eq!(st, 409, "{v}");
    let (st, v) = call(
        "GET",
        &format!("{}/v1/near?lon=2.0&lat=48&radius=10&after=garbage", s.base),
        None,
        "",
    );
    assert_eq!((st, v["param"].as_str()), (400, Some("after")));
}

#[test]
fn metrics_include_process_and_build_info() {
    let (s, _t) = lonlat_server(ServerConfig::default());
    let (_, m) = call("GET", &format!("{}/metrics", s.base), None, "");
    let text = m.as_str().unwrap();
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_cpu_seconds_total",
        "kdsled_durable_sequence",
        "kdsled_build_info{version=",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    let rss: f64 = text
        .lines()
        .find(|l| l.starts_with("process_resident_memory_bytes "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(rss > 1e6, "{rss}");
}

#[test]
fn the_documentation_page_and_its_vendored_redoc_are_served() {
    let (s, _t) = lonlat_server(ServerConfig::default());
    let mut r = agent().get(&format!("{}/docs", s.base)).call().unwrap();
    let html = r.body_mut().read_to_string().unwrap();
    assert!(html.contains(r#"spec-url="/openapi.json""#), "{html}");
    let mut r = agent()
        .get(&format!("{}/assets/redoc.standalone.js", s.base))
        .call()
        .unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let js = r
        .body_mut()
        .with_config()
        .limit(8 << 20)
        .read_to_vec()
        .unwrap();
    assert!(js.len() > 500_000);
    let (st, _) = call(
        "GET",
        &format!("{}/assets/LICENSE-redoc.txt", s.base),
        None,
        "",
    );
    assert_eq!(st, 200);
}
