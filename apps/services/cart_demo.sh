#!/usr/bin/env bash
# The README's first command: the cart service embedded on one node (state in ./data), a
# short scripted session over HTTP with curl, and a look inside with the console.
#
# Usage: apps/services/cart_demo.sh [BUILD_DIR]   (default: build)
set -euo pipefail
bin=${1:-build}/bin
port=${CART_PORT:-8080}
console=${CART_CONSOLE_PORT:-4710}

mkdir -p ./data
"$bin/cart-service" --data-dir ./data --http.port "$port" --inspect --node.port "$console" \
  2> ./data/cart-service.log &
service=$!
trap 'kill "$service" 2> /dev/null || true' EXIT
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/carts/alice" && break
  sleep 0.1
done

# show COMMAND...: prints the command as one would type it, runs it.
show() {
  local line="\$" a
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./:=-]+$ ]]; then line+=" $a"; else line+=" '$a'"; fi
  done
  echo "$line"
  "$@"
  echo
}
# A retried checkout (same Idempotency-Key) gets the same order, and orders once.
order=alice-order-$(date +%s)
show curl -s "http://127.0.0.1:$port/carts/alice"
show curl -s -X POST "http://127.0.0.1:$port/carts/alice/items" -d '{"sku":"A1","qty":2}'
show curl -s -X PUT "http://127.0.0.1:$port/carts/alice/items/B2" -d '{"qty":1}'
show curl -s -X POST "http://127.0.0.1:$port/carts/alice/items" -d '{"sku":"A1","qty":0}'
show curl -s -X POST "http://127.0.0.1:$port/carts/alice/checkout" -d '' -H "Idempotency-Key: $order"
show curl -s -X POST "http://127.0.0.1:$port/carts/alice/checkout" -d '' -H "Idempotency-Key: $order"
show curl -s "http://127.0.0.1:$port/carts/alice"
echo "\$ $bin/eddy console 127.0.0.1:$console -c 'state carts alice'"
"$bin/eddy" console "127.0.0.1:$console" -c "state carts alice"
echo
echo "\$ $bin/eddy console 127.0.0.1:$console -c stats"
"$bin/eddy" console "127.0.0.1:$console" -c stats
kill -TERM "$service"
wait "$service"
trap - EXIT
echo
echo "the last orders in ./data/cart-service.jsonl (the service's log: ./data/cart-service.log):"
tail -n 3 ./data/cart-service.jsonl
