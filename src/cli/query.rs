//! `kdsled near`, `nearest` and `within`.

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use kdsled::output::{AnswerView, Shape};
use kdsled::query::Answer;
use kdsled::{BBox, Index, Metric};
use rayon::prelude::*;

use super::args::{NearArgs, NearestArgs, OutputArg, PointArgs, StatsArgs, WithinArgs};
use super::remote::{Remote, Source};

/// The query location from --lon/--lat or --point.
fn given_location(at: &PointArgs) -> anyhow::Result<Vec<f64>> {
    Ok(match (at.lon, at.lat, &at.point) {
        (Some(lon), Some(lat), None) => vec![lon, lat],
        (None, None, Some(p)) => p.clone(),
        _ => bail!("give the location as --lon X --lat Y, or --point X,Y,..."),
    })
}

/// The query location, checked against the index.
fn location(index: &Index, at: &PointArgs) -> anyhow::Result<Vec<f64>> {
    let p = given_location(at)?;
    index.check_point(&p)?;
    Ok(p)
}

/// One TSV line: id, coordinates, and the distance when there is one.
fn write_tsv_row(
    out: &mut impl Write,
    id: impl std::fmt::Display,
    coords: &[String],
    distance: Option<f64>,
) -> std::io::Result<()> {
    match distance {
        Some(d) => writeln!(out, "{id}\t{}\t{d:.3}", coords.join("\t")),
        None => writeln!(out, "{id}\t{}", coords.join("\t")),
    }
}

/// What a TSV answer leaves out, on stderr.
fn tsv_summary(count: impl std::fmt::Display, shown: usize, nodes_read: impl std::fmt::Display) {
    eprintln!("{count} points ({shown} shown), {nodes_read} nodes read");
}

fn print(
    index: &Index,
    answer: &Answer,
    output: OutputArg,
    with_distance: bool,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match output {
        OutputArg::Json => {
            let view = AnswerView::load(&index.snapshot(), answer, with_distance, Shape::Json)?;
            serde_json::to_writer_pretty(&mut out, &view)?;
            writeln!(out)?;
        }
        OutputArg::Geojson => {
            let view = AnswerView::load(&index.snapshot(), answer, with_distance, Shape::GeoJson)?;
            out.write_all(&view.to_bytes())?;
            writeln!(out)?;
        }
        OutputArg::Tsv => {
            // Ranked as the JSON answers are (and as a server ranks them).
            let view = AnswerView::load(&index.snapshot(), answer, with_distance, Shape::Json)?;
            for (h, p) in view.rows() {
                let coords: Vec<String> = h.coords.iter().map(|c| c.to_string()).collect();
                write_tsv_row(
                    &mut out,
                    &p.id,
                    &coords,
                    with_distance.then_some(h.distance),
                )?;
            }
            tsv_summary(answer.count, answer.hits.len(), answer.nodes_read);
        }
    }
    out.flush()?;
    Ok(())
}

/// `near`: one radius query, or a batch from --queries.
pub fn near(a: NearArgs) -> anyhow::Result<ExitCode> {
    let index = match a.db.open()? {
        Source::Local(index) => *index,
        Source::Remote(r) => {
            if a.queries.is_some() {
                bail!("--queries reads the index itself: give --db, not --server");
            }
            let mut q = remote_location(&a.at)?;
            q.push(("radius", a.radius.to_string()));
            q.push(("limit", a.limit.to_string()));
            return remote_answer(&r, "/v1/near", q, a.output, true);
        }
    };
    if let Some(file) = &a.queries {
        if !a.counts {
            bail!("--queries prints counts only: add --counts");
        }
        return batch_counts(&index, file, a.radius, a.threads);
    }
    let center = location(&index, &a.at)?;
    let answer = index.radius(&center, a.radius, a.limit)?;
    print(&index, &answer, a.output, true)?;
    Ok(ExitCode::SUCCESS)
}

/// `nearest`.
pub fn nearest(a: NearestArgs) -> anyhow::Result<ExitCode> {
    let index = match a.db.open()? {
        Source::Local(index) => *index,
        Source::Remote(r) => {
            let mut q = remote_location(&a.at)?;
            q.push(("k", a.k.to_string()));
            if let Some(d) = a.max_distance {
                q.push(("max_distance", d.to_string()));
            }
            return remote_answer(&r, "/v1/nearest", q, a.output, true);
        }
    };
    let center = location(&index, &a.at)?;
    let answer = index.nearest(&center, a.k, a.max_distance)?;
    print(&index, &answer, a.output, true)?;
    Ok(ExitCode::SUCCESS)
}

/// `within`.
pub fn within(a: WithinArgs) -> anyhow::Result<ExitCode> {
    let index = match a.db.open()? {
        Source::Local(index) => *index,
        Source::Remote(r) => {
            let bbox: Vec<String> = a.bbox.iter().map(f64::to_string).collect();
            let q = vec![("bbox", bbox.join(",")), ("limit", a.limit.to_string())];
            return remote_answer(&r, "/v1/within", q, a.output, false);
        }
    };
    let dims = index.meta().dims as usize;
    if a.bbox.len() != 2 * dims {
        bail!(
            "--bbox takes {} numbers (the minimum corner, then the maximum), got {}",
            2 * dims,
            a.bbox.len()
        );
    }
    let bbox = BBox::new(index.meta().metric, &a.bbox[..dims], &a.bbox[dims..])?;
    let answer = index.within(&bbox, a.limit)?;
    print(&index, &answer, a.output, false)?;
    Ok(ExitCode::SUCCESS)
}

