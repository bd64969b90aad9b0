#!/usr/bin/env bash
# Benchmark of `trueup report` over a recorded run of N findings from one rule, compared
# with the run before it (1% of the keys changed) and with a trend of 10 runs: wall time,
# peak RSS and the size of the file, per format; `show` of the same run (its first keys per
# rule, for people); and `check --format junit` on the same data.
#
#   bench/report.sh [N] [RUNS]      (defaults: N=1000000, 5 runs; needs cargo, sqlite3 and
#                                    GNU time)
#
# TRUEUP=path/to/trueup measures that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-1000000}
runs=${2:-5}
work=${BENCH_DIR:-bench/.work}/report-$n
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
owner = "bench-team"
runbook = "https://runbooks.example/bench#many"
[rule.detector]
kind = "sql"
key = ["id"]
query = "SELECT id, 'detail ' || id AS note FROM t"
TOML

t() { "$trueup" --quiet --project "$work/trueup.toml" "$@"; }
# Nine runs before the one reported, the last of them with the data as it is now; then 1% of
# the keys change and the tenth run is the one reported: new and resolved findings to count.
for _ in $(seq 9); do t check --format json >/dev/null || true; done
sqlite3 "$work/data.db" "UPDATE t SET id = id + $n WHERE id <= $((n / 100))"
t check --format json >/dev/null || true

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# measure NAME ARGS...: RUNS runs of trueup ARGS; the median wall time and peak RSS go to
# $work/NAME.txt as "seconds KiB".
measure() {
  local name=$1; shift
  : >"$work/$name.runs"
  for _ in $(seq "$runs"); do
    /usr/bin/time -f '%e %M' -o "$work/time.txt" "$trueup" --quiet --project "$work/trueup.toml" "$@" \
      >/dev/null 2>"$work/stderr.txt" || [ $? -le 1 ] || { cat "$work/stderr.txt" >&2; exit 2; }
    grep -E '^[0-9.]+ [0-9]+$' "$work/time.txt" | tail -n 1 >>"$work/$name.runs"
  done
  echo "$(cut -d' ' -f1 "$work/$name.runs" | median) $(cut -d' ' -f2 "$work/$name.runs" | median)" >"$work/$name.txt"
}
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
row() {
  local what=$1 name=$2 file=${3:-}
  read -r seconds kib <"$work/$name.txt"
  local size=""
  [ -n "$file" ] && size=$(awk -v b="$(stat -c %s "$file")" 'BEGIN {printf "%.1f", b / 1024}')
  echo "| $what | $seconds | $(mib "$kib") | $size |"
}

for format in html markdown junit json; do
  measure "report-$format" report --format "$format" --output "$work/report.$format"
done
measure show show last
measure check-junit check --format junit --output "$work/check.xml"
measure check-json check --format json

echo "findings in the reported run: $n (one rule; 1% new, 1% resolved since the run before; trend of 10 runs); median of $runs runs; $(nproc) cores; $("$trueup" --version)"
echo
echo "| what | wall time (s) | peak RSS (MiB) | file (KiB) |"
echo "|---|---:|---:|---:|"
row "report --format html" report-html "$work/report.html"
row "report --format markdown" report-markdown "$work/report.markdown"
row "report --format junit" report-junit "$work/report.junit"
row "report --format json" report-json "$work/report.json"
row "show (the first keys of each rule)" show
row "check --format junit (a new run)" check-junit "$work/check.xml"
row "check --format json (a new run, every finding)" check-json
