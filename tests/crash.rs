//! Crash test: a real server takes concurrent writes and is killed with SIGKILL at random
//! moments; after each restart every acknowledged write is there and the index verifies.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::proc::Served;
use kdsled::{Index, PointId};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_kdsled")
}

#[test]
fn every_acknowledged_write_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("seed.tsv");
    std::fs::write(&input, "seed\t0\t0\n").unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let out = Command::new(bin())
        .args(common::tsv_build(db, input.to_str().unwrap(), &[]))
        .output()
        .unwrap();
    assert!(out.status.success());

    let acked: Arc<Mutex<Vec<(String, f64, f64)>>> = Arc::default();
    let next_id = Arc::new(AtomicU64::new(0));
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for cycle in 0..4 {
        let server = Served::start(&["serve", "--db", db, "--addr", "127.0.0.1:0"]);
        let base = server.base.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (base, acked, next_id, stop) =
                    (base.clone(), acked.clone(), next_id.clone(), stop.clone());
                std::thread::spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .timeout_global(Some(Duration::from_secs(5)))
                        .build()
                        .into();
                    while !stop.load(Ordering::Relaxed) {
                        let n = next_id.fetch_add(1, Ordering::Relaxed);
                        // Sorted positions, so inserts trigger partial rebuilds too.
                        let (lon, lat) = (n as f64 * 1e-3, (w as f64) * 1e-2);
                        let id = format!("p{n}");
                        let body = format!(
                            r#"{{"lon": {lon}, "lat": {lat}, "properties": {{"w": {w}}}}}"#
                        );
                        match agent
                            .put(&format!("{base}/v1/points/{id}"))
                            .header("content-type", "application/json")
                            .send(body.as_bytes())
                        {
                            Ok(r) if matches!(r.status().as_u16(), 200 | 201) => {
                                acked.lock().unwrap().push((id, lon, lat))
                            }
                            Ok(r) => panic!("write answered {}", r.status()),
                            Err(_) => return, // the server died: unacknowledged, may or may not be there
                        }
                    }
                })
            })
            .collect();
        // Let writes flow for a random while, then kill without warning.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let wait = Duration::from_millis(150 + rng % 600);
        let t = Instant::now();
        while t.elapsed() < wait {
            std::thread::sleep(Duration::from_millis(10));
        }
        server.kill(); // SIGKILL
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }

        let out = Command::new(bin())
            .args(["verify", "--db", db])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cycle {cycle}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let index = Index::open(std::path::Path::new(db), 16).unwrap();
        let acked = acked.lock().unwrap();
        assert!(!acked.is_empty());
        for (id, lon, lat) in acked.iter() {
            let p = index
                .get(&PointId::parse(id))
                .unwrap()
                .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged {id} is lost"));
            assert_eq!(p.coords, vec![*lon, *lat]);
        }
        eprintln!(
            "cycle {cycle}: {} acknowledged writes all present",
            acked.len()
        );
    }
}
