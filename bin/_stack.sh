# Shared by bin/up and bin/test: a virtual environment, and throwaway PostgreSQL and
# Redis instances of our own on free ports, under a run directory. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  # Installs Debian packages only when something is missing.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing ${missing[*]} from Debian"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pg_bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && echo "$d"; done | sort -V | tail -n 1
}

ensure_system_packages() {
  local pkgs=()
  [ -n "$(pg_bindir)" ] || pkgs+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
  "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || pkgs+=(python3-venv)
  if [ "${#pkgs[@]}" -gt 0 ]; then apt_install "${pkgs[@]}"; fi
}

ensure_venv() {
  local requirements="$1"
  local stamp="$ROOT/.venv/.requirements.sha256"
  local want
  want="$(cat "$ROOT"/requirements*.txt | sha256sum | cut -d' ' -f1)"
  if [ ! -x "$ROOT/.venv/bin/python" ]; then
    log "creating the virtual environment (.venv)"
    "$PYTHON" -m venv "$ROOT/.venv"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want:$requirements" ]; then
    log "installing Python packages from $requirements"
    "$ROOT/.venv/bin/pip" install -q --upgrade pip >/dev/null
    "$ROOT/.venv/bin/pip" install -q -r "$ROOT/$requirements"
    echo "$want:$requirements" >"$stamp"
  fi
}

free_port() {
  "$ROOT/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# run_as_db_user CMD...: PostgreSQL refuses to run as root.
run_as_db_user() {
  if [ "$(id -u)" -eq 0 ]; then
    id -u postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start_postgres() {
  # start_postgres DIR PORT: a fresh cluster in DIR, trusting local connections.
  local dir="$1" port="$2" bindir
  bindir="$(pg_bindir)"
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir" 2>/dev/null || true
  if [ ! -f "$dir/PG_VERSION" ]; then
    run_as_db_user "$bindir/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  run_as_db_user "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-on} -c max_connections=200 -c shared_buffers=512MB" \
    start >/dev/null
  run_as_db_user "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -Atc \
    "SELECT 1 FROM pg_database WHERE datname='hitl'" | grep -q 1 ||
    run_as_db_user "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres hitl
}

stop_postgres() {
  local dir="$1"
  [ -f "$dir/postmaster.pid" ] && run_as_db_user "$(pg_bindir)/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
}

start_redis() {
  # start_redis DIR PORT
  local dir="$1" port="$2"
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save "" --appendonly no >/dev/null
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "redis did not start; see $dir/redis.log" >&2
  return 1
}

stop_redis() {
  # Waits until it has exited: Redis opens its log file for each line it writes, so a
  # folder removed while it says goodbye gets its log back (and rm -rf fails).
  local dir="$1" pid
  [ -f "$dir/redis.pid" ] || return 0
  pid="$(cat "$dir/redis.pid" 2>/dev/null)" || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}
