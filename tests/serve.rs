//! `kdsled serve` as a real process: first-start build, serving, graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `kdsled serve` and the lines it logged.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Proc {
    fn start(args: &[&str]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kdsled"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kdsled serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines: rx,
            log: Vec::new(),
        }
    }

    /// Waits for a log line containing `needle`.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                self.log.push(l.clone());
                if l.contains(needle) {
                    return l;
                }
            }
        }
        panic!("no log line with {needle:?}; saw {:?}", self.log);
    }

    fn addr(&mut self) -> String {
        let l = self.wait_for("listening on http://");
        let start = l.find("http://").unwrap();
        l[start..].split_whitespace().next().unwrap().to_string()
    }

    fn terminate(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(st.success(), "exit status {st}");
                break;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.log.push(l);
        }
        self.log
    }
}

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

    let mut p = Proc::start(&args);
    p.wait_for("first start: building the index");
    let base = p.addr();
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
    let mut p = Proc::start(&args);
    let base = p.addr();
    assert_eq!(get(&format!("{base}/healthz"))["points"], 300);
    let log = p.terminate();
    assert!(!log.iter().any(|l| l.contains("first start")), "{log:?}");
}
