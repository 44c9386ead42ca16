//! The flat-node interchange round trip without Spark: partition the points by quadkey, run
//! `kdsled partition-build` per partition, `kdsled import` the nodes, and compare answers with a
//! plain build. Then inputs that break the format.

mod common;

use std::path::Path;

use kdsled::tiles::mercator::{x_of, y_of};
use kdsled::{Index, Metric};

fn kdsled(args: &[&str], stdin: Option<&str>) -> String {
    common::proc::kdsled_ok(args, stdin.unwrap_or(""))
}

#[test]
fn partition_build_and_import_answer_like_a_plain_build() {
    let dir = tempfile::tempdir().unwrap();
    // 6,000 points over Europe and a few on the antimeridian, with duplicates of one location.
    let mut lines = Vec::new();
    for i in 0..6000u64 {
        let a = (i * 7919 % 10007) as f64 / 10007.0;
        let b = (i * 104_729 % 9973) as f64 / 9973.0;
        let (lon, lat) = if i % 50 == 0 {
            (179.0 + a, -16.0 - b)
        } else if i % 97 == 0 {
            (2.35, 48.85)
        } else {
            (-10.0 + 40.0 * a, 35.0 + 25.0 * b)
        };
        lines.push(format!("p{i}\t{lon}\t{lat}\tc{}", i % 4));
    }
    let all = dir.path().join("all.tsv");
    std::fs::write(&all, lines.join("\n") + "\n").unwrap();

    // Partition by zoom-3 quadkey, as a Spark job would key its groups.
    let mut parts: std::collections::BTreeMap<(u32, u32), Vec<String>> = Default::default();
    for l in &lines {
        let f: Vec<&str> = l.split('\t').collect();
        let (lon, lat): (f64, f64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
        let key = (
            x_of(lon, 8.0).min(7.999) as u32,
            y_of(lat, 8.0).min(7.999) as u32,
        );
        parts.entry(key).or_default().push(l.clone());
    }
    assert!(parts.len() >= 4, "{} partitions", parts.len());
    let roots = dir.path().join("roots");
    let branches = dir.path().join("branches");
    std::fs::create_dir_all(&roots).unwrap();
    std::fs::create_dir_all(&branches).unwrap();
    let flags = common::TSV_FLAGS;
    for (n, (_, pl)) in parts.iter().enumerate() {
        let mut args = vec!["partition-build"];
        args.extend(&flags);
        let out = kdsled(&args, Some(&(pl.join("\n") + "\n")));
        let (r, b): (Vec<&str>, Vec<&str>) =
            out.lines().partition(|l| l.split('\t').nth(1) == Some("1"));
        assert_eq!(r.len(), 1);
        assert_eq!(r.len() + b.len(), pl.len());
        std::fs::write(roots.join(format!("part-{n:05}")), r.join("\n") + "\n").unwrap();
        std::fs::write(branches.join(format!("part-{n:05}")), b.join("\n") + "\n").unwrap();
    }
    std::fs::write(roots.join("_SUCCESS"), "").unwrap();

    let imported = dir.path().join("imported");
    let out = common::proc::kdsled_status(
        &[
            "import",
            "--db",
            imported.to_str().unwrap(),
            "--roots",
            roots.to_str().unwrap(),
            "--branches",
            branches.to_str().unwrap(),
        ],
        "",
    );
    assert!(out.contains("imported 6000 points"), "{out}");
    let plain = dir.path().join("plain");
    let mut args = vec![
        "build",
        "--db",
        plain.to_str().unwrap(),
        "--input",
        all.to_str().unwrap(),
    ];
    args.extend(&flags);
    kdsled(&args, None);
    assert!(
        common::proc::kdsled_status(&["verify", "--db", imported.to_str().unwrap()], "")
            .starts_with("ok: 6000 points")
    );

    let queries: String = lines
        .iter()
        .step_by(37)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            format!("{}\t{}\t{}\n", f[0], f[1], f[2])
        })
        .collect();
    let q = dir.path().join("q.tsv");
    std::fs::write(&q, queries).unwrap();
    for r in ["804.672", "25000", "300000"] {
        let a = kdsled(
            &[
                "near",
                "--db",
                imported.to_str().unwrap(),
                "--queries",
                q.to_str().unwrap(),
                "--radius",
                r,
                "--counts",
            ],
            None,
        );
        let b = kdsled(
            &[
                "near",
                "--db",
                plain.to_str().unwrap(),
                "--queries",
                q.to_str().unwrap(),
                "--radius",
                r,
                "--counts",
            ],
            None,
        );
        assert_eq!(a, b, "radius {r}");
    }
    // Attributes come through.
    let v: serde_json::Value = serde_json::from_str(&kdsled(
        &[
            "near",
            "--db",
            imported.to_str().unwrap(),
            "--lon",
            "2.35",
            "--lat",
            "48.85",
            "--radius",
            "1",
        ],
        None,
    ))
    .unwrap();
    assert!(v["count"].as_u64().unwrap() >= 2);
    assert!(v["results"][0]["properties"]["col3"]
        .as_str()
        .unwrap()
        .starts_with('c'));
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Imports into `db` (cache 8 MiB, lon/lat, no progress shown).
fn import(
    db: &std::path::Path,
    roots: &std::path::Path,
    branches: &std::path::Path,
    force: bool,
) -> kdsled::Result<kdsled::interchange::ImportSummary> {
    kdsled::interchange::import(
        db,
        roots,
        branches,
        Metric::Haversine,
        8,
        force,
        &kdsled::index::NoProgress,
    )
}

