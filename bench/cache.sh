#!/usr/bin/env bash
# Benchmark of `cache-consistency` rules: KEYS customers in PostgreSQL, each cached as JSON
# in Redis with a TTL, 0.1 % of them stale; trueup checks the rule (rows streamed, keys read
# in pipelines, every field compared, `require-ttl`, no orphan scan) against two baselines
# over the same keys: `redis-cli --pipe` sending every GET at once (how fast Redis hands
# the values out, nothing compared), and a sequential GET loop, one round trip per key,
# as the runbook's `GET customer:12345` does (a small Python client, nothing compared).
# ROUNDS rounds taking turns (medians); then trueup alone at KEYS / 10 to show its memory
# does not grow with the keys. Each trueup run is checked: the findings must be exactly the
# planted stale keys (count, distinct ids, problem, the differing field). Prints a Markdown table.
#
#   bench/cache.sh [KEYS] [ROUNDS]   (defaults: 1000000, 3)
#
# The table: `customers (id BIGINT PRIMARY KEY, email TEXT, name TEXT, balance
# NUMERIC(12,2))` by generate_series; the keys `customer:{id}` with
# `{"id":…,"email":…,"name":…,"balance":…}`, loaded with `redis-cli --pipe`; stale: a
# changed email for every id with id % 1000 = 7. The servers are the throwaway ones of
# scripts/lib (PostgreSQL, Redis without persistence), or BENCH_PG_URL (an admin URL; the
# database is made there, dropped first) and BENCH_REDIS_URL (its database is flushed).
# Needs: cargo, python3, psql, redis-cli, GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

keys=${1:-1000000}
rounds=${2:-3}
for v in "$keys" "$rounds"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "KEYS and ROUNDS must be positive integers, not '$v'" >&2; exit 2; }
done
small=$((keys / 10 > 0 ? keys / 10 : 1))
work=${BENCH_DIR:-bench/.work}/cache
rm -rf "$work" && mkdir -p "$work/project/rules"
work=$(cd "$work" && pwd)

step() { printf '\n==> %s\n' "$*" >&2; }
apt_install() {
  echo "installing $* with apt-get" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
[ -x /usr/bin/time ] || apt_install time
command -v redis-cli >/dev/null || apt_install redis-tools
command -v psql >/dev/null || apt_install postgresql-client

step "building trueup (release)"
cargo build --release -q -p trueup-cli
trueup=${CARGO_TARGET_DIR:-$repo/target}/release/trueup

step "servers"
if [ -n "${BENCH_PG_URL:-}" ]; then
  pg_admin=$BENCH_PG_URL
else
  # shellcheck source=../scripts/lib/postgres.sh
  . scripts/lib/postgres.sh
  start_postgres -c shared_buffers=1GB -c work_mem=64MB
  pg_admin=$TRUEUP_TEST_PG_URL
fi
if [ -n "${BENCH_REDIS_URL:-}" ]; then
  redis_url=$BENCH_REDIS_URL
else
  # shellcheck source=../scripts/lib/redis.sh
  . scripts/lib/redis.sh
  start_redis
  redis_url=$TRUEUP_TEST_REDIS_URL
fi
with_db() { python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$1" "$2"; }
db=$(with_db "$pg_admin" trueup_cache)
pg() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$@"; }
rhost=$(python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).hostname)' "$redis_url")
rport=$(python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).port or 6379)' "$redis_url")
rdb=$(python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).path.strip("/") or "0")' "$redis_url")
rcli() { redis-cli -h "$rhost" -p "$rport" -n "$rdb" "$@"; }

# RESP for every key: SET customer:ID JSON EX 3600 (SETs), or GET customer:ID (GETs).
resp() {
  python3 - "$1" "$2" <<'EOF'
import sys
mode, n = sys.argv[1], int(sys.argv[2])
out = sys.stdout.buffer
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)
chunk = []
for i in range(1, n + 1):
    key = b"customer:%d" % i
    if mode == "set":
        email = b"old%d@example.com" % i if i % 1000 == 7 else b"c%d@example.com" % i
        balance = b"%d.%02d" % ((i % 100000) // 100, i % 100)
        value = b'{"id":%d,"email":"%s","name":"Customer %d","balance":%s}' % (i, email, i, balance)
        chunk.append(cmd(b"SET", key, value, b"EX", b"3600"))
    else:
        chunk.append(cmd(b"GET", key))
    if len(chunk) == 10000:
        out.write(b"".join(chunk)); chunk = []
out.write(b"".join(chunk))
EOF
}

load() {
  local n=$1
  pg "$pg_admin" -c "DROP DATABASE IF EXISTS trueup_cache" -c "CREATE DATABASE trueup_cache"
  pg "$db" -c "CREATE TABLE customers AS SELECT g::bigint AS id, 'c' || g || '@example.com' AS email,
      'Customer ' || g AS name, ((g % 100000) / 100.0)::numeric(12,2) AS balance
      FROM generate_series(1::bigint, $n) AS g" \
    -c "ALTER TABLE customers ADD PRIMARY KEY (id)" -c "VACUUM ANALYZE customers"
  rcli FLUSHDB >/dev/null
  resp set "$n" | rcli --pipe >/dev/null
  resp get "$n" >"$work/gets.resp"
}

printf '%s\n' 'rules = ["rules"]' "" '[sources.shop]' 'url = "${BENCH_PG}"' "" \
  '[sources.cache]' 'url = "${BENCH_REDIS}"' >"$work/project/trueup.toml"
