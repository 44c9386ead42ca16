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
