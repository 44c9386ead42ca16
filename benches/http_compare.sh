#!/usr/bin/env bash
# Side by side: kdsled serve vs Flask + scipy cKDTree under gunicorn (2 workers), same machine,
# same queries, same load generator (benches/http_load.rs, 16 connections).
#
#   bash benches/http_compare.sh            # KDSLED_LOAD_SECONDS=10 by default
#
# Installs flask, scipy, numpy and gunicorn with pip if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/support/http.sh
python3 -c 'import flask, scipy, numpy, gunicorn' 2>/dev/null || pip install --quiet flask scipy numpy gunicorn

cargo build --release --bin kdsled
cargo bench --no-run --bench http_load
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

./target/release/kdsled build --db "$work/cities" --input data/cities1000.txt.gz >/dev/null
./target/release/kdsled serve --db "$work/cities" --addr 127.0.0.1:18601 2>"$work/kdsled.log" &
gunicorn -w 2 -b 127.0.0.1:18602 --chdir benches/baseline flask_ckdtree:app 2>"$work/gunicorn.log" &
wait_serving 18601 18602

run() { KDSLED_LOAD_FLOOR=0 KDSLED_LOAD_TARGET="http://127.0.0.1:$1" cargo bench --bench http_load 2>/dev/null | tail -n 3; }
echo "== kdsled"; k=$(run 18601); echo "$k"
echo "== flask + cKDTree (gunicorn, 2 workers)"; f=$(run 18602); echo "$f"
echo "== ratio (kdsled req/s / flask req/s)"
paste <(echo "$k" | tail -n 2) <(echo "$f" | tail -n 2) | awk '{printf "radius %s m: %.1fx\n", $1, $2 / $7}'
