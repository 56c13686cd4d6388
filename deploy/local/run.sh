#!/usr/bin/env bash
# `make run`: the whole system on this machine. Starts Kafka and FerretDB (unless
# HELPDESK_KAFKA_BOOTSTRAP_SERVERS and HELPDESK_MONGODB_URI point elsewhere), then every
# service, prints the endpoints, and on Ctrl-C stops everything it started. Unless
# HELPDESK_SMTP_HOST names a mail server, notification's mail goes to a local sink
# (deploy/local/mail_sink.py) that keeps each message under $HELPDESK_LOCAL_DIR/mail/.
#
# Traces go out by OTLP when OTEL_EXPORTER_OTLP_ENDPOINT (and any other OTEL_* variable) is
# set in the environment: the services inherit it, each under its own OTEL_SERVICE_NAME.
#
# A second copy beside a running one needs its own HELPDESK_LOCAL_DIR and ports:
# HELPDESK_LOCAL_PORT_OFFSET (e.g. 100) shifts every port it opens, Kafka's and FerretDB's
# too unless HELPDESK_LOCAL_KAFKA_PORT / HELPDESK_LOCAL_MONGODB_PORT name them.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
LOCAL="${HELPDESK_LOCAL_DIR:-$ROOT/.local}"
PY="$ROOT/.venv/bin/python"
mkdir -p "$LOCAL/log"

offset="${HELPDESK_LOCAL_PORT_OFFSET:-0}"
[[ "$offset" =~ ^[0-9]+$ ]] || { echo "HELPDESK_LOCAL_PORT_OFFSET must be a number" >&2; exit 2; }
export HELPDESK_LOCAL_KAFKA_PORT="${HELPDESK_LOCAL_KAFKA_PORT:-$((9092 + offset))}"
export HELPDESK_LOCAL_MONGODB_PORT="${HELPDESK_LOCAL_MONGODB_PORT:-$((27017 + offset))}"
intake_grpc=$((50051 + offset))
routing_grpc=$((50052 + offset))
sla_grpc=$((50053 + offset))
notification_grpc=$((50054 + offset))
knowledge_grpc=$((50055 + offset))
export HELPDESK_HTTP_PORT="${HELPDESK_HTTP_PORT:-$((8080 + offset))}"
http="http://127.0.0.1:$HELPDESK_HTTP_PORT"
# Routing applies its decisions through intake's AssignTicket; sla auto-closes through intake.
export HELPDESK_INTAKE_TARGET="127.0.0.1:$intake_grpc"
# Intake asks knowledge for articles to suggest on every new ticket.
export HELPDESK_KNOWLEDGE_TARGET="127.0.0.1:$knowledge_grpc"
# The links notification puts in its messages: no portal here, so <portal>/tickets/HD-1 is
# intake's JSON view of the ticket, and the survey link its rating endpoint.
export HELPDESK_PORTAL_URL="${HELPDESK_PORTAL_URL:-$http/v1}"
survey="$http/v1/tickets/{ticket_id}/rating"
export HELPDESK_SURVEY_URL="${HELPDESK_SURVEY_URL:-$survey}"
mail_sink=0
if [[ -z "${HELPDESK_SMTP_HOST:-}" ]]; then
  mail_sink=1
  export HELPDESK_SMTP_HOST=127.0.0.1 HELPDESK_SMTP_PORT=$((2525 + offset))
fi

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
  export HELPDESK_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$HELPDESK_LOCAL_KAFKA_PORT"
  export HELPDESK_MONGODB_URI="mongodb://127.0.0.1:$HELPDESK_LOCAL_MONGODB_PORT/"
fi

if [[ $mail_sink == 1 ]]; then
  # its one line per message goes to this terminal
  "$PY" "$ROOT/deploy/local/mail_sink.py" --port "$HELPDESK_SMTP_PORT" --dir "$LOCAL/mail" &
  sink_pid=$!
  pids+=("$sink_pid")
  echo "starting the mail sink (pid $sink_pid, SMTP 127.0.0.1:$HELPDESK_SMTP_PORT, mail in $LOCAL/mail)"
fi

