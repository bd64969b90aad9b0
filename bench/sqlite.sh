#!/usr/bin/env bash
# Benchmark: `trueup check` on the e-commerce pack vs the sqlite3 CLI running the runbook's
# five queries one after another, on a generated SQLite shop of ~1M order_items; then peak
# memory while trueup writes >= 100k findings as JSON.
#
#   bench/sqlite.sh [ORDERS] [RUNS]      (defaults: 250000 orders ≈ 1M order_items, 5 runs)
#   BENCH_LEVERS=1 bench/sqlite.sh       (instead: the query shapes of bench/levers/sqlite/)
#
# Prints a Markdown table (median wall time and peak RSS over RUNS runs) for
# docs/performance.md. Needs: cargo, sqlite3 (apt-get install sqlite3), GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."

orders=${1:-250000}
runs=${2:-5}
work=${BENCH_DIR:-bench/.work}
mkdir -p "$work"
command -v sqlite3 >/dev/null || { echo "sqlite3 is missing: apt-get install sqlite3" >&2; exit 2; }

cargo build --release -q -p trueup-cli
trueup=${CARGO_TARGET_DIR:-target}/release/trueup

shop="$work/sqlite-$orders"
if [ ! -f "$shop/shop.db" ]; then
  "$trueup" --quiet demo --dir "$shop" --orders "$orders" --no-check
fi
findings_shop="$work/sqlite-$orders-findings"
if [ ! -f "$findings_shop/shop.db" ]; then
  "$trueup" --quiet demo --dir "$findings_shop" --orders "$orders" --problem-rate 0.15 --no-check
fi

# BENCH_LEVERS=1: time the query shapes of bench/levers/sqlite/ instead (sqlite3 .timer).
if [ "${BENCH_LEVERS:-}" = 1 ]; then
  for file in bench/levers/sqlite/*.sql; do
    for _ in $(seq "$runs"); do
      { echo ".timer on"; echo ".output /dev/null"; cat "$file"; } | sqlite3 "$shop/shop.db" \
        | sed -n 's/^Run Time: real \([0-9.]*\).*/\1/p' | tail -n 1
    done | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}' \
      | xargs printf '%-32s %8s s\n' "$(basename "$file" .sql)"
  done
  exit 0
fi

# measure LABEL COMMAND...: runs the command RUNS times, prints "median_seconds median_kib".
measure() {
  local label=$1; shift
  local times=() rss=()
  for _ in $(seq "$runs"); do
    sync
    /usr/bin/time -f '%e %M' -o "$work/time.txt" "$@" >/dev/null 2>"$work/stderr.txt" || {
      code=$?; [ "$code" -le 1 ] || { cat "$work/stderr.txt" >&2; exit "$code"; }
    }
    read -r t m < <(tail -n 1 "$work/time.txt")
    times+=("$t"); rss+=("$m")
  done
  local mt mr
  mt=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  mr=$(printf '%s\n' "${rss[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$label $mt $mr"
}

count_rows() { sqlite3 "$1" "SELECT COUNT(*) FROM $2"; }
items=$(count_rows "$shop/shop.db" order_items)

# Warm the page cache once so that every contender reads from memory.
cat "$shop/shop.db" "$findings_shop/shop.db" >/dev/null

read -r _ s_time s_rss < <(measure sqlite3 sqlite3 "$shop/shop.db" ".read bench/runbook-sqlite.sql")
read -r _ t_time t_rss < <(measure trueup "$trueup" --quiet --project "$shop/trueup.toml" check --format json)
read -r _ j_time j_rss < <(measure trueup-json "$trueup" --quiet --project "$findings_shop/trueup.toml" check --format json)

json_findings=$("$trueup" --quiet --project "$findings_shop/trueup.toml" check --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["findings"]))' || true)
checks=$("$trueup" --quiet --project "$shop/trueup.toml" check --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["findings"]))' || true)

ratio=$(awk -v a="$t_time" -v b="$s_time" 'BEGIN {printf "%.2f", a / b}')
echo
echo "Shop: $orders orders, $items order_items; median of $runs runs; $(nproc) cores."
echo
echo "| contender | findings | wall time (s) | peak RSS (MiB) |"
echo "|---|---:|---:|---:|"
echo "| sqlite3 CLI, runbook's five queries in sequence | | $s_time | $(awk -v k="$s_rss" 'BEGIN {printf "%.1f", k / 1024}') |"
echo "| trueup check (e-commerce pack, JSON to /dev/null) | $checks | $t_time | $(awk -v k="$t_rss" 'BEGIN {printf "%.1f", k / 1024}') |"
echo "| trueup check, problem rate 0.15 (JSON to /dev/null) | $json_findings | $j_time | $(awk -v k="$j_rss" 'BEGIN {printf "%.1f", k / 1024}') |"
echo
echo "trueup / sqlite3 wall time: $ratio"
