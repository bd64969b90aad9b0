# A throwaway Redis server for tests and benchmarks. Source this file, then call
# `start_redis [extra redis-server options...]`: it finds (or apt-installs) the server, starts
# it in the background on a free port of 127.0.0.1 without persistence (no RDB, no AOF), in
# a temp dir, and exports
#   TRUEUP_TEST_REDIS_URL   redis://127.0.0.1:PORT/0
#   TRUEUP_TEST_REDIS_PORT  the port
# and stops and deletes it when the calling shell exits (chaining an EXIT trap set before).
# The tests that need a server of their own (one they stop) start `redis-server` themselves.

start_redis() {
  if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
    echo "Redis server not found; installing it with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends redis-server redis-tools >/dev/null
  fi
  local server dir port
  server=$(command -v redis-server || echo /usr/bin/redis-server)
  dir=$(mktemp -d "${TMPDIR:-/tmp}/trueup-redis.XXXXXX")
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$server" --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
    --daemonize no --logfile "$dir/server.log" "$@" >/dev/null 2>&1 &
  _trueup_redis_pid=$!
  _trueup_redis_dir=$dir
  local i
  for i in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      break
    fi
    if ! kill -0 "$_trueup_redis_pid" 2>/dev/null; then
      echo "Redis did not start:" >&2; cat "$dir/server.log" >&2; return 1
    fi
    sleep 0.1
  done
  export TRUEUP_TEST_REDIS_URL="redis://127.0.0.1:$port/0" TRUEUP_TEST_REDIS_PORT=$port
  _trueup_redis_previous_trap=$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")
  # shellcheck disable=SC2064
  trap "stop_redis; $_trueup_redis_previous_trap" EXIT
}

stop_redis() {
  [ -n "${_trueup_redis_dir:-}" ] || return 0
  kill "$_trueup_redis_pid" 2>/dev/null || true
  wait "$_trueup_redis_pid" 2>/dev/null || true
  rm -rf "$_trueup_redis_dir"
  _trueup_redis_dir=
}
