#!/usr/bin/env bash
# Benchmark on PostgreSQL: `trueup check` on the e-commerce pack vs psql running the
# runbook's five queries one after another vs a Soda Core scan with the same five checks, on
# a generated shop of scale factor SF (1.5M orders, ~6M order_items per unit of SF; problem
# rate 0.01). Checks every tool's counts against the planted problems, then prints a
# Markdown table (median wall time and peak RSS of RUNS runs).
#
#   bench/postgres.sh [SF] [RUNS]        (defaults: SF=1, 3 runs)
#   BENCH_LEVERS=1 bench/postgres.sh 1 5 (instead: the levers of docs/performance.md)
#
# Starts a throwaway PostgreSQL 15 cluster (scripts/lib/postgres.sh, deleted on exit), or
# uses the server of BENCH_PG_URL (an admin URL: the shop goes to a database of its own,
# kept and reused by later runs). Soda Core is installed from PyPI into
# bench/.work/soda-venv; if that fails the benchmark goes on without it. Needs: cargo,
# python3, GNU time (apt-get install time); psql and the server are apt-installed if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

sf=${1:-1}
runs=${2:-3}
rate=0.01
seed=42
soda_version=3.5.6
work=${BENCH_DIR:-bench/.work}
mkdir -p "$work"
work=$(cd "$work" && pwd)

awk -v sf="$sf" 'BEGIN { exit !(sf + 0 > 0) }' || { echo "SF must be a positive number, not '$sf'" >&2; exit 2; }
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "RUNS must be a positive integer, not '$runs'" >&2; exit 2; }
orders=$(awk -v sf="$sf" 'BEGIN { printf "%.0f", 1500000 * sf }')

step() { printf '\n==> %s\n' "$*" >&2; }
apt_install() {
  echo "installing $* with apt-get" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
[ -x /usr/bin/time ] || apt_install time

step "building trueup and trueup-shop (release)"
cargo build --release -q -p trueup-cli -p trueup-shop
target=${CARGO_TARGET_DIR:-$repo/target}
trueup=$target/release/trueup
shop_tool=$target/release/trueup-shop

step "Soda Core $soda_version"
venv=$work/soda-venv
soda=$venv/bin/soda
installed=$("$venv/bin/pip" show soda-core-postgres 2>/dev/null | sed -n 's/^Version: //p' || true)
if [ ! -x "$soda" ] || [ "$installed" != "$soda_version" ]; then
  if python3 -m venv "$venv" >"$work/soda-install.log" 2>&1 \
    && "$venv/bin/pip" install -q "soda-core-postgres==$soda_version" >>"$work/soda-install.log" 2>&1; then
    echo "installed soda-core-postgres $soda_version in $venv" >&2
  else
    echo "Soda Core could not be installed; going on without it. Why (end of $work/soda-install.log):" >&2
    tail -n 5 "$work/soda-install.log" >&2
    soda=
  fi
fi
if [ -n "$soda" ]; then
  # Soda reads its own settings from ~/.soda/config.yml; with telemetry on (its default)
  # every scan tries to send usage data and, offline, retries for seconds. A HOME of its own
  # switches it off without touching the user's.
  mkdir -p "$work/soda-home/.soda"
  printf 'send_anonymous_usage_stats: false\n' >"$work/soda-home/.soda/config.yml"
fi

step "PostgreSQL"
settings=(-c shared_buffers=4GB -c work_mem=64MB -c maintenance_work_mem=1GB
  -c max_wal_size=8GB -c effective_cache_size=12GB
  # Loading only: COPY into a table truncated in its own transaction then writes no WAL.
  -c wal_level=minimal -c max_wal_senders=0)
if [ -n "${BENCH_PG_URL:-}" ]; then
  admin=$BENCH_PG_URL
  echo "using the server of BENCH_PG_URL" >&2
else
  # shellcheck source=../scripts/lib/postgres.sh
  . scripts/lib/postgres.sh
  start_postgres "${settings[@]}"
  admin=$TRUEUP_TEST_PG_URL
  echo "started a throwaway cluster on port $TRUEUP_TEST_PG_PORT (${settings[*]})" >&2
fi
command -v psql >/dev/null || apt_install postgresql-client
db=trueup_bench_$orders
shop_url=$(python3 - "$admin" "$db" <<'EOF'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(urllib.parse.urlunsplit(u._replace(path="/" + sys.argv[2])))
EOF
)
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -d "$admin" "$@"; }

