#!/usr/bin/env bash
# Writes the secret files compose.yaml mounts, into deploy/compose/secrets/
# (or the folder given): random passwords, the URLs that embed them, the
# metrics token, RabbitMQ's default-user file and a self-signed certificate
# for the gateway (replace it with a real one: deploy/README.md).
#
# Usage: deploy/compose/make-secrets.sh [DIR] [HOSTNAME]
#   DIR       default: secrets/ beside this script
#   HOSTNAME  the certificate's name (default: localhost)
#
# Existing files are kept, so running it again never changes a password that
# a volume (PostgreSQL's, RabbitMQ's) already holds. Needs openssl.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/secrets}
host=${2:-localhost}
command -v openssl >/dev/null || { echo "make-secrets.sh needs openssl" >&2; exit 1; }

# Only the owner may enter the folder; the files themselves must be readable
# by the containers' users (Compose bind-mounts them as they are).
mkdir -p "$dir"
chmod 0700 "$dir"
umask 0222

# write NAME VALUE: once, without a trailing newline (Basalt strips one
# anyway; PostgreSQL's and Grafana's readers differ).
write() {
    if [ -e "$dir/$1" ]; then
        echo "kept    $dir/$1"
    else
        printf '%s' "$2" >"$dir/$1"
        echo "written $dir/$1"
    fi
}
read_or_new() { # a password: the existing file's, or a new one (hex: no URL escaping needed)
    if [ -e "$dir/$1" ]; then cat "$dir/$1"; else openssl rand -hex 24; fi
}

pg=$(read_or_new postgres_password)
write postgres_password "$pg"
write database_url "postgres://basalt:$pg@postgres:5432/basalt"

redis=$(read_or_new redis_password)
write redis_password "$redis"
write redis_url "redis://:$redis@redis:6379/0"

amqp=$(read_or_new rabbitmq_password)
write rabbitmq_password "$amqp"
write rabbitmq.conf "default_user = basalt
default_pass = $amqp
"
write amqp_url "amqp://basalt:$amqp@rabbitmq:5672/%2f"

write metrics_token "$(openssl rand -hex 32)"
write grafana_admin_password "$(openssl rand -hex 16)"

if [ -e "$dir/gateway_tls_cert.pem" ]; then
    echo "kept    $dir/gateway_tls_cert.pem"
else
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
        -subj "/CN=$host" -addext "subjectAltName=DNS:$host" \
        -keyout "$dir/gateway_tls_key.pem" -out "$dir/gateway_tls_cert.pem" 2>/dev/null
    echo "written $dir/gateway_tls_cert.pem, gateway_tls_key.pem (self-signed for $host)"
fi
