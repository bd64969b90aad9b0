#!/usr/bin/env bash
# Benchmark of repairs on PostgreSQL (or MariaDB, BENCH_ENGINE=mariadb): `trueup plan`, `trueup apply` (with its journal) and
# `trueup undo` of ROWS wrong order totals (rule ecommerce.order-total-matches-items,
# strategy `recompute`), side by side with the runbook's bare `UPDATE` of the same rows in
# psql, taking turns for ROUNDS rounds (medians). Then the same three commands once at SMALL
# rows, to show that peak RSS does not grow with the number of rows. Prints a Markdown table.
#
#   bench/repair.sh [ROWS] [ROUNDS] [SMALL]      (defaults: 100000 rows, 3 rounds, 10000)
#
# The shop: 2.1 × ROWS orders (problem rate 0, seed 42; the few problems the loader plants
# all the same are put right with the runbook's statement), then the first ROWS orders of
# even id that have items get `total_amount + 1`: exactly ROWS wrong totals, nothing else to
# find. Their ids are kept in a table `bench_planted`, which narrows the runbook's `UPDATE`
# to the same rows. The project uses a copy of the repo's rule with `max-rows` raised (the
# rule says 1000), nothing else changed. Before every timed step the orders table is vacuumed and the
# server checkpointed (untimed, for every contender alike), so that no step pays for the
# dead rows or dirty pages of the one before. The server is the throwaway cluster of
# scripts/lib/postgres.sh (fsync off: the commits cost what they cost in memory), or the
# one of BENCH_PG_URL (an admin URL; the shop goes to a database of its own, dropped first).
# Needs: cargo, python3, GNU time; psql and the server are apt-installed if missing.
#
# BENCH_ENGINE=mariadb runs the same steps on MariaDB: the throwaway server of
# scripts/lib/mariadb.sh (innodb_flush_log_at_trx_commit=0, no binary log), or the one of
# BENCH_MYSQL_URL (an admin URL); the bare UPDATE runs in the `mariadb` client, followed by
# `SELECT ROW_COUNT()`; `ANALYZE TABLE orders` stands for the vacuum, and there is no
# checkpoint or prewarm to run. Both sides connect without TLS.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

rows=${1:-100000}
rounds=${2:-3}
small=${3:-10000}
seed=42
for v in "$rows" "$rounds" "$small"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "ROWS, ROUNDS and SMALL must be positive integers, not '$v'" >&2; exit 2; }
done
[ "$small" -le "$rows" ] || { echo "SMALL ($small) must not exceed ROWS ($rows)" >&2; exit 2; }
orders=$((2 * rows + rows / 10))
work=${BENCH_DIR:-bench/.work}/repair
rm -rf "$work" && mkdir -p "$work/project/rules"
work=$(cd "$work" && pwd)

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

engine=${BENCH_ENGINE:-postgres}
db=trueup_repair_bench
# url_with URL DATABASE [QUERY]: URL naming DATABASE instead (and QUERY as its query string).
url_with() {
  python3 - "$1" "$2" "${3:-}" <<'EOF'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(urllib.parse.urlunsplit(u._replace(path="/" + sys.argv[2], query=sys.argv[3])))
EOF
}
case $engine in
postgres)
  step "PostgreSQL"
  if [ -n "${BENCH_PG_URL:-}" ]; then
    admin=$BENCH_PG_URL
    echo "using the server of BENCH_PG_URL" >&2
  else
    # shellcheck source=../scripts/lib/postgres.sh
    . scripts/lib/postgres.sh
    start_postgres -c shared_buffers=4GB -c work_mem=64MB -c maintenance_work_mem=1GB \
      -c max_wal_size=8GB -c effective_cache_size=12GB
    admin=$TRUEUP_TEST_PG_URL
    echo "started a throwaway cluster on port $TRUEUP_TEST_PG_PORT" >&2
  fi
  command -v psql >/dev/null || apt_install postgresql-client
  shop_url=$(url_with "$admin" "$db")
  engine_name=PostgreSQL
  admin_sql() { psql -X -q -v ON_ERROR_STOP=1 -d "$admin" -c "$1"; }
  sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$shop_url" -c "$1"; }
  # bare_command FILE: the client running a SQL file, as one command (timed runs it).
  bare_command() { bare=(psql -X -v ON_ERROR_STOP=1 -d "$shop_url" -f "$1"); }
  settle() { sql "VACUUM (ANALYZE) orders" >/dev/null; sql "CHECKPOINT" >/dev/null; sync; }
  journal_size() { sql "SELECT pg_size_pretty(pg_total_relation_size('trueup.journal'))"; }
  bare_done="UPDATE $rows"
  load=load-postgres
  ;;
