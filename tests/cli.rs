//! The `kdsled` binary end to end: build from files, query, inspect, and fail clearly.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn kdsled(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kdsled"))
        .args(args)
        .output()
        .expect("run kdsled")
}

fn ok(args: &[&str]) -> String {
    common::proc::kdsled_ok(args, "")
}

fn status(args: &[&str]) -> String {
    common::proc::kdsled_status(args, "")
}

fn fails(args: &[&str]) -> String {
    common::proc::kdsled_fails(args)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

const POINTS: &str = "a\t2.3488\t48.85341\tbakery\n\
b\t2.36073\t48.81471\tbakery\n\
c\t2.3417\t48.81294\tbutcher\n\
d\t-0.12574\t51.50853\tbakery\n\
e\t179.95\t0.0\tisland\n\
f\t-179.95\t0.0\tisland\n";

#[test]
fn the_documented_tsv_example_builds_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "points.tsv", POINTS);
    let db = dir.path().join("x");
    let db = db.to_str().unwrap();
    let out = status(&common::tsv_build(db, &input, &[]));
    assert!(out.contains("6 points"), "{out}");
    // Status goes to stderr; stdout carries only data, and --quiet silences the status.
    let dir2 = tempfile::tempdir().unwrap();
    let db2 = dir2.path().join("q");
    let db2s = db2.to_str().unwrap();
    assert_eq!(status(&common::tsv_build(db2s, &input, &["--quiet"])), "");
    assert_eq!(ok(&["verify", "--db", db2s]), "");
    assert_eq!(status(&["verify", "--db", db2s, "-q"]), "");

    let near = ok(&[
        "near", "--db", db, "--lon", "2.35", "--lat", "48.85", "--radius", "5000",
    ]);
    let v: serde_json::Value = serde_json::from_str(&near).unwrap();
    assert_eq!(v["count"], 3);
    assert_eq!(v["results"][0]["id"], "a");
    assert_eq!(v["results"][0]["properties"]["col3"], "bakery");
    assert!(v["nodes_read"].as_u64().unwrap() >= 1);
    let d: Vec<f64> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["distance_m"].as_f64().unwrap())
        .collect();
    assert!(d.windows(2).all(|w| w[0] <= w[1]), "{d:?}");

    // The antimeridian, from both sides, in GeoJSON.
    let gj = ok(&[
        "near", "--db", db, "--lon", "179.9", "--lat", "0", "--radius", "20000", "--output",
        "geojson",
    ]);
    let v: serde_json::Value = serde_json::from_str(&gj).unwrap();
    assert_eq!(v["type"], "FeatureCollection");
    let ids: Vec<&str> = v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["e", "f"]);
    assert_eq!(v["features"][1]["geometry"]["coordinates"][0], -179.95);

    let nearest = ok(&[
        "nearest", "--db", db, "--lon", "0", "--lat", "51", "-k", "2", "--output", "tsv",
    ]);
    let first: Vec<&str> = nearest
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(first, vec!["d", "a"]);

    let within = ok(&["within", "--db", db, "--bbox", "179,-1,-179,1"]);
    let v: serde_json::Value = serde_json::from_str(&within).unwrap();
    assert_eq!(v["count"], 2);

    let info = ok(&["info", "--db", db]);
    assert!(
        info.contains("points          6") && info.contains("haversine"),
        "{info}"
    );
    assert!(status(&["verify", "--db", db]).starts_with("ok: 6 points"));
}