cat >"$work/project/rules/customers.toml" <<'EOF'
[[rule]]
id = "bench.customer-cache"
title = "Cached customers agree"
severity = "high"
source = "cache"
timeout = "30m"
[rule.detector]
kind = "cache-consistency"
key-template = "customer:{id}"
fields = ["email", "name", "balance"]
tolerance = { balance = 0.005 }
require-ttl = true
rows = { source = "shop", table = "customers" }
EOF

# timed NAME OUT COMMAND...: one run under GNU time, appended to $work/times-NAME.
timed() {
  local name=$1 out=$2; shift 2
  /usr/bin/time -f '%e %M %U' -o "$work/time.txt" "$@" >"$out" 2>"$work/stderr.txt" || true
  tail -n 1 "$work/time.txt" >>"$work/times-$name"
}
# The findings' count and their distinct ids, if each is a planted one (stale, id % 1000 = 7,
# only the email differing); else the first that is not: a fast wrong answer cannot pass.
findings() {
  python3 - "$1" <<'PY'
import json, sys
found = json.load(open(sys.argv[1]))["findings"]
for f in found:
    d, i = f["detail"], f["key"].get("id")
    if not (d["problem"] == "stale" and isinstance(i, int) and i % 1000 == 7
            and d["cached"] == '{"email":"old%d@example.com"}' % i):
        print("not planted: " + json.dumps(f)); sys.exit()
print(len(found), len({f["key"]["id"] for f in found}))
PY
}
expect() { [ "$2" = "$3" ] || { echo "$1: $2, expected $3" >&2; cat "$work/stderr.txt" >&2; exit 1; }; }
planted() { echo $(($1 / 1000 + ($1 % 1000 >= 7 ? 1 : 0))); }
run_trueup() {
  BENCH_PG=$db BENCH_REDIS=$redis_url timed "$1" "$work/trueup.json" \
    "$trueup" --quiet --project "$work/project/trueup.toml" check --no-record --format json
  expect "trueup findings ($1)" "$(findings "$work/trueup.json")" "$(planted "$2") $(planted "$2")"
}
run_pipe() {
  timed pipe "$work/pipe.txt" sh -c "rcli() { redis-cli -h '$rhost' -p '$rport' -n '$rdb' \"\$@\"; }; rcli --pipe < '$work/gets.resp'"
  grep -q "replies: $keys" "$work/pipe.txt" || { echo "redis-cli --pipe: $(cat "$work/pipe.txt")" >&2; exit 1; }
}
run_loop() {
  timed loop "$work/loop.txt" python3 - "$rhost" "$rport" "$rdb" "$keys" <<'EOF'
import socket, sys
host, port, db, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socket.create_connection((host, port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
f = s.makefile("rb")
def call(*args):
    s.sendall(b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args]))
    line = f.readline()
    if line.startswith(b"$") and line != b"$-1\r\n":
        f.read(int(line[1:]) + 2)
    return line
call(b"SELECT", db.encode())
found = sum(1 for i in range(1, n + 1) if call(b"GET", b"customer:%d" % i) != b"$-1\r\n")
print(found)
EOF
  expect "sequential GETs" "$(cat "$work/loop.txt")" "$keys"
}

step "$keys customers in PostgreSQL and Redis"
load "$keys"
server=$(pg "$db" -c "SHOW server_version")
redis_version=$(rcli INFO server | sed -n 's/^redis_version:\(.*\)\r$/\1/p')
rm -f "$work"/times-*
step "warm-up, untimed"
run_trueup warm "$keys"
rm -f "$work"/times-*
step "$rounds rounds at $keys keys, taking turns"
for round in $(seq "$rounds"); do
  echo "round $round/$rounds" >&2
  if [ $((round % 2)) = 1 ]; then
    run_trueup trueup "$keys"; run_pipe; run_loop
  else
    run_loop; run_pipe; run_trueup trueup "$keys"
  fi
done

step "trueup at $small keys (memory)"
load "$small"
run_trueup warm-small "$small"
for round in $(seq "$rounds"); do run_trueup small "$small"; done

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }
seconds() { awk '{ print $1 }' "$work/times-$1" | median; }
mib() { awk '{ print $2 }' "$work/times-$1" | median | awk '{ printf "%.1f", $1 / 1024 }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%d", n / s }'; }

echo
echo "PostgreSQL $server, Redis $redis_version, $(nproc) cores; $keys keys ($(planted "$keys") stale);"
echo "medians of $rounds rounds taking turns. Keys/s: keys / wall time. Peak RSS of the client."
echo
echo "| what | keys | wall s | keys/s | peak RSS MiB |"
echo "|---|---|---|---|---|"
t=$(seconds trueup); echo "| trueup check (rows from PostgreSQL, GET + PTTL pipelined, 3 fields compared) | $keys | $t | $(rate "$keys" "$t") | $(mib trueup) |"
t=$(seconds pipe); echo "| redis-cli --pipe, every GET at once (nothing compared) | $keys | $t | $(rate "$keys" "$t") | $(mib pipe) |"
t=$(seconds loop); echo "| sequential GET loop, one round trip a key (Python, nothing compared) | $keys | $t | $(rate "$keys" "$t") | $(mib loop) |"
t=$(seconds small); echo "| trueup check | $small | $t | $(rate "$small" "$t") | $(mib small) |"
