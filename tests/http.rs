//! The HTTP service on a real loopback port: answers, GeoJSON, errors, metrics, OpenAPI.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::build_index;
use kdsled::server::{routes, ServerConfig};
use kdsled::Metric;

/// A server on an ephemeral port, stopped when dropped.
struct Server {
    base: String,
    _server: common::inproc::InProc,
    _index: common::TestIndex,
}

fn start(t: common::TestIndex) -> Server {
    let server = common::inproc::serve(Arc::clone(&t.index), ServerConfig::default());
    Server {
        base: server.base.clone(),
        _server: server,
        _index: t,
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// GETs a path: status, content type, body.
fn get(s: &Server, path: &str) -> (u16, String, String) {
    let mut r = agent().get(&format!("{}{path}", s.base)).call().unwrap();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        r.status().as_u16(),
        ct,
        r.body_mut().read_to_string().unwrap(),
    )
}

fn get_json(s: &Server, path: &str) -> serde_json::Value {
    let (status, ct, body) = get(s, path);
    assert_eq!(status, 200, "{path}: {body}");
    assert!(ct.starts_with("application/json"), "{path}: {ct}");
    serde_json::from_str(&body).unwrap()
}

fn cities_like() -> Vec<Vec<f64>> {
    // A grid over Paris, about 1.1 km apart, plus points on both sides of the antimeridian.
    let mut v: Vec<Vec<f64>> = (0..400)
        .map(|i| {
            vec![
                2.2 + (i % 20) as f64 * 0.015,
                48.75 + (i / 20) as f64 * 0.01,
            ]
        })
        .collect();
    v.push(vec![179.99, 0.0]);
    v.push(vec![-179.99, 0.0]);
    v
}

#[test]
fn queries_answer_like_the_library() {
    let pts = cities_like();
    let t = build_index(Metric::Haversine, 2, &pts);
    let lib = t.index.radius(&[2.35, 48.85], 2_500.0, 5).unwrap();
    let first = t.index.payload(lib.hits[0].point).unwrap();
    let s = start(t);

    let v = get_json(&s, "/v1/near?lon=2.35&lat=48.85&radius=2500&limit=5");
    assert_eq!(v["count"], lib.count);
    assert_eq!(v["truncated"], true);
    assert_eq!(v["results"].as_array().unwrap().len(), 5);
    let d: Vec<f64> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["distance_m"].as_f64().unwrap())
        .collect();
    let want: Vec<f64> = lib
        .hits
        .iter()
        .map(|h| (h.distance * 1000.0).round() / 1000.0)
        .collect();
    assert_eq!(d, want);
    assert_eq!(v["results"][0]["id"], first.id.to_json());
    assert_eq!(
        v["results"][0]["properties"]["cat"],
        first.get("cat").unwrap().to_json()
    );

    let (status, ct, body) = get(&s, "/v1/near?lon=179.999&lat=0&radius=5000&format=geojson");
    assert_eq!(status, 200);
    assert_eq!(ct, "application/geo+json");
    let g: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(g["type"], "FeatureCollection");
    assert_eq!(g["features"].as_array().unwrap().len(), 2);
    assert_eq!(g["features"][0]["geometry"]["type"], "Point");
    assert_eq!(g["features"][0]["geometry"]["coordinates"][0], 179.99);

    let v = get_json(&s, "/v1/nearest?lon=2.2&lat=48.75&k=3");
    assert_eq!(v["results"][0]["id"], 0);
    assert_eq!(v["results"][0]["distance_m"], 0.0);
    assert_eq!(v["results"].as_array().unwrap().len(), 3);
    let v = get_json(&s, "/v1/nearest?lon=0&lat=0&k=3&max_distance=1000");
    assert_eq!(v["count"], 0);

    let v = get_json(&s, "/v1/within?bbox=179,-1,-179,1");
    assert_eq!(v["count"], 2);
    let v = get_json(&s, "/v1/within?bbox=2.2,48.75,2.23,48.76&limit=2");
    assert_eq!(v["count"], 6);
    assert_eq!(v["results"].as_array().unwrap().len(), 2);

    let v = get_json(
        &s,
        "/v1/stats?lon=2.35&lat=48.85&radius=2500&group_by=cat&sum=w",
    );
    let total: u64 = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, lib.count);
    assert_eq!(v["count"], lib.count);

    let v = get_json(&s, "/v1/points/7");
    assert_eq!(v["id"], 7);
    assert_eq!(v["lon"], pts[7][0]);
    let (status, _, body) = get(&s, "/v1/points/nope");
    assert_eq!(status, 404);
    assert!(body.contains("\"error\""));

    let v = get_json(&s, "/healthz");
    assert_eq!(v["points"], pts.len());
    assert_eq!(v["format_version"], kdsled::store::format::FORMAT_VERSION);

    let (status, ct, text) = get(&s, "/metrics");
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("kdsled_http_requests_total{route=\"/v1/near\",status=\"200\"} 2"),
        "{text}"
    );
    assert!(text.contains("kdsled_http_requests_total{route=\"/v1/points/{id}\",status=\"404\"} 1"));
    assert!(text.contains(&format!("kdsled_points {}", pts.len())));
    assert!(text.contains("kdsled_query_nodes_read_count"));
    assert!(text.contains("kdsled_node_cache_hits_total"));
    assert!(text
        .contains("kdsled_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/v1/near\"} 2"));
}

