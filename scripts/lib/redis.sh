# shellcheck shell=bash
# Throw-away Redis servers on loopback, for the test and cluster scripts.
# Source this file; it defines:
#   redis_start DIR PORT      starts redis-server on 127.0.0.1:PORT, no
#                             persistence, its pid file and log in DIR
#                             (created); waits until it answers PING.
#                             Starting again with the same DIR and PORT after
#                             redis_stop is a restart (empty: no persistence).
#   redis_stop DIR            stops that server (SIGTERM through its pid
#                             file, SIGKILL after 5 s) and waits until it is
#                             gone, so that the port is free again

redis_start() {
    local dir=$1 port=$2 _
    mkdir -p "$dir"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" ||
        return 1
    for _ in $(seq 1 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "Redis did not start on port $port; see $dir/redis.log" >&2
    tail -20 "$dir/redis.log" >&2 || true
    return 1
}

redis_stop() {
    local dir=$1 pid _
    [ -f "$dir/redis.pid" ] || return 0
    pid=$(cat "$dir/redis.pid" 2>/dev/null) || return 0
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || { rm -f "$dir/redis.pid"; return 0; }
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$dir/redis.pid"; return 0; }
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/redis.pid"
}