# name grpc-port metrics-port, as in the house plan's port table.
services=(
  "intake $intake_grpc $((9101 + offset))"
  "routing $routing_grpc $((9102 + offset))"
  "sla $sla_grpc $((9103 + offset))"
  "notification $notification_grpc $((9104 + offset))"
  "knowledge $knowledge_grpc $((9105 + offset))"
)
for entry in "${services[@]}"; do
  read -r name grpc metrics <<<"$entry"
  # each its own database, as in the chart, even when HELPDESK_MONGODB_DATABASE is set; its
  # own name in traces, even when OTEL_SERVICE_NAME is set for the shell
  HELPDESK_GRPC_PORT=$grpc HELPDESK_METRICS_PORT=$metrics HELPDESK_MONGODB_DATABASE="helpdesk_$name" \
    OTEL_SERVICE_NAME="$name" "$PY" -m "helpdesk.$name" >>"$LOCAL/log/$name.log" 2>&1 &
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
# Started before the services, it has bound its port or failed by now.
if [[ $mail_sink == 1 ]] && ! kill -0 "$sink_pid" 2>/dev/null; then
  echo "the mail sink did not start (see above); HELPDESK_LOCAL_PORT_OFFSET moves its port" >&2
  exit 1
fi

# The examples name the servers only where they are not the scripts' defaults.
intake_arg="" routing_arg="" sla_arg="" notification_arg="" knowledge_arg="" kafka_arg=""
[[ $intake_grpc == 50051 ]] || intake_arg=" --intake 127.0.0.1:$intake_grpc"
[[ $routing_grpc == 50052 ]] || routing_arg=" --routing 127.0.0.1:$routing_grpc"
[[ $sla_grpc == 50053 ]] || sla_arg=" --sla 127.0.0.1:$sla_grpc"
[[ $notification_grpc == 50054 ]] || notification_arg=" --notification 127.0.0.1:$notification_grpc"
[[ $knowledge_grpc == 50055 ]] || knowledge_arg=" --knowledge 127.0.0.1:$knowledge_grpc"
[[ $HELPDESK_KAFKA_BOOTSTRAP_SERVERS == 127.0.0.1:9092 ]] || kafka_arg=" --kafka $HELPDESK_KAFKA_BOOTSTRAP_SERVERS"
traces="made, not exported (set OTEL_EXPORTER_OTLP_ENDPOINT to send them by OTLP)"
if [[ -n "${OTEL_EXPORTER_OTLP_ENDPOINT:-}${OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:-}" ]]; then
  traces="OTLP to ${OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:-$OTEL_EXPORTER_OTLP_ENDPOINT}"
fi
if [[ $mail_sink == 1 ]]; then
  mail="127.0.0.1:$HELPDESK_SMTP_PORT, a local sink: a line here per message, the message in $LOCAL/mail/"
else
  mail="$HELPDESK_SMTP_HOST:${HELPDESK_SMTP_PORT:-25}"
fi

cat <<EOT

The help desk is running.
  Kafka               $HELPDESK_KAFKA_BOOTSTRAP_SERVERS
  MongoDB (FerretDB)  $HELPDESK_MONGODB_URI
  intake gRPC         127.0.0.1:$intake_grpc   metrics http://127.0.0.1:$((9101 + offset))/metrics
  intake HTTP/JSON    $http/docs (OpenAPI), Alertmanager webhook /v1/webhooks/alertmanager
  routing gRPC        127.0.0.1:$routing_grpc   metrics http://127.0.0.1:$((9102 + offset))/metrics
  sla gRPC            127.0.0.1:$sla_grpc   metrics http://127.0.0.1:$((9103 + offset))/metrics
  notification gRPC   127.0.0.1:$notification_grpc   metrics http://127.0.0.1:$((9104 + offset))/metrics
  knowledge gRPC      127.0.0.1:$knowledge_grpc   metrics http://127.0.0.1:$((9105 + offset))/metrics
  mail out (SMTP)     $mail
  traces              $traces

