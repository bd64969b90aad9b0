#!/usr/bin/env bash
# Benchmark of `reconcile` rules: two PostgreSQL databases with the same ROWS-row table,
# 0.1 % of its rows changed on the right, compared by trueup (join mode and bisect mode) and
# by reladiff (PyPI `reladiff`, its default bisection: checksums of key ranges in each
# database), side by side, ROUNDS rounds taking turns (medians); then MariaDB against
# PostgreSQL at MYSQL_ROWS rows with trueup, in both modes. Each run is checked: the differences found must be the
# planted ones. Prints a Markdown table.
#
#   bench/reconcile.sh [ROWS] [ROUNDS] [MYSQL_ROWS]   (defaults: 10000000, 3, 1000000)
#
# The table: `items (id BIGINT PRIMARY KEY, qty BIGINT, price NUMERIC(12,2), name TEXT,
# created_at TIMESTAMP)`, made by generate_series in each database (the sequence engine on
# MariaDB) from the same formulas; then on the right `price + 1` for every id with
# id % 1000 = 7: ROWS / 1000 differing rows, spread over the whole key range. The servers
# are the throwaway ones of scripts/lib (PostgreSQL with the settings below; MariaDB with
# its own), or those of BENCH_PG_URL / BENCH_MYSQL_URL (admin URLs; the databases are made
# there, dropped first). Needs: cargo, python3 and pip (reladiff, psycopg2-binary are
# pip-installed if missing), GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

rows=${1:-10000000}
rounds=${2:-3}
mysql_rows=${3:-1000000}
for v in "$rows" "$rounds" "$mysql_rows"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "ROWS, ROUNDS and MYSQL_ROWS must be positive integers, not '$v'" >&2; exit 2; }
done
work=${BENCH_DIR:-bench/.work}/reconcile
rm -rf "$work" && mkdir -p "$work/join/rules" "$work/bisect/rules"
work=$(cd "$work" && pwd)

