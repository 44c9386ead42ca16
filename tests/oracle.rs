//! Every query kind against brute force, for both metrics, on random and adversarial data.

mod common;

use common::*;
use kdsled::geometry::metric::HALF_CIRCUMFERENCE_M;
use kdsled::{BBox, Metric};
use proptest::prelude::*;

/// Longitude/latitude sets that stress the sphere: uniform, polar caps, the antimeridian,
/// duplicates and points on one meridian or parallel.
fn lonlat_points() -> impl Strategy<Value = Vec<Vec<f64>>> {
    let uniform = (-180.0..=180.0f64, -90.0..=90.0f64).prop_map(|(a, b)| vec![a, b]);
    let north = (-180.0..=180.0f64, 88.0..=90.0f64).prop_map(|(a, b)| vec![a, b]);
    let south = (-180.0..=180.0f64, -90.0..=-88.5f64).prop_map(|(a, b)| vec![a, b]);
    let east = (179.0..=180.0f64, -5.0..=5.0f64).prop_map(|(a, b)| vec![a, b]);
    let west = (-180.0..=-179.0f64, -5.0..=5.0f64).prop_map(|(a, b)| vec![a, b]);
    let meridian = (-90.0..=90.0f64).prop_map(|b| vec![12.5, b]);
    let parallel = (-180.0..=180.0f64).prop_map(|a| vec![a, 45.0]);
    let pole = (-180.0..=180.0f64).prop_map(|a| vec![a, 90.0]);
    let point = prop_oneof![
        3 => uniform,
        2 => north,
        1 => south,
        2 => east,
        2 => west,
        1 => meridian,
        1 => parallel,
        1 => pole,
    ];
    prop_oneof![
        4 => prop::collection::vec(point.clone(), 0..250),
        // Many copies of a handful of points.
        1 => (prop::collection::vec(point, 1..4), 1..200usize).prop_map(|(base, n)| {
            (0..n).map(|i| base[i % base.len()].clone()).collect()
        }),
    ]
}

fn lonlat_center() -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        (-180.0..=180.0f64, -90.0..=90.0f64).prop_map(|(a, b)| vec![a, b]),
        (179.5..=180.0f64, -5.0..=5.0f64).prop_map(|(a, b)| vec![a, b]),
        (-180.0..=-179.5f64, -5.0..=5.0f64).prop_map(|(a, b)| vec![a, b]),
        (-180.0..=180.0f64, 89.0..=90.0f64).prop_map(|(a, b)| vec![a, b]),
        (-180.0..=180.0f64, -90.0..=-89.0f64).prop_map(|(a, b)| vec![a, b]),
    ]
}

fn radius_m() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        0.0..10.0f64,
        1_000.0..200_000.0f64,
        200_000.0..5_000_000.0f64,
        Just(HALF_CIRCUMFERENCE_M),
        Just(1e9),
    ]
}

