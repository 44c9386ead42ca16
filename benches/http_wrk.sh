#!/usr/bin/env bash
# The issue's own measurement: wrk -t2 -c16 on the same 2 cores against `kdsled serve` (the
# shipped binary, bundled cities1000) and the axum floor server (parses the same query, answers a
# fixed JSON; `KDSLED_LOAD_SERVE_FLOOR` of benches/http_load.rs), taking turns at 1.2 km (the
# floor first in odd rounds, kdsled first in even ones, so neither always runs on the other's
# heels), then kdsled at 25 km; prints each round with each server's CPU per request (user and
# kernel, from /proc) and the median ratios against the floor.
#
#   bash benches/http_wrk.sh        # ROUNDS=5 SECONDS_PER_RUN=5 by default
#   CENTRES=1 bash benches/http_wrk.sh   # only the first centre: every request's data stays hot
#
# Installs wrk from Debian's packages if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/support/http.sh
command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null || sudo apt-get install -y wrk >/dev/null; }
rounds=${ROUNDS:-5}
secs=${SECONDS_PER_RUN:-5}

cargo build --release --bin kdsled
bench=$(floor_bench)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT

./target/release/kdsled build --quiet --db "$work/cities" --input data/cities1000.txt.gz >/dev/null
./target/release/kdsled serve --quiet --db "$work/cities" --addr 127.0.0.1:18611 2>"$work/kdsled.log" &
kdsled_pid=$!
KDSLED_LOAD_SERVE_FLOOR=127.0.0.1:18612 "$bench" >"$work/floor.log" 2>&1 &
floor_pid=$!
wait_serving 18611 18612

# Every 33rd place of the bundled data as a query centre (about 4,200), as http_load picks
# random places.
zcat data/cities1000.txt.gz | awk -F'\t' -v n="${CENTRES:-0}" 'NR % 33 == 0 && (n == 0 || ++k <= n) { print $6, $5 }' >"$work/centres"
paths() { awk -v r="$1" '{ printf "/v1/near?lon=%s&lat=%s&radius=%s&limit=1000\n", $1, $2, r }' "$work/centres" >"$work/paths-$1"; }
paths 1200
paths 25000

# Requests/s of a wrk run against port $1 on the paths at radius $2.
rps() { wrk -t2 -c16 -d"${3:-$secs}s" -s benches/wrk_paths.lua "http://127.0.0.1:$1" -- "$work/paths-$2" | awk '/^Requests\/sec/ { print $2 }'; }

# CPU time (user + kernel, clock ticks) process $1 has used so far.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# "REQ/S CPU_US": a run of server $2 (port $1) at 1.2 km and its CPU microseconds per request.
measured() {
  local before after r
  before=$(ticks "$2")
  r=$(rps "$1" 1200)
  after=$(ticks "$2")
  echo "$r $(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v r="$r" -v s="$secs" 'BEGIN { printf "%.1f", t * 1e6 / hz / (r * s) }')"
}

# Warm kdsled's caches over every query first.
rps 18611 1200 3 >/dev/null
rps 18611 25000 3 >/dev/null
ratios=()
cpu_ratios=()
floors=()
for round in $(seq 1 "$rounds"); do
  if ((round % 2)); then
    read -r f fcpu < <(measured 18612 "$floor_pid")
    read -r k kcpu < <(measured 18611 "$kdsled_pid")
  else
    read -r k kcpu < <(measured 18611 "$kdsled_pid")
    read -r f fcpu < <(measured 18612 "$floor_pid")
  fi
  ratio=$(awk -v k="$k" -v f="$f" 'BEGIN { printf "%.2f", k / f }')
  echo "round $round: floor $f req/s ($fcpu µs CPU a request), kdsled 1.2 km $k req/s ($kcpu µs): ${ratio}x"
  ratios+=("$ratio")
  cpu_ratios+=("$(awk -v k="$kcpu" -v f="$fcpu" 'BEGIN { printf "%.2f", k / f }')")
  floors+=("$f")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
floor=$(median "${floors[@]}")
echo "kdsled at 1.2 km / axum floor: $(median "${ratios[@]}")x the req/s, $(median "${cpu_ratios[@]}")x the CPU per request (medians of $rounds rounds)"
wide=$(rps 18611 25000)
echo "kdsled at 25 km: $wide req/s, $(awk -v k="$wide" -v f="$floor" 'BEGIN { printf "%.2f", k / f }')x the floor's median (the issue's: 9,156-11,453 against 50,416, 0.18-0.23x)"
