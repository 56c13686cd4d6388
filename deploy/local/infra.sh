#!/usr/bin/env bash
# One-machine infrastructure of the help desk, started for real without Docker:
#   - Apache Kafka (KRaft, single node, broker + controller) from the official jars on
#     Maven Central, run with the machine's Java 17+;
#   - FerretDB v1 (MongoDB wire protocol, SQLite backend) built from its Go module.
#
# Usage: deploy/local/infra.sh install|up|down|status|env|kafka-stop|kafka-start
#   install  fetch Kafka jars and build FerretDB into $ROOT/.cache (skipped when cached)
#   up       install, then start both in the background and wait until they answer
#   down     stop both (SIGTERM, then SIGKILL after 20 s), by their own pid files
#   kafka-stop / kafka-start
#            stop only the broker, start it again on the same data and ports (fault tests:
#            a broker restart under clients that keep running)
#   status   say per component whether it runs; exit 0 when all run, 3 otherwise
#   env      print the endpoints as shell assignments (eval "$(infra.sh env)")
#
# Environment:
#   HELPDESK_LOCAL_DIR                     data/log/pid root (default $ROOT/.local)
#   HELPDESK_LOCAL_KAFKA_PORT              Kafka client port (default 9092)
#   HELPDESK_LOCAL_KAFKA_CONTROLLER_PORT   KRaft controller port (default Kafka port + 1)
#   HELPDESK_LOCAL_MONGODB_PORT            FerretDB port (default 27017)
#   HELPDESK_LOCAL_KAFKA_HEAP              JVM heap flags (default "-Xms256m -Xmx512m")
#   HELPDESK_LOCAL_KAFKA_JVM_OPTS          extra JVM flags (replace the GC defaults below)
#   HELPDESK_LOCAL_START_TIMEOUT           seconds to wait for each server (default 90)
# A second copy (e.g. for a test run) only needs its own HELPDESK_LOCAL_DIR and ports.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="$ROOT/.cache"

LOCAL_DIR="$(realpath -m "${HELPDESK_LOCAL_DIR:-$ROOT/.local}")"
RUN_DIR="$LOCAL_DIR/run"
LOG_DIR="$LOCAL_DIR/log"
DATA_DIR="$LOCAL_DIR/data"

KAFKA_PORT="${HELPDESK_LOCAL_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${HELPDESK_LOCAL_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
MONGODB_PORT="${HELPDESK_LOCAL_MONGODB_PORT:-27017}"
START_TIMEOUT="${HELPDESK_LOCAL_START_TIMEOUT:-90}"
STOP_TIMEOUT=20

KAFKA_POM="$HERE/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM" | head -n1)"
KAFKA_HOME="$CACHE/kafka/$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"
KAFKA_MARKER="$KAFKA_HOME/.installed"   # holds the sha256 of the pom the jars came from

FERRETDB_MODULE="github.com/FerretDB/FerretDB"
FERRETDB_VERSION="v1.24.2"
FERRETDB_BIN="$CACHE/bin/ferretdb"

die() { echo "infra: error: $*" >&2; exit 1; }
say() { echo "infra: $*"; }

# ---------------------------------------------------------------------------- install

need() { # need CMD WHAT-TO-INSTALL
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found: install $2"
}

need_java() {
  need java "a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)"
  local v
  v="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  [[ -n "$v" && "$v" -ge 17 ]] || die "Kafka $KAFKA_VERSION needs Java 17+, 'java' is version ${v:-unknown}: install openjdk-17-jre-headless or newer"
}

pom_sum() { sha256sum "$KAFKA_POM" | cut -d' ' -f1; }

kafka_installed() {
  [[ -f "$KAFKA_MARKER" && "$(cat "$KAFKA_MARKER")" == "$(pom_sum)" ]]
}

