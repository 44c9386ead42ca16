//! What a list answer costs in process: the walk, and the walk plus its JSON, on cities1000 with
//! all its GeoNames attributes.
//!
//! `cargo bench --bench answers` runs criterion for each radius, then prints a table of
//! nanoseconds per query over the same 4096 query points (best of `KDSLED_ANSWER_PASSES`
//! passes, default 20): the walk alone (a count), the walk plus the answer as the server sends it
//! (payload JSON spliced from the per-leaf cache), and the walk plus the answer built by decoding
//! the payloads and serializing them (the `properties=` path, and what every answer did before
//! splicing), with the ratio of the two answers measured in this process; and the spliced
//! answer with only two attributes (`properties=name,population`).

mod support;

// The allocator the server ships with: allocation is a large share of an answer.
#[global_allocator]
static GLOBAL: kdsled::Allocator = kdsled::Allocator;

use std::time::Instant;

use criterion::{black_box, Criterion};
use kdsled::output::{AnswerView, Shape, SplicedAnswer};
use kdsled::Index;
use support::*;

const LIMIT: usize = 1001;

fn spliced(index: &Index, q: &[f64; 2], r: f64, keep: Option<&[String]>) -> usize {
    let snap = index.snapshot();
    let a = snap.radius(&q[..], r, LIMIT).expect("radius");
    SplicedAnswer::load(&snap, &a, true, Shape::Json)
        .expect("payload JSON")
        .only_properties(keep)
        .to_bytes()
        .len()
}

fn decoded(index: &Index, q: &[f64; 2], r: f64) -> usize {
    let snap = index.snapshot();
    let a = snap.radius(&q[..], r, LIMIT).expect("radius");
    AnswerView::load(&snap, &a, true, Shape::Json)
        .expect("payloads")
        .to_bytes()
        .len()
}

fn counted(index: &Index, q: &[f64; 2], r: f64) -> usize {
    index
        .snapshot()
        .count_within(&q[..], r)
        .expect("count")
        .count as usize
}

/// Best nanoseconds per query of `passes` passes of `f` over `qs`.
fn best_ns(passes: usize, qs: &[[f64; 2]], mut f: impl FnMut(&[f64; 2]) -> usize) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..passes.max(1) {
        let t = Instant::now();
        let mut sum = 0usize;
        for q in qs {
            sum = sum.wrapping_add(f(q));
        }
        black_box(sum);
        best = best.min(t.elapsed().as_secs_f64() * 1e9 / qs.len().max(1) as f64);
    }
    best
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("idx");
    build_cities(&path);
    let index = Index::open(&path, 256).expect("open");
    let qs = queries(&cities(), 4096, 42);

    let mut c = Criterion::default().configure_from_args();
    for r in [1_200.0, 25_000.0] {
        let mut i = 0usize;
        c.bench_function(&format!("answers/spliced/{r}m"), |b| {
            b.iter(|| {
                i = (i + 1) % qs.len();
                spliced(&index, &qs[i], r, None)
            })
        });
    }
    c.final_summary();

    let passes = std::env::var("KDSLED_ANSWER_PASSES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    println!(
        "{:>9} {:>6} {:>9} {:>11} {:>11} {:>8} {:>11}",
        "radius m", "hits", "walk ns", "spliced ns", "decoded ns", "ratio", "picked ns"
    );
    // `properties=name,population`.
    let keep = ["name".to_string(), "population".to_string()];
    for r in [1_200.0, 25_000.0] {
        let hits = qs.iter().map(|q| counted(&index, q, r)).sum::<usize>() / qs.len();
        let walk = best_ns(passes, &qs, |q| counted(&index, q, r));
        let s = best_ns(passes, &qs, |q| spliced(&index, q, r, None));
        let d = best_ns(passes, &qs, |q| decoded(&index, q, r));
        let p = best_ns(passes, &qs, |q| spliced(&index, q, r, Some(&keep)));
        println!(
            "{r:>9} {hits:>6} {walk:>9.0} {s:>11.0} {d:>11.0} {:>7.2}x {p:>11.0}",
            d / s
        );
    }
}