step "loading the shop: SF $sf = $orders orders, problem rate $rate, seed $seed"
marker="trueup-shop orders=$orders problem-rate=$rate seed=$seed loaded"
comment=$(psql_admin -A -t -c "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '$db'")
load_time="reused"
if [ "$comment" = "$marker" ]; then
  echo "database $db already holds this shop: reused (drop it to reload)" >&2
else
  psql_admin -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  /usr/bin/time -f '%e %M' -o "$work/load-time.txt" \
    "$shop_tool" load-postgres "$shop_url" --orders "$orders" --problem-rate "$rate" --seed "$seed"
  read -r load_s load_kib < <(tail -n 1 "$work/load-time.txt")
  load_time="$load_s s (loader peak RSS $(awk -v k="$load_kib" 'BEGIN { printf "%.0f", k / 1024 }') MiB)"
  psql_admin -c "COMMENT ON DATABASE $db IS '$marker'"
fi
"$shop_tool" planted --orders "$orders" --problem-rate "$rate" --seed "$seed" >"$work/planted.json"

# No checkpoint of the load's writes during the timed runs (needs a superuser; else skipped).
psql -X -q -d "$shop_url" -c "CHECKPOINT" >/dev/null 2>&1 || true
# Everything in shared buffers, so that every contender reads from memory.
psql -X -q -d "$shop_url" -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" \
  -c "SELECT SUM(pg_prewarm(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')" >/dev/null 2>&1 \
  || echo "pg_prewarm unavailable: the warm-up run warms the cache instead" >&2
sizes=$(psql -X -A -t -d "$shop_url" -c "
  SELECT 'customers ' || (SELECT COUNT(*) FROM customers) || ', products ' || (SELECT COUNT(*) FROM products)
    || ', inventory ' || (SELECT COUNT(*) FROM inventory) || ', orders ' || (SELECT COUNT(*) FROM orders)
    || ', order_items ' || (SELECT COUNT(*) FROM order_items) || ', payments ' || (SELECT COUNT(*) FROM payments)")
db_size=$(psql -X -A -t -d "$shop_url" -c "SELECT pg_size_pretty(pg_database_size(current_database()))")
server=$(psql -X -A -t -d "$shop_url" -c "SHOW server_version")

# The trueup project: the repo's rule pack, the shop's URL from the environment.
project=$work/pg-project
mkdir -p "$project"
printf '%s\n' "# bench/postgres.sh: the e-commerce pack against the benchmark's PostgreSQL shop." \
  "rules = [\"$repo/rules/ecommerce\"]" "" "[sources.shop]" 'url = "${BENCH_SHOP_URL}"' "" "[defaults]" \
  "# As many queries at once as the database server has cores (it runs on this machine)." \
  "concurrency = $(nproc)" >"$project/trueup.toml"
export BENCH_SHOP_URL=$shop_url
if [ "${BENCH_LEVERS:-}" = 1 ]; then
  # shellcheck source=levers.sh
  . bench/levers.sh
  exit 0
fi
# Soda's data source (bench/soda/configuration.yml) reads the parts of the same URL.
eval "$(python3 - "$shop_url" <<'EOF'
import shlex, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
parts = {"HOST": u.hostname, "PORT": u.port or 5432, "USER": urllib.parse.unquote(u.username or ""),
         "PASSWORD": urllib.parse.unquote(u.password or ""), "DATABASE": u.path.lstrip("/")}
for k, v in parts.items():
    print(f"export BENCH_PG_{k}={shlex.quote(str(v))}")
EOF
)"

trueup_cmd=("$trueup" --quiet --project "$project/trueup.toml" check --format json)
psql_cmd=(psql -X -q -v ON_ERROR_STOP=1 -d "$shop_url" -f bench/runbook-postgres.sql)
soda_cmd=(env HOME="$work/soda-home" "$soda" scan -d shop -c bench/soda/configuration.yml bench/soda/checks.yml)

step "warm-up run of each contender (its output is checked below)"
"${trueup_cmd[@]}" >"$work/findings.json" || [ $? -le 1 ]
psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$shop_url" -c '\timing on' -f bench/runbook-postgres.sql >"$work/psql-rows.txt"
if [ -n "$soda" ]; then
  # Exit 2: checks failed, as they must on a shop with problems; 3 and up: errors.
  env HOME="$work/soda-home" "$soda" scan -d shop -c bench/soda/configuration.yml \
    -srf "$work/soda-results.json" bench/soda/checks.yml >"$work/soda.log" 2>&1 || [ $? -le 2 ] \
    || { echo "Soda failed (see $work/soda.log); going on without it" >&2; tail -n 20 "$work/soda.log" >&2; soda=; }
fi

# timed NAME MAX_EXIT OUT COMMAND...: one run under GNU time, appended to $work/times-NAME.
timed() {
  local name=$1 max=$2 out=$3; shift 3
  sync
  /usr/bin/time -f '%e %M' -o "$work/time.txt" "$@" >"$out" 2>"$work/stderr.txt" || {
    local code=$?
    [ "$code" -le "$max" ] || { echo "$name exited $code:" >&2; cat "$work/stderr.txt" >&2; exit "$code"; }
  }
  tail -n 1 "$work/time.txt" >>"$work/times-$name"
}
rm -f "$work"/times-*
# busy: how much of the CPU other processes use, over 2 s of this script doing nothing.
busy() {
  local a b
  a=($(head -n 1 /proc/stat)); sleep 2; b=($(head -n 1 /proc/stat))
  awk -v a="${a[*]:1:8}" -v b="${b[*]:1:8}" 'BEGIN {
    split(a, x); split(b, y); for (i = 1; i <= 8; i++) { d = y[i] - x[i]; t += d; if (i == 4 || i == 5) idle += d }
    printf "%.0f%%", t ? 100 * (t - idle) / t : 0 }'
}
busy_before=$(busy)
step "$runs timed runs of each contender, taking turns (CPU busy before: $busy_before)"
for run in $(seq "$runs"); do
  echo "run $run/$runs" >&2
  timed psql 0 /dev/null "${psql_cmd[@]}"
  timed trueup 1 "$work/findings.json" "${trueup_cmd[@]}"
  [ -z "$soda" ] || timed soda 2 "$work/soda-run.log" "${soda_cmd[@]}"
done
busy_after=$(busy)
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }
seconds() { awk '{ print $1 }' "$work/times-$1" | median; }
mib() { awk '{ print $2 }' "$work/times-$1" | median | awk '{ printf "%.1f", $1 / 1024 }'; }

