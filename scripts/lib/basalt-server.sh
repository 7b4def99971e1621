# shellcheck shell=bash
# Starts the real binary for a check against it (schemathesis, the GraphQL
# clients), and stops it on exit. Source scripts/lib/ports.sh first.
#
# basalt_serve LABEL FIRST_PORT [DATABASE_URL [REDIS_URL [AMQP_URL]]]
#   Serves "$BASALT_BIN" (default $CARGO_TARGET_DIR/debug/basalt) on a free
#   port from FIRST_PORT, on DATABASE_URL (default: a new SQLite file), with
#   Redis keys and RabbitMQ queues of its own (a prefix named after LABEL),
#   apart from any other run's. Sets `server_dir` (its data folder, with
#   server.log), `server_pid` and `base` (http://127.0.0.1:PORT), and waits
#   until it accepts connections. An EXIT trap stops it and removes the folder.
#   Extra settings for the server: the array `basalt_serve_settings`
#   (NAME=VALUE words, e.g. BASALT_CHAT__PRESENCE_TTL_SECS=5), if set.
basalt_serve() {
    local label=$1 first_port=$2 database_url=${3:-} redis_url=${4:-} amqp_url=${5:-}
    local bin="${BASALT_BIN:-${CARGO_TARGET_DIR:-target}/debug/basalt}" port prefix var
    alloc_port port "$first_port"
    server_dir=$(mktemp -d "/tmp/basalt-$label.XXXXXX")
    [ -n "$database_url" ] || database_url="sqlite://$server_dir/basalt.db"
    prefix="$label-$(date +%s%N)"
    # Only the settings below: Basalt refuses unknown BASALT_* variables, and
    # the caller's (BASALT_BIN, say) are not the server's.
    local inherited=()
    for var in $(compgen -e); do
        [[ "$var" != BASALT_* ]] || inherited+=(-u "$var")
    done
    env "${inherited[@]}" BASALT_LISTEN="127.0.0.1:$port" BASALT_DATA_DIR="$server_dir" \
        BASALT_DATABASE_URL="$database_url" \
        ${redis_url:+"BASALT_REDIS_URL=$redis_url" "BASALT_REDIS__KEY_PREFIX=$prefix"} \
        ${amqp_url:+"BASALT_AMQP_URL=$amqp_url" "BASALT_EVENTS__AMQP_PREFIX=$prefix"} \
        ${basalt_serve_settings[@]+"${basalt_serve_settings[@]}"} \
        BASALT_LOG_LEVEL=warn "$bin" serve >"$server_dir/server.log" 2>&1 &
    server_pid=$!
    trap basalt_serve_stop EXIT
    for _ in $(seq 1 150); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.2
    done
    base="http://127.0.0.1:$port"
}

basalt_serve_stop() {
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    rm -rf "$server_dir"
}