#[test]
fn batch_counts_keep_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "points.tsv", POINTS);
    let db = dir.path().join("x");
    let db = db.to_str().unwrap();
    ok(&common::tsv_build(db, &input, &[]));
    let q = write(
        dir.path(),
        "q.tsv",
        "q1\t2.35\t48.85\nq2\t0\t0\n\nq3\t179.9\t0\n",
    );
    let out = kdsled(&[
        "near",
        "--db",
        db,
        "--queries",
        &q,
        "--radius",
        "20000",
        "--counts",
    ]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "q1\t3\nq2\t0\nq3\t2\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("queries/s"));

    let bad = write(dir.path(), "bad.tsv", "q1\t2.35\t48.85\nq2\t0\tnorth\n");
    let err = fails(&[
        "near",
        "--db",
        db,
        "--queries",
        &bad,
        "--radius",
        "1",
        "--counts",
    ]);
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn bad_rows_name_their_line_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x");
    let db = db.to_str().unwrap();
    let flags = common::TSV_FLAGS;
    let cases = [
        ("a\t1\t2\nb\t1\tx\n", "line 2", "latitude"),
        ("a\t1\t2\nb\t1\t2\nc\t200\t2\n", "line 3", "longitude 200"),
        ("a\t1\t91\n", "line 1", "latitude 91"),
        ("a\t1\t2\nb\tNaN\t2\n", "line 2", "not a finite"),
        ("a\t1\t2\nb\t1\n", "line 2", "missing"),
        ("a\t1\t2\nb\t1\tinf\n", "line 2", "finite"),
    ];
    for (text, line, reason) in cases {
        let input = write(dir.path(), "bad.tsv", text);
        let mut args = vec!["build", "--db", db, "--input", &input];
        args.extend(flags);
        let err = fails(&args);
        assert!(
            err.contains(line) && err.contains(reason),
            "{text:?}: {err}"
        );
        assert!(!Path::new(db).exists());
    }
    let input = write(dir.path(), "dup.tsv", "a\t1\t2\nb\t1\t2\na\t3\t4\n");
    let mut args = vec!["build", "--db", db, "--input", &input];
    args.extend(flags);
    let err = fails(&args);
    assert!(
        err.contains("\"a\"") && err.contains("line 1") && err.contains("line 3"),
        "{err}"
    );
    // No temporary directory is left beside the target either.
    let left = common::dir_names(dir.path(), |n| n.contains("building"));
    assert!(left.is_empty(), "{left:?}");

    // --skip-invalid skips and counts.
    let input = write(
        dir.path(),
        "mixed.tsv",
        "a\t1\t2\nb\t1\tx\nc\t3\t4\nd\t500\t0\n",
    );
    let mut args = vec!["build", "--db", db, "--input", &input, "--skip-invalid"];
    args.extend(flags);
    let out = kdsled(&args);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("skipped 2 invalid rows"), "{stderr}");
    assert!(stderr.contains("2 points"), "{stderr}");

    // An existing index is not replaced without --force.
    args.retain(|a| *a != "--skip-invalid");
    let input2 = write(dir.path(), "good.tsv", "z\t1\t2\n");
    let args2 = common::tsv_build(db, &input2, &[]);
    assert!(fails(&args2).contains("--force"));
    let mut forced = args2.to_vec();
    forced.push("--force");
    assert!(status(&forced).contains("1 points"));
}

#[test]
fn an_empty_input_builds_an_empty_index() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "empty.csv", "id,lon,lat\n");
    let db = dir.path().join("e");
    let db = db.to_str().unwrap();
    ok(&[
        "build", "--db", db, "--input", &input, "--format", "csv", "--id", "id", "--lon", "lon",
        "--lat", "lat",
    ]);
    assert!(ok(&["info", "--db", db]).contains("points          0"));
    assert!(status(&["verify", "--db", db]).starts_with("ok: 0 points"));
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "near", "--db", db, "--lon", "0", "--lat", "0", "--radius", "1e6",
    ]))
    .unwrap();
    assert_eq!(v["count"], 0);
}

#[test]
fn euclidean_from_csv_with_named_columns() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "stars.csv",
        "name,x,y,t,mag\nsol,0,0,0,4.8\nvega,\"7.7\",1,2,0.03\nrigel,260,1,1,-7\n",
    );
    let db = dir.path().join("s");
    let db = db.to_str().unwrap();
    ok(&[
        "build", "--db", db, "--input", &input, "--format", "csv", "--id", "name", "--coords",
        "x,y,t",
    ]);
    assert!(ok(&["info", "--db", db]).contains("euclidean"));
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "near", "--db", db, "--point", "0,0,0", "--radius", "10",
    ]))
    .unwrap();
    assert_eq!(v["count"], 2);
    assert_eq!(v["results"][1]["id"], "vega");
    assert_eq!(v["results"][1]["properties"]["mag"], "0.03");
    let err = fails(&["near", "--db", db, "--point", "0,0", "--radius", "10"]);
    assert!(err.contains("3 dimensions"), "{err}");
    let err = fails(&[
        "near", "--db", db, "--lon", "0", "--lat", "0", "--radius", "1",
    ]);
    assert!(err.contains("dimensions"), "{err}");
}