mariadb)
  step "MariaDB"
  if [ -n "${BENCH_MYSQL_URL:-}" ]; then
    admin=$BENCH_MYSQL_URL
    echo "using the server of BENCH_MYSQL_URL" >&2
  else
    # shellcheck source=../scripts/lib/mariadb.sh
    . scripts/lib/mariadb.sh
    start_mariadb --innodb-buffer-pool-size=4G
    admin=$TRUEUP_TEST_MYSQL_URL
    echo "started a throwaway server on port $TRUEUP_TEST_MYSQL_PORT" >&2
  fi
  shop_url=$(url_with "$admin" "$db" "ssl-mode=disabled")
  # The client's options from the admin URL: user, password, host, port.
  read -r my_user my_password my_host my_port < <(python3 - "$admin" <<'EOF'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(urllib.parse.unquote(u.username or "root"), urllib.parse.unquote(u.password or ""), u.hostname, u.port or 3306)
EOF
)
  client_args=(mariadb --no-defaults --skip-ssl -h "$my_host" -P "$my_port" -u "$my_user" "-p$my_password")
  client() { "${client_args[@]}" "$@"; }
  engine_name=MariaDB
  admin_sql() { client -e "$1"; }
  sql() { client -N -B "$db" -e "$1"; }
  bare_command() {
    bare=("${client_args[@]}" -N -B "$db" -e "source $1")
  }
  settle() { sql "ANALYZE TABLE orders" >/dev/null; sync; }
  journal_size() {
    sql "SELECT CONCAT(ROUND((data_length + index_length) / 1048576, 1), ' MiB') FROM information_schema.tables
      WHERE table_schema = DATABASE() AND table_name = 'trueup_journal'"
  }
  bare_done=$rows
  load=load-mysql
  ;;
*) echo "BENCH_ENGINE is postgres or mariadb, not '$engine'" >&2; exit 2 ;;
esac

step "loading the shop: $orders orders, problem rate 0, seed $seed"
admin_sql "DROP DATABASE IF EXISTS $db"
admin_sql "CREATE DATABASE $db"
"$shop_tool" "$load" "$shop_url" --orders "$orders" --problem-rate 0 --seed "$seed" >&2

# The rows to plant on: the orders with items of even id, numbered. plant N: the first N of
# them get a wrong total.
sql "CREATE TABLE bench_planted AS SELECT id, row_number() OVER (ORDER BY id) AS n FROM orders o
  WHERE id % 2 = 0 AND EXISTS (SELECT 1 FROM order_items oi WHERE oi.order_id = o.id)"
sql "ALTER TABLE bench_planted ADD PRIMARY KEY (n)"
# MariaDB runs `id IN (SELECT id FROM bench_planted …)` in an UPDATE row by row: by index.
sql "CREATE INDEX bench_planted_id ON bench_planted (id)"
if [ "$engine" = postgres ]; then sql "ANALYZE bench_planted"; else sql "ANALYZE TABLE bench_planted" >/dev/null; fi
plant() { sql "UPDATE orders SET total_amount = total_amount + 1 WHERE id IN (SELECT id FROM bench_planted WHERE n <= $1)" >/dev/null; }
# The runbook's statement (data-inconsistency-runbook.md, "Recalculate order totals"), its
# WHERE narrowed to the same rows trueup repairs.
bare_update() {
  printf '%s\n' "UPDATE orders o
SET total_amount = (
    SELECT SUM(oi.quantity * oi.unit_price)
    FROM order_items oi
    WHERE oi.order_id = o.id
)
WHERE EXISTS (
    SELECT 1 FROM order_items oi WHERE oi.order_id = o.id
) AND o.id IN (SELECT id FROM bench_planted WHERE n <= $1);"
}
bare_update "$rows" >"$work/bare-update.sql"
# The mariadb client says nothing of an UPDATE: the count it reports is asked for.
[ "$engine" = postgres ] || echo "SELECT ROW_COUNT();" >>"$work/bare-update.sql"
wrong() { sql "SELECT count(*) FROM orders o WHERE total_amount <> (SELECT SUM(quantity * unit_price) FROM order_items i WHERE i.order_id = o.id)"; }
# The loader plants a few problems of every kind whatever the rate: the runbook's statement
# as written (every order with items) puts the totals right first.
sql "UPDATE orders o SET total_amount = (SELECT SUM(oi.quantity * oi.unit_price) FROM order_items oi
  WHERE oi.order_id = o.id) WHERE EXISTS (SELECT 1 FROM order_items oi WHERE oi.order_id = o.id)" >/dev/null
[ "$(wrong)" = 0 ] || { echo "the shop has wrong totals still: $(wrong)" >&2; exit 1; }
plant "$rows"
[ "$(wrong)" = "$rows" ] || { echo "planted $(wrong) wrong totals, not $rows (orders without items?)" >&2; exit 1; }
if [ "$engine" = postgres ]; then
  sql "CREATE EXTENSION IF NOT EXISTS pg_prewarm" >/dev/null 2>&1 || true
  sql "SELECT SUM(pg_prewarm(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')" >/dev/null 2>&1 || true
  server=$(sql "SHOW server_version")
else
  server=$(sql "SELECT VERSION()")
fi
items=$(sql "SELECT count(*) FROM order_items")

# The project: the rule as the repo has it, with a max-rows that lets it repair ROWS rows.
sed "s/^max-rows = .*/max-rows = $orders/" rules/ecommerce/order-total-matches-items.toml \
  >"$work/project/rules/order-total-matches-items.toml"