step "counts against the planted problems"
status=0
python3 - "$work" "$([ -n "$soda" ] && echo soda)" <<'EOF' || status=1
import collections, json, sys
work, with_soda = sys.argv[1], sys.argv[2] == "soda"
planted = json.load(open(f"{work}/planted.json"))
rules = {  # planted kind -> rule id, key column of trueup's finding
    "orphaned_orders": ("ecommerce.orphaned-orders", "id"),
    "duplicate_emails": ("ecommerce.duplicate-customer-emails", "email"),
    "wrong_totals": ("ecommerce.order-total-matches-items", "id"),
    "wrong_stock": ("ecommerce.stock-matches-inventory", "id"),
    "bad_payments": ("ecommerce.completed-orders-paid", "order_id"),
}
found = {"trueup": collections.defaultdict(set), "psql": collections.defaultdict(set)}
findings = json.load(open(f"{work}/findings.json"))
rule_kind = {rule: kind for kind, (rule, _) in rules.items()}
for f in findings["findings"]:
    kind = rule_kind[f["rule"]]
    found["trueup"][kind].add(str(f["key"][rules[kind][1]]))
errors = [r for r in findings["rules"] if r["error"]]
# psql -A -t: '#check KIND' markers, rows as 'key|...', '\timing' lines 'Time: N ms'.
kind, psql_ms = None, {}
for line in open(f"{work}/psql-rows.txt", encoding="utf-8"):
    line = line.rstrip("\n")
    if line.startswith("#check "):
        kind = line.split()[1]
    elif line.startswith("Time: "):
        psql_ms[kind] = float(line.split()[1])
    elif line:
        found["psql"][kind].add(line.split("|")[0])  # distinct keys: payments come one row per bad payment