#[test]
fn verify_fails_on_a_corrupt_record() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "points.tsv", POINTS);
    let db = dir.path().join("x");
    ok(&common::tsv_build(db.to_str().unwrap(), &input, &[]));
    {
        use kdsled::store::{codec, SledStore, Space, Store, WriteBatch};
        let s = SledStore::open(&common::sled_dir(&db), 8).unwrap();
        let mut b = WriteBatch::new();
        b.put(Space::Nodes, codec::node_key(1), b"garbage".to_vec());
        s.apply(&b).unwrap();
        s.flush().unwrap();
    }
    let out = kdsled(&["verify", "--db", db.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("node 1"), "{err}");
    let err = fails(&[
        "near",
        "--db",
        db.to_str().unwrap(),
        "--lon",
        "0",
        "--lat",
        "0",
        "--radius",
        "2e7",
    ]);
    assert!(err.contains("corrupt"), "{err}");
    assert!(fails(&["info", "--db", "/nonexistent/kdsled"]).contains("no index at"));
}

#[test]
fn insert_and_delete_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "points.tsv", POINTS);
    let db = dir.path().join("x");
    let db = db.to_str().unwrap();
    let flags = common::TSV_FLAGS;
    let mut build = vec!["build", "--db", db, "--input", &input];
    build.extend(flags);
    ok(&build);

    let more = write(
        dir.path(),
        "more.tsv",
        "g\t2.35\t48.86\tbakery\nh\t2.351\t48.861\tcafe\n",
    );
    let mut ins = vec!["insert", "--db", db, "--input", &more];
    ins.extend(flags);
    assert!(status(&ins).contains("wrote 2 points"));
    // The same ids again fail without --upsert, naming the line, and write nothing.
    let err = fails(&ins);
    assert!(err.contains("line 1") && err.contains("--upsert"), "{err}");
    let moved = write(dir.path(), "moved.tsv", "g\t-0.12\t51.5\tbakery\n");
    let mut up = vec!["insert", "--db", db, "--input", &moved, "--upsert"];
    up.extend(flags);
    ok(&up);
    let bad = write(dir.path(), "bad.tsv", "i\t1\t2\nj\t1\t95\n");
    let mut ins_bad = vec!["insert", "--db", db, "--input", &bad];
    ins_bad.extend(flags);
    let err = fails(&ins_bad);
    assert!(err.contains("line 2") && err.contains("latitude"), "{err}");

    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "near", "--db", db, "--lon", "2.35", "--lat", "48.86", "--radius", "500",
    ]))
    .unwrap();
    let ids: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["h"]);

    let ids = write(dir.path(), "ids.txt", "a\nb\nnope\n\n");
    let out = status(&["delete", "--db", db, "--ids", &ids]);
    assert!(
        out.contains("deleted 2 points (1 ids were not in the index); the index has 6"),
        "{out}"
    );
    assert!(status(&["verify", "--db", db]).starts_with("ok: 6 points"));
}