/// The query location as the HTTP API takes it: `lon` and `lat`, or `point=x,y,...`.
fn remote_location(at: &PointArgs) -> anyhow::Result<Vec<(&'static str, String)>> {
    let p = given_location(at)?;
    Ok(if at.point.is_some() {
        let p: Vec<String> = p.iter().map(f64::to_string).collect();
        vec![("point", p.join(","))]
    } else {
        vec![("lon", p[0].to_string()), ("lat", p[1].to_string())]
    })
}

/// Asks `path` of the server and prints its answer as the local command would print its own.
fn remote_answer(
    r: &Remote,
    path: &str,
    mut q: Vec<(&str, String)>,
    output: OutputArg,
    with_distance: bool,
) -> anyhow::Result<ExitCode> {
    if output == OutputArg::Geojson {
        q.push(("format", "geojson".to_string()));
    }
    let body = r.get(path, &q)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match output {
        OutputArg::Geojson => out.write_all(&body)?,
        OutputArg::Json => {
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            serde_json::to_writer_pretty(&mut out, &v)?;
        }
        OutputArg::Tsv => {
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            let results = v["results"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            for p in results {
                let id = match &p["id"] {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let coords: Vec<String> = match p.get("point").and_then(|c| c.as_array()) {
                    Some(c) => c.iter().map(|x| x.to_string()).collect(),
                    None => vec![p["lon"].to_string(), p["lat"].to_string()],
                };
                let distance = p.get("distance_m").or_else(|| p.get("distance"));
                let distance = distance.and_then(serde_json::Value::as_f64);
                write_tsv_row(&mut out, id, &coords, distance.filter(|_| with_distance))?;
            }
            tsv_summary(&v["count"], results.len(), &v["nodes_read"]);
            out.flush()?;
            return Ok(ExitCode::SUCCESS);
        }
    }
    writeln!(out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `--where FIELD:VALUE`, for the commands that filter.
pub(super) fn where_filter(w: Option<&str>) -> anyhow::Result<Option<kdsled::query::Filter>> {
    w.map(|w| {
        kdsled::query::Filter::parse(w).with_context(|| format!("--where {w:?} is not FIELD:VALUE"))
    })
    .transpose()
}

/// `stats`: counts and sums per value of an attribute, as the HTTP `/v1/stats` answers them.
pub fn stats(a: StatsArgs) -> anyhow::Result<ExitCode> {
    let index = Index::open(&a.db.db, a.db.cache_mb)?;
    let center = location(&index, &a.at)?;
    let filter = where_filter(a.filter.as_deref())?;
    let answer = index.snapshot().filtered(filter).stats(
        &center,
        a.radius,
        &a.group_by,
        a.sum.as_deref(),
    )?;
    let json = kdsled::output::stats_json(&answer, &a.group_by, a.sum.as_deref());
    println!("{json}");
    Ok(ExitCode::SUCCESS)
}

/// Parses one `qid<TAB>c1<TAB>c2...` line.
fn parse_query(line: &str, lineno: usize, dims: usize) -> anyhow::Result<(String, Vec<f64>)> {
    let mut fields = line.split('\t');
    let qid = fields.next().unwrap_or_default().to_string();
    let coords = fields
        .map(|f| f.trim().parse::<f64>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("queries line {lineno}: a coordinate is not a number"))?;
    if coords.len() != dims {
        bail!(
            "queries line {lineno}: {} coordinates after the id, the index has {dims}",
            coords.len()
        );
    }
    Ok((qid, coords))
}

/// Counts per query line, printed in input order, with throughput on stderr.
fn batch_counts(
    index: &Index,
    file: &Path,
    radius: f64,
    threads: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let meta = index.meta();
    let dims = meta.dims as usize;
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let started = Instant::now();
    let (mut queries, mut nodes, mut reads) = (0u64, 0u64, 0u64);
    let mut chunk: Vec<(String, Vec<f64>)> = Vec::with_capacity(CHUNK);
    let mut lines = reader.lines().enumerate().peekable();
    loop {
        chunk.clear();
        while chunk.len() < CHUNK {
            let Some((i, line)) = lines.next() else { break };
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let (qid, p) = parse_query(&line, i + 1, dims)?;
            index
                .check_point(&p)
                .with_context(|| format!("queries line {}", i + 1))?;
            chunk.push((qid, p));
        }
        if chunk.is_empty() {
            break;
        }
        let counts: Vec<kdsled::query::Answer> = pool.install(|| {
            chunk
                .par_iter()
                .map(|(_, p)| index.count_within(p, radius))
                .collect::<kdsled::Result<Vec<_>>>()
        })?;
        for ((qid, _), a) in chunk.iter().zip(&counts) {
            writeln!(out, "{qid}\t{}", a.count)?;
            queries += 1;
            nodes += a.nodes_visited;
            reads += a.nodes_read;
        }
    }
    out.flush()?;
    let secs = started.elapsed().as_secs_f64();
    let unit = if meta.metric == Metric::Haversine {
        " m"
    } else {
        ""
    };
    eprintln!(
        "{queries} queries at radius {radius}{unit} in {secs:.3} s: {:.0} queries/s, {:.1} nodes visited per query, {:.1} read from storage",
        queries as f64 / secs.max(1e-9),
        nodes as f64 / (queries.max(1)) as f64,
        reads as f64 / (queries.max(1)) as f64
    );
    Ok(ExitCode::SUCCESS)
}

/// Queries handed to the thread pool at a time: enough to keep every core busy, few enough to
/// keep memory flat however long the file.
const CHUNK: usize = 16 * 1024;