step() { printf '\n==> %s\n' "$*" >&2; }
apt_install() {
  echo "installing $* with apt-get" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
[ -x /usr/bin/time ] || apt_install time
command -v reladiff >/dev/null || pip install -q reladiff psycopg2-binary >&2

step "building trueup (release)"
cargo build --release -q -p trueup-cli
trueup=${CARGO_TARGET_DIR:-$repo/target}/release/trueup

step "servers"
if [ -n "${BENCH_PG_URL:-}" ]; then
  pg_admin=$BENCH_PG_URL
else
  # shellcheck source=../scripts/lib/postgres.sh
  . scripts/lib/postgres.sh
  start_postgres -c shared_buffers=2GB -c work_mem=64MB -c maintenance_work_mem=1GB \
    -c max_wal_size=8GB -c effective_cache_size=8GB
  pg_admin=$TRUEUP_TEST_PG_URL
fi
if [ -n "${BENCH_MYSQL_URL:-}" ]; then
  my_admin=$BENCH_MYSQL_URL
else
  # shellcheck source=../scripts/lib/mariadb.sh
  . scripts/lib/mariadb.sh
  start_mariadb --innodb-buffer-pool-size=2G
  my_admin=$TRUEUP_TEST_MYSQL_URL
fi
command -v psql >/dev/null || apt_install postgresql-client
with_db() { python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$1" "$2"; }
left=$(with_db "$pg_admin" trueup_rc_left)
right=$(with_db "$pg_admin" trueup_rc_right)
my_left=$(with_db "$my_admin" trueup_rc_left)
pg() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$@"; }
my() {
  python3 - "$my_admin" "$1" <<'EOF'
import subprocess, sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
subprocess.run(["mariadb", "--no-defaults", "-h", p.hostname, "-P", str(p.port), "-u", p.username,
                "-p" + u.unquote(p.password), "-e", sys.argv[2]], check=True)
EOF
}

# The same rows everywhere: id, then columns computed from it.
pg_table() {
  pg "$1" -c "DROP TABLE IF EXISTS items" -c "CREATE TABLE items AS SELECT g::bigint AS id,
      (g * 7919) % 100000 AS qty, round((g % 10000) / 100.0, 2)::numeric(12,2) AS price,
      md5(g::text) AS name, timestamp '2026-01-01' + g * interval '1 second' AS created_at
      FROM generate_series(1::bigint, $2) AS g" \
    -c "ALTER TABLE items ADD PRIMARY KEY (id)" -c "VACUUM ANALYZE items"
}
plant() { pg "$1" -c "UPDATE items SET price = price + 1 WHERE id % 1000 = 7" -c "VACUUM ANALYZE items"; }

step "two PostgreSQL databases of $rows rows"
pg "$pg_admin" -c "DROP DATABASE IF EXISTS trueup_rc_left" -c "CREATE DATABASE trueup_rc_left" \
  -c "DROP DATABASE IF EXISTS trueup_rc_right" -c "CREATE DATABASE trueup_rc_right"
pg_table "$left" "$rows" & pg_table "$right" "$rows"; wait
plant "$right"
planted=$((rows / 1000 + (rows % 1000 >= 7 ? 1 : 0)))
server=$(pg "$left" -c "SHOW server_version")

# One project per mode, the same rule but for its `mode`.
for mode in join bisect; do
  printf '%s\n' 'rules = ["rules"]' "" '[sources.left]' 'url = "${BENCH_LEFT_URL}"' "" \
    '[sources.right]' 'url = "${BENCH_RIGHT_URL}"' >"$work/$mode/trueup.toml"
  cat >"$work/$mode/rules/items.toml" <<EOF
[[rule]]
id = "bench.items-agree"
title = "Items agree"
severity = "high"
source = "left"
timeout = "30m"
[rule.detector]
kind = "reconcile"
mode = "$mode"
columns = ["qty", "price", "name", "created_at"]
left = { table = "items" }
right = { source = "right", table = "items" }
EOF
done

# timed NAME OUT COMMAND...: one run under GNU time, appended to $work/times-NAME.
timed() {
  local name=$1 out=$2; shift 2
  /usr/bin/time -f '%e %M %U' -o "$work/time.txt" "$@" >"$out" 2>"$work/stderr.txt" || true
  tail -n 1 "$work/time.txt" >>"$work/times-$name"
}
findings() { python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["findings"]))' "$1"; }
expect() { [ "$2" = "$3" ] || { echo "$1: $2, expected $3" >&2; cat "$work/stderr.txt" >&2; exit 1; }; }
# run_trueup MODE LEFT RIGHT NAME PLANTED
run_trueup() {
  BENCH_LEFT_URL=$2 BENCH_RIGHT_URL=$3 timed "$4" "$work/trueup.json" \
    "$trueup" --quiet --project "$work/$1/trueup.toml" check --no-record --format json
  expect "trueup findings ($4)" "$(findings "$work/trueup.json")" "$5"
}
run_reladiff() {
  # reladiff knows the scheme as postgresql://.
  timed reladiff "$work/reladiff.txt" reladiff "postgresql://${left#*://}" items \
    "postgresql://${right#*://}" items -k id -c qty -c price -c name -c created_at
  # One `-` and one `+` line per differing row.
  expect "reladiff differences" "$(grep -c '^+' "$work/reladiff.txt" || true)" "$planted"
}

rm -f "$work"/times-*
step "warm-up, untimed"
run_trueup join "$left" "$right" warm "$planted"
run_trueup bisect "$left" "$right" warm "$planted"
rm -f "$work"/times-*
step "$rounds rounds at $rows rows, taking turns"
for round in $(seq "$rounds"); do
  echo "round $round/$rounds" >&2
  case $((round % 3)) in
    1) run_trueup join "$left" "$right" trueup "$planted"; run_trueup bisect "$left" "$right" bisect "$planted"; run_reladiff ;;
    2) run_reladiff; run_trueup join "$left" "$right" trueup "$planted"; run_trueup bisect "$left" "$right" bisect "$planted" ;;
    0) run_trueup bisect "$left" "$right" bisect "$planted"; run_reladiff; run_trueup join "$left" "$right" trueup "$planted" ;;
  esac
done