#[test]
fn a_build_past_its_memory_budget_answers_like_one_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    let mut s = 11u64;
    let mut next = || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    for i in 0..25_000 {
        let (lon, lat) = (next() * 40.0 - 20.0, next() * 40.0 + 30.0);
        text.push_str(&format!("p{i}\t{lon}\t{lat}\tplace number {i}\n"));
    }
    let input = write(dir.path(), "points.tsv", &text);
    let whole = dir.path().join("whole");
    let parts = dir.path().join("parts");
    ok(&common::tsv_build(whole.to_str().unwrap(), &input, &[]));
    let out = status(&common::tsv_build(
        parts.to_str().unwrap(),
        &input,
        &["--memory-mb", "1"],
    ));
    assert!(!out.contains(" 1 partition,"), "{out}");
    assert!(out.contains("partitions"), "{out}");
    let mut queries = String::new();
    for i in 0..200 {
        queries.push_str(&format!(
            "q{i}\t{}\t{}\n",
            next() * 40.0 - 20.0,
            next() * 40.0 + 30.0
        ));
    }
    let q = write(dir.path(), "q.tsv", &queries);
    for radius in ["1000", "25000", "300000"] {
        let counts = |db: &Path| {
            ok(&[
                "near",
                "--db",
                db.to_str().unwrap(),
                "--queries",
                &q,
                "--radius",
                radius,
                "--counts",
            ])
        };
        let (a, b) = (counts(&whole), counts(&parts));
        assert_eq!(a, b, "radius {radius}");
        assert_eq!(a.lines().count(), 200);
    }
    ok(&["verify", "--db", parts.to_str().unwrap()]);
    let leftovers = common::dir_names(dir.path(), |n| n.starts_with('.'));
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn stats_counts_per_value_and_nearest_takes_a_long_k() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "points.tsv", POINTS);
    let db = dir.path().join("x");
    let db = db.to_str().unwrap();
    ok(&common::tsv_build(db, &input, &[]));
    let at = ["--lon", "2.35", "--lat", "48.85", "--radius", "5000"];
    let mut args = vec!["stats", "--db", db, "--group-by", "col3"];
    args.extend(at);
    let v: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    assert_eq!(v["count"], 3);
    assert_eq!(
        v["groups"][0],
        serde_json::json!({"value": "bakery", "count": 2})
    );
    assert_eq!(
        v["groups"][1],
        serde_json::json!({"value": "butcher", "count": 1})
    );
    args.extend(["--where", "col3:butcher"]);
    let v: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    assert_eq!(v["count"], 1);
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "nearest", "--db", db, "--lon", "2.35", "--lat", "48.85", "--k", "2",
    ]))
    .unwrap();
    assert_eq!(v["count"], 2);
    let err = fails(&["within", "--db", db]);
    assert!(err.contains("--bbox"), "{err}");
}

#[test]
fn headers_naming_lon_and_lat_need_no_flags_and_headerless_columns_can_be_named() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "auto.csv",
        "ID,name,lng,Latitude\nx1,Paris,2.35,48.85\nx2,London,-0.12,51.5\n",
    );
    let db = dir.path().join("auto");
    let db = db.to_str().unwrap();
    ok(&["build", "--db", db, "--input", &input, "--format", "csv"]);
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "near", "--db", db, "--lon", "2.35", "--lat", "48.85", "--radius", "10",
    ]))
    .unwrap();
    assert_eq!(v["results"][0]["id"], "x1");
    assert_eq!(
        v["results"][0]["properties"],
        serde_json::json!({"name": "Paris"})
    );

    let input = write(dir.path(), "cols.tsv", "a\t1\t2\tbakery\n");
    let db = dir.path().join("cols");
    let db = db.to_str().unwrap();
    ok(&[
        "build",
        "--db",
        db,
        "--input",
        &input,
        "--format",
        "tsv",
        "--no-header",
        "--columns",
        "id,lon,lat,kind",
        "--id",
        "id",
        "--lon",
        "lon",
        "--lat",
        "lat",
    ]);
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "near", "--db", db, "--lon", "1", "--lat", "2", "--radius", "10",
    ]))
    .unwrap();
    assert_eq!(
        v["results"][0]["properties"],
        serde_json::json!({"kind": "bakery"})
    );
    // Without names to find them by, the columns must be named.
    let err = fails(&[
        "build",
        "--db",
        db,
        "--input",
        &input,
        "--format",
        "tsv",
        "--no-header",
        "--force",
    ]);
    assert!(err.contains("--columns"), "{err}");
}

#[test]
fn completions_and_a_manual_page_are_printed() {
    let bash = ok(&["completions", "bash"]);
    assert!(
        bash.contains("_kdsled()") && bash.contains("--radius"),
        "{bash}"
    );
    let zsh = ok(&["completions", "zsh"]);
    assert!(zsh.contains("#compdef kdsled"));
    let man = ok(&["man"]);
    assert!(
        man.contains(".TH kdsled 1") && man.contains("serve"),
        "{man}"
    );
}

