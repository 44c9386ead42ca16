#!/usr/bin/env bash
# User-space instructions per `/v1/near` request (1.2 km), counted by callgrind, for
# `kdsled serve` (the shipped binary, bundled cities1000) and the axum floor server
# (`KDSLED_LOAD_SERVE_FLOOR` of benches/http_load.rs), one after the other, with their ratio.
# Unlike req/s on a shared 2-core machine, the count barely moves between runs, so it shows
# changes of a few percent in the request path; it leaves out the kernel's share.
#
#   bash benches/http_callgrind.sh        # SECONDS_PER_RUN=10 by default
#   KDSLED_BIN=/path/to/older/kdsled bash benches/http_callgrind.sh   # another build, same method
#
# Each server runs under valgrind, is warmed over 200 query centres, has its counters zeroed,
# serves wrk -t1 -c4 for the run, and is dumped; instructions / requests is printed.
# Installs valgrind and wrk from Debian's packages if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/support/http.sh
for tool in valgrind wrk; do
  command -v $tool >/dev/null || { apt-get install -y $tool >/dev/null || sudo apt-get install -y $tool >/dev/null; }
done
secs=${SECONDS_PER_RUN:-10}

cargo build --release --bin kdsled
kdsled=${KDSLED_BIN:-./target/release/kdsled}
bench=$(floor_bench)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT

"$kdsled" build --quiet --db "$work/cities" --input data/cities1000.txt.gz >/dev/null
# Every 33rd place as http_wrk.sh takes them, the first 200 (few enough to warm under valgrind).
zcat data/cities1000.txt.gz |
  awk -F'\t' 'NR % 33 == 0 && ++n <= 200 { printf "/v1/near?lon=%s&lat=%s&radius=1200&limit=1000\n", $6, $5 }' >"$work/paths"

# Instructions per request of the server started by "$@" on port $1 (the rest is its command).
per_request() {
  local port=$1
  shift
  valgrind --tool=callgrind --callgrind-out-file="$work/cg-$port" "$@" >"$work/vg-$port.log" 2>&1 &
  local pid=$!
  # Valgrind starts a server several times slower.
  WAIT_TRIES=240 wait_serving "$port"
  wrk -t1 -c4 -d8s -s benches/wrk_paths.lua "http://127.0.0.1:$port" -- "$work/paths" >/dev/null
  callgrind_control -z "$pid" >/dev/null 2>&1
  local n
  n=$(wrk -t1 -c4 -d"${secs}s" -s benches/wrk_paths.lua "http://127.0.0.1:$port" -- "$work/paths" | awk '/requests in/ { print $1 }')
  callgrind_control -d "$pid" >/dev/null 2>&1
  sleep 1
  local ir
  # The zeroed counters' one dump (the file without a suffix is written at exit).
  ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$work/cg-$port.1")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  echo $((ir / n))
}

k=$(per_request 18651 "$kdsled" serve --quiet --db "$work/cities" --addr 127.0.0.1:18651)
f=$(KDSLED_LOAD_SERVE_FLOOR=127.0.0.1:18652 per_request 18652 "$bench")
echo "instructions per /v1/near request at 1.2 km: kdsled $k, axum floor $f, $(awk -v k="$k" -v f="$f" 'BEGIN { printf "%.2f", k / f }')x"
