//! Answers spliced from payload JSON encoded once per leaf are byte for byte the answers
//! serialized from decoded payloads, in every shape, and follow writes to the leaves.

mod common;

use kdsled::index::{build, BuildOptions, NewPoint, NoProgress};
use kdsled::input::Record;
use kdsled::output::{AnswerView, Shape, SplicedAnswer};
use kdsled::point::{PointId, Value};
use kdsled::{BBox, Index, Metric};
use proptest::prelude::*;

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-0.0),
            Just(1e300)
        ]
        .prop_map(Value::Float),
        // Quotes, backslashes, control characters and non-ASCII: everything JSON escapes.
        "[a-z\"\\\\\u{0}-\u{1f}é😀 ]{0,12}".prop_map(Value::Str),
    ]
}

fn id(i: usize, textual: bool) -> PointId {
    if textual {
        PointId::Str(format!("p\"{i}\\é"))
    } else {
        PointId::Int(i as i64 * 7 - 50)
    }
}

type Row = (Vec<f64>, Vec<(String, Value)>);

fn rows(dims: usize) -> impl Strategy<Value = Vec<Row>> {
    let coord = prop_oneof![(-20i32..20).prop_map(|x| f64::from(x) / 4.0), -5.0f64..5.0];
    let props = prop::collection::vec(("[a-c\"]{1,3}", value()), 0..4);
    prop::collection::vec((prop::collection::vec(coord, dims), props), 1..60)
}

fn build_rows(
    metric: Metric,
    dims: usize,
    rows: &[Row],
    textual: bool,
) -> (tempfile::TempDir, Index) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("idx");
    let records = rows.iter().enumerate().map(|(i, (c, p))| {
        Ok(Record {
            line: i as u64 + 1,
            id: id(i, textual),
            coords: c.clone(),
            properties: p.clone(),
        })
    });
    let opts = BuildOptions {
        metric,
        dims,
        cache_mb: 8,
        memory_mb: 64,
        skip_invalid: false,
        force: false,
        history: None,
        leaf_size: common::TEST_LEAF_SIZE,
    };
    build(&path, records, &opts, &NoProgress).expect("build");
    let index = Index::open(&path, 8).expect("open");
    (dir, index)
}

/// Every answer kind in every shape, spliced and serialized, must be the same bytes.
fn check_same(index: &Index, center: &[f64], radius: f64) {
    let snap = index.snapshot();
    let metric = snap.meta().metric;
    let dims = snap.meta().dims as usize;
    let near = snap.radius(center, radius, 1000).expect("radius");
    let nearest = snap.nearest(center, 5, None).expect("nearest");
    let lo: Vec<f64> = center.iter().map(|c| c - 1.0).collect();
    let hi: Vec<f64> = center.iter().map(|c| c + 1.0).collect();
    let within = snap
        .within(
            &BBox::new(metric, &lo[..dims], &hi[..dims]).expect("box"),
            3,
        )
        .expect("within");
    let shapes: &[Shape] = match metric {
        Metric::Haversine => &[Shape::Json, Shape::GeoJson],
        Metric::Euclidean => &[Shape::Json],
    };
    for (answer, with_distance) in [(&near, true), (&nearest, true), (&within, false)] {
        // `properties=`: none, one, several (names JSON escapes, asked out of order), unknown.
        let keeps: [Option<Vec<String>>; 5] = [
            None,
            Some(vec![]),
            Some(vec!["a".into()]),
            Some(vec!["c".into(), "a\"".into(), "b".into()]),
            Some(vec!["zz".into()]),
        ];
        for &shape in shapes {
            for next in [None, Some("tok\"en".to_string())] {
                for keep in &keeps {
                    let want = AnswerView::load(&snap, answer, with_distance, shape)
                        .expect("view")
                        .only_properties(keep.as_deref())
                        .with_next(next.clone())
                        .to_bytes();
                    let got = SplicedAnswer::load(&snap, answer, with_distance, shape)
                        .expect("spliced")
                        .only_properties(keep.as_deref())
                        .with_next(next.clone())
                        .to_bytes();
                    assert_eq!(
                        String::from_utf8_lossy(&got),
                        String::from_utf8_lossy(&want),
                        "{shape:?} with_distance={with_distance} keep={keep:?}"
                    );
                    serde_json::from_slice::<serde_json::Value>(&got).expect("valid JSON");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn spliced_answers_equal_serialized_ones_on_lon_lat(
        rows in rows(2), textual in any::<bool>(), c in (-5.0f64..5.0, -5.0f64..5.0),
    ) {
        let (_dir, index) = build_rows(Metric::Haversine, 2, &rows, textual);
        // Twice: the second answers come from the cache.
        for _ in 0..2 {
            check_same(&index, &[c.0, c.1], 300_000.0);
        }
    }

    #[test]
    fn spliced_answers_equal_serialized_ones_in_k_dimensions(
        rows in rows(3), textual in any::<bool>(), c in prop::collection::vec(-5.0f64..5.0, 3),
    ) {
        let (_dir, index) = build_rows(Metric::Euclidean, 3, &rows, textual);
        check_same(&index, &c, 3.0);
        check_same(&index, &c, 3.0);
    }
}

#[test]
fn cached_payload_json_follows_upserts_deletes_and_splits() {
    let rows: Vec<Row> = (0..40)
        .map(|i| {
            (
                vec![f64::from(i) * 0.01, 0.0],
                vec![("name".to_string(), Value::Str(format!("old{i}")))],
            )
        })
        .collect();
    let (_dir, index) = build_rows(Metric::Haversine, 2, &rows, false);
    let render = |index: &Index| {
        let snap = index.snapshot();
        let a = snap.radius(&[0.0, 0.0], 1e6, 1000).expect("radius");
        let got = SplicedAnswer::load(&snap, &a, true, Shape::Json)
            .expect("spliced")
            .to_bytes();
        let want = AnswerView::load(&snap, &a, true, Shape::Json)
            .expect("view")
            .to_bytes();
        assert_eq!(got, want);
        String::from_utf8(got).expect("utf8")
    };
    assert!(render(&index).contains("old7"));
    assert!(index.leaf_json_cache().is_some_and(|c| !c.is_empty()));
    // Same coordinates, new attributes: the leaf's node record does not change, its payloads do.
    index
        .upsert(NewPoint {
            id: id(7, false),
            coords: vec![0.07, 0.0],
            properties: vec![("name".into(), Value::Str("new7".into()))],
        })
        .expect("upsert");
    let after = render(&index);
    assert!(
        after.contains("new7") && !after.contains("\"old7\""),
        "{after}"
    );
    index.delete(&id(3, false)).expect("delete");
    assert!(!render(&index).contains("\"old3\""));
    // Enough inserts in one place to split leaves and move points between them.
    for i in 100..140 {
        index
            .insert(NewPoint {
                id: PointId::Int(1000 + i),
                coords: vec![0.2 + i as f64 * 1e-4, 0.0],
                properties: vec![("name".into(), Value::Str(format!("ins{i}")))],
            })
            .expect("insert");
        assert!(render(&index).contains(&format!("ins{i}")));
    }
    assert_eq!(index.verify().expect("verify").points, 40 - 1 + 40);
}
