#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the tests that need one (the PostgreSQL
# calibrator store). Uses the Debian `postgresql` package's binaries directly: no cluster
# registered with pg_ctlcluster, nothing left behind after `stop`.
#
#   scripts/postgres-test-server.sh start [DIR]   initdb into DIR (default: a new temp dir),
#                                                 start on a free port from 55432, create
#                                                 database `lossd`; prints shell `export`
#                                                 lines to eval:
#                                                   LOSSD_TEST_POSTGRES_URL  postgres://... URL
#                                                   LOSSD_TEST_PGCTL   command prefix that takes
#                                                                      `start` / `stop -m fast`
#                                                   LOSSD_TEST_PGDIR   the directory (for `stop`)
#   scripts/postgres-test-server.sh stop DIR      stops the server and removes DIR
#
# PostgreSQL refuses to run as root: as root the cluster belongs to user `postgres` and
# every server command runs through `runuser -u postgres --`. As another user it runs as
# that user. Binaries: $PG_BINDIR, else /usr/lib/postgresql/15/bin, else the newest
# /usr/lib/postgresql/*/bin.
set -euo pipefail

bindir=${PG_BINDIR:-}
if [ -z "$bindir" ]; then
  if [ -x /usr/lib/postgresql/15/bin/pg_ctl ]; then
    bindir=/usr/lib/postgresql/15/bin
  else
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  fi
fi
[ -n "$bindir" ] && [ -x "$bindir/pg_ctl" ] || { echo "postgres-test-server: no pg_ctl (install the Debian package postgresql)" >&2; exit 2; }

if [ "$(id -u)" -eq 0 ]; then
  as_owner=(runuser -u postgres --)
  owner=postgres
else
  as_owner=()
  owner=$(id -un)
fi

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cmd=${1:-}
case "$cmd" in
  start)
    dir=${2:-$(mktemp -d /tmp/lossd-pg.XXXXXX)}
    mkdir -p "$dir"
    chmod 755 "$dir"
    [ "$owner" = "$(id -un)" ] || chown "$owner" "$dir"
    port=${PG_TEST_PORT:-55432}
    for _ in $(seq 1 200); do port_free "$port" && break; port=$((port + 1)); done
    "${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
fsync = on
logging_collector = off
EOF
    pgctl="${as_owner[*]} $bindir/pg_ctl -D $dir/data -l $dir/server.log -w -t 30"
    $pgctl start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    "${as_owner[@]}" "$bindir/psql" -h "$dir" -p "$port" -U postgres -d postgres -qAtc "CREATE DATABASE lossd" >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    # A password for the URL, so tests can check that it is never printed.
    "${as_owner[@]}" "$bindir/psql" -h "$dir" -p "$port" -U postgres -d postgres -qAtc \
      "CREATE ROLE lossd LOGIN PASSWORD 'test-secret-pw'; ALTER DATABASE lossd OWNER TO lossd" >/dev/null
    echo "export LOSSD_TEST_POSTGRES_URL='postgres://lossd:test-secret-pw@127.0.0.1:$port/lossd'"
    echo "export LOSSD_TEST_PGCTL='$pgctl'"
    echo "export LOSSD_TEST_PGDIR='$dir'"
    ;;
  stop)
    dir=${2:-${LOSSD_TEST_PGDIR:-}}
    [ -n "$dir" ] && [ -d "$dir" ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
    if [ -f "$dir/data/postmaster.pid" ]; then
      "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start [DIR] | stop DIR" >&2
    exit 2
    ;;
esac
