//! Format versions: old and new indexes are refused untouched, `migrate` turns a version-1 or
//! version-2 index into version 3 (leaf buckets) with answers identical to brute force over
//! the fixture's points, and an interrupted migration resumes or starts over without loss.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kdsled::input::Record;
use kdsled::store::format::{FORMAT_VERSION, VERSION_KEY};
use kdsled::store::{codec, SledStore, Space, Store, WriteBatch};
use kdsled::{Error, Index, Metric, PointId, Value};

/// An index of `n` points in format `version`, written by the kept version 1/2 writer.
fn fixture(path: &Path, n: usize, version: u32) -> Vec<Vec<f64>> {
    let pts: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            vec![
                ((i * 7919) % 3600) as f64 * 0.1 - 180.0,
                ((i * 104729) % 1800) as f64 * 0.1 - 90.0,
            ]
        })
        .collect();
    let records: Vec<Record> = pts
        .iter()
        .enumerate()
        .map(|(i, p)| Record {
            line: i as u64 + 1,
            id: PointId::Int(i as i64),
            coords: p.clone(),
            properties: vec![("k".into(), Value::Int(i as i64 % 5))],
        })
        .collect();
    kdsled::migrate::v2::write(path, Metric::Haversine, 2, &records, version).unwrap();
    pts
}

const CENTRES: [[f64; 2]; 4] = [[0.0, 0.0], [179.9, 10.0], [-45.0, 89.0], [12.0, -60.0]];

/// Answers that must not change across a migration.
fn answers(index: &Index) -> Vec<Vec<(f64, i64)>> {
    CENTRES
        .iter()
        .map(|c| {
            let a = index.radius(c, 900_000.0, usize::MAX).unwrap();
            common::sorted(common::ids_and_distances(index, &a.hits))
        })
        .collect()
}

/// The same answers by brute force over the fixture's points.
fn oracle(pts: &[Vec<f64>]) -> Vec<Vec<(f64, i64)>> {
    CENTRES
        .iter()
        .map(|c| common::brute_radius(Metric::Haversine, pts, c, 900_000.0))
        .collect()
}

/// Checks a migrated index: version 3, valid, every point and payload there.
fn check_migrated(path: &Path, pts: &[Vec<f64>]) {
    let index = Index::open(path, 16).unwrap();
    assert_eq!(index.meta().format, FORMAT_VERSION);
    assert_eq!(index.verify().unwrap().points, pts.len() as u64);
    assert_eq!(answers(&index), oracle(pts));
    let p = index.get(&PointId::Int(7)).unwrap().expect("point 7");
    assert_eq!(p.coords, pts[7]);
    assert_eq!(p.payload.get("k"), Some(&Value::Int(2)));
    // Only the migrated generation is left.
    let generations = std::fs::read_dir(path)
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            n.to_string_lossy().starts_with("index-")
        })
        .count();
    assert_eq!(generations, 1);
}

/// Every record of every space. (sled rewrites its own snapshot file whenever a database is
/// opened, so "untouched" is checked on the records, not the files.)
fn records(dir: &Path) -> Vec<(Space, Vec<u8>, Vec<u8>)> {
    let s = SledStore::open(&common::sled_dir(dir), 8).unwrap();
    Space::ALL
        .iter()
        .flat_map(|sp| {
            s.scan(*sp)
                .map(|r| {
                    let (k, v) = r.unwrap();
                    (*sp, k.to_vec(), v.to_vec())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn version_2_is_refused_then_migrated_with_identical_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2");
    let pts = fixture(&path, 5000, 2);
    let stored = records(&path);
    let err = Index::open(&path, 16).err().unwrap();
    assert!(matches!(err, Error::FormatVersion(_)), "{err}");
    assert!(err.to_string().contains("kdsled migrate"), "{err}");
    assert_eq!(records(&path), stored, "opening an old index changed it");
    // The kept version 2 reader answers as brute force does.
    {
        let v2 = kdsled::migrate::v2::V2Index::open(&path, 16).unwrap();
        for (c, want) in CENTRES.iter().zip(oracle(&pts)) {
            assert_eq!(v2.count_within(c, 900_000.0).unwrap().0, want.len() as u64);
        }
    }

    let r = kdsled::migrate::migrate(&path, 16).unwrap();
    assert_eq!((r.from, r.to, r.records, r.resumed), (2, 3, 5000, false));
    check_migrated(&path, &pts);
    // Running it again does nothing.
    let r = kdsled::migrate::migrate(&path, 16).unwrap();
    assert_eq!((r.from, r.to, r.records), (3, 3, 0));
}

#[test]
fn an_interrupted_version_1_migration_refuses_opens_and_resumes_to_version_3() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1");
    let pts = fixture(&path, 5000, 1);
    let r = kdsled::migrate::migrate_with(&path, 16, Some(2)).unwrap();
    assert_eq!(r.records, 999 * 2);
    let err = Index::open(&path, 16).err().unwrap().to_string();
    assert!(
        err.contains("interrupted") && err.contains("kdsled migrate"),
        "{err}"
    );
    let r = kdsled::migrate::migrate(&path, 16).unwrap();
    assert!(r.resumed);
    // The rest of the in-place 1 -> 2 step, then every point into the version 3 build.
    assert_eq!(r.records, 5000 - 999 * 2 + 5000);
    assert_eq!((r.from, r.to), (1, 3));
    check_migrated(&path, &pts);
}

#[test]
fn a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2");
    fixture(&path, 10, 2);
    {
        let s = SledStore::open(&common::sled_dir(&path), 8).unwrap();
        let mut b = WriteBatch::new();
        b.put(Space::Meta, VERSION_KEY, codec::encode_version(99));
        s.apply(&b).unwrap();
        s.flush().unwrap();
    }
    let err = Index::open(&path, 16).err().unwrap().to_string();
    assert!(err.contains("newer") && err.contains("99"), "{err}");
    assert!(kdsled::migrate::migrate(&path, 16).is_err());
}

#[test]
fn killing_migrate_at_random_moments_never_loses_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let fixture_dir = dir.path().join("fixture");
    let pts = fixture(&fixture_dir, 40_000, 2);
    let mut rng = 0x9e37_79b9u64;
    for round in 0..4 {
        let path = dir.path().join(format!("r{round}"));
        copy_dir(&fixture_dir, &path);
        let mut child = Command::new(env!("CARGO_BIN_EXE_kdsled"))
            .args([
                "migrate",
                "--db",
                path.to_str().unwrap(),
                "--memory-mb",
                "1",
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(rng % 400));
        let _ = child.kill(); // SIGKILL, possibly after it finished
        child.wait().unwrap();
        // Either still version 2 (untouched, perhaps beside a partial generation) or done:
        // rerunning finishes it.
        common::proc::kdsled_ok(&["migrate", "--db", path.to_str().unwrap()], "");
        check_migrated(&path, &pts);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.metadata().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}
