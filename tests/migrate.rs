//! Format versions: old and new indexes are refused untouched, `migrate` turns a version-1
//! index into version 2 with identical answers, and an interrupted migration resumes.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kdsled::index::{build, BuildOptions, NoProgress};
use kdsled::input::Record;
use kdsled::store::format::VERSION_KEY;
use kdsled::store::{codec, SledStore, Space, Store, WriteBatch};
use kdsled::{Error, Index, Metric, PointId, Value};

/// A version-1 index written by the kept version-1 writer.
fn v1_fixture(path: &Path, n: usize) -> Vec<Vec<f64>> {
    let pts: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            vec![
                ((i * 7919) % 3600) as f64 * 0.1 - 180.0,
                ((i * 104729) % 1800) as f64 * 0.1 - 90.0,
            ]
        })
        .collect();
    let records = pts.iter().enumerate().map(|(i, p)| {
        Ok(Record {
            line: i as u64 + 1,
            id: PointId::Int(i as i64),
            coords: p.clone(),
            properties: vec![("k".into(), Value::Int(i as i64 % 5))],
        })
    });
    let opts = BuildOptions {
        metric: Metric::Haversine,
        dims: 2,
        cache_mb: 16,
        memory_mb: kdsled::index::DEFAULT_BUILD_MEMORY_MB,
        skip_invalid: false,
        force: true,
        history: None,
        format: 1,
    };
    build(path, records, &opts, &NoProgress).unwrap();
    pts
}

/// Answers that must not change across a migration.
fn answers(index: &Index) -> Vec<Vec<(f64, i64)>> {
    [[0.0, 0.0], [179.9, 10.0], [-45.0, 89.0], [12.0, -60.0]]
        .iter()
        .map(|c| {
            let a = index.radius(c, 900_000.0, usize::MAX).unwrap();
            common::sorted(common::ids_and_distances(index, &a.hits))
        })
        .collect()
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
fn version_1_is_refused_then_migrated_with_identical_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1");
    v1_fixture(&path, 5000);
    let before = {
        let old = Index::open_any_format(&path, 16).unwrap();
        assert_eq!(old.meta().format, 1);
        assert_eq!(old.verify().unwrap().nodes, 5000);
        answers(&old)
    };
    let stored = records(&path);
    let err = Index::open(&path, 16).err().unwrap();
    assert!(matches!(err, Error::FormatVersion(_)), "{err}");
    assert!(err.to_string().contains("kdsled migrate"), "{err}");
    assert_eq!(records(&path), stored, "opening an old index changed it");

    let r = kdsled::migrate::migrate(&path, 16).unwrap();
    assert_eq!((r.from, r.to, r.records, r.resumed), (1, 2, 5000, false));
    let index = Index::open(&path, 16).unwrap();
    assert_eq!(index.meta().format, 2);
    assert_eq!(index.verify().unwrap().nodes, 5000);
    assert_eq!(answers(&index), before);
    drop(index);
    // Running it again does nothing.
    let r = kdsled::migrate::migrate(&path, 16).unwrap();
    assert_eq!((r.from, r.to, r.records), (2, 2, 0));
}

#[test]
fn an_interrupted_migration_refuses_opens_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1");
    v1_fixture(&path, 5000);
    let before = answers(&Index::open_any_format(&path, 16).unwrap());
    let r = kdsled::migrate::migrate_with(&path, 16, Some(2)).unwrap();
    assert_eq!(r.records, 999 * 2);
    let err = Index::open(&path, 16).err().unwrap().to_string();
    assert!(
        err.contains("interrupted") && err.contains("kdsled migrate"),
        "{err}"
    );
    let r = kdsled::migrate::migrate(&path, 16).unwrap();
    assert!(r.resumed);
    assert_eq!(r.records, 5000 - 999 * 2);
    let index = Index::open(&path, 16).unwrap();
    assert_eq!(index.verify().unwrap().nodes, 5000);
    assert_eq!(answers(&index), before);
}

#[test]
fn a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1");
    v1_fixture(&path, 10);
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
    let fixture = dir.path().join("fixture");
    v1_fixture(&fixture, 40_000);
    let before = answers(&Index::open_any_format(&fixture, 16).unwrap());
    let mut rng = 0x9e37_79b9u64;
    for round in 0..4 {
        let path = dir.path().join(format!("r{round}"));
        copy_dir(&fixture, &path);
        let mut child = Command::new(env!("CARGO_BIN_EXE_kdsled"))
            .args(["migrate", "--db", path.to_str().unwrap()])
            .spawn()
            .unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(rng % 120));
        let _ = child.kill(); // SIGKILL, possibly after it finished
        child.wait().unwrap();
        // Either still version 1 (untouched), or mid-way, or done: rerunning finishes it.
        common::proc::kdsled_ok(&["migrate", "--db", path.to_str().unwrap()], "");
        let index = Index::open(&path, 16).unwrap();
        assert_eq!(index.verify().unwrap().nodes, 40_000);
        assert_eq!(answers(&index), before, "round {round}");
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