#[test]
fn bad_requests_get_400_naming_the_parameter() {
    let s = start(build_index(Metric::Haversine, 2, &cities_like()));
    let cases: &[(&str, &str)] = &[
        ("/v1/near", "lon"),
        ("/v1/near?lat=1&radius=5", "lon"),
        ("/v1/near?lon=1&radius=5", "lat"),
        ("/v1/near?lon=200&lat=0&radius=5", "lon"),
        ("/v1/near?lon=-180.5&lat=0&radius=5", "lon"),
        ("/v1/near?lon=0&lat=91&radius=5", "lat"),
        ("/v1/near?lon=0&lat=-90.01&radius=5", "lat"),
        ("/v1/near?lon=NaN&lat=0&radius=5", "lon"),
        ("/v1/near?lon=inf&lat=0&radius=5", "lon"),
        ("/v1/near?lon=abc&lat=0&radius=5", "lon"),
        ("/v1/near?lon=%ff%fe&lat=0&radius=5", "lon"),
        ("/v1/near?lon=&lat=0&radius=5", "lon"),
        ("/v1/near?lon=0&lat=0", "radius"),
        ("/v1/near?lon=0&lat=0&radius=0", "radius"),
        ("/v1/near?lon=0&lat=0&radius=-3", "radius"),
        ("/v1/near?lon=0&lat=0&radius=NaN", "radius"),
        ("/v1/near?lon=0&lat=0&radius=20100000", "radius"),
        ("/v1/near?lon=0&lat=0&radius=1e400", "radius"),
        ("/v1/near?lon=0&lat=0&radius=5&limit=10001", "limit"),
        ("/v1/near?lon=0&lat=0&radius=5&limit=-1", "limit"),
        ("/v1/near?lon=0&lat=0&radius=5&limit=1.5", "limit"),
        ("/v1/near?lon=0&lat=0&radius=5&format=xml", "format"),
        ("/v1/near?point=1,2&radius=5", "point"),
        ("/v1/nearest?lon=0&lat=0", "k"),
        ("/v1/nearest?lon=0&lat=0&k=0", "k"),
        ("/v1/nearest?lon=0&lat=0&k=10001", "k"),
        ("/v1/nearest?lon=0&lat=0&k=abc", "k"),
        ("/v1/nearest?lon=0&lat=0&k=99999999999999999999999", "k"),
        (
            "/v1/nearest?lon=0&lat=0&k=3&max_distance=-1",
            "max_distance",
        ),
        ("/v1/within", "bbox"),
        ("/v1/within?bbox=1,2,3", "bbox"),
        ("/v1/within?bbox=a,b,c,d", "bbox"),
        ("/v1/within?bbox=0,10,1,5", "bbox"),
        ("/v1/within?bbox=0,0,1,95", "bbox"),
        ("/v1/within?bbox=0,0,1,1,2,2", "bbox"),
        ("/v1/within?bbox=0,0,1,1&limit=x", "limit"),
        ("/v1/stats?lon=0&lat=0&radius=5", "group_by"),
        ("/v1/stats?lon=0&lat=0&group_by=cat", "radius"),
    ];
    for (path, param) in cases {
        let (status, ct, body) = get(&s, path);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["param"], *param, "{path}: {body}");
        assert!(
            v["error"].as_str().unwrap().contains(param),
            "{path}: {body}"
        );
    }
    for path in ["/nope", "/v1", "/v1/near/extra", "/v1/points/"] {
        let (status, ct, body) = get(&s, path);
        assert_eq!(status, 404, "{path}");
        assert!(
            ct.starts_with("application/json") && body.contains("error"),
            "{path}: {body}"
        );
    }
    let mut r = agent()
        .post(&format!("{}/v1/near", s.base))
        .send("x")
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert!(r.body_mut().read_to_string().unwrap().contains("error"));
}

