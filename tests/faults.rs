//! Corrupt records, injected I/O faults and degenerate trees: errors, never panics.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::build_index;
use kdsled::store::format::{Meta, FORMAT_VERSION, META_KEY, VERSION_KEY};
use kdsled::store::{codec, Bytes, ScanIter, SledStore, Space, Store, WriteBatch};
use kdsled::tree::node::{Inner, Node};
use kdsled::{BBox, Error, Index, Metric};

fn grid(n: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| vec![(i % 100) as f64 * 0.01, (i / 100) as f64 * 0.01])
        .collect()
}

/// Opens the raw store of a closed test index, applies `batch`, and reopens the index.
fn tamper(t: common::TestIndex, batch: WriteBatch) -> (tempfile::TempDir, Index) {
    let path = t.path();
    let dir = t.dir;
    drop(t.index);
    {
        let store = SledStore::open(&common::sled_dir(&path), 8).unwrap();
        store.apply(&batch).unwrap();
        store.flush().unwrap();
    }
    let index = Index::open(&path, 8).unwrap();
    (dir, index)
}

#[test]
fn a_record_that_does_not_decode_fails_verify_and_queries_cleanly() {
    let t = build_index(Metric::Haversine, 2, &grid(1000));
    let mut b = WriteBatch::new();
    b.put(Space::Nodes, codec::node_key(5), vec![0xff, 0xfe, 0x01]);
    let (_dir, index) = tamper(t, b);
    let err = index.verify().unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("node 5"), "{err}");
    // A query that has to read node 5 reports the corruption instead of panicking.
    let q = index.radius(&[0.5, 0.5], 1e8, 10).unwrap_err();
    assert!(q.to_string().contains("node 5"), "{q}");
    assert!(index.nearest(&[0.5, 0.5], 2000, None).is_err());
    let all = BBox::new(Metric::Haversine, &[-180.0, -90.0], &[180.0, 90.0]).unwrap();
    assert!(index.within(&all, 10).is_err());
}

/// The root of a test index and the first leaf down its below side.
fn root_and_a_leaf(index: &Index) -> (u64, Inner, u64) {
    let root = index.meta().root.unwrap();
    let Node::Inner(r) = index.node(root).unwrap() else {
        panic!("the root is a leaf")
    };
    let mut at = r.below.unwrap();
    while let Node::Inner(i) = index.node(at).unwrap() {
        at = i.below.unwrap();
    }
    (root, r, at)
}

#[test]
fn a_dangling_child_and_a_broken_split_are_named() {
    let t = build_index(Metric::Haversine, 2, &grid(300));
    let (root, r, _) = root_and_a_leaf(&t.index);
    let dangling = Node::Inner(Inner {
        above: Some(999_999),
        ..r
    });
    let mut b = WriteBatch::new();
    b.put(
        Space::Nodes,
        codec::node_key(root),
        codec::encode_node(&dangling),
    );
    let (_dir, index) = tamper(t, b);
    let err = index.verify().unwrap_err().to_string();
    assert!(err.contains("999999"), "{err}");

    let t = build_index(Metric::Haversine, 2, &grid(300));
    let (_, r, leaf) = root_and_a_leaf(&t.index);
    // Move a point of a leaf on the root's below side far above the root's split.
    let Node::Leaf { mut coords } = t.index.node(leaf).unwrap() else {
        unreachable!()
    };
    coords[r.axis as usize] = r.split + 10.0;
    let mut b = WriteBatch::new();
    b.put(
        Space::Nodes,
        codec::node_key(leaf),
        codec::encode_node(&Node::Leaf { coords }),
    );
    let (_dir, index) = tamper(t, b);
    let err = index.verify().unwrap_err().to_string();
    assert!(
        err.contains("k-d invariant") && err.contains(&format!("leaf {leaf}")),
        "{err}"
    );
}

#[test]
fn a_missing_payload_a_wrong_count_and_a_lost_id_are_named() {
    let t = build_index(Metric::Haversine, 2, &grid(50));
    // Postorder: node 1 is the first leaf.
    assert!(matches!(t.index.node(1).unwrap(), Node::Leaf { .. }));
    let mut b = WriteBatch::new();
    b.delete(Space::Payloads, codec::payload_key(1, 0));
    let (_dir, index) = tamper(t, b);
    let err = index.verify().unwrap_err().to_string();
    assert!(err.contains("leaf 1 has no payload"), "{err}");
    let all = BBox::new(Metric::Haversine, &[-180.0, -90.0], &[180.0, 90.0]).unwrap();
    let a = index.within(&all, 100).unwrap();
    let points: Vec<_> = a.hits.iter().map(|h| h.point).collect();
    let err = index.snapshot().payloads(&points).unwrap_err().to_string();
    assert!(err.contains("leaf 1 has no payload"), "{err}");

    let t = build_index(Metric::Haversine, 2, &grid(50));
    let mut meta = (*t.index.meta()).clone();
    meta.count += 1;
    let mut b = WriteBatch::new();
    b.put(Space::Meta, META_KEY, codec::encode_meta(&meta));
    let (_dir, index) = tamper(t, b);
    let err = index.verify().unwrap_err().to_string();
    assert!(err.contains("meta counts 51"), "{err}");

    let t = build_index(Metric::Haversine, 2, &grid(50));
    let mut b = WriteBatch::new();
    b.delete(Space::Ids, codec::bucket_key(0));
    let (_dir, index) = tamper(t, b);
    let err = index.verify().unwrap_err().to_string();
    assert!(err.contains("missing from the id index"), "{err}");
}

