#!/usr/bin/env bash
# `/metrics` of `trueup serve` renders every rule's series on each scrape: the time of one
# `Metrics::render` for a project of RULES rules (target: 500 rules in 5 ms or less).
#
#   bench/metrics.sh [RULES] [RENDERS]     # defaults: 500 2000
#
# Builds the bench in release (crates/trueup-core/benches/metrics.rs) and prints a Markdown
# table of the median, 99th percentile and worst render, for the rules in one schedule and
# spread over ten, with the bytes rendered.
set -euo pipefail
cd "$(dirname "$0")/.."
rules=${1:-500}
renders=${2:-2000}
cargo bench -q -p trueup-core --bench metrics -- "$rules" "$renders"
