#!/bin/bash
# The container's health check. With the HTTP server on (TIERWATCH_HTTP_PORT set), it asks the
# running daemon's /healthz over bash's /dev/tcp: no Node process is started (the runtime image has
# no curl or wget), and it also proves the daemon itself answers. Without the server it runs
# `tierwatch health`, which starts Node and reads the database read-only.
# Exit 0 healthy, 1 unhealthy, with the one-line verdict on stdout (shown by `docker inspect`).
set -u
port=${TIERWATCH_HTTP_PORT:-}
if [ -z "$port" ]; then
  exec node /app/dist/src/cli.js health
fi
host=${TIERWATCH_HTTP_HOST:-0.0.0.0}
case $host in 0.0.0.0 | :: | '') host=127.0.0.1 ;; esac
if ! { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null; then
  echo "unhealthy: nothing answers on $host:$port (TIERWATCH_HTTP_PORT)"
  exit 1
fi
printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
response=$(timeout 5 cat <&3)
exec 3<&-
status=$(printf '%s\n' "$response" | head -n 1 | cut -d ' ' -f 2)
body=${response#*$'\r\n\r\n'}
printf 'via /healthz: %s\n' "${body:-HTTP status ${status:-none}}"
[ "$status" = 200 ]