/// A store that fails every read after a budget of reads, and the writes or flushes a test
/// arms.
struct Faulty {
    inner: SledStore,
    reads_left: AtomicU64,
    fail_apply: AtomicBool,
    fail_flush: AtomicBool,
}

impl Faulty {
    fn new(inner: SledStore, reads: u64) -> Faulty {
        Faulty {
            inner,
            reads_left: AtomicU64::new(reads),
            fail_apply: AtomicBool::new(false),
            fail_flush: AtomicBool::new(false),
        }
    }
}

impl Store for Faulty {
    fn get(&self, space: Space, key: &[u8]) -> kdsled::Result<Option<Bytes>> {
        if self
            .reads_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            return Err(Error::Storage("injected read failure".into()));
        }
        self.inner.get(space, key)
    }
    fn apply(&self, batch: &WriteBatch) -> kdsled::Result<()> {
        if self.fail_apply.load(Ordering::SeqCst) {
            return Err(Error::Storage("injected write failure".into()));
        }
        self.inner.apply(batch)
    }
    fn scan(&self, space: Space) -> ScanIter<'_> {
        self.inner.scan(space)
    }
    fn scan_from(&self, space: Space, from: &[u8]) -> ScanIter<'_> {
        self.inner.scan_from(space, from)
    }
    fn last(&self, space: Space) -> kdsled::Result<Option<(Bytes, Bytes)>> {
        self.inner.last(space)
    }
    fn flush(&self) -> kdsled::Result<usize> {
        if self.fail_flush.load(Ordering::SeqCst) {
            return Err(Error::Storage("injected flush failure".into()));
        }
        self.inner.flush()
    }
    fn size_on_disk(&self) -> kdsled::Result<u64> {
        self.inner.size_on_disk()
    }
}

#[test]
fn injected_read_failures_surface_as_errors() {
    let t = build_index(Metric::Haversine, 2, &grid(2000));
    let path = t.path();
    drop(t.index);
    let store = Arc::new(Faulty::new(
        SledStore::open(&common::sled_dir(&path), 8).unwrap(),
        2 + 25,
    ));
    let index = Index::from_store(store).unwrap();
    // Opening read the version and meta; the query gets 25 node reads, then failures.
    let err = index.radius(&[0.5, 0.1], 1e7, 10).unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    assert!(index.nearest(&[0.5, 0.1], 3, None).is_err());
    assert!(index.verify().is_err());
}

/// Writes a tree by hand: `n` inner nodes in one long chain, each the `above` child of the
/// previous, each with a one-point leaf below (ids: inner k is 2k - 1, its leaf 2k, the last
/// leaf 2n + 1), so `n + 1` points are `n + 1` levels deep.
fn chain_store(n: u64) -> Arc<SledStore> {
    let store = Arc::new(SledStore::temporary().unwrap());
    let mut batch = WriteBatch::new();
    let x = |k: u64| k as f64 * 1e-4;
    let buckets = Meta::buckets_for(n + 1);
    let mut ids: std::collections::BTreeMap<u64, Vec<(kdsled::PointId, u64)>> = Default::default();
    let mut leaf = |batch: &mut WriteBatch, id: u64, k: u64| {
        batch.put(
            Space::Nodes,
            codec::node_key(id),
            codec::encode_node(&Node::Leaf {
                coords: vec![x(k), 0.0],
            }),
        );
        let p = kdsled::Payload {
            id: kdsled::PointId::Int(k as i64),
            properties: vec![],
        };
        batch.put(
            Space::Payloads,
            codec::payload_key(id, 0),
            codec::encode_leaf_payloads([&p]),
        );
        let b = codec::bucket_of(codec::id_hash(&p.id), buckets);
        ids.entry(b).or_default().push((p.id, id));
    };
    for k in 1..=n {
        let inner = Node::Inner(Inner {
            axis: 0,
            split: x(k),
            below: Some(2 * k),
            above: Some(2 * k + 1),
            count: n - k + 2,
        });
        batch.put(
            Space::Nodes,
            codec::node_key(2 * k - 1),
            codec::encode_node(&inner),
        );
        leaf(&mut batch, 2 * k, k);
        if batch.len() >= 3000 {
            store.apply(&batch).unwrap();
            batch = WriteBatch::new();
        }
    }
    leaf(&mut batch, 2 * n + 1, n + 1);
    for (b, entries) in &ids {
        batch.put(
            Space::Ids,
            codec::bucket_key(*b),
            codec::encode_id_bucket(entries),
        );
    }
    let mut meta = Meta::empty(Metric::Haversine, 2);
    meta.root = Some(1);
    meta.count = n + 1;
    meta.next_id = 2 * n + 2;
    meta.depth = n as u32 + 1;
    meta.leaf_size = 4;
    meta.id_buckets = buckets;
    batch.put(
        Space::Meta,
        VERSION_KEY,
        codec::encode_version(FORMAT_VERSION),
    );
    batch.put(Space::Meta, META_KEY, codec::encode_meta(&meta));
    store.apply(&batch).unwrap();
    store
}

