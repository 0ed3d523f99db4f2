#!/usr/bin/env bash
# Runs a command with DynamoDB Local up: starts it in memory on a free loopback port, exports
# LLMGATE_DYNAMODB_ENDPOINT, runs "$@", and stops DynamoDB Local however the command ends.
# With LLMGATE_DYNAMODB_ENDPOINT already set, it just runs the command against that endpoint.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${LLMGATE_DYNAMODB_ENDPOINT:-}" ]; then exec "$@"; fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pid=$("$root/scripts/dynamodb-local.sh" start "$port")
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT INT TERM
export LLMGATE_DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
"$@"
