# Loopback ports for the servers the test, cluster and benchmark scripts start.
# Source this file; it defines:
#   alloc_port VAR BASE   the first port from BASE that no socket on this host
#                         uses and that this shell has not handed out yet,
#                         into VAR
#
# Every BASE must lie below Linux's ephemeral range (32768-60999 by default).
# A port inside it can be taken at any moment by the local end of an outgoing
# connection (a node's pool connecting to PostgreSQL, say), and a server that
# binds it afterwards fails with "Address already in use": CI saw exactly that
# with the gateway on 58080. alloc_port refuses such a BASE.
#
# A socket counts as a user of its port in any state (listening, connected,
# TIME-WAIT), so `ss` is asked; a connect() probe would miss every socket but
# the listening ones.

PORTS_TAKEN=" "

# port_in_use PORT: whether any TCP socket here has PORT as its local port.
port_in_use() {
    if command -v ss >/dev/null 2>&1; then
        [ -n "$(ss -Htan "sport = :$1")" ]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

alloc_port() {
    local var=$1 base=$2 port ephemeral_low
    ephemeral_low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    if [ $((base + 500)) -ge "$ephemeral_low" ]; then
        echo "alloc_port: base $base reaches the ephemeral port range (from $ephemeral_low)" >&2
        return 1
    fi
    for port in $(seq "$base" $((base + 500))); do
        case "$PORTS_TAKEN" in *" $port "*) continue ;; esac
        if ! port_in_use "$port"; then
            PORTS_TAKEN+="$port "
            printf -v "$var" '%s' "$port"
            return 0
        fi
    done
    echo "alloc_port: no free port from $base" >&2
    return 1
}
