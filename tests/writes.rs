//! Incremental writes against a model: every answer equals brute force over what was written,
//! the tree stays balanced under any insertion order, deletes reclaim records, bad batches write
//! nothing, and readers running beside a writer never miss an acknowledged point.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::{build_index, TEST_LEAF_SIZE};
use kdsled::index::{NewPoint, WriteOp};
use kdsled::store::Space;
use kdsled::tree::balance::depth_bound;
use kdsled::{Index, Metric, PointId, Value};
use proptest::prelude::*;

fn point(id: i64, lon: f64, lat: f64) -> NewPoint {
    NewPoint {
        id: PointId::Int(id),
        coords: vec![lon, lat],
        properties: vec![("v".into(), Value::Int(id))],
    }
}

/// Checks radius and nearest answers against the model, and the index's own invariants.
fn check_against(index: &Index, model: &BTreeMap<i64, [f64; 2]>, probes: &[[f64; 2]], r: f64) {
    let rep = index.verify().expect("verify");
    assert_eq!(rep.points, model.len() as u64);
    assert!(rep.depth <= depth_bound(model.len() as u64, TEST_LEAF_SIZE as u32));
    let m = Metric::Haversine;
    for c in probes {
        let mut want: Vec<(f64, i64)> = model
            .iter()
            .map(|(id, p)| (m.distance(c, p), *id))
            .filter(|(d, _)| *d <= r)
            .collect();
        want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let got = index.radius(c, r, usize::MAX).expect("radius");
        let mut got: Vec<(f64, i64)> = common::ids_and_distances(index, &got.hits);
        got.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        assert_eq!(got, want);
        let k = 5.min(model.len());
        let mut d: Vec<f64> = model.values().map(|p| m.distance(c, p)).collect();
        d.sort_by(|a, b| a.total_cmp(b));
        let got: Vec<f64> = index
            .nearest(c, 5, None)
            .unwrap()
            .hits
            .iter()
            .map(|h| h.distance)
            .collect();
        assert_eq!(got, d[..k].to_vec());
    }
}

#[derive(Debug, Clone)]
enum Op {
    Upsert(i64, f64, f64),
    Delete(i64),
}

