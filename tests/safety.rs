//! Nothing destroys data by accident: `--force` refuses what it cannot prove is a free kdsled
//! index, swaps are crash-safe at every step, killed commands leave nothing behind for good, and
//! damaged files are errors, never panics.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::proc::{call, Served};

fn kdsled_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kdsled"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run kdsled")
}

fn ok(args: &[&str]) -> String {
    common::proc::kdsled_ok(args, "")
}

fn fails(args: &[&str]) -> String {
    let out = kdsled_env(args, &[]);
    assert!(!out.status.success(), "kdsled {args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Runs `args` with the crash point `point`; the process must die there.
fn crash_at(point: &str, args: &[&str]) {
    let out = kdsled_env(args, &[(kdsled::failpoint::ENV, point)]);
    assert!(
        !out.status.success(),
        "{args:?} did not stop at {point}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(point), "{point}: {err}");
}

fn points(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{prefix}{i}\t{}\t{}\tc{}\n",
                (i % 50) as f64 * 0.01,
                (i / 50) as f64 * 0.01,
                i % 3
            )
        })
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// The `points` line of `kdsled info`.
fn count(db: &str) -> u64 {
    let out = ok(&["info", "--db", db]);
    out.lines()
        .find(|l| l.starts_with("points"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no point count in {out}"))
}

/// Entries of an index directory other than the lock, the pointer and the current generation.
fn leftovers(db: &Path) -> Vec<String> {
    let current = std::fs::read_to_string(db.join("CURRENT")).unwrap_or_default();
    common::dir_names(db, |n| n != "LOCK" && n != "CURRENT" && n != current.trim())
}

#[test]
fn force_refuses_a_directory_that_is_not_an_index_and_keeps_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "p.tsv", &points("a", 10));
    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("thesis.txt"), "years of work").unwrap();
    let err = fails(&common::tsv_build(
        mine.to_str().unwrap(),
        &input,
        &["--force"],
    ));
    assert!(err.contains("not a kdsled index"), "{err}");
    assert!(err.contains("thesis.txt"), "{err}");
    assert_eq!(
        std::fs::read_to_string(mine.join("thesis.txt")).unwrap(),
        "years of work"
    );
    // A plain file in the way is refused too.
    let file = write(dir.path(), "a-file", "data");
    let err = fails(&common::tsv_build(&file, &input, &["--force"]));
    assert!(err.contains("not a directory"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");
}

#[test]
fn force_refuses_an_index_a_server_holds_and_the_server_keeps_its_writes() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "p.tsv", &points("a", 20));
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    ok(&common::tsv_build(db, &input, &[]));
    let server = Served::start(&["serve", "--db", db, "--addr", "127.0.0.1:0"]);
    let (st, _) = call(
        "PUT",
        &format!("{}/v1/points/kept", server.base),
        None,
        r#"{"lon": 0.3, "lat": 0.3}"#,
    );
    assert_eq!(st, 201);
    let other = write(dir.path(), "q.tsv", &points("z", 5));
    for args in [
        common::tsv_build(db, &other, &["--force"]),
        vec!["compact", "--db", db],
        vec!["info", "--db", db],
    ] {
        let err = fails(&args);
        assert!(err.contains("in use"), "{args:?}: {err}");
        assert!(err.contains("pid"), "the holder is named: {err}");
    }
    let (st, v) = call("GET", &format!("{}/v1/points/kept", server.base), None, "");
    assert_eq!(st, 200, "{v}");
    drop(server);
    assert_eq!(count(db), 21);
}

#[test]
fn a_crash_at_any_step_of_a_rebuild_leaves_the_old_or_the_new_index() {
    let dir = tempfile::tempdir().unwrap();
    let old = write(dir.path(), "old.tsv", &points("a", 30));
    let new = write(dir.path(), "new.tsv", &points("b", 70));
    let db_path = dir.path().join("db");
    let db = db_path.to_str().unwrap();
    ok(&common::tsv_build(db, &old, &[]));
    let rebuild = common::tsv_build(db, &new, &["--force"]);
    // Before CURRENT moves: the old index, whole; the half-made generation goes at the next open.
    for point in ["build-before-install", "install-before-current"] {
        crash_at(point, &rebuild);
        assert_eq!(count(db), 30, "{point}");
        assert_eq!(leftovers(&db_path), Vec::<String>::new(), "{point}");
    }
    // After it: the new one, and the old generation is removed at the next open.
    crash_at("install-after-current", &rebuild);
    assert_eq!(count(db), 70);
    assert_eq!(leftovers(&db_path), Vec::<String>::new());
    // Compaction goes through the same swap.
    ok(&[
        "delete",
        "--db",
        db,
        "--ids",
        &write(dir.path(), "ids", "b1\nb2\n"),
    ]);
    crash_at("install-before-current", &["compact", "--db", db]);
    assert_eq!(count(db), 68);
    crash_at("install-after-current", &["compact", "--db", db]);
    assert_eq!(count(db), 68);
    ok(&["verify", "--db", db]);
    assert_eq!(leftovers(&db_path), Vec::<String>::new());
}

#[test]
fn a_killed_first_build_leaves_nothing_that_blocks_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "p.tsv", &points("a", 40));
    let db_path = dir.path().join("fresh");
    let db = db_path.to_str().unwrap();
    crash_at("build-before-install", &common::tsv_build(db, &input, &[]));
    let err = fails(&["info", "--db", db]);
    assert!(err.contains("no index"), "{err}");
    // No --force needed: what is there is only a killed build's.
    ok(&common::tsv_build(db, &input, &[]));
    assert_eq!(count(db), 40);
    assert_eq!(leftovers(&db_path), Vec::<String>::new());
}

