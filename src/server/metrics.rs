//! Prometheus metrics, rendered by hand in the text exposition format.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The route label of requests no route matched.
const UNMATCHED: &str = "unmatched";

/// Upper bounds of the request latency histogram, seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// Upper bounds of the nodes-read-per-query histogram.
const NODES_BUCKETS: [f64; 10] = [
    8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0, 65536.0, 1048576.0,
];

/// A fixed-bucket histogram of atomics: observing takes no lock.
struct Histogram {
    /// Per bound: observations at or below it (not cumulative; summed when rendered).
    counts: Vec<AtomicU64>,
    /// Sum of observations, in millionths of the unit.
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &[f64]) -> Histogram {
        Histogram {
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, bounds: &[f64], v: f64) {
        // The first bucket that holds v; cumulative counts are summed at render time.
        if let Some(i) = bounds.iter().position(|b| v <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add((v * 1e6).round() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, b) in bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Statuses counted without a lock; any other is counted in a locked map.
const COMMON_STATUSES: [u16; 16] = [
    200, 201, 204, 304, 400, 401, 403, 404, 405, 408, 409, 413, 414, 429, 500, 503,
];

/// The counters of one route.
struct RouteStats {
    name: String,
    statuses: [AtomicU64; COMMON_STATUSES.len()],
    latency: Histogram,
}

/// The server's counters. Every request updates them, so the routes are fixed when the server
/// starts and each counter is an atomic: a mutex here was taken twice per request by every
/// connection.
pub struct Metrics {
    /// Known routes by name; the last one counts requests no route matched.
    routes: Vec<RouteStats>,
    index: HashMap<String, usize>,
    /// (route, status) pairs outside [`COMMON_STATUSES`].
    rare: Mutex<BTreeMap<(usize, u16), u64>>,
    nodes: Histogram,
    started: AtomicU64,
}

impl Metrics {
    /// Counters for `routes` (axum route paths) and for requests no route matched.
    pub fn new<'a>(routes: impl IntoIterator<Item = &'a str>) -> Metrics {
        let mut names: Vec<String> = routes.into_iter().map(str::to_string).collect();
        names.push(UNMATCHED.to_string());
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Metrics {
            routes: names
                .into_iter()
                .map(|name| RouteStats {
                    name,
                    statuses: Default::default(),
                    latency: Histogram::new(&LATENCY_BUCKETS),
                })
                .collect(),
            index,
            rare: Mutex::default(),
            nodes: Histogram::new(&NODES_BUCKETS),
            started: AtomicU64::new(0),
        }
    }

    /// Counts one finished request to `route` (its axum path; `None` when none matched).
    pub fn request(&self, route: Option<&str>, status: u16, elapsed: Duration) {
        let unmatched = self.routes.len() - 1;
        let i = route
            .and_then(|r| self.index.get(r).copied())
            .unwrap_or(unmatched);
        let r = &self.routes[i];
        match COMMON_STATUSES.iter().position(|s| *s == status) {
            Some(k) => {
                r.statuses[k].fetch_add(1, Ordering::Relaxed);
            }
            None => {
                *self
                    .rare
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry((i, status))
                    .or_default() += 1;
            }
        }
        r.latency.observe(&LATENCY_BUCKETS, elapsed.as_secs_f64());
    }

    /// Records the nodes one query read.
    pub fn nodes_read(&self, n: u64) {
        self.nodes.observe(&NODES_BUCKETS, n as f64);
    }

    /// Marks the process start, for the uptime gauge.
    pub fn set_start(&self, unix_seconds: u64) {
        self.started.store(unix_seconds, Ordering::Relaxed);
    }

    /// Renders every metric; `gauges` are (name, help, value) read at scrape time.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP kdsled_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE kdsled_http_requests_total counter\n");
        let mut counts: BTreeMap<(&str, u16), u64> = BTreeMap::new();
        for r in &self.routes {
            for (k, n) in r.statuses.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    counts.insert((&r.name, COMMON_STATUSES[k]), n);
                }
            }
        }
        let rare = self.rare.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for ((i, status), n) in rare {
            counts.insert((&self.routes[i].name, status), n);
        }
        for ((route, status), n) in &counts {
            let _ = writeln!(
                out,
                "kdsled_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP kdsled_http_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE kdsled_http_request_duration_seconds histogram\n");
        let mut routes: Vec<&RouteStats> = self
            .routes
            .iter()
            .filter(|r| r.latency.count.load(Ordering::Relaxed) > 0)
            .collect();
        routes.sort_by(|a, b| a.name.cmp(&b.name));
        for r in routes {
            r.latency.render(
                &mut out,
                "kdsled_http_request_duration_seconds",
                &format!("route=\"{}\"", r.name),
                &LATENCY_BUCKETS,
            );
        }
        out.push_str("# HELP kdsled_query_nodes_read Tree nodes read from storage per query.\n");
        out.push_str("# TYPE kdsled_query_nodes_read histogram\n");
        self.nodes
            .render(&mut out, "kdsled_query_nodes_read", "", &NODES_BUCKETS);
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