install_kafka() {
  [[ -n "$KAFKA_VERSION" ]] || die "no <kafka.version> in $KAFKA_POM"
  if kafka_installed; then
    return 0
  fi
  need_java
  need mvn "Apache Maven 3.6+ (Debian: apt-get install maven)"
  say "fetching Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
  local tmp="$KAFKA_HOME/libs.tmp"
  rm -rf "$tmp"
  mkdir -p "$KAFKA_HOME"
  # (the sed drops the bare colour resets Maven 3.8 prints even in batch mode)
  if ! mvn -B -q -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies -Dkafka.libs.dir="$tmp" 2>&1 |
    sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$/d'; then
    rm -rf "$tmp"
    rmdir "$KAFKA_HOME" 2>/dev/null || true
    die "Maven could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its dependencies (see above)"
  fi
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "Maven ran but kafka_2.13-$KAFKA_VERSION.jar is missing from $tmp"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  pom_sum >"$KAFKA_MARKER"
  say "Kafka $KAFKA_VERSION: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars"
}

ferretdb_installed() {
  [[ -x "$FERRETDB_BIN" ]] && [[ "$("$FERRETDB_BIN" --version 2>/dev/null | head -n1)" == "version: $FERRETDB_VERSION" ]]
}

# Not `go install $FERRETDB_MODULE/cmd/ferretdb@$FERRETDB_VERSION`, for two reasons:
#  - FerretDB v1 panics at start unless build/version/version.txt is embedded, and that
#    generated file is not in the module zip, so a plain `go install` gives a binary that
#    cannot start ("Invalid build/version/version.txt file content");
#  - `go install pkg@version` also asks the proxy for the module's version list (to check
#    deprecation), which a restricted proxy may refuse (403) although it serves the version.
# So: download that exact module version (checked against the checksum database as usual),
# copy it, write version.txt as FerretDB's docs ask, and build it with its own go.sum.
install_ferretdb() {
  if ferretdb_installed; then
    return 0
  fi
  need go "Go 1.24 or newer (FerretDB $FERRETDB_VERSION is built from source)"
  say "building FerretDB $FERRETDB_VERSION into $FERRETDB_BIN (first time: a few minutes)"
  local dir src="$CACHE/ferretdb/src-$FERRETDB_VERSION"
  # run outside any Go module (cd /) so that this is a plain module download
  local json
  if ! json="$(cd / && go mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION" 2>&1)"; then
    echo "$json" >&2
    die "the Go module proxy did not give $FERRETDB_MODULE@$FERRETDB_VERSION (see above)"
  fi
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")"
  [[ -n "$dir" && -f "$dir/go.mod" ]] || die "go mod download gave no source for $FERRETDB_MODULE@$FERRETDB_VERSION: $json"
  rm -rf "$src"
  mkdir -p "$(dirname "$src")" "$(dirname "$FERRETDB_BIN")"
  cp -R "$dir" "$src"
  chmod -R u+w "$src"
  echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
  if ! (cd "$src" && GOFLAGS='' go build -buildvcs=false -trimpath -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb); then
    rm -rf "$src" "$FERRETDB_BIN.tmp"
    die "building FerretDB $FERRETDB_VERSION failed (see above)"
  fi
  mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
  rm -rf "$src"; rmdir "$(dirname "$src")" 2>/dev/null || true
  ferretdb_installed || die "$FERRETDB_BIN does not report version $FERRETDB_VERSION"
}

cmd_install() {
  install_kafka
  install_ferretdb
  say "installed: Kafka $KAFKA_VERSION ($KAFKA_LIBS), FerretDB $FERRETDB_VERSION ($FERRETDB_BIN)"
}

# ---------------------------------------------------------------------------- processes

pid_file() { echo "$RUN_DIR/$1.pid"; }

# Prints the pid of component $1 if its pid file names a live process of that kind.
running_pid() {
  local name="$1" f pid pattern
  f="$(pid_file "$name")"
  [[ -f "$f" ]] || return 1
  pid="$(cat "$f" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  case "$name" in
    kafka) pattern="kafka.Kafka" ;;
    ferretdb) pattern="ferretdb" ;;
  esac
  # guard against a recycled pid
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -- "$pattern" >/dev/null || return 1
  echo "$pid"
}

