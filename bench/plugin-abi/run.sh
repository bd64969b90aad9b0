#!/usr/bin/env bash
# Benchmark: how the host passes rows to a sandboxed WASM check plugin (wasmtime 48).
#
#   (A) the component model: wit/checker.wit, `bindgen!` on the host, wit-bindgen in
#       guest-wit/ (wasm32-wasip2); the host calls `check-*: func(rows: list<row>) -> list<finding>`.
#   (B) a core module ABI: guest-core/ (wasm32-unknown-unknown, no imports) exports
#       `alloc(len) -> ptr` and `check_*(ptr, len) -> ptr << 32 | len`; the host encodes each
#       batch in a compact binary format and decodes the findings (see guest-core/src/lib.rs).
#
# Measures rows/s for 2M rows of (int id, ~22-byte email text, float) in batches of 1024,
# from host values in memory to decoded findings on the host, through two checks: a trivial
# one (reads every value, flags 1 row in 1000) and an email-syntax check on the text column
# (1 row in 1000 is malformed). Each ABI runs with no limit, with
# `Config::epoch_interruption(true)` (deadline set per call, a thread ticking every 10 ms)
# and with `Config::consume_fuel(true)` (fuel set per call); the overheads are relative to
# the same ABI with no limit. Instantiation and compilation are not timed.
#
#   bench/plugin-abi/run.sh [RUNS]      (default 7; one warm-up run first; prints medians)
#
# Prints two Markdown tables, rows/s by wall time and by the host thread's CPU time (from
# /proc/thread-self/schedstat; steadier when other work shares the machine: both time the
# same runs), and the size of each .wasm. Needs cargo and the targets
# wasm32-wasip2 and wasm32-unknown-unknown (rustup target add ...).
set -euo pipefail
cd "$(dirname "$0")"

runs=${1:-7}
target=${CARGO_TARGET_DIR:-target}

cargo build --release -q -p guest-wit --target wasm32-wasip2
cargo build --release -q -p guest-core --target wasm32-unknown-unknown
cargo build --release -q -p plugin-abi-bench

wit=$target/wasm32-wasip2/release/guest_wit.wasm
core=$target/wasm32-unknown-unknown/release/guest_core.wasm
"$target/release/plugin-abi-bench" "$wit" "$core" "$runs"
echo
echo "| guest | .wasm bytes |"
echo "|---|---:|"
for f in "$wit" "$core"; do
  echo "| $(basename "$f") | $(wc -c < "$f") |"
done