#[test]
fn broken_inputs_are_rejected_and_nothing_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    // An existing index that must survive every failed import.
    let ok_roots = write(dir.path(), "ok_roots", "a\t1\t0\tb\t\t0\t0\n");
    let ok_branches = write(dir.path(), "ok_br", "b\t0\t1\t\t\t1\t1\n");
    import(&db, &ok_roots, &ok_branches, false).unwrap();
    let err = import(&db, &ok_roots, &ok_branches, false).unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");

    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "dangling",
            "r\t1\t0\tx\t\t0\t0\n",
            "",
            "x, which is not in the input",
        ),
        (
            "cycle",
            "r\t1\t0\t\t\t0\t0\n",
            "c\t0\t0\td\t\t1\t1\nd\t0\t0\tc\t\t2\t2\n",
            "under no root",
        ),
        (
            "shared child",
            "r\t1\t0\tc\t\t0\t0\ns\t1\t0\tc\t\t5\t5\n",
            "c\t0\t0\t\t\t6\t6\n",
            "child of both",
        ),
        (
            "root twice",
            "r\t1\t0\t\t\t0\t0\nr\t1\t0\t\t\t0\t0\n",
            "",
            "appears twice",
        ),
        (
            "broken split",
            "r\t1\t0\ta\t\t0\t0\n",
            "a\t0\t0\t\t\t-1\t0\n",
            "k-d invariant",
        ),
        (
            "root in branches",
            "r\t1\t0\t\t\t0\t0\n",
            "a\t1\t0\t\t\t1\t1\n",
            "is_root 1 in the branches",
        ),
        (
            "bad coordinate",
            "r\t1\t0\t\t\t0\tnorth\n",
            "",
            "not a finite number",
        ),
        ("latitude", "r\t1\t0\t\t\t0\t95\n", "", "latitude"),
    ];
    for (name, roots, branches, needle) in cases {
        let r = write(dir.path(), &format!("{name}-roots"), roots);
        let b = write(dir.path(), &format!("{name}-branches"), branches);
        let err = import(&db, &r, &b, true).unwrap_err().to_string();
        assert!(err.contains(needle), "{name}: {err}");
        let index = Index::open(&db, 8).unwrap();
        assert_eq!(index.meta().count, 2, "{name} touched the index");
        drop(index);
    }
    let left = common::dir_names(dir.path(), |n| n.contains("building"));
    assert!(left.is_empty(), "{left:?}");
    // Partitions whose regions overlap are fine: the points are laid out again into leaves.
    let r = write(
        dir.path(),
        "overlap-roots",
        "r\t1\t0\ta\tb\t0\t0\ns\t1\t0\tc\td\t0.5\t0.5\n",
    );
    let b = write(
        dir.path(),
        "overlap-branches",
        "a\t0\t0\t\t\t1\t1\nb\t0\t0\t\t\t-1\t-1\nc\t0\t0\t\t\t1.5\t-1\nd\t0\t0\t\t\t-0.5\t1\n",
    );
    let s = import(&db, &r, &b, true).unwrap();
    assert_eq!((s.points, s.partitions), (6, 2));
    let index = Index::open(&db, 8).unwrap();
    assert_eq!(index.verify().unwrap().points, 6);
    let near = index.nearest(&[1.5, -1.0], 1, None).unwrap();
    assert_eq!(near.hits[0].coords[..], [1.5, -1.0]);
}