Tell routing who works where (teams, agents and rules, as JSON documents):
  .venv/bin/python deploy/local/routing_admin.py$routing_arg put-team '{"id": "it", "name": "IT support", "department": "it"}'
  .venv/bin/python deploy/local/routing_admin.py$routing_arg put-agent '{"id": "kim", "name": "Kim", "email": "kim@example.com", "teams": ["it"], "capacity": 5, "availability": "online"}'
  .venv/bin/python deploy/local/routing_admin.py$routing_arg put-rule '{"id": "vpn", "name": "VPN to IT", "conditions": [{"type": "words", "words": ["vpn"]}], "actions": [{"type": "set_team", "team": "it"}]}'

Give sla its targets (minutes, or "90s", "4h"; counted 24/7 unless the policy names a calendar_id):
  .venv/bin/python deploy/local/sla_admin.py$sla_arg put-calendar '{"id": "office", "name": "Office hours", "time_zone": "Europe/Moscow", "hours": {"monday": [{"start": "09:00", "end": "18:00"}], "tuesday": [{"start": "09:00", "end": "18:00"}], "wednesday": [{"start": "09:00", "end": "18:00"}], "thursday": [{"start": "09:00", "end": "18:00"}], "friday": [{"start": "09:00", "end": "18:00"}]}}'
  .venv/bin/python deploy/local/sla_admin.py$sla_arg put-policy '{"id": "std", "name": "Standard", "targets": {"first_response": "2m", "resolution": "4h"}}'
  .venv/bin/python deploy/local/sla_admin.py$sla_arg list

Tell notification how to reach people (requesters need nothing: they hear at the address they wrote from):
  .venv/bin/python deploy/local/notification_admin.py$notification_arg put-person '{"id": "kim", "name": "Kim", "email": "kim@example.com", "language": "en"}'
  .venv/bin/python deploy/local/notification_admin.py$notification_arg put-person '{"id": "lee", "name": "Lee", "email": "lee@example.com", "language": "ru"}'
  .venv/bin/python deploy/local/notification_admin.py$notification_arg put-subscription '{"id": "urgent", "name": "Urgent tickets to Lee", "event_types": ["ticket.created"], "conditions": {"priority": ["urgent"]}, "person_ids": ["lee"], "template": "ticket.event.watcher"}'

Write an article for requesters (new tickets about the VPN will carry it as a suggestion):
  .venv/bin/python deploy/local/knowledge_admin.py$knowledge_arg put-article '{"id": "vpn-down", "title": "VPN is down: what to do", "body": "Restart the VPN client; if it still fails, switch its protocol to TCP.", "language": "en", "visibility": "public"}'
  .venv/bin/python deploy/local/knowledge_admin.py$knowledge_arg search "vpn not working"

Open a ticket (gRPC); with the above, routing assigns it to kim, sla starts its clocks, ann gets
an acknowledgement by mail, kim hears of the assignment, and the ticket suggests vpn-down:
  .venv/bin/python deploy/local/create_ticket.py$intake_arg --subject "VPN is down" --email ann@example.com
  .venv/bin/python deploy/local/sla_admin.py$sla_arg ticket <its id>
  .venv/bin/python deploy/local/sla_admin.py$sla_arg at-risk --include-breached
  .venv/bin/python deploy/local/notification_admin.py$notification_arg deliveries --ticket <its id>
  .venv/bin/python deploy/local/notification_admin.py$notification_arg deliveries --status dead
  .venv/bin/python deploy/local/notification_admin.py$notification_arg replay <a dead delivery's id>

Or over HTTP:
  curl -s -X POST $http/v1/tickets -H 'content-type: application/json' \\
    -d '{"subject": "Printer jammed", "description": "3rd floor", "requester": {"email": "ann@example.com"}}'

Or publish a request on the intake topic (JSON, see README):
  .venv/bin/python deploy/local/create_ticket.py$kafka_arg --via-kafka --subject "Disk full on db-7" --email monitoring@example.com

Press Ctrl-C to stop everything.
EOT
status=0
wait -n "${pids[@]}" || status=$?
# Ctrl-C reaches the services too and they stop cleanly; any other end is news.
if [[ $status != 0 ]]; then
  echo "a service exited with status $status; see the logs under $LOCAL/log" >&2
fi