/// k-space sets on a small integer grid (ties and duplicates galore) or continuous.
fn kspace_points() -> impl Strategy<Value = (usize, Vec<Vec<f64>>)> {
    prop_oneof![1usize..=4, Just(16usize)].prop_flat_map(|dims| {
        let grid = prop::collection::vec((-3i32..=3).prop_map(f64::from), dims);
        let cont = prop::collection::vec(-100.0..100.0f64, dims);
        let line = (-100.0..100.0f64).prop_map(move |t| vec![t; dims]);
        let point = prop_oneof![grid, cont, line];
        (Just(dims), prop::collection::vec(point, 0..200))
    })
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// A filter applies during the walk: counts, limits, k and groups see only matching points.
    #[test]
    fn filtered_queries_match_brute_force_on_the_matching_points(
        points in lonlat_points(),
        center in lonlat_center(),
        r in radius_m(),
        k in 0usize..20,
        limit in 0usize..30,
        cat in 0usize..3,
    ) {
        let m = Metric::Haversine;
        let t = build_index(m, 2, &points);
        let idx = &t.index;
        let value = category(cat);
        let f = kdsled::query::Filter { field: "cat".into(), value: value.clone() };
        let keep = |id: i64| category(id as usize) == value;
        let matching: Vec<Vec<f64>> = points.iter().enumerate()
            .filter(|(i, _)| keep(*i as i64)).map(|(_, p)| p.clone()).collect();

        let want: Vec<(f64, i64)> = brute_radius(m, &points, &center, r)
            .into_iter().filter(|(_, id)| keep(*id)).collect();
        let snap = idx.snapshot().filtered(Some(f.clone()));
        let got = snap.radius(&center, r, limit).unwrap();
        prop_assert_eq!(got.count as usize, want.len());
        let got_d: Vec<f64> = got.hits.iter().map(|h| h.distance).collect();
        let want_d: Vec<f64> = want.iter().take(limit).map(|x| x.0).collect();
        prop_assert_eq!(got_d, want_d);
        prop_assert_eq!(snap.count_within(&center, r).unwrap().count as usize, want.len());
        let near = snap.nearest(&center, k, None).unwrap();
        let d: Vec<f64> = near.hits.iter().map(|h| h.distance).collect();
        prop_assert_eq!(d, brute_nearest(m, &matching, &center, k, None));
        let all = BBox::new(m, &[-180.0, -90.0], &[180.0, 90.0]).unwrap();
        prop_assert_eq!(snap.within(&all, usize::MAX).unwrap().count as usize, matching.len());
        if !want.is_empty() {
            let s = snap.stats(&center, r, "cat", Some("w")).unwrap();
            prop_assert_eq!(s.count as usize, want.len());
            prop_assert_eq!(s.groups.len(), 1);
            prop_assert_eq!(s.groups[&value].sum, want.iter().map(|x| x.1 as f64).sum::<f64>());
        }
        drop(snap);
    }

    #[test]
    fn haversine_queries_match_brute_force(
        points in lonlat_points(),
        center in lonlat_center(),
        r in radius_m(),
        k in 0usize..20,
        limit in 0usize..30,
        bbox in (-180.0..=180.0f64, -90.0..=90.0f64, -180.0..=180.0f64, -90.0..=90.0f64),
        leaf in prop::sample::select(vec![2usize, TEST_LEAF_SIZE, 128]),
    ) {
        let m = Metric::Haversine;
        let t = build_index_leaves(m, 2, &points, leaf);
        let idx = &t.index;

        let want = brute_radius(m, &points, &center, r);
        let got = idx.radius(&center, r, usize::MAX).unwrap();
        prop_assert_eq!(got.count as usize, want.len());
        prop_assert_eq!(sorted(ids_and_distances(idx, &got.hits)), want.clone());
        let n = idx.count_within(&center, r).unwrap();
        prop_assert_eq!(n.count as usize, want.len());

        // A limit keeps the nearest `limit`, in order.
        let cut = idx.radius(&center, r, limit).unwrap();
        let cut_d: Vec<f64> = cut.hits.iter().map(|h| h.distance).collect();
        let want_d: Vec<f64> = want.iter().take(limit).map(|x| x.0).collect();
        prop_assert_eq!(cut_d, want_d);
        prop_assert_eq!(cut.count as usize, want.len());
        prop_assert_eq!(cut.truncated(), want.len() > limit);

        for max in [None, Some(r)] {
            let got = idx.nearest(&center, k, max).unwrap();
            let d: Vec<f64> = got.hits.iter().map(|h| h.distance).collect();
            prop_assert_eq!(d, brute_nearest(m, &points, &center, k, max));
        }

        let (lo_lon, lat_a, hi_lon, lat_b) = bbox;
        let b = BBox::new(m, &[lo_lon, lat_a.min(lat_b)], &[hi_lon, lat_a.max(lat_b)]).unwrap();
        let got = idx.within(&b, usize::MAX).unwrap();
        let mut ids: Vec<i64> = ids_and_distances(idx, &got.hits).into_iter().map(|x| x.1).collect();
        ids.sort();
        prop_assert_eq!(ids, brute_within(&points, &b));

        // Per-category stats equal a brute-force grouping.
        let s = idx.stats(&center, r, "cat", Some("w")).unwrap();
        let mut groups = std::collections::BTreeMap::<String, (u64, f64)>::new();
        for (_, id) in &want {
            let g = groups.entry(category(*id as usize)).or_default();
            g.0 += 1;
            g.1 += *id as f64;
        }
        let got_groups: std::collections::BTreeMap<String, (u64, f64)> =
            s.groups.iter().map(|(k, g)| (k.clone(), (g.count, g.sum))).collect();
        prop_assert_eq!(got_groups, groups);
    }

    #[test]
    fn euclidean_queries_match_brute_force(
        (dims, points) in kspace_points(),
        seed in prop::collection::vec(-5.0..5.0f64, 16),
        r in prop_oneof![Just(0.0), 0.0..3.0f64, 3.0..500.0f64],
        k in 0usize..20,
        half in prop::collection::vec(0.0..4.0f64, 16),
        leaf in prop::sample::select(vec![2usize, TEST_LEAF_SIZE, 128]),
    ) {
        let m = Metric::Euclidean;
        let center: Vec<f64> = seed[..dims].to_vec();
        let t = build_index_leaves(m, dims, &points, leaf.min(kdsled::store::format::default_leaf_size(dims)));
        let idx = &t.index;

        let want = brute_radius(m, &points, &center, r);
        let got = idx.radius(&center, r, usize::MAX).unwrap();
        prop_assert_eq!(sorted(ids_and_distances(idx, &got.hits)), want);

        let got = idx.nearest(&center, k, None).unwrap();
        let d: Vec<f64> = got.hits.iter().map(|h| h.distance).collect();
        prop_assert_eq!(d, brute_nearest(m, &points, &center, k, None));

        let lo: Vec<f64> = (0..dims).map(|i| center[i] - half[i]).collect();
        let hi: Vec<f64> = (0..dims).map(|i| center[i] + half[i]).collect();
        let b = BBox::new(m, &lo, &hi).unwrap();
        let got = idx.within(&b, usize::MAX).unwrap();
        let mut ids: Vec<i64> = ids_and_distances(idx, &got.hits).into_iter().map(|x| x.1).collect();
        ids.sort();
        prop_assert_eq!(ids, brute_within(&points, &b));
        prop_assert!(idx.verify().is_ok());
    }
}