/// Runs `kdsled args` on a pseudo-terminal `cols` wide (util-linux `script`), returning what
/// the terminal showed, one entry per redrawn frame or line.
fn on_a_terminal(args: &[&str], cols: u32) -> Vec<String> {
    let cmd = format!(
        "stty rows 24 cols {cols}; exec {} {}",
        env!("CARGO_BIN_EXE_kdsled"),
        args.join(" ")
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("util-linux `script` runs a command on a pseudo-terminal");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).replace("\x1b[2K", "\r");
    text.split(['\r', '\n'])
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn long_writes_and_verify_draw_bars_on_a_terminal_and_nothing_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = String::new();
    let mut ids = String::new();
    for i in 0..6000 {
        let (lon, lat) = ((i % 360) as f64 - 179.5, ((i / 360) as f64) * 5.0 - 80.0);
        rows.push_str(&format!("p{i}\t{lon}\t{lat}\tx\n"));
        ids.push_str(&format!("p{i}\n"));
    }
    let input = write(dir.path(), "points.tsv", &rows);
    let ids = write(dir.path(), "ids.txt", &ids);
    let db = dir.path().join("x");
    let db = db.to_str().unwrap();
    let empty = write(dir.path(), "empty.tsv", "");
    ok(&common::tsv_build(db, &empty, &[]));
    let mut ins = vec!["insert", "--db", db, "--input", &input];
    ins.extend(common::TSV_FLAGS);
    let frames = on_a_terminal(&ins, 60);
    let bars: Vec<&String> = frames
        .iter()
        .filter(|f| f.starts_with("applying ["))
        .collect();
    assert!(!bars.is_empty(), "no bar drawn: {frames:?}");
    // The bar's frames fit the terminal (the status line after them may wrap like any text).
    for f in frames.iter().filter(|f| !f.starts_with("wrote ")) {
        assert!(
            f.chars().count() <= 60,
            "a bar wider than the terminal: {f:?}"
        );
    }
    // Whole steps per second, not indicatif's four decimals.
    for b in &bars {
        let rate = b.split_whitespace().find(|w| w.ends_with("/s")).unwrap();
        assert!(!rate.contains('.'), "{b:?}");
    }
    assert!(
        frames.iter().any(|f| f.starts_with("wrote 6000 points")),
        "{frames:?}"
    );
    let frames = on_a_terminal(&["delete", "--db", db, "--ids", &ids], 60);
    assert!(
        frames.iter().any(|f| f.starts_with("applying [")),
        "{frames:?}"
    );
    let frames = on_a_terminal(&["verify", "--db", db], 60);
    assert!(
        frames.iter().any(|f| f.starts_with("ok: 0 points")),
        "{frames:?}"
    );
    // Off a terminal: the status line alone.
    ok(&ins);
    let out = status(&["delete", "--db", db, "--ids", &ids]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with("deleted 6000 points"), "{out}");
}

#[test]
fn server_urls_are_checked_before_anything_is_asked() {
    let err = fails(&["info", "--server", "https://example.org"]);
    assert!(err.contains("plain HTTP only"), "{err}");
    let err = fails(&["verify", "--server", "example.org:8080"]);
    assert!(err.contains("http:// URL"), "{err}");
    // Neither a directory nor a server.
    let out = Command::new(env!("CARGO_BIN_EXE_kdsled"))
        .arg("info")
        .env_remove("KDSLED_DB")
        .env_remove("KDSLED_SERVER")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--db") && err.contains("--server"), "{err}");
    // A server that is not there is named.
    let port = common::proc::free_port();
    let err = fails(&[
        "near",
        "--server",
        &format!("http://127.0.0.1:{port}"),
        "--lon",
        "0",
        "--lat",
        "0",
        "--radius",
        "10",
    ]);
    assert!(
        err.contains(&format!("cannot reach http://127.0.0.1:{port}/v1/near")),
        "{err}"
    );
}
