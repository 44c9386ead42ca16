# Shell helpers the HTTP benchmark scripts source (benches/http_*.sh).

# Waits until every port given answers `/v1/near`, half a second between tries, at most
# WAIT_TRIES (default 120) tries a port.
wait_serving() {
  local port
  for port in "$@"; do
    for _ in $(seq 1 "${WAIT_TRIES:-120}"); do
      curl -sf "http://127.0.0.1:$port/v1/near?lon=0&lat=0&radius=1" >/dev/null && break
      sleep 0.5
    done
  done
}

# Builds benches/http_load and prints its binary's path: with KDSLED_LOAD_SERVE_FLOOR=ADDR it
# serves the axum floor server.
floor_bench() {
  cargo bench --no-run --bench http_load 2>&1 | grep -o 'target/release/deps/http_load-[0-9a-f]*' | head -n 1
}