#[test]
fn empty_index_answers_nothing() {
    let t = build_index(Metric::Haversine, 2, &[]);
    let a = t.index.radius(&[0.0, 0.0], 1e9, 10).unwrap();
    assert_eq!((a.count, a.nodes_read), (0, 0));
    assert!(t
        .index
        .nearest(&[0.0, 0.0], 5, None)
        .unwrap()
        .hits
        .is_empty());
    let b = BBox::new(Metric::Haversine, &[-180.0, -90.0], &[180.0, 90.0]).unwrap();
    assert_eq!(t.index.within(&b, 10).unwrap().count, 0);
    assert_eq!(t.index.verify().unwrap().points, 0);
}

#[test]
fn antimeridian_circle_finds_the_other_side() {
    let pts = vec![vec![-179.9, 0.0], vec![179.95, 0.0], vec![0.0, 0.0]];
    let t = build_index(Metric::Haversine, 2, &pts);
    let a = t.index.radius(&[179.9, 0.0], 30_000.0, 10).unwrap();
    let ids: Vec<i64> = ids_and_distances(&t.index, &a.hits)
        .iter()
        .map(|x| x.1)
        .collect();
    assert_eq!(ids, vec![1, 0]);
}

#[test]
fn poles_are_one_point_whatever_the_longitude() {
    let pts: Vec<Vec<f64>> = (0..36)
        .map(|i| vec![-180.0 + 10.0 * i as f64, 90.0])
        .collect();
    let t = build_index(Metric::Haversine, 2, &pts);
    let a = t.index.radius(&[123.0, 90.0], 0.0, 100).unwrap();
    assert_eq!(a.count, 36);
    let a = t.index.radius(&[0.0, 89.99], 1_200.0, 100).unwrap();
    assert_eq!(a.count, 36);
}