grep -q "^max-rows = $orders\$" "$work/project/rules/order-total-matches-items.toml" \
  || { echo "the rule has no max-rows line to raise" >&2; exit 1; }
printf '%s\n' "# bench/repair.sh" 'rules = ["rules"]' "" "[sources.shop]" 'url = "${BENCH_SHOP_URL}"' \
  >"$work/project/trueup.toml"
export BENCH_SHOP_URL=$shop_url
tu=("$trueup" --quiet --project "$work/project/trueup.toml")

# settle (per engine, above): untimed, before every timed step.
# timed NAME SIZE OUT COMMAND...: one run under GNU time, appended to $work/times-NAME-SIZE.
timed() {
  local name=$1 size=$2 out=$3; shift 3
  settle
  /usr/bin/time -f '%e %M' -o "$work/time.txt" "$@" >"$out" 2>"$work/stderr.txt" || {
    echo "$name exited $?:" >&2; cat "$work/stderr.txt" "$work/time.txt" >&2; exit 1
  }
  tail -n 1 "$work/time.txt" >>"$work/times-$name-$size"
}
json() { python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print($2)" "$1"; }
expect() { [ "$2" = "$3" ] || { echo "$1: $2, expected $3" >&2; exit 1; }; }

# repairs N: plan, apply and undo of N planted rows, each timed and checked.
repairs() {
  local n=$1
  timed plan "$n" /dev/null "${tu[@]}" plan --rule ecommerce.order-total-matches-items -o "$work/plan.jsonl"
  expect "plan targets" "$(tail -n 1 "$work/plan.jsonl" | python3 -c 'import json, sys; print(json.load(sys.stdin)["end"]["targets"])')" "$n"
  timed apply "$n" "$work/apply.json" "${tu[@]}" apply "$work/plan.jsonl" --format json
  expect "apply repaired" "$(json "$work/apply.json" 'd["rules"][0]["repaired"]')" "$n"
  expect "wrong totals after apply" "$(wrong)" 0
  local id
  id=$(json "$work/apply.json" 'd["rules"][0]["repair"]')
  timed undo "$n" "$work/undo.json" "${tu[@]}" undo "$id" --format json
  expect "undo restored" "$(json "$work/undo.json" 'd["restored"]')" "$n"
  expect "wrong totals after undo" "$(wrong)" "$n"
}
bare() {
  bare_command "$work/bare-update.sql"
  timed bare "$rows" "$work/bare.txt" "${bare[@]}"
  expect "bare UPDATE" "$(cat "$work/bare.txt")" "$bare_done"
  plant "$rows"
}

rm -f "$work"/times-*
step "warm-up: plan, apply, undo, bare UPDATE once, untimed"
repairs "$rows"
bare
rm -f "$work"/times-*
step "$rounds rounds at $rows rows, taking turns"
for round in $(seq "$rounds"); do
  echo "round $round/$rounds" >&2
  if [ $((round % 2)) = 1 ]; then repairs "$rows"; bare; else bare; repairs "$rows"; fi
done
step "once at $small rows"
bare_command "$work/bare-update.sql"
"${bare[@]}" >/dev/null
plant "$small"
repairs "$small"

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }
seconds() { awk '{ print $1 }' "$work/times-$1" | median; }
mib() { awk '{ print $2 }' "$work/times-$1" | median | awk '{ printf "%.1f", $1 / 1024 }'; }
runs_of() { awk '{ printf "%s%s", sep, $1; sep = " " }' "$work/times-$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
journal=$(journal_size)

echo
echo "$engine_name $server, $(nproc) cores; shop of $orders orders ($items order_items), $rows wrong"
echo "totals; $("$trueup" --version). Median of $rounds rounds (taking turns) at $rows rows, one"
echo "run at $small rows. Peak RSS is the client's own."
echo
echo "| step | rows | wall time (s) | peak RSS (MiB) | each round (s) |"
echo "|---|---:|---:|---:|---|"
for s in plan apply undo; do
  echo "| trueup $s | $rows | $(seconds "$s-$rows") | $(mib "$s-$rows") | $(runs_of "$s-$rows") |"
done
echo "| $([ "$engine" = postgres ] && echo psql || echo mariadb), the runbook's bare UPDATE | $rows | $(seconds "bare-$rows") | $(mib "bare-$rows") | $(runs_of "bare-$rows") |"
for s in plan apply undo; do
  echo "| trueup $s | $small | $(seconds "$s-$small") | $(mib "$s-$small") | |"
done
echo
a=$(seconds "apply-$rows"); u=$(seconds "undo-$rows"); b=$(seconds "bare-$rows")
echo "apply / bare UPDATE: $(ratio "$a" "$b") (target ≤ 3)"
echo "undo / apply: $(ratio "$u" "$a") (target ≤ 1.5)"
echo "plan at $rows rows: $(seconds "plan-$rows") s (target ≤ 1)"
for s in plan apply undo; do
  echo "peak RSS of $s, $rows rows / $small rows: $(ratio "$(mib "$s-$rows")" "$(mib "$s-$small")")"
done
echo "journal after the runs: $journal"