fn op() -> impl Strategy<Value = Op> {
    // Few distinct ids so upserts and deletes hit existing points; a small area so radii matter.
    prop_oneof![
        3 => (0i64..60, -1.0..1.0f64, -1.0..1.0f64).prop_map(|(i, a, b)| Op::Upsert(i, a, b)),
        // Duplicates of one location.
        1 => (0i64..60).prop_map(|i| Op::Upsert(i, 0.5, 0.5)),
        2 => (0i64..60).prop_map(Op::Delete),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn random_writes_match_a_model(
        initial in prop::collection::vec((-1.0..1.0f64, -1.0..1.0f64), 0..40),
        batches in prop::collection::vec(prop::collection::vec(op(), 1..8), 1..25),
    ) {
        let pts: Vec<Vec<f64>> = initial.iter().map(|(a, b)| vec![*a, *b]).collect();
        let t = build_index(Metric::Haversine, 2, &pts);
        let mut model: BTreeMap<i64, [f64; 2]> =
            initial.iter().enumerate().map(|(i, (a, b))| (i as i64, [*a, *b])).collect();
        let mut upserted = std::collections::BTreeSet::new();
        for batch in &batches {
            let ops: Vec<WriteOp> = batch.iter().map(|o| match o {
                Op::Upsert(i, a, b) => WriteOp::Upsert(point(*i, *a, *b)),
                Op::Delete(i) => WriteOp::Delete(PointId::Int(*i)),
            }).collect();
            t.index.write_unsynced(&ops).unwrap();
            for o in batch {
                match o {
                    Op::Upsert(i, a, b) => { model.insert(*i, [*a, *b]); upserted.insert(*i); }
                    Op::Delete(i) => { model.remove(i); upserted.remove(i); }
                }
            }
            // Stats read attribute columns kept across queries: they follow every write.
            let s = t.index.stats(&[0.0, 0.0], 400_000.0, "v", None);
            let mut want: BTreeMap<String, u64> = BTreeMap::new();
            for id in model.keys() {
                let key = if upserted.contains(id) { id.to_string() } else { String::new() };
                *want.entry(key).or_default() += 1;
            }
            if upserted.is_empty() && !model.is_empty() {
                prop_assert!(s.is_err(), "no point has v: {:?}", s);
            } else {
                let got: BTreeMap<String, u64> =
                    s.unwrap().groups.iter().map(|(k, g)| (k.clone(), g.count)).collect();
                prop_assert_eq!(got, want);
            }
        }
        check_against(&t.index, &model, &[[0.0, 0.0], [0.5, 0.5], [-0.9, 0.7]], 60_000.0);
        // Payloads follow upserts.
        for (id, p) in &model {
            let got = t.index.get(&PointId::Int(*id)).unwrap().unwrap();
            prop_assert_eq!(got.coords, p.to_vec());
            // Upserted points carry `v`; points from the initial build carry `w`.
            let v = got.payload.get("v").or(got.payload.get("w"));
            prop_assert_eq!(v, Some(&Value::Int(*id)));
        }
    }
}

#[test]
fn sorted_insertions_stay_balanced() {
    let t = build_index(Metric::Haversine, 2, &[]);
    let n = 20_000i64;
    // Points along a road, in order: plain k-d insertion would make a 20,000-deep list.
    for chunk in (0..n).collect::<Vec<_>>().chunks(1) {
        let ops: Vec<WriteOp> = chunk
            .iter()
            .map(|&i| WriteOp::Insert(point(i, -10.0 + i as f64 * 1e-3, 40.0 + i as f64 * 5e-4)))
            .collect();
        t.index.write_unsynced(&ops).unwrap();
    }
    let rep = t.index.verify().unwrap();
    assert_eq!(rep.points, n as u64);
    let log2 = (n as f64).log2();
    assert!(
        rep.depth <= depth_bound(n as u64, TEST_LEAF_SIZE as u32),
        "depth {}",
        rep.depth
    );
    assert!(
        (rep.depth as f64) < 2.2 * log2,
        "depth {} vs log2 {log2}",
        rep.depth
    );
    let c = [0.0, 45.0];
    let want = (0..n)
        .filter(|&i| {
            let p = [-10.0 + i as f64 * 1e-3, 40.0 + i as f64 * 5e-4];
            Metric::Haversine.distance(&c, &p) <= 1_000.0
        })
        .count();
    assert_eq!(
        t.index.radius(&c, 1_000.0, 10).unwrap().count as usize,
        want
    );
}

#[test]
fn deleting_half_reclaims_records() {
    let pts: Vec<Vec<f64>> = (0..4000)
        .map(|i| vec![(i % 80) as f64 * 0.01, (i / 80) as f64 * 0.01])
        .collect();
    let t = build_index(Metric::Haversine, 2, &pts);
    let built = t.index.verify().unwrap();
    let ops: Vec<WriteOp> = (0..4000)
        .step_by(2)
        .map(|i| WriteOp::Delete(PointId::Int(i)))
        .collect();
    for chunk in ops.chunks(100) {
        t.index.write(chunk).unwrap();
    }
    // verify counts every space's records against what the tree reaches: nothing is left
    // behind, and emptied or small leaves were dropped or merged.
    let after = t.index.verify().unwrap();
    assert_eq!(after.points, 2000);
    assert!(after.leaves < built.leaves, "{after:?} vs {built:?}");
    let store = t.index.store();
    assert_eq!(store.len(Space::Nodes).unwrap(), after.nodes);
    assert!(store.len(Space::Ids).unwrap() <= t.index.meta().id_buckets);
    assert_eq!(t.index.meta().count, 2000);
    assert!(t.index.verify().unwrap().depth <= depth_bound(2000, TEST_LEAF_SIZE as u32));
    // Deleted points never appear in any answer.
    let all = t.index.radius(&[0.4, 0.25], 1e7, usize::MAX).unwrap();
    assert_eq!(all.count, 2000);
    for h in &all.hits {
        match t.index.payload(h.point).unwrap().id {
            PointId::Int(i) => assert!(i % 2 == 1),
            other => panic!("{other}"),
        }
    }
    assert!(!t.index.delete(&PointId::Int(0)).unwrap());
    assert!(t.index.delete(&PointId::Int(1)).unwrap());
}

#[test]
fn a_bad_item_rejects_the_whole_batch() {
    let t = build_index(Metric::Haversine, 2, &[vec![1.0, 1.0]]);
    let before = t.index.meta();
    let ops = vec![
        WriteOp::Upsert(point(10, 0.0, 0.0)),
        WriteOp::Upsert(point(11, 200.0, 0.0)),
    ];
    let err = t.index.write(&ops).unwrap_err().to_string();
    assert!(err.contains("item 1") && err.contains("longitude"), "{err}");
    let dup = vec![
        WriteOp::Insert(point(12, 0.0, 0.0)),
        WriteOp::Insert(point(0, 0.0, 0.0)),
    ];
    let err = t.index.write(&dup).unwrap_err().to_string();
    assert!(err.contains("item 1") && err.contains("exists"), "{err}");
    assert_eq!(t.index.meta(), before);
    assert!(t.index.get(&PointId::Int(10)).unwrap().is_none());
    assert!(t.index.get(&PointId::Int(12)).unwrap().is_none());
}

#[test]
fn large_batches_and_rebuilds_survive_reopen() {
    let t = build_index(Metric::Haversine, 2, &[]);
    // One batch bigger than a sled transaction goes through the journal.
    let ops: Vec<WriteOp> = (0..3000)
        .map(|i| WriteOp::Insert(point(i, i as f64 * 0.01, 0.0)))
        .collect();
    t.index.write(&ops).unwrap();
    let path = t.path();
    let dir = t.dir;
    drop(t.index);
    let index = Index::open(&path, 16).unwrap();
    assert_eq!(index.verify().unwrap().points, 3000);
    assert_eq!(index.meta().sequence, 1);
    assert_eq!(index.store().len(Space::Journal).unwrap(), 0);
    drop(dir);
}

#[test]
fn readers_never_miss_an_acknowledged_point() {
    let t = build_index(Metric::Haversine, 2, &[]);
    let index = t.index.clone();
    // Acknowledged points, in order of acknowledgement.
    type Acked = Arc<Mutex<Vec<(i64, [f64; 2])>>>;
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (index, acked, stop) = (index.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut checks = 0;
                while !stop.load(Ordering::Relaxed) {
                    // Everything acknowledged (and not being deleted) when the query starts
                    // must be in its answer. The snapshot is taken under the same lock as the
                    // list, so the list is exactly what was committed before the query.
                    let guard = acked.lock().unwrap();
                    let known: Vec<(i64, [f64; 2])> = guard.clone();
                    let snap = index.snapshot();
                    drop(guard);
                    let c = [r as f64 * 0.1, 0.0];
                    let a = snap.radius(&c, 50_000.0, usize::MAX).unwrap();
                    let got: std::collections::HashSet<i64> = a
                        .hits
                        .iter()
                        .map(|h| match snap.payload(h.point).unwrap().id {
                            PointId::Int(i) => i,
                            other => panic!("{other}"),
                        })
                        .collect();
                    drop(snap);
                    for (id, p) in &known {
                        if Metric::Haversine.distance(&c, p) <= 50_000.0 {
                            assert!(got.contains(id), "acknowledged point {id} missing");
                        }
                    }
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    // Sorted insertions force partial rebuilds while the readers run; deletes of older points
    // rebuild subtrees too.
    for i in 0..1500i64 {
        let p = [i as f64 * 1e-4, (i % 7) as f64 * 1e-3];
        index
            .write(&[WriteOp::Insert(point(i, p[0], p[1]))])
            .unwrap();
        acked.lock().unwrap().push((i, p));
        if i % 10 == 9 {
            // A point stops being promised before its delete begins.
            let victim = i - 5;
            acked.lock().unwrap().retain(|(id, _)| *id != victim);
            index
                .write(&[WriteOp::Delete(PointId::Int(victim))])
                .unwrap();
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(index.verify().unwrap().points, 1500 - 150);
}

#[test]
fn compaction_reclaims_space_and_keeps_answers_and_history() {
    let pts: Vec<Vec<f64>> = (0..6000)
        .map(|i| vec![(i % 100) as f64 * 0.01, (i / 100) as f64 * 0.01])
        .collect();
    let t = build_index(Metric::Haversine, 2, &pts);
    let ops: Vec<WriteOp> = (0..6000)
        .step_by(2)
        .map(|i| WriteOp::Delete(PointId::Int(i)))
        .collect();
    for chunk in ops.chunks(500) {
        t.index.write(chunk).unwrap();
    }
    let path = t.path();
    let before_answer = common::ids_and_distances(
        &t.index,
        &t.index
            .radius(&[0.5, 0.3], 20_000.0, usize::MAX)
            .unwrap()
            .hits,
    );
    let meta = t.index.meta();
    let dir = t.dir;
    drop(t.index);
    let before = kdsled::index::dir_size(&path).unwrap();
    let s = kdsled::index::compact(&path, 16, 1, &kdsled::index::NoProgress).unwrap();
    assert_eq!(s.points, 3000);
    assert!(s.bytes_on_disk < before, "{} >= {before}", s.bytes_on_disk);
    let index = Index::open(&path, 16).unwrap();
    assert_eq!(index.verify().unwrap().points, 3000);
    let m = index.meta();
    assert_eq!(
        (m.generation.clone(), m.sequence, m.count),
        (meta.generation.clone(), meta.sequence, 3000)
    );
    let after_answer = common::ids_and_distances(
        &index,
        &index
            .radius(&[0.5, 0.3], 20_000.0, usize::MAX)
            .unwrap()
            .hits,
    );
    assert_eq!(common::sorted(after_answer), common::sorted(before_answer));
    drop(dir);
}

#[test]
fn a_full_leaf_splits_and_two_small_siblings_merge() {
    // One full leaf of 4; the fifth point splits it in two under a new inner node.
    let pts: Vec<Vec<f64>> = (0..4).map(|i| vec![i as f64 * 0.01, 0.0]).collect();
    let t = build_index(Metric::Haversine, 2, &pts);
    let r = t.index.verify().unwrap();
    assert_eq!((r.points, r.leaves, r.nodes), (4, 1, 1));
    t.index.insert(point(4, 0.04, 0.0)).unwrap();
    let r = t.index.verify().unwrap();
    assert_eq!((r.points, r.leaves, r.nodes, r.depth), (5, 2, 3, 2));

    // Leaves of 8: leaves 1 and 2 are siblings (postorder). Shrinking one to a quarter keeps it
    // (its sibling is full); shrinking the other too folds both into one leaf.
    let pts: Vec<Vec<f64>> = (0..80).map(|i| vec![i as f64 * 0.01, 0.0]).collect();
    let t = common::build_index_leaves(Metric::Haversine, 2, &pts, 8);
    let built = t.index.verify().unwrap();
    assert_eq!(built.leaves, 10);
    let in_leaf = |leaf: u64| -> Vec<i64> {
        (0..80)
            .filter(|&i| t.index.get(&PointId::Int(i)).unwrap().unwrap().leaf == leaf)
            .collect()
    };
    let (first, second) = (in_leaf(1), in_leaf(2));
    assert_eq!((first.len(), second.len()), (8, 8));
    let delete = |ids: &[i64]| {
        let ops: Vec<WriteOp> = ids
            .iter()
            .map(|&i| WriteOp::Delete(PointId::Int(i)))
            .collect();
        t.index.write(&ops).unwrap();
    };
    delete(&first[..6]);
    assert_eq!(t.index.verify().unwrap().leaves, 10);
    delete(&second[..6]);
    let r = t.index.verify().unwrap();
    assert_eq!((r.points, r.leaves), (68, 9));
    // The leaf that shrank last took its sibling's points.
    for &id in first[6..].iter().chain(&second[6..]) {
        assert_eq!(t.index.get(&PointId::Int(id)).unwrap().unwrap().leaf, 2);
    }
}

#[test]
fn inserting_thousands_of_identical_points_stays_within_the_depth_bound() {
    let t = build_index(Metric::Haversine, 2, &[vec![5.0, 5.0]]);
    for batch in 0..20 {
        let ops: Vec<WriteOp> = (0..100)
            .map(|i| WriteOp::Insert(point(1 + batch * 100 + i, 5.0, 5.0)))
            .collect();
        t.index.write(&ops).unwrap();
    }
    let r = t.index.verify().unwrap();
    assert_eq!(r.points, 2001);
    assert!(r.depth <= depth_bound(2001, TEST_LEAF_SIZE as u32), "{r:?}");
    assert_eq!(t.index.count_within(&[5.0, 5.0], 0.0).unwrap().count, 2001);
    // And deleting them all, one batch at a time, empties the tree cleanly.
    for batch in 0..21 {
        let ops: Vec<WriteOp> = (0..100)
            .map(|i| WriteOp::Delete(PointId::Int(batch * 100 + i)))
            .collect();
        t.index.write(&ops).unwrap();
        t.index.verify().unwrap();
    }
    assert_eq!(t.index.meta().count, 0);
}

/// Filters read attribute columns kept across queries; a writer changing attributes beside
/// readers must never leave a reader a stale column. Each reader checks, within one snapshot,
/// the filtered answer against the payloads themselves.
#[test]
fn filtered_readers_beside_attribute_writes_see_no_stale_column() {
    let pts: Vec<Vec<f64>> = (0..600)
        .map(|i| vec![(i % 30) as f64 * 0.01, (i / 30) as f64 * 0.01])
        .collect();
    let t = build_index(Metric::Haversine, 2, &pts);
    let index = t.index.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let filter = kdsled::query::Filter::parse("cat:hot").expect("filter");
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (index, stop, filter) = (index.clone(), stop.clone(), filter.clone());
            std::thread::spawn(move || {
                let mut checks = 0u32;
                while !stop.load(Ordering::Relaxed) || checks == 0 {
                    let snap = index.snapshot();
                    let c = [0.15, 0.1];
                    let all = snap.radius(&c, 100_000.0, usize::MAX).unwrap();
                    let points: Vec<_> = all.hits.iter().map(|h| h.point).collect();
                    let mut want: Vec<u64> = snap
                        .payloads(&points)
                        .unwrap()
                        .iter()
                        .zip(&points)
                        .filter(|(p, _)| p.get("cat") == Some(&Value::Str("hot".into())))
                        .map(|(_, pt)| pt.0)
                        .collect();
                    let filtered = snap.filtered(Some(filter.clone()));
                    let mut got: Vec<u64> = filtered
                        .radius(&c, 100_000.0, usize::MAX)
                        .unwrap()
                        .hits
                        .iter()
                        .map(|h| h.point.0)
                        .collect();
                    want.sort_unstable();
                    got.sort_unstable();
                    assert_eq!(got, want, "filtered answer disagrees with the payloads");
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    // Flip points between "hot" and "cold" in place: payloads change, coordinates do not.
    for round in 0..300usize {
        let ops: Vec<WriteOp> = (0..5)
            .map(|k| {
                let i = (round * 37 + k * 101) % pts.len();
                WriteOp::Upsert(NewPoint {
                    id: PointId::Int(i as i64),
                    coords: pts[i].clone(),
                    properties: vec![(
                        "cat".into(),
                        Value::Str(if (round + k) % 2 == 0 { "hot" } else { "cold" }.into()),
                    )],
                })
            })
            .collect();
        index.write_unsynced(&ops).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().expect("reader") > 0);
    }
}
