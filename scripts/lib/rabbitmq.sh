# Throw-away RabbitMQ brokers on loopback, for the test and cluster scripts.
# Source this file; it defines:
#   rabbitmq_start DIR PORT DIST_PORT
#                             starts a broker whose files live in DIR (created),
#                             AMQP on 127.0.0.1:PORT, Erlang distribution on
#                             DIST_PORT; waits until it accepts connections
#                             (user guest/guest, vhost /). Restarting with the
#                             same DIR keeps its durable queues and messages.
#   rabbitmq_stop DIR         stops that broker (through its pid file: the
#                             wrapper's own pid is not the broker's)
# Debian's rabbitmq-server runs the broker as the `rabbitmq` user, so DIR
# must belong to that user when we are root.

# The broker's Erlang node name for DIR: letters, digits, '-' and '_' only
# (a dot, as in mktemp's names, stops Erlang distribution from starting).
rabbitmq_node() {
    echo "basalt-$(basename "$1" | tr -c 'A-Za-z0-9_\n-' '_')@localhost"
}

rabbitmq_env() {
    local dir=$1 port=$2 dist_port=$3
    echo "RABBITMQ_NODENAME=$(rabbitmq_node "$dir")" \
        "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1" \
        "RABBITMQ_NODE_PORT=$port" \
        "RABBITMQ_DIST_PORT=$dist_port" \
        "RABBITMQ_MNESIA_BASE=$dir/mnesia" \
        "RABBITMQ_LOG_BASE=$dir/log" \
        "RABBITMQ_PID_FILE=$dir/broker.pid" \
        "RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins" \
        "RABBITMQ_CONFIG_FILE=$dir/rabbitmq" \
        "HOME=$dir"
}

rabbitmq_start() {
    local dir=$1 port=$2 dist_port=$3 as=()
    mkdir -p "$dir/log" "$dir/mnesia"
    echo '[].' >"$dir/enabled_plugins"
    # Loopback only; guest may log in from there (RabbitMQ's default).
    printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users.guest = true\n' "$port" >"$dir/rabbitmq.conf"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R rabbitmq:rabbitmq "$dir"
        as=(runuser -u rabbitmq --)
    fi
    # The real script, not Debian's wrapper (which logs to /var/log and
    # changes folder). Unquoted on purpose: one word per variable.
    # shellcheck disable=SC2046
    (cd "$dir" && "${as[@]}" env $(rabbitmq_env "$dir" "$port" "$dist_port") \
        /usr/lib/rabbitmq/bin/rabbitmq-server >"$dir/log/start.out" 2>&1 &)
    local _
    # Up to 60 s: a cold Erlang start on a loaded 2-core machine has taken
    # over 30.
    for _ in $(seq 1 600); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "RabbitMQ did not start on port $port; see $dir/log" >&2
    tail -20 "$dir/log/start.out" >&2 || true
    return 1
}

rabbitmq_stop() {
    local dir=$1 pid _
    [ -f "$dir/broker.pid" ] || return 0
    pid=$(cat "$dir/broker.pid" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}
