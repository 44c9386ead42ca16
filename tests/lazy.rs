//! Queries read only the nodes they need from a freshly opened index.

mod common;

use common::build_index;
use kdsled::{Index, Metric};

/// A deterministic pseudo-random sequence (xorshift), so the test needs no seed handling.
fn rng(mut s: u64) -> impl FnMut() -> f64 {
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn small_radius_reads_log_n_plus_answer_nodes() {
    let mut r = rng(0x9e3779b97f4a7c15);
    let n = 100_000usize;
    // Points over western Europe, roughly cities1000's density there.
    let pts: Vec<Vec<f64>> = (0..n)
        .map(|_| vec![-5.0 + 20.0 * r(), 40.0 + 15.0 * r()])
        .collect();
    let t = build_index(Metric::Haversine, 2, &pts);
    let path = t.path();
    drop(t.index);
    let index = Index::open(&path, 8).unwrap();
    let log_n = (n as f64).log2();
    let mut total_reads = 0;
    for _ in 0..200 {
        let c = [-5.0 + 20.0 * r(), 40.0 + 15.0 * r()];
        let a = index.radius(&c, 1_200.0, 1000).unwrap();
        // O(log n + answer): a constant factor over both, far below n.
        let bound = 4.0 * (log_n + a.count as f64) + 16.0;
        assert!(
            (a.nodes_visited as f64) <= bound,
            "{} nodes visited for {} hits",
            a.nodes_visited,
            a.count
        );
        // Storage reads are the visits the node cache did not answer.
        assert!(a.nodes_read <= a.nodes_visited);
        total_reads += a.nodes_read;
    }
    assert!(total_reads < 200 * 100, "mean reads {}", total_reads / 200);
    assert_eq!(index.nodes_read_total(), total_reads);

    // The same query again is answered mostly from the cache of the top levels.
    let c = [5.0, 47.0];
    let first = index.radius(&c, 1_200.0, 10).unwrap();
    let again = index.radius(&c, 1_200.0, 10).unwrap();
    assert_eq!(first.hits, again.hits);
    assert_eq!(first.nodes_visited, again.nodes_visited);
    assert!(again.nodes_read < again.nodes_visited, "{again:?}");
    let cache = index.node_cache().expect("open() sets up a node cache");
    assert!(cache.hits() > 0 && !cache.is_empty());

    // k-nearest with small k reads a similar handful.
    let a = index.nearest(&[5.0, 47.0], 5, None).unwrap();
    assert!(a.nodes_read < 200, "{} nodes read", a.nodes_read);
}

#[test]
fn identical_points_stay_cheap_to_miss() {
    // Ten thousand copies of one point: a query elsewhere is pruned at the root's children.
    let pts = vec![vec![10.0, 10.0]; 10_000];
    let t = build_index(Metric::Haversine, 2, &pts);
    let far = t.index.radius(&[-10.0, -10.0], 1_000.0, 10).unwrap();
    assert_eq!(far.count, 0);
    assert!(far.nodes_visited <= 20, "{}", far.nodes_visited);
    let here = t.index.radius(&[10.0, 10.0], 0.0, 10).unwrap();
    assert_eq!(here.count, 10_000);
    assert_eq!(here.hits.len(), 10);
}

/// A filtered walk limited to caches gives way until the filter's attribute column is cached,
/// then answers from it exactly what a walk free to read storage answers.
#[test]
fn filtered_walks_limited_to_caches_answer_once_columns_are_cached() {
    let mut r = rng(0x2545f4914f6cdd1d);
    let pts: Vec<Vec<f64>> = (0..5_000).map(|_| vec![2.0 + r(), 48.0 + r()]).collect();
    let t = build_index(Metric::Haversine, 2, &pts);
    let filter = kdsled::query::Filter::parse("cat:c1").expect("filter");
    let center = [2.5, 48.5];
    // Unfiltered first, so every node the walk visits is in the node cache.
    t.index.radius(&center, 30_000.0, 10_000).expect("radius");
    let inline = || {
        t.index
            .snapshot()
            .filtered(Some(filter.clone()))
            .cached_only(u64::MAX)
            .radius(&center, 30_000.0, 10_000)
    };
    assert!(matches!(inline(), Err(kdsled::Error::NotCached)));
    let free = t
        .index
        .snapshot()
        .filtered(Some(filter.clone()))
        .radius(&center, 30_000.0, 10_000)
        .expect("filtered radius");
    assert!(free.count > 0);
    let cached = inline().expect("answered from the cached column");
    assert_eq!(cached.hits, free.hits);
    assert_eq!(cached.count, free.count);
    assert_eq!(cached.nodes_read, 0);
}
