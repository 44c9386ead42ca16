//! Running `kdsled serve` as a child process in tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs `kdsled args` to completion with `input` on its standard input; panics with its stderr
/// unless it succeeds, and returns its stdout (data).
pub fn kdsled_ok(args: &[&str], input: &str) -> String {
    String::from_utf8(run_ok(args, input).stdout).expect("utf-8 output")
}

/// Like [`kdsled_ok`], returning the status lines the command wrote on stderr.
pub fn kdsled_status(args: &[&str], input: &str) -> String {
    String::from_utf8(run_ok(args, input).stderr).expect("utf-8 output")
}

/// Runs `kdsled args`, expecting it to fail; returns what it wrote on stderr.
pub fn kdsled_fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kdsled"))
        .args(args)
        .output()
        .expect("run kdsled");
    assert!(!out.status.success(), "kdsled {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn run_ok(args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kdsled"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kdsled");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("wait for kdsled");
    assert!(
        out.status.success(),
        "kdsled {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A running `kdsled serve`.
pub struct Served {
    pub child: Child,
    pub base: String,
    lines: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

impl Served {
    /// Starts `kdsled` with `args` and waits for its "listening on" line.
    pub fn start(args: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kdsled"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kdsled");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut s = Served {
            child,
            base: String::new(),
            lines: rx,
            log: Vec::new(),
        };
        let l = s.wait_for("listening on http://");
        let at = l.find("http://").expect("url");
        s.base = l[at..].split_whitespace().next().unwrap_or("").to_string();
        s
    }

    /// Waits (up to a minute) for a log line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) -> String {
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

    /// SIGKILL.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and waits for a clean exit; returns the log.
    pub fn terminate(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                assert!(st.success(), "exit status {st}");
                break;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(300)) {
            self.log.push(l);
        }
        std::mem::take(&mut self.log)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// An HTTP call: status and body as JSON (or the text wrapped in a JSON string).
pub fn call(method: &str, url: &str, token: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut req = axum::http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(body.as_bytes().to_vec()).expect("request");
    let mut r = agent.run(req).expect("HTTP call");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().expect("body");
    let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, v)
}
