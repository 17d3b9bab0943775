#!/usr/bin/env bash
# Load on the cart service with wrk (Debian's `wrk`): cart updates (POST items, each
# durable in the ingress log, applied and committed by its partition before the answer),
# cart reads (GET, through the same path), and as the baseline in the same run the
# service's /health answered by the HTTP layer alone. Prints req/s and p50/p99 latency of
# each, and the ratio of each to the baseline.
#
# Usage: apps/bench/cart_bench.sh CART_SERVICE_BIN [RUNS] [SECONDS] [CONNECTIONS]
# Environment: CART_ARGS, more options of the service; CART_PACED=1 also measures updates
# paced at half the rate the unpaced updates reached in the same run (each connection waits
# between its requests; wrk is closed-loop, so the rate reached is printed).
set -euo pipefail
cart=${1:?usage: cart_bench.sh CART_SERVICE_BIN [RUNS] [SECONDS] [CONNECTIONS]}
runs=${2:-2}
seconds=${3:-5}
conns=${4:-16}
command -v wrk > /dev/null || { echo "cart_bench.sh: needs wrk (apt-get install wrk)" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/eddy-cart-bench.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$cart" --data-dir "$work/data" --http.port "$port" --http.max-pending 4096 ${CART_ARGS:-} 2> "$work/log" &
pid=$!
trap 'kill "$pid" 2> /dev/null; wait "$pid" 2> /dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/health" && break
  sleep 0.1
done

cat > "$work/post.lua" << 'LUA'
local n = 0
-- CART_DELAY_MS: the pause of a connection between two requests (paced runs).
local pause = tonumber(os.getenv("CART_DELAY_MS") or "0")
if pause > 0 then
  delay = function()
    return pause
  end
end
request = function()
  n = n + 1
  local body = '{"sku":"S' .. (n % 50) .. '","qty":1}'
  return wrk.format("POST", "/carts/u" .. (n % 1000) .. "/items",
                    {["Content-Type"] = "application/json"}, body)
end
LUA
cat > "$work/get.lua" << 'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/carts/u" .. (n % 1000))
end
LUA

# measure NAME [wrk args...]: one wrk run; prints "NAME req/s p50 p99".
measure() {
  local name=$1
  shift
  wrk -t2 -c"$conns" -d"${seconds}s" --latency "$@" > "$work/wrk.out"
  python3 - "$name" "$work/wrk.out" << 'PY'
import re, sys
text = open(sys.argv[2]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
def pct(p):
    m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s)" % p, text)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print("%-8s %10.0f req/s  p50 %7.2f ms  p99 %7.2f ms%s" % (sys.argv[1], rps, pct(50), pct(99),
      "  (%s non-2xx)" % errors.group(1) if errors else ""))
PY
}

base="http://127.0.0.1:$port"
for r in $(seq "$runs"); do
  echo "run $r ($conns connections, ${seconds} s each):"
  measure health "$base/health" | tee "$work/h"
  measure update -s "$work/post.lua" "$base" | tee "$work/u"
  measure read -s "$work/get.lua" "$base" | tee "$work/g"
  if [ "${CART_PACED:-0}" = 1 ]; then
    # Half the update rate: each of the connections sends one request every
    # conns / (rate / 2) seconds, its own answer time included.
    half_delay=$(python3 -c "import sys; r=float(open(sys.argv[1]).read().split()[1]); print(max(1, round($conns * 2000 / r)))" "$work/u")
    CART_DELAY_MS=$half_delay measure paced -s "$work/post.lua" "$base" | tee "$work/p"
  fi
  python3 - "$work/h" "$work/u" "$work/g" << 'PY'
import sys
rate = lambda f: float(open(f).read().split()[1])
h = rate(sys.argv[1])
print("ratio to /health: update %.3f, read %.3f" % (rate(sys.argv[2]) / h, rate(sys.argv[3]) / h))
PY
done
