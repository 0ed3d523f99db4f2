#!/usr/bin/env bash
# make run: DynamoDB Local + the gateway with the demo config (mock models), on PORT if set,
# else LLMGATE_PORT (or llmgate_settings.port), else 4000. The banner prints the bound address.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export LITELLM_MASTER_KEY=${LITELLM_MASTER_KEY:-sk-llmgate-demo-master-key}
go build -o bin/llmgate ./cmd/llmgate
# --port only when PORT is set: it overrides everything, and passing a default would hide
# LLMGATE_PORT and the config file's port. (set -- rather than an empty array: bash 3.2's set -u.)
set --
if [ -n "${PORT:-}" ]; then set -- --port "$PORT"; fi
exec scripts/with-dynamodb.sh bin/llmgate --config "${CONFIG:-config.demo.yaml}" "$@" --banner
