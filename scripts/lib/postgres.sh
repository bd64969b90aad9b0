# Throwaway PostgreSQL clusters for tests and benchmarks. Source this file, then call
# `start_postgres [extra postgres -c settings...]`: it finds (or apt-installs) the server
# binaries, creates a cluster in a temp dir on a free port, starts it, exports
#   TRUEUP_TEST_PG_URL   admin URL (user postgres, password auth over TCP)
#   TRUEUP_TEST_PG_DATA  the data directory      TRUEUP_TEST_PG_BIN  the server's bin dir
#   TRUEUP_TEST_PG_PORT  the port                TRUEUP_TEST_PG_RUN_AS  prefix to run its tools
# and stops and deletes the cluster when the calling shell exits.

pg_bin_dir() {
  local initdb
  initdb=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)
  [ -n "$initdb" ] || initdb=$(command -v initdb 2>/dev/null || true)
  [ -n "$initdb" ] && dirname "$(readlink -f "$initdb")"
}

start_postgres() {
  local bin
  bin=$(pg_bin_dir || true)
  if [ -z "$bin" ]; then
    echo "PostgreSQL server binaries not found; installing them with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(pg_bin_dir)
  fi
  local run_as=""
  # initdb and postgres refuse to run as root: run them as the postgres user.
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --user-group --no-create-home postgres
    run_as="runuser -u postgres --"
  fi
  local dir port
  dir=$(mktemp -d "${TMPDIR:-/tmp}/trueup-pg.XXXXXX")
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  printf 'trueup-test\n' > "$dir/password"
  [ -z "$run_as" ] || chown -R postgres: "$dir"
  $run_as "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/password" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  local settings=(-p "$port" -k "$dir" -c listen_addresses=127.0.0.1 -c max_connections=200
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off "$@")
  $run_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "${settings[*]}" start >/dev/null \
    || { cat "$dir/server.log" >&2; return 1; }
  export TRUEUP_TEST_PG_URL="postgres://postgres:trueup-test@127.0.0.1:$port/postgres"
  export TRUEUP_TEST_PG_DATA="$dir/data" TRUEUP_TEST_PG_BIN="$bin" TRUEUP_TEST_PG_PORT="$port"
  export TRUEUP_TEST_PG_RUN_AS="$run_as"
  _trueup_pg_dir=$dir
  trap stop_postgres EXIT
}

stop_postgres() {
  [ -n "${_trueup_pg_dir:-}" ] || return 0
  $TRUEUP_TEST_PG_RUN_AS "$TRUEUP_TEST_PG_BIN/pg_ctl" -D "$TRUEUP_TEST_PG_DATA" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$_trueup_pg_dir"
  _trueup_pg_dir=
}
