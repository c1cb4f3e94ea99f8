#!/usr/bin/env bash
# Runs a command with DATABASE_URL naming a throwaway PostgreSQL server, then stops the server
# and deletes its files. A DATABASE_URL already in the environment is ignored on purpose: the
# tests create and drop databases, restart the server and need the TLS certificates made here.
#
#   scripts/with-postgres.sh cargo test --workspace
#
# Needs the PostgreSQL server binaries (initdb, pg_ctl); installs Debian's postgresql package
# when they are missing and apt-get is at hand. As root the server runs as the postgres user,
# since PostgreSQL refuses to run as root.
set -euo pipefail

find_bin_dir() {
  if command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return
  fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

bin_dir=$(find_bin_dir)
if [ -z "$bin_dir" ] || [ ! -x "$bin_dir/initdb" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "with-postgres: installing PostgreSQL server binaries" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin_dir=$(find_bin_dir)
  fi
fi
if [ -z "$bin_dir" ] || [ ! -x "$bin_dir/initdb" ]; then
  echo "with-postgres: no PostgreSQL server binaries (initdb) found; install PostgreSQL" >&2
  exit 1
fi

run_as=()
if [ "$(id -u)" = 0 ]; then
  run_as=(runuser -u postgres --)
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/qubit-pg.XXXXXX")
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

stop() {
  "${run_as[@]}" "$bin_dir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

"${run_as[@]}" "$bin_dir/initdb" -D "$dir/data" -U postgres -A trust --no-sync \
  --encoding=UTF8 --locale=C >/dev/null

# TLS from a throwaway CA, so tests can check certificate verification: the server's
# certificate names localhost and 127.0.0.1, and a second, unrelated CA serves as the wrong one.
tls="$dir/tls"
mkdir -p "$tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=qubit test CA" \
  -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=unrelated CA" \
  -keyout "$tls/wrong-ca.key" -out "$tls/wrong-ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
  -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$tls/ext.cnf"
openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
  -CAcreateserial -days 2 -extfile "$tls/ext.cnf" -out "$tls/server.pem" 2>/dev/null
cp "$tls/server.pem" "$tls/server.key" "$dir/data/"
chmod 600 "$dir/data/server.key"
[ "$(id -u)" = 0 ] && chown postgres "$dir/data/server.pem" "$dir/data/server.key"
chmod 755 "$tls" && chmod 644 "$tls"/*.pem
# fsync off: this cluster is thrown away, and the tests run faster without it.
"${run_as[@]}" "$bin_dir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o \
  "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off -c max_connections=500 -c ssl=on -c ssl_cert_file=server.pem -c ssl_key_file=server.key" \
  start >/dev/null

# The plain URL disables TLS; QUBIT_TEST_TLS_DATABASE_URL reaches the same server over TLS.
export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
export QUBIT_TEST_TLS_DATABASE_URL="postgres://postgres@localhost:$port/postgres?sslmode=require"
export QUBIT_TEST_CA_FILE="$tls/ca.pem" QUBIT_TEST_WRONG_CA_FILE="$tls/wrong-ca.pem"
# For a command that restarts the server, as the fault suite does.
export PG_BIN_DIR="$bin_dir" PG_DATA_DIR="$dir/data"
"$@"
