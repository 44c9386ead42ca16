#!/usr/bin/env bash
# End to end: partition builds on Spark (local mode), kdsled import, and a check that radius
# answers equal those of a plain `kdsled build` of the same points.
#
#   bash examples/spark/run.sh            # uses data/cities1000.txt.gz
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -c 'import pyspark' 2>/dev/null || pip install --quiet pyspark
cargo build --release --bin kdsled
K="$PWD/target/release/kdsled"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 examples/spark/partition_build.py --kdsled "$K" --input data/cities1000.txt.gz --out "$work/flat" --zoom 4
"$K" import --db "$work/imported" --roots "$work/flat/roots" --branches "$work/flat/branches"
"$K" verify --db "$work/imported"

# The same points, built plainly.
zcat data/cities1000.txt.gz | awk -F'\t' 'BEGIN{OFS="\t"} {print $1, $6, $5, $2, $8, $15}' > "$work/points.tsv"
"$K" build --db "$work/plain" --input "$work/points.tsv" --format tsv --no-header --id 0 --lon 1 --lat 2 >/dev/null
awk -F'\t' 'NR % 50 == 1 {print $1 "\t" $2 "\t" $3}' "$work/points.tsv" > "$work/queries.tsv"
for r in 804.672 25000 100000; do
  "$K" near --db "$work/imported" --queries "$work/queries.tsv" --radius "$r" --counts > "$work/a.txt" 2>/dev/null
  "$K" near --db "$work/plain" --queries "$work/queries.tsv" --radius "$r" --counts > "$work/b.txt" 2>/dev/null
  cmp "$work/a.txt" "$work/b.txt"
  echo "radius $r m: $(wc -l < "$work/a.txt") queries, identical counts"
done
echo "ok: the Spark-built index answers like a plain build"