#[test]
fn euclidean_indexes_take_point() {
    let pts: Vec<Vec<f64>> = (0..50)
        .map(|i| vec![i as f64, (i % 7) as f64, 0.5])
        .collect();
    let s = start(build_index(Metric::Euclidean, 3, &pts));
    let v = get_json(&s, "/v1/near?point=10,3,0.5&radius=1.5");
    assert_eq!(v["results"][0]["id"], 10);
    assert_eq!(v["results"][0]["point"][0], 10.0);
    assert!(v["results"][0].get("lon").is_none());
    for (path, param) in [
        ("/v1/near?point=1,2&radius=1", "point"),
        ("/v1/near?lon=1&lat=2&radius=1", "point"),
        ("/v1/near?point=1,x,2&radius=1", "point"),
        ("/v1/within?bbox=0,0,0,1,1", "bbox"),
    ] {
        let (status, _, body) = get(&s, path);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body.contains(&format!("\"param\":\"{param}\"")),
            "{path}: {body}"
        );
    }
    let v = get_json(&s, "/v1/within?bbox=0,0,0,5,6,1");
    assert_eq!(v["count"], 6);
}

#[test]
fn openapi_describes_exactly_the_served_routes() {
    let s = start(build_index(Metric::Haversine, 2, &cities_like()));
    let doc = get_json(&s, "/openapi.json");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    // axum captures whole segments, so the tile route takes `{y}` and strips the `.png` itself;
    // the document gives clients the path they request.
    let served: BTreeSet<String> = routes()
        .into_iter()
        .map(|(p, _)| p.replace("{x}/{y}", "{x}/{y}.png"))
        .collect();
    assert_eq!(documented, served);
    // Every documented method of every path reaches a handler: not the "no route" fallback,
    // not 405. (Writes get an empty body and answer 400; a missing id answers the handler's 404.)
    let mut methods = 0;
    for path in &documented {
        let url = format!("{}{}", s.base, path.replace("{id}", "1"));
        for (method, _) in doc["paths"][path].as_object().unwrap() {
            let req = axum::http::Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&url)
                .body(Vec::<u8>::new())
                .unwrap();
            let mut r = agent().run(req).unwrap();
            let status = r.status().as_u16();
            let body = r.body_mut().read_to_string().unwrap();
            assert!(
                status != 405 && !body.contains("no route"),
                "{method} {path}: {status} {body}"
            );
            methods += 1;
        }
    }
    // One method per path, plus PUT and DELETE on /v1/points/{id}.
    assert_eq!(methods, documented.len() + 2);
}

