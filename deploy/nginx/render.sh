#!/usr/bin/env bash
# Renders the gateway configuration: fills the ${GATEWAY_*} placeholders of
# the files beside this script and writes them to OUTDIR:
#   OUTDIR/nginx.conf          main file, to run the gateway on its own
#   OUTDIR/basalt.conf         the gateway (http context)
#   OUTDIR/basalt/proxy.conf   included by basalt.conf
#   OUTDIR/basalt/errors.conf  included by basalt.conf
#
# Usage: GATEWAY_UPSTREAMS="10.0.0.11:8080 10.0.0.12:8080" \
#        GATEWAY_PUBLIC_URL=https://api.example.com deploy/nginx/render.sh OUTDIR
#
# Settings (environment):
#   GATEWAY_UPSTREAMS      Basalt nodes, host:port, separated by spaces or commas (required)
#   GATEWAY_PUBLIC_URL     the URL clients use, as Basalt's BASALT_PUBLIC_URL;
#                          plain HTTP redirects there (required)
#   GATEWAY_SERVER_NAME    server_name (default: the host of GATEWAY_PUBLIC_URL)
#   GATEWAY_HTTP_LISTEN    listen address of the redirecting HTTP server (default 80)
#   GATEWAY_HTTPS_LISTEN   listen address of the HTTPS server (default 443)
#   GATEWAY_TLS_CERT       certificate chain, PEM (default /etc/ssl/basalt/fullchain.pem)
#   GATEWAY_TLS_KEY        its private key, PEM (default /etc/ssl/basalt/privkey.pem)
#   GATEWAY_LOG_DIR        folder of the access and error logs (default /var/log/nginx)
#   GATEWAY_MAX_FAILS      passive health check: failures before a node is
#                          skipped (default 2) ...
#   GATEWAY_FAIL_TIMEOUT   ... within this window, and skipped for as long (default 10s)
#   GATEWAY_EDGE_EXEMPT    addresses/CIDR ranges the edge rate limit does not
#                          count (default none), separated by spaces or commas
# Needs envsubst (Debian package gettext-base).
set -euo pipefail

src=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: render.sh OUTDIR}

: "${GATEWAY_UPSTREAMS:?set GATEWAY_UPSTREAMS to the Basalt nodes (host:port ...)}"
: "${GATEWAY_PUBLIC_URL:?set GATEWAY_PUBLIC_URL to the URL clients use (https://...)}"
host=${GATEWAY_PUBLIC_URL#*://}
host=${host%%/*}
host=${host%:*}
export GATEWAY_PUBLIC_URL=${GATEWAY_PUBLIC_URL%/}
export GATEWAY_SERVER_NAME=${GATEWAY_SERVER_NAME:-$host}
export GATEWAY_HTTP_LISTEN=${GATEWAY_HTTP_LISTEN:-80}
export GATEWAY_HTTPS_LISTEN=${GATEWAY_HTTPS_LISTEN:-443}
export GATEWAY_TLS_CERT=${GATEWAY_TLS_CERT:-/etc/ssl/basalt/fullchain.pem}
export GATEWAY_TLS_KEY=${GATEWAY_TLS_KEY:-/etc/ssl/basalt/privkey.pem}
export GATEWAY_LOG_DIR=${GATEWAY_LOG_DIR:-/var/log/nginx}
max_fails=${GATEWAY_MAX_FAILS:-2}
fail_timeout=${GATEWAY_FAIL_TIMEOUT:-10s}

GATEWAY_UPSTREAM_SERVERS=""
for node in ${GATEWAY_UPSTREAMS//,/ }; do
    GATEWAY_UPSTREAM_SERVERS+="    server $node max_fails=$max_fails fail_timeout=$fail_timeout;"$'\n'
done
export GATEWAY_UPSTREAM_SERVERS=${GATEWAY_UPSTREAM_SERVERS%$'\n'}
GATEWAY_EDGE_EXEMPT_LINES=""
for range in ${GATEWAY_EDGE_EXEMPT:-}; do
    for r in ${range//,/ }; do
        GATEWAY_EDGE_EXEMPT_LINES+="    $r 1;"$'\n'
    done
done
export GATEWAY_EDGE_EXEMPT_LINES=${GATEWAY_EDGE_EXEMPT_LINES%$'\n'}

if ! command -v envsubst >/dev/null 2>&1; then
    echo "render.sh needs envsubst (apt-get install gettext-base)" >&2
    exit 1
fi
# Only these names are replaced; nginx's own $variables are left alone.
# shellcheck disable=SC2016  # literal ${NAME}s: the list envsubst replaces
vars='${GATEWAY_UPSTREAM_SERVERS} ${GATEWAY_EDGE_EXEMPT_LINES} ${GATEWAY_PUBLIC_URL}
      ${GATEWAY_SERVER_NAME} ${GATEWAY_HTTP_LISTEN} ${GATEWAY_HTTPS_LISTEN}
      ${GATEWAY_TLS_CERT} ${GATEWAY_TLS_KEY} ${GATEWAY_LOG_DIR}'
mkdir -p "$out/basalt"
for file in nginx.conf basalt.conf basalt/proxy.conf basalt/errors.conf; do
    envsubst "$vars" <"$src/$file" >"$out/$file"
done
