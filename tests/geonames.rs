//! The real GeoNames data: build a slice of cities1000 and check answers against brute force.

mod common;

use std::io::{BufRead, Write};

use kdsled::index::{build, BuildOptions, NoProgress};
use kdsled::input::{self, InputSpec};
use kdsled::{Index, Metric, PointId, Value};

/// The first `n` rows of the bundled dump, written to a plain file.
fn slice(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let gz = std::fs::File::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/cities1000.txt.gz"
    ))
    .expect("data/cities1000.txt.gz is bundled");
    let rdr = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(gz));
    let path = dir.join("cities.txt");
    let mut out = std::fs::File::create(&path).unwrap();
    for line in rdr.lines().take(n) {
        writeln!(out, "{}", line.unwrap()).unwrap();
    }
    path
}

#[test]
fn cities_answers_match_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let file = slice(dir.path(), 5000);
    let spec = InputSpec::geonames();
    let rows: Vec<input::Record> = input::open(&file, &spec)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 5000);
    let db = dir.path().join("idx");
    let opts = BuildOptions {
        metric: Metric::Haversine,
        dims: 2,
        cache_mb: 16,
        memory_mb: kdsled::index::DEFAULT_BUILD_MEMORY_MB,
        skip_invalid: false,
        force: false,
        history: None,
        leaf_size: kdsled::store::format::DEFAULT_LEAF_SIZE as usize,
    };
    let summary = build(&db, input::open(&file, &spec).unwrap(), &opts, &NoProgress).unwrap();
    assert_eq!(summary.points, 5000);
    assert_eq!(summary.depth, 7);
    let index = Index::open(&db, 16).unwrap();
    assert_eq!(index.verify().unwrap().points, 5000);

    for (i, r) in [804.672, 1_200.0, 25_000.0, 100_000.0]
        .into_iter()
        .enumerate()
    {
        for q in rows.iter().step_by(97 + i) {
            let got = index.radius(&q.coords, r, usize::MAX).unwrap();
            let mut got_ids: Vec<PointId> = got
                .hits
                .iter()
                .map(|h| index.payload(h.point).unwrap().id)
                .collect();
            let mut want: Vec<PointId> = rows
                .iter()
                .filter(|p| Metric::Haversine.distance(&q.coords, &p.coords) <= r)
                .map(|p| p.id.clone())
                .collect();
            got_ids.sort();
            want.sort();
            assert_eq!(got_ids, want);
        }
    }

    // Population by feature code within 100 km of the first row, against brute force.
    let c = &rows[0].coords;
    let s = index
        .stats(c, 100_000.0, "feature_code", Some("population"))
        .unwrap();
    let mut want = std::collections::BTreeMap::<String, (u64, f64)>::new();
    for p in rows
        .iter()
        .filter(|p| Metric::Haversine.distance(c, &p.coords) <= 100_000.0)
    {
        let code = p
            .properties
            .iter()
            .find(|(k, _)| k == "feature_code")
            .map(|(_, v)| v.group_key())
            .unwrap_or_default();
        let pop = p
            .properties
            .iter()
            .find(|(k, _)| k == "population")
            .and_then(|(_, v)| v.as_f64())
            .unwrap_or(0.0);
        let e = want.entry(code).or_default();
        e.0 += 1;
        e.1 += pop;
    }
    let got: std::collections::BTreeMap<String, (u64, f64)> = s
        .groups
        .iter()
        .map(|(k, g)| (k.clone(), (g.count, g.sum)))
        .collect();
    assert_eq!(got, want);

    // Payloads come back as they were read; numeric columns as numbers.
    let first = index.get(&rows[0].id).unwrap().unwrap();
    assert_eq!(first.coords, rows[0].coords);
    assert_eq!(first.payload.properties, rows[0].properties);
    assert!(matches!(
        first.payload.get("population"),
        Some(Value::Int(_))
    ));
}
