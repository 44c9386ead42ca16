//! `kdsled serve` as a real process: first-start build, serving, graceful shutdown on SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Write};

use common::proc::Served;

fn get(url: &str) -> serde_json::Value {
    let mut r = ureq::get(url).call().expect("GET");
    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
}

#[test]
fn first_start_builds_then_later_starts_reuse_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // A few GeoNames rows stand in for the bundled file.
    let gz = std::fs::File::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/cities1000.txt.gz"
    ))
    .unwrap();
    let rows = BufReader::new(flate2::read::MultiGzDecoder::new(gz));
    let data = dir.path().join("few.txt");
    let mut f = std::fs::File::create(&data).unwrap();
    for l in rows.lines().take(300) {
        writeln!(f, "{}", l.unwrap()).unwrap();
    }
    drop(f);
    let index_dir = dir.path().join("idx");
    let args = [
        "serve",
        "--default-dir",
        index_dir.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
    ];

    let p = Served::start(&args);
    assert!(
        p.log
            .iter()
            .any(|l| l.contains("first start: building the index")),
        "{:?}",
        p.log
    );
    let base = p.base.clone();
    let h = get(&format!("{base}/healthz"));
    assert_eq!(h["points"], 300);
    let near = get(&format!("{base}/v1/near?lon=1.5&lat=42.5&radius=50000"));
    assert!(near["count"].as_u64().unwrap() > 0);
    let log = p.terminate();
    assert!(
        log.iter().any(|l| l.contains("flushing the index")),
        "{log:?}"
    );

    // The second start serves the index it built before.
    let p = Served::start(&args);
    let base = p.base.clone();
    assert_eq!(get(&format!("{base}/healthz"))["points"], 300);
    let log = p.terminate();
    assert!(!log.iter().any(|l| l.contains("first start")), "{log:?}");
}

/// Every file under `dir`, by path relative to it, with its bytes.
fn files(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn a_served_index_is_inspected_through_its_server_as_from_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = String::new();
    for i in 0..400 {
        let (lon, lat) = (2.2 + (i % 20) as f64 * 0.01, 48.8 + (i / 20) as f64 * 0.005);
        rows.push_str(&format!("p{i}\t{lon}\t{lat}\tkind{}\n", i % 3));
    }
    let input = dir.path().join("points.tsv");
    std::fs::write(&input, rows).unwrap();
    let db = dir.path().join("idx");
    let db = db.to_str().unwrap();
    common::proc::kdsled_ok(&common::tsv_build(db, input.to_str().unwrap(), &[]), "");
    let p = Served::start(&[
        "serve",
        "--db",
        db,
        "--addr",
        "127.0.0.1:0",
        "--write-token",
        "s3cret",
    ]);
    let base = p.base.clone();
    let ok = |args: &[&str]| common::proc::kdsled_ok(args, "");

    // The directory is held: the refusal names the server to ask instead.
    let err = common::proc::kdsled_fails(&["info", "--db", db]);
    assert!(err.contains(&format!("--server {base}")), "{err}");

    let info = ok(&["info", "--server", &base]);
    assert!(info.contains(&format!("server          {base}")), "{info}");
    assert!(info.contains("points          400"), "{info}");
    // A full walk needs the write token the server was given.
    let err = common::proc::kdsled_fails(&["verify", "--server", &base]);
    assert!(err.contains("401") && err.contains("bearer token"), "{err}");
    let v = common::proc::kdsled_status(&["verify", "--server", &base, "--token", "s3cret"], "");
    assert!(v.starts_with("ok: 400 points"), "{v}");
    let err = common::proc::kdsled_fails(&[
        "near", "--server", &base, "--lon", "200", "--lat", "0", "--radius", "1",
    ]);
    assert!(err.contains("400") && err.contains("lon"), "{err}");

    let near = ["--lon", "2.25", "--lat", "48.85", "--radius", "1500"];
    let remote = |cmd: &str, extra: &[&str], output: &str| {
        let mut a = vec![cmd, "--server", &base, "--output", output];
        a.extend(extra);
        ok(&a)
    };
    let answers = |near_json: String, near_tsv: String, nearest: String, within: String| {
        (near_json, near_tsv, nearest, within)
    };
    let nearest = ["--lon", "2.25", "--lat", "48.85", "-k", "7"];
    let bbox = ["--bbox", "2.2,48.8,2.25,48.83"];
    let from_server = answers(
        remote("near", &near, "json"),
        remote("near", &near, "tsv"),
        remote("nearest", &nearest, "tsv"),
        remote("within", &bbox, "tsv"),
    );
    let tiles_remote = dir.path().join("tiles-remote");
    let tile_args = [
        "--bbox",
        "2.1,48.7,2.5,49.0",
        "--zoom",
        "9-11",
        "--radius",
        "800",
    ];
    let mut t = vec![
        "tiles",
        "--server",
        &base,
        "--out",
        tiles_remote.to_str().unwrap(),
    ];
    t.extend(tile_args);
    let said = common::proc::kdsled_status(&t, "");
    assert!(said.contains("non-empty"), "{said}");
    p.terminate();

    let local = |cmd: &str, extra: &[&str], output: &str| {
        let mut a = vec![cmd, "--db", db, "--output", output];
        a.extend(extra);
        ok(&a)
    };
    let from_dir = answers(
        local("near", &near, "json"),
        local("near", &near, "tsv"),
        local("nearest", &nearest, "tsv"),
        local("within", &bbox, "tsv"),
    );
    let json = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    let (r, l) = (json(&from_server.0), json(&from_dir.0));
    assert!(r["count"].as_u64().unwrap() > 5, "{r}");
    assert_eq!(r["count"], l["count"]);
    assert_eq!(r["results"], l["results"]);
    assert!(from_server.1.lines().count() > 5);
    assert_eq!(from_server.1, from_dir.1);
    assert_eq!(from_server.2.lines().count(), 7);
    assert_eq!(from_server.2, from_dir.2);
    assert!(!from_server.3.is_empty());
    assert_eq!(from_server.3, from_dir.3);

    let tiles_local = dir.path().join("tiles-local");
    let mut t = vec!["tiles", "--db", db, "--out", tiles_local.to_str().unwrap()];
    t.extend(tile_args);
    let said_local = common::proc::kdsled_status(&t, "");
    let (r, l) = (files(&tiles_remote), files(&tiles_local));
    assert!(r.len() > 4, "{:?}", r.keys());
    assert_eq!(r, l, "the server's tiles differ from the ones drawn here");
    // Both count the same tiles as drawn.
    let count = |s: &str| {
        s.split('(')
            .nth(1)
            .unwrap_or("")
            .split(' ')
            .next()
            .map(str::to_string)
    };
    assert_eq!(count(&said), count(&said_local), "{said} / {said_local}");
}
