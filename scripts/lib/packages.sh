# Debian packages the tests need (servers, a browser), installed in the background while the
# workspace builds. Source this file, call `install_packages_in_background PKG...` early
# (it returns at once; packages already installed are skipped), and `wait_for_packages`
# before the tests that need them: it fails, printing apt's log, if the install failed.

install_packages_in_background() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  _trueup_packages_log=$(mktemp "${TMPDIR:-/tmp}/trueup-apt.XXXXXX")
  if [ "${#missing[@]}" -eq 0 ]; then
    _trueup_packages_pid=""
    return 0
  fi
  echo "installing ${missing[*]} with apt-get in the background" >&2
  (
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"
  ) >"$_trueup_packages_log" 2>&1 &
  _trueup_packages_pid=$!
}

wait_for_packages() {
  [ -n "${_trueup_packages_pid:-}" ] || return 0
  if ! wait "$_trueup_packages_pid"; then
    echo "installing packages failed:" >&2
    cat "$_trueup_packages_log" >&2
    return 1
  fi
  _trueup_packages_pid=""
}
