# shellcheck shell=bash
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
    # Locals with names of their own: VAR may be a caller's local `port`,
    # which a local `port` here would hide from printf -v.
    local _ap_var=$1 _ap_base=$2 _ap_port _ap_low
    _ap_low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    if [ $((_ap_base + 500)) -ge "$_ap_low" ]; then
        echo "alloc_port: base $_ap_base reaches the ephemeral port range (from $_ap_low)" >&2
        return 1
    fi
    for _ap_port in $(seq "$_ap_base" $((_ap_base + 500))); do
        case "$PORTS_TAKEN" in *" $_ap_port "*) continue ;; esac
        if ! port_in_use "$_ap_port"; then
            PORTS_TAKEN+="$_ap_port "
            printf -v "$_ap_var" '%s' "$_ap_port"
            return 0
        fi
    done
    echo "alloc_port: no free port from $_ap_base" >&2
    return 1
}
