#!/usr/bin/env bash
# `make run`: the whole system on this machine. Starts Kafka and FerretDB (unless
# HELPDESK_KAFKA_BOOTSTRAP_SERVERS and HELPDESK_MONGODB_URI point elsewhere), then every
# service, prints the endpoints, and on Ctrl-C stops everything it started.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
LOCAL="${HELPDESK_LOCAL_DIR:-$ROOT/.local}"
PY="$ROOT/.venv/bin/python"
mkdir -p "$LOCAL/log"

started_infra=0
pids=()

stop_all() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ $started_infra == 1 ]]; then "$ROOT/deploy/local/infra.sh" down; fi
  echo "stopped."
  exit 0
}
trap stop_all INT TERM EXIT

if [[ -z "${HELPDESK_KAFKA_BOOTSTRAP_SERVERS:-}" || -z "${HELPDESK_MONGODB_URI:-}" ]]; then
  "$ROOT/deploy/local/infra.sh" up
  started_infra=1
  export HELPDESK_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:${HELPDESK_LOCAL_KAFKA_PORT:-9092}"
  export HELPDESK_MONGODB_URI="mongodb://127.0.0.1:${HELPDESK_LOCAL_MONGODB_PORT:-27017}/"
fi

# name grpc-port metrics-port, as in the house plan's port table.
services=(
  "intake 50051 9101"
)
for entry in "${services[@]}"; do
  read -r name grpc metrics <<<"$entry"
  HELPDESK_GRPC_PORT=$grpc HELPDESK_METRICS_PORT=$metrics \
    "$PY" -m "helpdesk.$name" >>"$LOCAL/log/$name.log" 2>&1 &
  pids+=("$!")
  echo "starting $name (pid $!, log $LOCAL/log/$name.log)"
done
for entry in "${services[@]}"; do
  read -r name grpc metrics <<<"$entry"
  if ! "$PY" "$ROOT/deploy/local/wait_serving.py" "127.0.0.1:$grpc" 60; then
    echo "$name did not become SERVING; last lines of its log:" >&2
    tail -n 30 "$LOCAL/log/$name.log" >&2
    exit 1
  fi
done

cat <<EOT

The help desk is running.
  Kafka               $HELPDESK_KAFKA_BOOTSTRAP_SERVERS
  MongoDB (FerretDB)  $HELPDESK_MONGODB_URI
  intake gRPC         127.0.0.1:50051   metrics http://127.0.0.1:9101/metrics
  intake HTTP/JSON    http://127.0.0.1:8080/docs (OpenAPI), Alertmanager webhook /v1/webhooks/alertmanager

Open a ticket (gRPC):
  .venv/bin/python deploy/local/create_ticket.py --subject "VPN is down" --email ann@example.com

Or over HTTP:
  curl -s -X POST http://127.0.0.1:8080/v1/tickets -H 'content-type: application/json' \
    -d '{"subject": "Printer jammed", "description": "3rd floor", "requester": {"email": "ann@example.com"}}'

Or publish a request on the intake topic (JSON, see README):
  .venv/bin/python deploy/local/create_ticket.py --via-kafka --subject "Disk full on db-7" --email monitoring@example.com

Press Ctrl-C to stop everything.
EOT
wait -n "${pids[@]}" || true
echo "a service exited; see the logs under $LOCAL/log" >&2
