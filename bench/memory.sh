#!/usr/bin/env bash
# Peak memory of the commands that read a whole recorded run, over one run of N findings:
# `show --format json`, `baseline accept` and `diff` (against a second run in which 1% of
# the keys changed, then a third in which every key did). They stream: peak RSS must not
# grow with N, nor with the share of findings that changed.
#
#   bench/memory.sh [N]      (default N=1000000; needs cargo, sqlite3 and GNU time)
#
# TRUEUP=path/to/trueup measures that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-1000000}
work=${BENCH_DIR:-bench/.work}/memory-$n
rm -rf "$work" && mkdir -p "$work/rules"
if [ -z "${TRUEUP:-}" ]; then
  cargo build --release -q -p trueup-cli
  TRUEUP=${CARGO_TARGET_DIR:-target}/release/trueup
fi
trueup=$(realpath "$TRUEUP")

sqlite3 "$work/data.db" "CREATE TABLE t (id INTEGER PRIMARY KEY); \
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $n) INSERT INTO t SELECT i FROM n;"
printf 'rules = ["rules"]\n[sources.db]\nurl = "sqlite://data.db"\n' >"$work/trueup.toml"
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

# measure WHAT ARGS...: one line of the table, wall seconds and peak RSS of the command. A
# command that fails (exit status 2 or more: `check` exits 1 with findings) says so in its
# row, with its stderr kept in $work/stderr.txt, rather than leaving the row blank.
measure() {
  local what=$1; shift
  local status=0
  /usr/bin/time -f '%e %M' -o "$work/time.txt" "$trueup" --quiet --project "$work/trueup.toml" "$@" \
    >/dev/null 2>"$work/stderr.txt" || status=$?
  # GNU time writes "Command exited with non-zero status N" before its figures.
  local figures
  figures=$(grep -E '^[0-9.]+ [0-9]+$' "$work/time.txt" | tail -n 1 || true)
  if [ "$status" -gt 1 ] || [ -z "$figures" ]; then
    echo "| $what | failed (exit $status: $(tail -n 1 "$work/stderr.txt")) | |"
    return
  fi
  read -r seconds kib <<<"$figures"
  echo "| $what | $seconds | $(awk -v k="$kib" 'BEGIN {printf "%.1f", k / 1024}') |"
}

echo "findings per run: $n; $(nproc) cores; $("$trueup" --version)"
echo
echo "| what | wall time (s) | peak RSS (MiB) |"
echo "|---|---:|---:|"
measure "check, recording every finding" check --format json
measure "show last --format json" show last --format json
measure "baseline accept" baseline accept
measure "baseline accept (again: merging the old file)" baseline accept
sqlite3 "$work/data.db" "UPDATE t SET id = id + $n WHERE id <= $((n / 100))"
measure "check again (1% of the keys changed)" check --format json
measure "diff --format json (1% changed)" diff --format json
measure "diff (1% changed)" diff
sqlite3 "$work/data.db" "UPDATE t SET id = id + 2 * $n"
measure "check again (every key changed)" check --format json
measure "diff --format json (every finding new or resolved)" diff --format json
measure "diff (every finding new or resolved)" diff