soda = {}
if with_soda:
    for check in json.load(open(f"{work}/soda-results.json"))["checks"]:
        soda[check["name"]] = check.get("diagnostics", {}).get("value")
ok = True
def report(good, tool, rule, text):
    global ok
    ok &= good
    print(f"{'✓' if good else '✗'} {tool:<6} {rule:<38} {text}")
for kind, (rule, _) in rules.items():
    truth = {str(k) for k in planted[kind]}
    for tool in ("trueup", "psql"):
        got = found[tool][kind]
        extra, missed = len(got - truth), len(truth - got)
        detail = "" if got == truth else f" ({extra} not planted, {missed} planted missed)"
        report(got == truth, tool, rule, f"{len(got)} keys, {len(truth)} planted{detail}")
    if with_soda:
        value = soda.get(rule)
        report(value == len(truth), "soda", rule, f"{value} failed rows, {len(truth)} planted")
for r in errors:
    report(False, "trueup", r["id"], f"error: {r['error']}")
print()
print("psql, per query (warm-up run, \\timing): " + ", ".join(f"{k} {v / 1000:.2f} s" for k, v in psql_ms.items()))
print("trueup, per rule (last timed run, queries run concurrently, so these overlap): " + ", ".join(
    f"{r['id'].removeprefix('ecommerce.')} {r['duration_ms'] / 1000:.2f} s" for r in findings["rules"]))
sys.exit(0 if ok else 1)
EOF

p_s=$(seconds psql); p_m=$(mib psql)
t_s=$(seconds trueup); t_m=$(mib trueup)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo
echo "Shop: SF $sf ($orders orders; $sizes; $db_size) on PostgreSQL $server, $(nproc) cores;"
echo "loaded in $load_time. Median of $runs runs, warm cache. Other processes kept the CPU busy"
echo "$busy_before before the timed runs and $busy_after after (anything but 0% skews the times)."
echo "Peak RSS is the client's own: the queries run in the server."
echo
echo "| contender | wall time median (s) | peak RSS median (MiB) | ratio to psql |"
echo "|---|---:|---:|---:|"
echo "| psql, the runbook's five queries in sequence | $p_s | $p_m | 1.00 |"
echo "| trueup check, e-commerce pack (JSON to a file) | $t_s | $t_m | $(ratio "$t_s" "$p_s") |"
if [ -n "$soda" ]; then
  o_s=$(seconds soda); o_m=$(mib soda)
  echo "| Soda Core $soda_version scan, the same five checks | $o_s | $o_m | $(ratio "$o_s" "$p_s") |"
else
  echo "| Soda Core (not run: see above) | | | |"
fi
echo
runs_of() { awk '{ printf "%s%s", sep, $1; sep = " " }' "$work/times-$1"; }
echo "Each run (s): psql $(runs_of psql); trueup $(runs_of trueup)$([ -z "$soda" ] || echo "; soda $(runs_of soda)")."
echo
echo "trueup / psql wall time: $(ratio "$t_s" "$p_s")"
if [ -n "$soda" ]; then
  echo "trueup / soda wall time: $(ratio "$t_s" "$o_s")"
fi
exit "$status"
