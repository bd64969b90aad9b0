# Throwaway MariaDB servers for tests and benchmarks. Source this file, then call
# `start_mariadb [extra mariadbd options...]`: it finds (or apt-installs) the server, creates
# a data directory in a temp dir, starts the server on a free port of 127.0.0.1, creates the
# user `trueup` (password `trueup-test`, every privilege) and exports
#   TRUEUP_TEST_MYSQL_URL   admin URL (mysql://trueup:trueup-test@127.0.0.1:PORT/mysql)
#   TRUEUP_TEST_MYSQL_PORT  the port
#   TRUEUP_TEST_MYSQL_CA    the CA that signed the server's TLS certificate (for 127.0.0.1)
# and stops and deletes it when the calling shell exits (chaining an EXIT trap set before).

start_mariadb() {
  if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    echo "MariaDB server not found; installing it with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends mariadb-server mariadb-client >/dev/null
  fi
  local server=/usr/sbin/mariadbd
  [ -x "$server" ] || server=$(command -v mariadbd)
  local dir port user=()
  dir=$(mktemp -d "${TMPDIR:-/tmp}/trueup-mariadb.XXXXXX")
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # mariadbd refuses to run as root unless told which user to be.
  if [ "$(id -u)" = 0 ]; then
    id mysql >/dev/null 2>&1 || useradd --system --user-group --no-create-home mysql
    chown -R mysql: "$dir"
    user=(--user=mysql)
  fi
  # TLS with a CA of its own: the server's certificate names 127.0.0.1, so that clients can
  # verify it (ssl-mode=verify_identity with ssl-ca=$TRUEUP_TEST_MYSQL_CA).
  (
    cd "$dir" &&
      openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj "/CN=trueup test CA" \
        -keyout ca.key -out ca.pem &&
      openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr &&
      printf 'subjectAltName=IP:127.0.0.1\n' >server.ext &&
      openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3 \
        -extfile server.ext -out server.pem
  ) >"$dir/tls.log" 2>&1 || { cat "$dir/tls.log" >&2; return 1; }
  [ "${#user[@]}" -eq 0 ] || chown -R mysql: "$dir"
  mariadb-install-db "${user[@]}" --datadir="$dir/data" --auth-root-authentication-method=socket \
    --skip-test-db >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; return 1; }
  "$server" --no-defaults "${user[@]}" --datadir="$dir/data" --socket="$dir/socket" \
    --pid-file="$dir/pid" --port="$port" --bind-address=127.0.0.1 --log-error="$dir/server.log" \
    --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --skip-log-bin \
    --max-connections=300 --ssl-ca="$dir/ca.pem" --ssl-cert="$dir/server.pem" \
    --ssl-key="$dir/server.key" "$@" >/dev/null 2>&1 &
  _trueup_mariadb_pid=$!
  _trueup_mariadb_dir=$dir
  local i
  for i in $(seq 1 300); do
    if mariadb --no-defaults --socket="$dir/socket" -uroot -e "SELECT 1" >/dev/null 2>&1; then
      break
    fi
    if ! kill -0 "$_trueup_mariadb_pid" 2>/dev/null; then
      echo "MariaDB did not start:" >&2; cat "$dir/server.log" >&2; return 1
    fi
    sleep 0.1
  done
  mariadb --no-defaults --socket="$dir/socket" -uroot -e "
    CREATE USER 'trueup'@'%' IDENTIFIED BY 'trueup-test';
    GRANT ALL PRIVILEGES ON *.* TO 'trueup'@'%' WITH GRANT OPTION;" \
    || { echo "MariaDB started but would not take the test user:" >&2; cat "$dir/server.log" >&2; return 1; }
  export TRUEUP_TEST_MYSQL_URL="mysql://trueup:trueup-test@127.0.0.1:$port/mysql"
  export TRUEUP_TEST_MYSQL_PORT=$port TRUEUP_TEST_MYSQL_CA="$dir/ca.pem"
  _trueup_mariadb_previous_trap=$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")
  # shellcheck disable=SC2064
  trap "stop_mariadb; $_trueup_mariadb_previous_trap" EXIT
}

stop_mariadb() {
  [ -n "${_trueup_mariadb_dir:-}" ] || return 0
  kill "$_trueup_mariadb_pid" 2>/dev/null || true
  wait "$_trueup_mariadb_pid" 2>/dev/null || true
  rm -rf "$_trueup_mariadb_dir"
  _trueup_mariadb_dir=
}
