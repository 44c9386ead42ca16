//! Prometheus metrics, rendered by hand in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the request latency histogram, seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// Upper bounds of the nodes-read-per-query histogram.
const NODES_BUCKETS: [f64; 10] = [
    8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0, 65536.0, 1048576.0,
];

/// A fixed-bucket histogram.
#[derive(Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], v: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len()];
        }
        for (i, b) in bounds.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in bounds.iter().enumerate() {
            let c = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    nodes: Histogram,
}

/// The server's counters.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    started: AtomicU64,
}

impl Metrics {
    /// Counts one finished request.
    pub fn request(&self, route: &str, status: u16, elapsed: Duration) {
        let mut g = self.lock();
        *g.requests.entry((route.to_string(), status)).or_default() += 1;
        g.latency
            .entry(route.to_string())
            .or_default()
            .observe(&LATENCY_BUCKETS, elapsed.as_secs_f64());
    }

    /// Records the nodes one query read.
    pub fn nodes_read(&self, n: u64) {
        self.lock().nodes.observe(&NODES_BUCKETS, n as f64);
    }

    /// Marks the process start, for the uptime gauge.
    pub fn set_start(&self, unix_seconds: u64) {
        self.started.store(unix_seconds, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Renders every metric; `gauges` are (name, help, value) read at scrape time.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let g = self.lock();
        out.push_str(
            "# HELP kdsled_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE kdsled_http_requests_total counter\n");
        for ((route, status), n) in &g.requests {
            let _ = writeln!(
                out,
                "kdsled_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP kdsled_http_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE kdsled_http_request_duration_seconds histogram\n");
        for (route, h) in &g.latency {
            h.render(
                &mut out,
                "kdsled_http_request_duration_seconds",
                &format!("route=\"{route}\""),
                &LATENCY_BUCKETS,
            );
        }
        out.push_str("# HELP kdsled_query_nodes_read Tree nodes read from storage per query.\n");
        out.push_str("# TYPE kdsled_query_nodes_read histogram\n");
        g.nodes
            .render(&mut out, "kdsled_query_nodes_read", "", &NODES_BUCKETS);
        drop(g);
        for (name, help, v) in gauges {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        let start = self.started.load(Ordering::Relaxed);
        if start > 0 {
            let _ = writeln!(
                out,
                "# HELP kdsled_start_time_seconds Process start, Unix time.\n# TYPE kdsled_start_time_seconds gauge\nkdsled_start_time_seconds {start}"
            );
        }
        out
    }
}