port_open() { # port_open PORT
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Real protocol probes (python3 standard library only; pymongo may not be installed yet).
# Kafka: an ApiVersions request must come back with error_code 0.
kafka_answers() {
  command -v python3 >/dev/null 2>&1 || return 0
  python3 - "$KAFKA_PORT" <<'PY' 2>/dev/null
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
cid = b"helpdesk-infra"
req = struct.pack(">hhih", 18, 0, 7, len(cid)) + cid  # ApiVersions v0
s.sendall(struct.pack(">i", len(req)) + req)
def read(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            sys.exit(1)
        b += c
    return b
size, = struct.unpack(">i", read(4))
corr, err = struct.unpack(">ih", read(size)[:6])
sys.exit(0 if corr == 7 and err == 0 else 1)
PY
}

# FerretDB: OP_MSG {ping: 1, $db: "admin"} must answer ok: 1.0.
mongodb_answers() {
  command -v python3 >/dev/null 2>&1 || return 0
  python3 - "$MONGODB_PORT" <<'PY' 2>/dev/null
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
els = b"\x10ping\x00" + struct.pack("<i", 1) + b"\x02$db\x00" + struct.pack("<i", 6) + b"admin\x00"
doc = struct.pack("<i", 4 + len(els) + 1) + els + b"\x00"
body = struct.pack("<I", 0) + b"\x00" + doc
s.sendall(struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body)
def read(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            sys.exit(1)
        b += c
    return b
size, = struct.unpack("<i", read(4))
reply = read(size - 4)
i = reply.find(b"\x01ok\x00")
sys.exit(0 if i >= 0 and struct.unpack("<d", reply[i + 4:i + 12])[0] == 1.0 else 1)
PY
}

kafka_ready() {
  port_open "$KAFKA_PORT" &&
    tail -c "+$((LOG_OFFSET + 1))" "$LOG_DIR/kafka.log" 2>/dev/null | grep "Kafka Server started" >/dev/null &&
    kafka_answers
}

ferretdb_ready() {
  port_open "$MONGODB_PORT" && mongodb_answers
}

# wait_ready NAME PID CHECK-FUNCTION
wait_ready() {
  local name="$1" pid="$2" check="$3" start=$SECONDS
  while ((SECONDS - start < START_TIMEOUT)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "infra: error: $name exited during start; last lines of $LOG_DIR/$name.log:" >&2
      tail -n 40 "$LOG_DIR/$name.log" >&2 || true
      rm -f "$(pid_file "$name")"
      exit 1
    fi
    if "$check"; then
      say "$name ready in $((SECONDS - start)) s (pid $pid)"
      return 0
    fi
    sleep 0.3
  done
  echo "infra: error: $name did not answer within $START_TIMEOUT s; last lines of $LOG_DIR/$name.log:" >&2
  tail -n 40 "$LOG_DIR/$name.log" >&2 || true
  echo "infra: $name (pid $pid) is left running; stop it with: $0 down" >&2
  exit 1
}

# start_bg NAME CMD... : start detached (own session), log appended, pid recorded.
start_bg() {
  local name="$1"
  shift
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  echo "=== $(date -Is) starting $name" >>"$LOG_DIR/$name.log"
  # readiness checks only look at what this start writes, not at an older run's lines
  LOG_OFFSET="$(stat -c %s "$LOG_DIR/$name.log")"
  # No job control in a script, so the child is not a group leader and setsid(1) execs
  # in place: $! is the server's own pid.
  setsid "$@" </dev/null >>"$LOG_DIR/$name.log" 2>&1 &
  echo "$!" >"$(pid_file "$name")"
  LAST_PID=$!
}

start_ferretdb() {
  local pid
  if pid="$(running_pid ferretdb)"; then
    say "ferretdb already running (pid $pid)"
    return 0
  fi
  port_open "$MONGODB_PORT" && die "port $MONGODB_PORT is taken by another process (set HELPDESK_LOCAL_MONGODB_PORT)"
  mkdir -p "$DATA_DIR/ferretdb" "$DATA_DIR/ferretdb-state"
  # --debug-addr=- : no HTTP debug/metrics listener (its fixed default port 8088 would
  # collide between two copies).
  start_bg ferretdb "$FERRETDB_BIN" \
    --listen-addr="127.0.0.1:$MONGODB_PORT" \
    --handler=sqlite \
    --sqlite-url="file:$DATA_DIR/ferretdb/" \
    --state-dir="$DATA_DIR/ferretdb-state" \
    --debug-addr=- \
    --telemetry=disable \
    --log-level=warn
  wait_ready ferretdb "$LAST_PID" ferretdb_ready
}

# kafka_cmd MAIN-CLASS ARGS... : sets KAFKA_CMD to the java command line.
kafka_cmd() {
  local heap opts
  read -r -a heap <<<"${HELPDESK_LOCAL_KAFKA_HEAP:--Xms256m -Xmx512m}"
  # Serial GC: the least CPU and memory on a 2-core machine; pauses on a 512 MiB heap are short.
  read -r -a opts <<<"${HELPDESK_LOCAL_KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError}"
  KAFKA_CMD=(java "${heap[@]}" "${opts[@]}"
    -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$HERE/kafka/log4j2.yaml"
    -Dkafka.logs.dir="$LOG_DIR"
    -cp "$KAFKA_LIBS/*" "$@")
}

start_kafka() {
  local pid
  if pid="$(running_pid kafka)"; then
    say "kafka already running (pid $pid)"
    return 0
  fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process (set HELPDESK_LOCAL_KAFKA_PORT)"
  port_open "$KAFKA_CONTROLLER_PORT" && die "port $KAFKA_CONTROLLER_PORT is taken by another process (set HELPDESK_LOCAL_KAFKA_CONTROLLER_PORT)"
  need_java
  local kdata="$DATA_DIR/kafka" props="$RUN_DIR/kafka.properties" t
  mkdir -p "$kdata" "$RUN_DIR" "$LOG_DIR"
  t="$(<"$HERE/kafka/server.properties")"
  t="${t//@KAFKA_PORT@/"$KAFKA_PORT"}"
  t="${t//@CONTROLLER_PORT@/"$KAFKA_CONTROLLER_PORT"}"
  t="${t//@DATA_DIR@/"$kdata"}"
  printf '%s\n' "$t" >"$props"
  if [[ ! -f "$kdata/logs/meta.properties" ]]; then
    # A cluster id as kafka.tools.StorageTool random-uuid makes it (16 random bytes,
    # URL-safe base64 without padding, not starting with '-'), without a JVM start.
    local id=""
    until [[ "$id" =~ ^[A-Za-z0-9_][A-Za-z0-9_-]{21}$ ]]; do
      id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    say "formatting Kafka storage in $kdata/logs (cluster id $id)"
    kafka_cmd kafka.tools.StorageTool format --cluster-id "$id" --config "$props" --ignore-formatted
    "${KAFKA_CMD[@]}" >>"$LOG_DIR/kafka.log" 2>&1 || { tail -n 20 "$LOG_DIR/kafka.log" >&2; die "formatting Kafka storage failed"; }
  fi
  kafka_cmd kafka.Kafka "$props"
  start_bg kafka "${KAFKA_CMD[@]}"
  wait_ready kafka "$LAST_PID" kafka_ready
}

print_env() {
  echo "HELPDESK_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT"
  echo "HELPDESK_MONGODB_URI=mongodb://127.0.0.1:$MONGODB_PORT/"
}

cmd_up() {
  local t0=$SECONDS
  cmd_install
  start_ferretdb
  start_kafka
  say "up in $((SECONDS - t0)) s; logs in $LOG_DIR"
  print_env
}

stop_one() {
  local name="$1" pid i
  if ! pid="$(running_pid "$name")"; then
    rm -f "$(pid_file "$name")"
    say "$name not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name (pid $pid) still running after ${STOP_TIMEOUT} s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$(pid_file "$name")"
  say "$name stopped (pid $pid)"
}

cmd_down() {
  stop_one kafka
  stop_one ferretdb
}

cmd_status() {
  local all=0 pid addr
  # the addresses a running copy really uses (it may have been started with other ports)
  if pid="$(running_pid ferretdb)"; then
    addr="$(tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n 's/^--listen-addr=//p')"
    say "ferretdb running (pid $pid) mongodb://$addr/"
  else
    say "ferretdb stopped"
    all=3
  fi
  if pid="$(running_pid kafka)"; then
    addr="$(sed -n 's|^advertised.listeners=PLAINTEXT://||p' "$RUN_DIR/kafka.properties" 2>/dev/null)"
    say "kafka running (pid $pid) $addr (Kafka $KAFKA_VERSION)"
  else
    say "kafka stopped"
    all=3
  fi
  return "$all"
}

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) print_env ;;
  kafka-stop) stop_one kafka ;;
  kafka-start) start_kafka ;;
  *)
    echo "usage: $0 install|up|down|status|env|kafka-stop|kafka-start" >&2
    exit 2
    ;;
esac
