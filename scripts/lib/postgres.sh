# shellcheck shell=bash
# Throw-away PostgreSQL clusters on loopback, for the test and cluster scripts.
# Source this file; it defines:
#   pg_bindir                 prints the folder of Debian's pg_ctl/initdb
#                             (fails when PostgreSQL is not installed)
#   pg_start DIR PORT         creates a cluster in DIR/data (DIR is created)
#                             and starts it on 127.0.0.1:PORT, trust auth,
#                             superuser `postgres`, durability off (fsync,
#                             synchronous_commit: a throw-away cluster, much
#                             faster); waits until it accepts connections.
#                             URL: postgres://postgres@127.0.0.1:PORT/postgres
#   pg_stop DIR               stops that cluster at once (immediate mode)
# initdb refuses to run as root, so as root the cluster runs as the
# unprivileged `postgres` user the package creates (made if missing).

pg_bindir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
    done
    return 1
}

# The command prefix that runs a command as the cluster's owner.
pg_as() {
    if [ "$(id -u)" -eq 0 ]; then
        echo "runuser -u postgres --"
    fi
}

pg_start() {
    local dir=$1 port=$2 bin
    bin=$(pg_bindir) || { echo "PostgreSQL is not installed" >&2; return 1; }
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 ||
            useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
        chown postgres "$dir"
    fi
    # shellcheck disable=SC2046  # pg_as prints words on purpose
    $(pg_as) "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null ||
        return 1
    # shellcheck disable=SC2046
    $(pg_as) "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start >/dev/null || { cat "$dir/server.log" >&2; return 1; }
}

pg_stop() {
    local dir=$1 bin
    [ -d "$dir/data" ] || return 0
    bin=$(pg_bindir) || return 0
    # shellcheck disable=SC2046
    $(pg_as) "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
}