#[test]
fn bad_query_parameters_are_errors() {
    let t = build_index(Metric::Haversine, 2, &[vec![0.0, 0.0]]);
    assert!(t.index.radius(&[181.0, 0.0], 1.0, 1).is_err());
    assert!(t.index.radius(&[0.0, -91.0], 1.0, 1).is_err());
    assert!(t.index.radius(&[f64::NAN, 0.0], 1.0, 1).is_err());
    assert!(t.index.radius(&[0.0, 0.0], -1.0, 1).is_err());
    assert!(t.index.radius(&[0.0, 0.0, 0.0], 1.0, 1).is_err());
    assert!(t
        .index
        .nearest(&[0.0, 0.0], 1, Some(f64::INFINITY))
        .is_err());
}

/// Every query kind against brute force on a degenerate set, in several leaf sizes.
fn check_degenerate(points: &[Vec<f64>], probes: &[[f64; 2]], radii: &[f64]) {
    let m = Metric::Haversine;
    for leaf in [2, TEST_LEAF_SIZE, 128] {
        let t = build_index_leaves(m, 2, points, leaf);
        let rep = t.index.verify().unwrap();
        assert_eq!(rep.points, points.len() as u64);
        for c in probes {
            for &r in radii {
                let want = brute_radius(m, points, c, r);
                let got = t.index.radius(c, r, usize::MAX).unwrap();
                assert_eq!(
                    sorted(ids_and_distances(&t.index, &got.hits)),
                    want,
                    "leaf {leaf}"
                );
                let d: Vec<f64> = t
                    .index
                    .nearest(c, 7, Some(r))
                    .unwrap()
                    .hits
                    .iter()
                    .map(|h| h.distance)
                    .collect();
                assert_eq!(d, brute_nearest(m, points, c, 7, Some(r)));
            }
        }
        let all = BBox::new(m, &[-180.0, -90.0], &[180.0, 90.0]).unwrap();
        assert_eq!(t.index.within(&all, 1).unwrap().count, points.len() as u64);
    }
}

#[test]
fn ten_thousand_identical_points_build_a_balanced_tree_of_full_leaves() {
    let pts = vec![vec![2.35, 48.85]; 10_000];
    check_degenerate(&pts, &[[2.35, 48.85], [2.36, 48.85]], &[0.0, 1_000.0]);
    // Splits are by position: leaves are full, the tree no deeper than a perfect one's.
    let t = build_index_leaves(Metric::Haversine, 2, &pts, 128);
    let rep = t.index.verify().unwrap();
    assert_eq!(rep.leaves, 10_000u64.div_ceil(128));
    assert_eq!(rep.depth, (rep.leaves as f64).log2().ceil() as u32 + 1);
}

#[test]
fn collinear_points_and_one_point_match_brute_force() {
    let line: Vec<Vec<f64>> = (0..500)
        .map(|i| vec![10.0, -40.0 + i as f64 * 0.01])
        .collect();
    check_degenerate(
        &line,
        &[[10.0, -38.0], [10.01, -40.0]],
        &[0.0, 900.0, 50_000.0],
    );
    let diagonal: Vec<Vec<f64>> = (0..500)
        .map(|i| vec![i as f64 * 0.001, i as f64 * 0.001])
        .collect();
    check_degenerate(&diagonal, &[[0.2, 0.2], [0.0, 0.5]], &[100.0, 20_000.0]);
    check_degenerate(
        &[vec![-120.0, 35.0]],
        &[[-120.0, 35.0], [60.0, -35.0]],
        &[0.0, 2e7],
    );
}
