#!/usr/bin/env bash
# A/B of two trueup binaries on one project: `check --format json`, taking turns N times,
# medians of wall time and peak RSS (GNU time). Taking turns keeps a noisy machine's drift
# out of the comparison; use it to show that a change costs no speed.
#
#   bench/ab.sh OLD_TRUEUP NEW_TRUEUP path/to/trueup.toml [N=11]
set -euo pipefail
a=$1; b=$2; project=$3; n=${4:-11}
out=$(mktemp)
trap 'rm -f "$out" "$out.t"' EXIT
for _ in $(seq "$n"); do
  for bin in "$a" "$b"; do
    /usr/bin/time -f "%e %M" -o "$out.t" "$bin" --quiet --project "$project" check --format json \
      >/dev/null 2>&1 || true
    echo "$bin $(tail -n 1 "$out.t")" >>"$out"
  done
done
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
for bin in "$a" "$b"; do
  t=$(grep -F "$bin " "$out" | awk '{print $2}' | median)
  m=$(grep -F "$bin " "$out" | awk '{print $3}' | median)
  awk -v bin="$bin" -v t="$t" -v m="$m" -v n="$n" 'BEGIN {printf "%s: median %s s, %.1f MiB (%s runs, taking turns)\n", bin, t, m / 1024, n}'
done
