#!/usr/bin/env bash
# Benchmark: `trueup serve` on the demo shop: its idle memory, how long `/metrics` takes
# with 500 rules, and how late scheduled runs start (drift: start minus due time).
#
#   bench/serve.sh [DRIFT_RUNS] [RULES] [REQUESTS]   (defaults: 120 runs, 500 rules, 1000)
#
# 1. idle: a schedule that is not due (daily at 03:00); RSS (VmRSS, VmHWM) 5 s after start.
# 2. /metrics: RULES quick rules (one finding each) run once by a schedule; then REQUESTS
#    GETs of /metrics one after another (curl's time_total: connect, request, whole body).
# 3. drift: the e-commerce pack on a schedule every second for DRIFT_RUNS runs; drift_ms of
#    every `run.started` log line; RSS after them.
# Prints the figures for docs/performance.md. Needs: cargo, curl.
set -euo pipefail
cd "$(dirname "$0")/.."

drift_runs=${1:-120}
rules=${2:-500}
requests=${3:-1000}
work=${BENCH_DIR:-bench/.work}/serve
rm -rf "$work"
mkdir -p "$work"
command -v curl >/dev/null || { echo "curl is missing: apt-get install curl" >&2; exit 2; }

cargo build --release -q -p trueup-cli
trueup=$(realpath "${CARGO_TARGET_DIR:-target}/release/trueup")
"$trueup" --quiet demo --dir "$work/shop" --no-check >/dev/null

pid=
stop() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; }
trap stop EXIT

# serve PROJECT LOG: starts `trueup serve` on a free port; sets pid and address.
serve() {
  "$trueup" --project "$1" serve --listen 127.0.0.1:0 --log-format json 2>"$2" &
  pid=$!
  for _ in $(seq 200); do
    address=$(sed -n 's/.*"address":"\([^"]*\)".*/\1/p' "$2" | head -n 1)
    [ -n "$address" ] && return 0
    sleep 0.05
  done
  echo "serve did not start:" >&2; cat "$2" >&2; exit 2
}

# rss: "VmRSS VmHWM" of pid, in MiB.
rss() {
  awk '/^VmRSS/ {r = $2} /^VmHWM/ {h = $2} END {printf "%.1f %.1f\n", r / 1024, h / 1024}' \
    "/proc/$pid/status"
}

# stats: min median p99 max of the numbers on stdin.
stats() {
  sort -n | awk '{a[NR] = $1} END {
    p = int(NR * 0.99 + 0.999); if (p > NR) p = NR;
    printf "%s %s %s %s\n", a[1], a[int((NR + 1) / 2)], a[p], a[NR] }'
}

# A project on the demo shop with RULES_DIR's rules and one schedule.
project() {
  local dir=$1 rules_dir=$2 cron=$3
  mkdir -p "$dir"
  cat >"$dir/trueup.toml" <<TOML
rules = ["$rules_dir"]
[sources.shop]
url = "sqlite://$(realpath "$work/shop/shop.db")"
[state]
[[schedule]]
name = "bench"
cron = "$cron"
TOML
}

echo "== 1. idle"
project "$work/idle" "$(realpath "$work/shop/rules")" "0 3 * * *"
serve "$work/idle/trueup.toml" "$work/idle.log"
sleep 5
read -r idle_rss idle_hwm < <(rss)
stop
echo "idle: VmRSS $idle_rss MiB, VmHWM $idle_hwm MiB"

echo "== 2. /metrics with $rules rules"
mkdir -p "$work/many/rules"
for i in $(seq "$rules"); do
  cat <<TOML
[[rule]]
id = "bench.rule-$i"
title = "Order $i"
severity = "low"
[rule.detector]
kind = "sql"
key = ["id"]
query = "SELECT id FROM orders WHERE id = $i"

TOML
done >"$work/many/rules/bench.toml"
project "$work/many" "rules" "*/5 * * * * *"
serve "$work/many/trueup.toml" "$work/many.log"
for _ in $(seq 600); do grep -q '"event":"run.finished"' "$work/many.log" && break; sleep 0.05; done
grep -q '"event":"run.finished"' "$work/many.log" || { echo "no run finished" >&2; exit 2; }
curl -sf "http://$address/metrics" >"$work/metrics.txt"
series=$(grep -c '^trueup_rule_findings{' "$work/metrics.txt")
bytes=$(wc -c <"$work/metrics.txt")
for _ in $(seq "$requests"); do
  curl -sf -o /dev/null -w '%{time_total}\n' "http://$address/metrics"
done | awk '{printf "%.3f\n", $1 * 1000}' >"$work/metrics-ms.txt"
read -r m_min m_med m_p99 m_max < <(stats <"$work/metrics-ms.txt")
stop
echo "/metrics: $series rule series, $bytes bytes; ms over $requests GETs: min $m_min median $m_med p99 $m_p99 max $m_max"

echo "== 3. drift over $drift_runs runs (every second, e-commerce pack)"
project "$work/drift" "$(realpath "$work/shop/rules")" "* * * * * *"
serve "$work/drift/trueup.toml" "$work/drift.log"
while [ "$(grep -c '"event":"run.finished"' "$work/drift.log")" -lt "$drift_runs" ]; do sleep 0.5; done
read -r busy_rss busy_hwm < <(rss)
stop
grep '"event":"run.started"' "$work/drift.log" | head -n "$drift_runs" \
  | sed -n 's/.*"drift_ms":\(-\{0,1\}[0-9]*\).*/\1/p' >"$work/drift-ms.txt"
read -r d_min d_med d_p99 d_max < <(stats <"$work/drift-ms.txt")
skipped=$(grep -c '"event":"run.skipped"' "$work/drift.log" || true)
echo "drift ms over $(wc -l <"$work/drift-ms.txt") runs: min $d_min median $d_med p99 $d_p99 max $d_max; skipped $skipped"
echo "after the runs: VmRSS $busy_rss MiB, VmHWM $busy_hwm MiB"

echo
echo "| measure | figure | target |"
echo "|---|---:|---|"
echo "| idle RSS (VmRSS / peak VmHWM), MiB | $idle_rss / $idle_hwm | ≤ 20 MiB |"
echo "| \`/metrics\` with $series rules, median / p99 / max, ms ($requests GETs, $bytes bytes) | $m_med / $m_p99 / $m_max | ≤ 5 ms |"
echo "| drift (start − due) over $drift_runs runs, median / p99 / max, ms | $d_med / $d_p99 / $d_max | ≤ 1000 ms |"
echo "| RSS after $drift_runs runs (VmRSS / VmHWM), MiB | $busy_rss / $busy_hwm | |"
