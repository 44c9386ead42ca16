//! HTTP load benchmark: radius queries on cities1000 over 16 keep-alive connections.
//!
//! `cargo bench --bench http_load` starts kdsled's server in this process on a loopback port and
//! drives it with a small HTTP/1.1 load generator, then prints requests/second and p50/p99
//! latency per radius. `KDSLED_LOAD_TARGET=http://127.0.0.1:PORT` drives an external server
//! instead (the same query paths), which is how `benches/http_compare.sh` measures the Flask +
//! cKDTree baseline side by side. `KDSLED_LOAD_SECONDS` (default 10) and
//! `KDSLED_LOAD_CONNECTIONS` (default 16) tune the run; `KDSLED_LOAD_LIMIT` sets the `limit`
//! parameter, and `KDSLED_LOAD_PATH=/healthz` measures one fixed path instead (the server's
//! floor without any query); `KDSLED_LOAD_WRITES=1` sends durable `PUT /v1/points/{id}` writes
//! instead.

#[path = "../tests/common/inproc.rs"]
mod inproc;
mod support;

// The same allocator as the kdsled binary, so the in-process server is measured as it ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kdsled::server::ServerConfig;
use kdsled::Index;
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// One client issuing GETs in a loop over a keep-alive connection (reconnecting when the server
/// closes it, as gunicorn's sync workers do); returns per-request latencies and failures.
async fn connection(
    addr: String,
    paths: Arc<Vec<String>>,
    offset: usize,
    until: Instant,
) -> std::io::Result<(Vec<u32>, u64)> {
    let mut lat = Vec::with_capacity(1 << 16);
    let mut errors = 0u64;
    let mut i = offset;
    let mut line = String::new();
    let mut body = Vec::new();
    'connect: while Instant::now() < until {
        let stream = TcpStream::connect(&addr).await?;
        stream.set_nodelay(true)?;
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        while Instant::now() < until {
            let path = &paths[i % paths.len()];
            i += 1;
            let t = Instant::now();
            // A path starting with "PUT " is a write: a fresh id per request, a small body.
            let request = match path.strip_prefix("PUT ") {
                Some(body) => {
                    let body = body.replace("{lat}", &format!("{}", (i % 1000) as f64 * 0.01));
                    format!(
                        "PUT /v1/points/c{offset}-{i} HTTP/1.1\r\nHost: bench\r\n\
                         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                }
                None => format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n"),
            };
            w.write_all(request.as_bytes()).await?;
            let (mut len, mut status_ok, mut first, mut close) = (0usize, false, true, false);
            loop {
                line.clear();
                if r.read_line(&mut line).await? == 0 {
                    errors += 1;
                    continue 'connect;
                }
                if first {
                    status_ok = matches!(line.split_whitespace().nth(1), Some("200" | "201"));
                    first = false;
                }
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap_or(0);
                    } else if k.eq_ignore_ascii_case("connection") {
                        close = v.trim().eq_ignore_ascii_case("close");
                    }
                }
            }
            body.resize(len, 0);
            r.read_exact(&mut body).await?;
            if !status_ok {
                errors += 1;
            }
            lat.push(t.elapsed().as_micros() as u32);
            if close {
                continue 'connect;
            }
        }
    }
    Ok((lat, errors))
}

fn run_load(addr: &str, paths: Vec<String>, conns: usize, secs: u64) -> (f64, f64, f64, u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("load runtime");
    let paths = Arc::new(paths);
    let until = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..conns)
            .map(|c| tokio::spawn(connection(addr.to_string(), paths.clone(), c * 997, until)))
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("task").expect("connection"));
        }
        out
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut all: Vec<u32> = results.iter().flat_map(|r| r.0.iter().copied()).collect();
    let errors: u64 = results.iter().map(|r| r.1).sum();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    (all.len() as f64 / elapsed, pct(0.50), pct(0.99), errors)
}

fn main() {
    let secs = env_or("KDSLED_LOAD_SECONDS", 10u64);
    let conns = env_or("KDSLED_LOAD_CONNECTIONS", 16usize);
    let points = cities();
    let qs = queries(&points, 4096, 42);

    let (_server_rt, _dir, addr, label) = match std::env::var("KDSLED_LOAD_TARGET") {
        Ok(target) => (
            None,
            None,
            target.trim_start_matches("http://").to_string(),
            target,
        ),
        Err(_) => {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("idx");
            kdsled::index::build(
                &path,
                kdsled::input::open(&cities_path(), &kdsled::input::InputSpec::geonames())
                    .expect("open cities"),
                &support::options(),
                &kdsled::index::NoProgress,
            )
            .expect("build");
            let index = Arc::new(Index::open(&path, 256).expect("open"));
            let server = inproc::serve(index, ServerConfig::default());
            let addr = server.base.trim_start_matches("http://").to_string();
            (
                Some(server),
                Some(dir),
                addr,
                "kdsled (in process)".to_string(),
            )
        }
    };

    println!("target: {label}; {conns} connections, {secs} s per radius, cities1000 query points");
    println!(
        "{:>10} {:>10} {:>9} {:>9} {:>7}",
        "radius m", "req/s", "p50 ms", "p99 ms", "errors"
    );
    if std::env::var_os("KDSLED_LOAD_WRITES").is_some() {
        let body = r#"PUT {"lon": 2.35, "lat": {lat}, "properties": {"kind": "bench"}}"#;
        let (rps, p50, p99, errors) = run_load(&addr, vec![body.to_string()], conns, secs);
        println!("PUT /v1/points/{{id}}: {rps:.0} durable writes/s, p50 {p50:.3} ms, p99 {p99:.3} ms, {errors} errors");
        return;
    }
    if let Ok(path) = std::env::var("KDSLED_LOAD_PATH") {
        let (rps, p50, p99, errors) = run_load(&addr, vec![path.clone()], conns, secs);
        println!("{path}: {rps:.0} req/s, p50 {p50:.3} ms, p99 {p99:.3} ms, {errors} errors");
        return;
    }
    let limit: usize = env_or("KDSLED_LOAD_LIMIT", 1000);
    for r in [1_200.0, 25_000.0] {
        let paths: Vec<String> = qs
            .iter()
            .map(|q| {
                format!(
                    "/v1/near?lon={}&lat={}&radius={r}&limit={limit}",
                    q[0], q[1]
                )
            })
            .collect();
        let (rps, p50, p99, errors) = run_load(&addr, paths, conns, secs);
        println!("{r:>10} {rps:>10.0} {p50:>9.3} {p99:>9.3} {errors:>7}");
    }
}
