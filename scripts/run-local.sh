#!/usr/bin/env bash
# make run: DynamoDB Local + the gateway on :4000 with the demo config (mock models).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export LITELLM_MASTER_KEY=${LITELLM_MASTER_KEY:-sk-llmgate-demo-master-key}
go build -o bin/llmgate ./cmd/llmgate
exec scripts/with-dynamodb.sh bin/llmgate --config "${CONFIG:-config.demo.yaml}" --port "${PORT:-4000}" --banner
