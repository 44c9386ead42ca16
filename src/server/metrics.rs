//! Prometheus metrics, exposed through prometheus-client's registry and OpenMetrics encoder.
//!
//! The request counters are this module's own atomics, encoded by prometheus-client: its
//! `Family` takes a lock to find a label set and its `Histogram` a lock per observation, and
//! every request updates these.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The media type of what [`Metrics::encode`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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

    /// Encodes the histogram; `bounds` are its buckets' upper bounds.
    fn encode(&self, bounds: &[f64], encoder: &mut MetricEncoder) -> std::fmt::Result {
        let count = self.count.load(Ordering::Relaxed);
        let mut buckets: Vec<(f64, u64)> = bounds
            .iter()
            .zip(&self.counts)
            .map(|(b, n)| (*b, n.load(Ordering::Relaxed)))
            .collect();
        let below: u64 = buckets.iter().map(|b| b.1).sum();
        // prometheus-client writes an upper bound of f64::MAX as +Inf.
        buckets.push((f64::MAX, count.saturating_sub(below)));
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
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

/// The counters every request updates, shared with the registry of each scrape.
struct Counters {
    /// Known routes by name; the last one counts requests no route matched.
    routes: Vec<RouteStats>,
    /// (route, status) pairs outside [`COMMON_STATUSES`].
    rare: Mutex<BTreeMap<(usize, u16), u64>>,
    nodes: Histogram,
}

/// `kdsled_http_requests_total`, by route and status.
#[derive(Debug)]
struct Requests(Arc<Counters>);

/// `kdsled_http_request_duration_seconds`, by route.
#[derive(Debug)]
struct Latency(Arc<Counters>);

/// `kdsled_query_nodes_read`.
#[derive(Debug)]
struct NodesRead(Arc<Counters>);

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("routes", &self.routes.len())
            .finish()
    }
}

impl EncodeMetric for Requests {
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        let c = &self.0;
        let mut counts: BTreeMap<(&str, u16), u64> = BTreeMap::new();
        for r in &c.routes {
            for (k, n) in r.statuses.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    counts.insert((&r.name, COMMON_STATUSES[k]), n);
                }
            }
        }
        let rare = c.rare.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for ((i, status), n) in rare {
            counts.insert((&c.routes[i].name, status), n);
        }
        for ((route, status), n) in counts {
            let status = status.to_string();
            let labels = [("route", route), ("status", status.as_str())];
            encoder
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        let mut routes: Vec<&RouteStats> = self
            .0
            .routes
            .iter()
            .filter(|r| r.latency.count.load(Ordering::Relaxed) > 0)
            .collect();
        routes.sort_by(|a, b| a.name.cmp(&b.name));
        for r in routes {
            let labels = [("route", r.name.as_str())];
            r.latency
                .encode(&LATENCY_BUCKETS, &mut encoder.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

impl EncodeMetric for NodesRead {
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        self.0.nodes.encode(&NODES_BUCKETS, &mut encoder)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// One gauge per value of a label (the followers of a primary).
#[derive(Debug)]
pub struct LabelledGauges {
    label: &'static str,
    values: Vec<(String, f64)>,
}

impl LabelledGauges {
    /// Gauges labelled `label`, one per (value, gauge).
    pub fn new(label: &'static str, values: Vec<(String, f64)>) -> Self {
        LabelledGauges { label, values }
    }
}

impl EncodeMetric for LabelledGauges {
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        for (value, v) in &self.values {
            let labels = [(self.label, value.as_str())];
            encoder.encode_family(&labels)?.encode_gauge(v)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// A value read at scrape time: a gauge, or a counter when its name ends in `_total`.
pub struct Reading {
    /// The full metric name.
    pub name: &'static str,
    /// Its help text.
    pub help: &'static str,
    /// Its value.
    pub value: f64,
}

/// A route's place among the counters, from [`Metrics::route`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteId(usize);

/// The server's counters. Every request updates them, so the routes are fixed when the server
/// starts and each counter is an atomic: a mutex here was taken twice per request by every
/// connection.
pub struct Metrics {
    counters: Arc<Counters>,
    index: HashMap<String, usize>,
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
        let counters = Counters {
            routes: names
                .into_iter()
                .map(|name| RouteStats {
                    name,
                    statuses: Default::default(),
                    latency: Histogram::new(&LATENCY_BUCKETS),
                })
                .collect(),
            rare: Mutex::default(),
            nodes: Histogram::new(&NODES_BUCKETS),
        };
        Metrics {
            counters: Arc::new(counters),
            index,
            started: AtomicU64::new(0),
        }
    }

    /// The counters of `route` (an axum path; `None` or an unknown path: requests no route
    /// matched). A caller that serves one route looks it up once rather than per request.
    pub fn route(&self, route: Option<&str>) -> RouteId {
        let unmatched = self.counters.routes.len() - 1;
        RouteId(
            route
                .and_then(|r| self.index.get(r).copied())
                .unwrap_or(unmatched),
        )
    }

    /// Counts one finished request to a route looked up with [`Metrics::route`].
    pub fn request(&self, route: RouteId, status: u16, elapsed: Duration) {
        let c = &self.counters;
        let i = route.0.min(c.routes.len() - 1);
        let r = &c.routes[i];
        match COMMON_STATUSES.iter().position(|s| *s == status) {
            Some(k) => {
                r.statuses[k].fetch_add(1, Ordering::Relaxed);
            }
            None => {
                *c.rare
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
        self.counters.nodes.observe(&NODES_BUCKETS, n as f64);
    }

    /// Marks the process start, for the uptime gauge.
    pub fn set_start(&self, unix_seconds: u64) {
        self.started.store(unix_seconds, Ordering::Relaxed);
    }

    /// A registry for one scrape: the request counters, the build, the start time and
    /// `readings` taken now. The caller may add more before [`Metrics::encode`].
    pub fn registry(&self, readings: Vec<Reading>) -> Registry {
        let mut r = Registry::default();
        let c = &self.counters;
        r.register(
            "kdsled_http_requests",
            "HTTP requests answered, by route and status",
            Requests(c.clone()),
        );
        r.register(
            "kdsled_http_request_duration_seconds",
            "Time to answer a request",
            Latency(c.clone()),
        );
        r.register(
            "kdsled_query_nodes_read",
            "Tree nodes read from storage per query",
            NodesRead(c.clone()),
        );
        r.register(
            "kdsled_build",
            "The running kdsled's version and on-disk format",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION").to_string()),
                ("format", crate::store::format::FORMAT_VERSION.to_string()),
            ]),
        );
        let start = self.started.load(Ordering::Relaxed);
        if start > 0 {
            r.register(
                "kdsled_start_time_seconds",
                "Process start, Unix time",
                ConstGauge::new(start as i64),
            );
        }
        for g in readings {
            // The registry ends the help with a full stop and a counter's name with `_total`.
            let help = g.help.trim_end_matches('.');
            // Counts print as integers.
            let whole = g.value.fract() == 0.0 && (0.0..9e15).contains(&g.value);
            match (g.name.strip_suffix("_total"), whole) {
                (Some(base), true) => r.register(base, help, ConstCounter::new(g.value as u64)),
                (Some(base), false) => r.register(base, help, ConstCounter::new(g.value)),
                (None, true) => r.register(g.name, help, ConstGauge::new(g.value as i64)),
                (None, false) => r.register(g.name, help, ConstGauge::new(g.value)),
            }
        }
        r
    }

    /// The OpenMetrics text of `registry` (see [`CONTENT_TYPE`]).
    pub fn encode(registry: &Registry) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, registry);
        out
    }
}
