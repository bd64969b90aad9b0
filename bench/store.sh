#!/usr/bin/env bash
# Benchmark of the state store: recording a run of N findings from one rule (`check` vs
# `check --no-record`), and `trueup diff` between two such runs.
#
#   bench/store.sh [N] [RUNS] [SOURCE]   (defaults: N=1000000, 3 runs, sqlite; try N=10000
#                                         for small diffs; SOURCE=postgres reads the keys from a
#                                         throwaway PostgreSQL server instead)
#
# The rule reports every row of a table of N keys. Before the diff's second run 1% of the
# keys change, so the diff has new, resolved and persisting findings. Needs cargo, sqlite3
# and GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-1000000}
runs=${2:-3}
source=${3:-sqlite}
work=${BENCH_DIR:-bench/.work}/store-$n-$source
rm -rf "$work" && mkdir -p "$work/rules"
cargo build --release -q -p trueup-cli
trueup=${CARGO_TARGET_DIR:-target}/release/trueup
shift_by=$((n / 100))

# The source: a table of N keys; the rule reports every row.
case $source in
  sqlite)
    sqlite3 "$work/data.db" "CREATE TABLE t (id INTEGER PRIMARY KEY); \
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $n) INSERT INTO t SELECT i FROM n;"
    url="sqlite://data.db"
    shift_keys() { sqlite3 "$work/data.db" "$1"; }
    ;;
  postgres)
    # shellcheck source=../scripts/lib/postgres.sh
    . scripts/lib/postgres.sh
    start_postgres >/dev/null
    command -v psql >/dev/null || { echo "needs psql (apt-get install postgresql-client)" >&2; exit 2; }
    url="$TRUEUP_TEST_PG_URL"
    psql -X -q -v ON_ERROR_STOP=1 -d "$url" -c "CREATE TABLE t (id BIGINT PRIMARY KEY)" \
      -c "INSERT INTO t SELECT generate_series(1, $n)" -c "VACUUM ANALYZE t"
    shift_keys() { psql -X -q -v ON_ERROR_STOP=1 -d "$url" -c "$1"; }
    ;;
  *) echo "SOURCE is sqlite or postgres, not $source" >&2; exit 2 ;;
esac
printf 'rules = ["rules"]\n[sources.db]\nurl = "%s"\n' "$url" >"$work/trueup.toml"
cat >"$work/rules/many.toml" <<TOML
[[rule]]
id = "bench.many"
title = "One finding per row"
severity = "low"
[rule.detector]
kind = "sql"
key = ["id"]
query = "SELECT id, 'detail ' || id AS note FROM t"
TOML

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# timed FILE COMMAND...: wall seconds and peak KiB of one run, appended to FILE.
timed() {
  local file=$1; shift
  /usr/bin/time -f '%e %M' -o "$work/time.txt" "$@" >/dev/null 2>&1 || true
  tail -n 1 "$work/time.txt" >>"$file"
}

for _ in $(seq "$runs"); do
  timed "$work/norecord.txt" "$trueup" --quiet --project "$work/trueup.toml" check --no-record --format json
  rm -rf "$work/.trueup"
  timed "$work/record.txt" "$trueup" --quiet --project "$work/trueup.toml" check --format json
done
# 1% of the findings resolved, 1% new.
shift_keys "UPDATE t SET id = id + $n WHERE id <= $shift_by"
"$trueup" --quiet --project "$work/trueup.toml" check --format json >/dev/null || true
for _ in $(seq "$runs"); do
  timed "$work/diff.txt" "$trueup" --quiet --project "$work/trueup.toml" diff --format json
done

nr=$(cut -d' ' -f1 "$work/norecord.txt" | median)
r=$(cut -d' ' -f1 "$work/record.txt" | median)
r_rss=$(cut -d' ' -f2 "$work/record.txt" | median)
d=$(cut -d' ' -f1 "$work/diff.txt" | median)
d_rss=$(cut -d' ' -f2 "$work/diff.txt" | median)
echo "findings per run: $n, read from $source; median of $runs runs; $(nproc) cores"
echo
echo "| what | wall time (s) | peak RSS (MiB) |"
echo "|---|---:|---:|"
echo "| check --no-record (JSON to /dev/null) | $nr | |"
echo "| check, recording every finding | $r | $(awk -v k="$r_rss" 'BEGIN {printf "%.1f", k / 1024}') |"
echo "| diff of two $n-finding runs (JSON) | $d | $(awk -v k="$d_rss" 'BEGIN {printf "%.1f", k / 1024}') |"
echo
awk -v n="$n" -v r="$r" -v nr="$nr" 'BEGIN {
  printf "recording: %.0f findings/s over the whole check; the store adds %.2f s to check\n", n / r, r - nr }'