#[test]
fn a_file_insert_is_all_or_nothing_across_a_crash_and_can_be_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base.tsv", &points("a", 10));
    let more = write(dir.path(), "more.tsv", &points("m", 3000));
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    // Two-point leaves: the insert splits leaves by the thousand, a batch large enough to go
    // through the journal.
    ok(&common::tsv_build(db, &base, &["--leaf-size", "2"]));
    let mut insert = vec!["insert", "--db", db, "--input", &more];
    insert.extend(common::TSV_FLAGS);
    crash_at("journal-before-commit", &insert);
    assert_eq!(count(db), 10);
    ok(&["verify", "--db", db]);
    crash_at("journal-after-commit", &insert);
    // The committed journal is replayed on open: all of it.
    assert_eq!(count(db), 3010);
    ok(&["verify", "--db", db]);
    // A clean rerun of the same file now says every id exists, naming the first.
    let err = fails(&insert);
    assert!(err.contains("already in the index"), "{err}");
    // And from scratch, the same command succeeds after a crash that lost it.
    let db2 = dir.path().join("db2");
    let db2 = db2.to_str().unwrap();
    ok(&common::tsv_build(db2, &base, &["--leaf-size", "2"]));
    let mut insert2 = vec!["insert", "--db", db2, "--input", &more];
    insert2.extend(common::TSV_FLAGS);
    crash_at("journal-before-commit", &insert2);
    ok(&insert2);
    assert_eq!(count(db2), 3010);
}

#[test]
fn an_incomplete_sled_snapshot_does_not_brick_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "p.tsv", &points("a", 25));
    let db = dir.path().join("db");
    ok(&common::tsv_build(db.to_str().unwrap(), &input, &[]));
    // What a failed snapshot write on a full disk leaves.
    let sled = common::sled_dir(&db);
    std::fs::write(sled.join("snap.7FFFFFFFFFFFFFFF.generating"), b"").unwrap();
    assert_eq!(count(db.to_str().unwrap()), 25);
    assert!(!sled.join("snap.7FFFFFFFFFFFFFFF.generating").exists());
}

#[test]
fn a_truncated_database_file_is_an_error_not_a_panic() {
    for percent in [1u64, 25, 50] {
        let dir = tempfile::tempdir().unwrap();
        let input = write(dir.path(), "p.tsv", &points("a", 3000));
        let db = dir.path().join("db");
        let db_s = db.to_str().unwrap();
        ok(&common::tsv_build(db_s, &input, &[]));
        let file = common::sled_dir(&db).join("db");
        let len = std::fs::metadata(&file).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.set_len(len * percent / 100).unwrap();
        drop(f);
        for args in [
            vec!["info", "--db", db_s],
            vec!["verify", "--db", db_s],
            vec![
                "near", "--db", db_s, "--lon", "0.1", "--lat", "0.1", "--radius", "5000",
            ],
        ] {
            let out = kdsled_env(&args, &[]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!err.contains("panicked"), "{percent}% {args:?}: {err}");
            assert_ne!(out.status.code(), Some(101), "{percent}%: {err}");
            // Either the lost tail is simply gone (sled recovers a prefix) or it is reported.
            if !out.status.success() {
                assert!(err.contains("corrupt") || err.contains("damaged"), "{err}");
            }
        }
    }
}

#[test]
fn an_unbalanced_csv_quote_is_an_error_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "p.csv",
        "id,lon,lat,c\n1,1.0,2.0,ok\n2,1.5,2.5,\"open\n3,1.0,2.0,x\n",
    );
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    for extra in [&[][..], &["--skip-invalid"][..]] {
        let mut args = vec![
            "build", "--db", db, "--input", &input, "--format", "csv", "--id", "id", "--lon",
            "lon", "--lat", "lat",
        ];
        args.extend(extra);
        let err = fails(&args);
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("quote"), "{err}");
        assert!(!Path::new(db).join("CURRENT").exists());
    }
}

#[test]
fn a_replica_whose_primary_is_unreachable_listens_and_says_it_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("replica");
    let port = common::proc::free_port();
    let server = Served::start(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
        "--follow",
        &format!("http://127.0.0.1:{port}"),
    ]);
    let (st, _) = call("GET", &format!("{}/readyz", server.base), None, "");
    assert_eq!(st, 503);
    let (st, _) = call("GET", &format!("{}/healthz", server.base), None, "");
    assert_eq!(st, 200);
    let (st, v) = call(
        "GET",
        &format!("{}/v1/near?lon=0&lat=0&radius=10", server.base),
        None,
        "",
    );
    assert_eq!(st, 503, "{v}");
    assert!(
        v["error"].as_str().unwrap_or("").contains("snapshot"),
        "{v}"
    );
}

#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "p.tsv", &points("a", 5));
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    ok(&common::tsv_build(db, &input, &[]));
    let mut child = Command::new(env!("CARGO_BIN_EXE_kdsled"))
        .args([
            "near", "--db", db, "--lon", "0", "--lat", "0", "--radius", "1e7",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -0`: the reader goes away before the command writes.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
}

#[test]
fn tiles_over_a_box_across_the_antimeridian_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "p.tsv", "a\t179.5\t-17\tx\nb\t-179.5\t-18\ty\n");
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    ok(&common::tsv_build(db, &input, &[]));
    let out = dir.path().join("tiles");
    let said = kdsled_env(
        &[
            "tiles",
            "--db",
            db,
            "--bbox",
            "178,-20,-178,-15",
            "--zoom",
            "3",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        said.status.success(),
        "{}",
        String::from_utf8_lossy(&said.stderr)
    );
    // Zoom 3 has 8 columns: the box takes the last one and the first one.
    assert!(out.join("3/7").is_dir() && out.join("3/0").is_dir());
}
