# Sourced by bench/postgres.sh when BENCH_LEVERS=1, after the shop is loaded: measures the
# levers docs/performance.md discusses, RUNS times each, interleaved, and prints medians.
#   BENCH_LEVERS=1 bench/postgres.sh 1 5

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

step "query shapes (psql \\timing, ms; median of $runs)"
for file in bench/levers/*.sql; do
  for _ in $(seq "$runs"); do
    psql -X -q -v ON_ERROR_STOP=1 -d "$shop_url" -c '\timing on' -f "$file" -o /dev/null \
      | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1
  done | median | xargs printf '%-40s %8s ms\n' "$(basename "$file" .sql)"
done

step "trueup settings (wall time, s; median of $runs interleaved rounds)"
variants=("--concurrency 1 --split 1" "--concurrency 2 --split 1" "--concurrency 2 --split 2" "--concurrency 2 --split 4"
  "--concurrency 3 --split 2" "--concurrency 4 --split 2" "--concurrency 4 --split 4")
rm -f "$work"/lever-*.txt
for _ in $(seq "$runs"); do
  for i in "${!variants[@]}"; do
    # shellcheck disable=SC2086
    /usr/bin/time -f '%e' -a -o "$work/lever-$i.txt" "$trueup" --quiet --project "$project/trueup.toml" \
      check --format json ${variants[$i]} >/dev/null || true
  done
done
for i in "${!variants[@]}"; do
  grep -v Command "$work/lever-$i.txt" | median | xargs printf '%-40s %8s s\n' "${variants[$i]}"
done