#[test]
fn a_long_chain_never_overflows_the_stack() {
    let n = 100_000;
    let index = Index::from_store(chain_store(n)).unwrap();
    // A radius covering the whole chain: every node is visited, iteratively.
    let a = index.radius(&[10.0, 0.0], 2_000_000.0, 5).unwrap();
    assert_eq!(a.count, n + 1);
    let a = index.nearest(&[0.0, 0.0], 3, None).unwrap();
    assert_eq!(a.hits.len(), 3);
    let all = BBox::new(Metric::Haversine, &[-1.0, -1.0], &[30.0, 1.0]).unwrap();
    assert_eq!(index.within(&all, 1).unwrap().count, n + 1);
    // verify walks it too, and names the broken balance bound.
    let err = index.verify().unwrap_err().to_string();
    assert!(err.contains(&format!("{} levels deep", n + 1)), "{err}");
}

#[test]
fn a_cycle_is_reported_not_followed_forever() {
    let store = chain_store(10);
    let Node::Inner(last) = codec::decode_node(
        19,
        &store
            .get(Space::Nodes, &codec::node_key(19))
            .unwrap()
            .unwrap(),
        2,
    )
    .unwrap() else {
        panic!("node 19 is inner")
    };
    let looped = Node::Inner(Inner {
        above: Some(3),
        ..last
    });
    let mut b = WriteBatch::new();
    b.put(
        Space::Nodes,
        codec::node_key(19),
        codec::encode_node(&looped),
    );
    store.apply(&b).unwrap();
    let index = Index::from_store(store).unwrap();
    let err = index.verify().unwrap_err().to_string();
    assert!(err.contains("more than once"), "{err}");
}

#[test]
fn failed_writes_and_flushes_are_never_acknowledged_nor_shipped_to_replicas() {
    let t = build_index(Metric::Haversine, 2, &grid(500));
    let path = t.path();
    let dir = t.dir;
    drop(t.index);
    let store = Arc::new(Faulty::new(
        SledStore::open(&common::sled_dir(&path), 8).unwrap(),
        u64::MAX,
    ));
    let index = Index::from_store(store.clone()).unwrap();
    let point = |id: &str| kdsled::index::NewPoint {
        id: kdsled::PointId::parse(id),
        coords: vec![0.3, 0.3],
        properties: vec![],
    };
    // A write whose batch fails: an error, nothing visible, the sequence unmoved.
    store.fail_apply.store(true, Ordering::SeqCst);
    let err = index.upsert(point("w1")).unwrap_err();
    assert!(err.to_string().contains("injected write"), "{err}");
    assert_eq!(index.meta().count, 500);
    assert_eq!(index.meta().sequence, 0);
    assert!(index.get(&kdsled::PointId::parse("w1")).unwrap().is_none());
    store.fail_apply.store(false, Ordering::SeqCst);
    // A write whose flush fails: not acknowledged, and not served to followers as durable.
    store.fail_flush.store(true, Ordering::SeqCst);
    let err = index.upsert(point("w2")).unwrap_err();
    assert!(err.to_string().contains("flush failed"), "{err}");
    assert_eq!(index.durable_sequence(), 0);
    assert_eq!(
        index.snapshot().changes_since(0, 100).unwrap().unwrap(),
        vec![],
        "an unflushed change must not reach a replica"
    );
    // Once the disk recovers, the next durable write makes both durable and shippable.
    store.fail_flush.store(false, Ordering::SeqCst);
    let out = index.upsert(point("w3")).unwrap();
    assert_eq!(out.sequence, 2);
    assert_eq!(index.durable_sequence(), 2);
    let changes = index.snapshot().changes_since(0, 100).unwrap().unwrap();
    assert_eq!(changes.iter().map(|c| c.0).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(index.meta().count, 502);
    index.verify().unwrap();
    drop(dir);
}