step "MariaDB against PostgreSQL at $mysql_rows rows"
my "DROP DATABASE IF EXISTS trueup_rc_left; CREATE DATABASE trueup_rc_left;
    USE trueup_rc_left;
    CREATE TABLE trueup_rc_left.items (id BIGINT PRIMARY KEY, qty BIGINT, price DECIMAL(12,2),
      name VARCHAR(32), created_at DATETIME) ENGINE=InnoDB;
    INSERT INTO trueup_rc_left.items SELECT seq, (seq * 7919) % 100000,
      ROUND((seq % 10000) / 100.0, 2), MD5(seq), TIMESTAMP '2026-01-01 00:00:00' + INTERVAL seq SECOND
      FROM seq_1_to_$mysql_rows;
    ANALYZE TABLE trueup_rc_left.items;" >/dev/null
pg "$pg_admin" -c "DROP DATABASE IF EXISTS trueup_rc_small" -c "CREATE DATABASE trueup_rc_small"
small=$(with_db "$pg_admin" trueup_rc_small)
pg_table "$small" "$mysql_rows"
plant "$small"
small_planted=$((mysql_rows / 1000 + (mysql_rows % 1000 >= 7 ? 1 : 0)))
mariadb_version=$(my "SELECT VERSION()" | tail -n 1)
run_trueup join "$my_left" "$small" mysql-warm "$small_planted"
run_trueup join "$my_left" "$small" mysql "$small_planted"
run_trueup bisect "$my_left" "$small" mysql-bisect-warm "$small_planted"
run_trueup bisect "$my_left" "$small" mysql-bisect "$small_planted"

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }
seconds() { awk '{ print $1 }' "$work/times-$1" | median; }
mib() { awk '{ print $2 }' "$work/times-$1" | median | awk '{ printf "%.1f", $1 / 1024 }'; }
cpu() { awk '{ print $3 }' "$work/times-$1" | median; }
runs_of() { awk '{ printf "%s%s", sep, $1; sep = " " }' "$work/times-$1"; }
per_second() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }

echo
echo "PostgreSQL $server and $mariadb_version, $(nproc) cores; $("$trueup" --version);"
echo "reladiff $(reladiff --version 2>&1 | tail -n 1 | awk '{ print $NF }'). $rows rows a side, $planted differing"
echo "(0.1 %); medians of $rounds rounds taking turns. Rows/s: rows of one side / wall time."
echo "Peak RSS and CPU are the client's own (CPU: user time)."
echo
echo "| tool | pair | rows a side | wall time (s) | rows/s | peak RSS (MiB) | client CPU (s) | each round (s) |"
echo "|---|---|---:|---:|---:|---:|---:|---|"
t=$(seconds trueup); b=$(seconds bisect); r=$(seconds reladiff); m=$(seconds mysql); mb=$(seconds mysql-bisect)
echo "| trueup, join | PostgreSQL ↔ PostgreSQL | $rows | $t | $(per_second "$rows" "$t") | $(mib trueup) | $(cpu trueup) | $(runs_of trueup) |"
echo "| trueup, bisect | PostgreSQL ↔ PostgreSQL | $rows | $b | $(per_second "$rows" "$b") | $(mib bisect) | $(cpu bisect) | $(runs_of bisect) |"
echo "| reladiff, bisection | PostgreSQL ↔ PostgreSQL | $rows | $r | $(per_second "$rows" "$r") | $(mib reladiff) | $(cpu reladiff) | $(runs_of reladiff) |"
echo "| trueup, join | MariaDB ↔ PostgreSQL | $mysql_rows | $m | $(per_second "$mysql_rows" "$m") | $(mib mysql) | $(cpu mysql) | |"
echo "| trueup, bisect | MariaDB ↔ PostgreSQL | $mysql_rows | $mb | $(per_second "$mysql_rows" "$mb") | $(mib mysql-bisect) | $(cpu mysql-bisect) | |"
echo
echo "trueup join / reladiff bisection, rows/s: $(awk -v a="$r" -v b="$t" 'BEGIN { printf "%.2f", a / b }')"
echo "trueup bisect / reladiff bisection, rows/s: $(awk -v a="$r" -v b="$b" 'BEGIN { printf "%.2f", a / b }')"