/// One raw HTTP/1.1 GET with extra header lines: status, headers (names lower-cased), body.
fn raw_get(s: &Server, path: &str, extra: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    raw(&s.base, "GET", path, extra)
}

/// One raw HTTP/1.1 request without a body to the server at `base`.
fn raw(base: &str, method: &str, path: &str, extra: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n"
    )
    .expect("request");
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).expect("answer");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

/// Two JSON answers that are equal but for `nodes_read` (which follows the caches' state).
fn same_answer(a: &[u8], b: &[u8]) -> bool {
    let parse = |x: &[u8]| {
        let mut v: serde_json::Value = serde_json::from_slice(x).expect("JSON");
        v.as_object_mut().map(|o| o.remove("nodes_read"));
        v
    };
    parse(a) == parse(b)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The query routes are answered by their direct lanes, past axum's router, unless CORS is on;
/// every way of asking them must get what the router gives.
#[test]
fn query_routes_answer_alike_through_their_lanes_and_the_router() {
    let t = build_index(Metric::Haversine, 2, &cities_like());
    let lanes = common::inproc::serve(Arc::clone(&t.index), ServerConfig::default());
    // With a CORS origin every request goes through the router.
    let routed = common::inproc::serve(
        Arc::clone(&t.index),
        ServerConfig {
            cors_origin: Some("*".into()),
            ..ServerConfig::default()
        },
    );
    let asks: &[(&str, &str, &str)] = &[
        ("GET", "/v1/near?lon=2.35&lat=48.85&radius=3000", ""),
        ("GET", "/v1/near?lon=2.35&lat=48.85&radius=3000&limit=2", ""),
        (
            "GET",
            "/v1/near?lon=2.35&lat=48.85&radius=3000",
            "Accept: application/geo+json\r\n",
        ),
        (
            "GET",
            "/v1/near?lon=2.35&lat=48.85&radius=90000",
            "Accept-Encoding: gzip\r\n",
        ),
        ("GET", "/v1/near?lon=2.35&lat=48.85&radius=1e9", ""),
        ("GET", "/v1/near?lon=2.35&lat=48.85", ""),
        ("GET", "/v1/near?lon=2.35&lat=48.85&radius=10&radius=20", ""),
        ("GET", "/v1/near?lon=2.35&lat=48.85&radius=10&nope=1", ""),
        (
            "GET",
            "/v1/near?lon=2%2E35&lat=48.85&radius=3000&where=cat%3Ac1",
            "",
        ),
        ("GET", "/v1/nearest?lon=2.2&lat=48.75&k=3", ""),
        ("GET", "/v1/nearest?lon=2.2&lat=48.75&k=0", ""),
        ("GET", "/v1/within?bbox=2,48,3,49&limit=5", ""),
        ("GET", "/v1/within?bbox=2,48,3", ""),
        (
            "GET",
            "/v1/stats?lon=2.35&lat=48.85&radius=5000&group_by=cat",
            "",
        ),
        ("GET", "/v1/stats?radius=5000", ""),
        // Not a lane: another method, another path, a trailing slash.
        ("HEAD", "/v1/near?lon=2.35&lat=48.85&radius=3000", ""),
        (
            "POST",
            "/v1/near?lon=2.35&lat=48.85&radius=3000",
            "Content-Length: 0\r\n",
        ),
        ("DELETE", "/v1/stats", ""),
        ("GET", "/v1/near/?lon=2.35&lat=48.85&radius=3000", ""),
        ("GET", "/v1/Near?lon=2.35&lat=48.85&radius=3000", ""),
    ];
    // Not the length: `nodes_read` follows each server's cache.
    let kept = ["content-type", "content-encoding"];
    // CORS adds its own `Vary` values.
    let gzip_varies = |h: &[(String, String)]| {
        h.iter()
            .any(|(k, v)| k == "vary" && v.contains("accept-encoding"))
    };
    for (method, path, extra) in asks {
        let (a_status, a_head, a_body) = raw(&lanes.base, method, path, extra);
        let (b_status, b_head, b_body) = raw(&routed.base, method, path, extra);
        assert_eq!(a_status, b_status, "{method} {path}");
        for name in kept {
            let a = header(&a_head, name);
            assert_eq!(a, header(&b_head, name), "{method} {path}: {name}");
        }
        assert_eq!(
            gzip_varies(&a_head),
            gzip_varies(&b_head),
            "{method} {path}"
        );
        if header(&a_head, "content-encoding").is_some() || a_body.is_empty() {
            assert_eq!(a_body.is_empty(), b_body.is_empty(), "{method} {path}");
        } else if a_status == 200 {
            assert!(same_answer(&a_body, &b_body), "{method} {path}");
        } else {
            assert_eq!(a_body, b_body, "{method} {path}");
        }
    }
    // Lane requests are counted under their routes, as routed ones are (the HEAD is routed).
    let (_, _, text) = raw(&lanes.base, "GET", "/metrics", "");
    let text = String::from_utf8(text).expect("text");
    for line in [
        "kdsled_http_requests_total{route=\"/v1/near\",status=\"200\"} 6",
        "kdsled_http_requests_total{route=\"/v1/near\",status=\"400\"} 4",
        "kdsled_http_requests_total{route=\"/v1/near\",status=\"405\"} 1",
        "kdsled_http_requests_total{route=\"/v1/nearest\",status=\"400\"} 1",
        "kdsled_http_requests_total{route=\"/v1/within\",status=\"200\"} 1",
        "kdsled_http_requests_total{route=\"/v1/stats\",status=\"400\"} 1",
        "kdsled_http_requests_total{route=\"unmatched\",status=\"404\"} 2",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}

#[test]
fn large_answers_are_gzipped_only_for_clients_that_accept_gzip_and_all_vary_on_it() {
    use std::io::Read;
    let s = start(build_index(Metric::Haversine, 2, &cities_like()));
    let big = "/v1/within?bbox=2,48,3,49";
    let (st, plain_h, plain) = raw_get(&s, big, "");
    assert_eq!(st, 200);
    assert!(plain.len() > 1024, "a large answer: {} bytes", plain.len());
    assert_eq!(header(&plain_h, "content-encoding"), None);
    assert_eq!(header(&plain_h, "vary"), Some("accept-encoding"));

    for accept in ["gzip", "deflate, GZIP;q=0.8", "br;q=1.0, gzip"] {
        let (st, h, body) = raw_get(&s, big, &format!("Accept-Encoding: {accept}\r\n"));
        assert_eq!(st, 200);
        assert_eq!(header(&h, "content-encoding"), Some("gzip"), "{accept}");
        assert_eq!(header(&h, "vary"), Some("accept-encoding"), "{accept}");
        // Chunked (the compressed length is not known up front): undo the framing, then gzip.
        assert_eq!(header(&h, "transfer-encoding"), Some("chunked"), "{accept}");
        let mut gz = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk size");
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
            if n == 0 {
                break;
            }
            gz.extend_from_slice(&rest[eol + 2..eol + 2 + n]);
            rest = &rest[eol + 2 + n + 2..];
        }
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut unzipped)
            .expect("gzip");
        assert!(
            same_answer(&unzipped, &plain),
            "{accept}: not the plain answer"
        );
    }

    // gzip refused outright, and small answers, go out as they are.
    let (_, h, body) = raw_get(&s, big, "Accept-Encoding: gzip;q=0\r\n");
    assert_eq!(header(&h, "content-encoding"), None);
    assert!(same_answer(&body, &plain), "not the plain answer");
    let (st, h, body) = raw_get(
        &s,
        "/v1/nearest?lon=2.2&lat=48.75&k=1",
        "Accept-Encoding: gzip\r\n",
    );
    assert_eq!(st, 200);
    assert!(body.len() < 1024);
    assert_eq!(header(&h, "content-encoding"), None);
    assert_eq!(header(&h, "vary"), None, "a small answer never varies");
}
