# Sourced by test.sh: when DATABASE_URL is not set, start a throwaway PostgreSQL cluster and Redis
# from Debian's packages for the suite, and stop them (and delete their data) when the script exits.
# With DATABASE_URL set (CI, or a developer's own servers) nothing is started and nothing is changed.

_services_sudo() {
  if [ "$(id -u)" = "0" ]; then "$@"; else sudo "$@"; fi
}

source "$(dirname "${BASH_SOURCE[0]}")/_apt.sh"

_services_apt_install() {
  echo "== installing $* (Debian packages) for the test services"
  apt_install_no_start "$@"
}

_services_pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

_services_free_port() {
  .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs a PostgreSQL binary as an unprivileged user: initdb and postgres refuse to run as root.
_services_as_pg() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

services_stop() {
  if [ -n "${_SERVICES_PG_DATA:-}" ] && [ -d "$_SERVICES_PG_DATA" ]; then
    _services_as_pg "$(_services_pg_bin)/pg_ctl" -D "$_SERVICES_PG_DATA" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -n "${_SERVICES_REDIS_PORT:-}" ]; then
    redis-cli -p "$_SERVICES_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
  if [ -n "${_SERVICES_DIR:-}" ]; then rm -rf "$_SERVICES_DIR"; fi
}

services_start() {
  if [ -n "${DATABASE_URL:-}" ]; then
    echo "== test services: using DATABASE_URL and CELERY_BROKER_URL from the environment"
    return 0
  fi
  [ -n "$(_services_pg_bin)" ] || _services_apt_install postgresql
  command -v redis-server >/dev/null 2>&1 || _services_apt_install redis-server
  local pg_bin; pg_bin="$(_services_pg_bin)"

  # Under var/ when the server's user can write there; otherwise (root running a checkout the
  # postgres user cannot enter, such as one under /root) in a private directory under /tmp.
  _SERVICES_DIR="$PWD/var/test-services.$$"
  mkdir -p "$_SERVICES_DIR"
  if [ "$(id -u)" = "0" ]; then
    chown postgres: "$_SERVICES_DIR"
    if ! runuser -u postgres -- test -w "$_SERVICES_DIR"; then
      rm -rf "$_SERVICES_DIR"
      _SERVICES_DIR="$(mktemp -d /tmp/controlplane-test-services.XXXXXX)"
      chown postgres: "$_SERVICES_DIR"
    fi
  fi
  trap services_stop EXIT

  _SERVICES_PG_DATA="$_SERVICES_DIR/pg"
  local pg_port redis_port
  pg_port="$(_services_free_port)"
  redis_port="$(_services_free_port)"
  echo "== test services: PostgreSQL on 127.0.0.1:$pg_port and Redis on 127.0.0.1:$redis_port (in $_SERVICES_DIR)"
  _services_as_pg "$pg_bin/initdb" -D "$_SERVICES_PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  # Durability is pointless for a throwaway test cluster; fsync off makes the suite much faster.
  _services_as_pg "$pg_bin/pg_ctl" -D "$_SERVICES_PG_DATA" -l "$_SERVICES_DIR/postgresql.log" -w \
    -o "-p $pg_port -c listen_addresses=127.0.0.1 -k $_SERVICES_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null
  _services_as_pg "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres test

  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --dir "$_SERVICES_DIR" --logfile "$_SERVICES_DIR/redis.log" >/dev/null
  _SERVICES_REDIS_PORT="$redis_port"
  for _ in $(seq 50); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done

  export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/test"
  export CELERY_BROKER_URL="redis://127.0.0.1:$redis_port/0"
  export CACHE_URL="redis://127.0.0.1:$redis_port/1"
}
