#!/usr/bin/env bash
# The real-Docker test of tierwatch as a daemon (issue 4): builds the image, runs it through
# docker-compose.yml plus test/docker/compose.ci.yml against the simulator on loopback, and checks
# what an operator relies on. Prints one PASS/FAIL line per check and a summary; exits non-zero on
# any miss, and when no Docker engine can be started at all.
#
#   sudo bash test/docker/run.sh       (from anywhere; root: engine, debootstrap, chown, strace)
#
# Env: TIERWATCH_IMAGE (default tierwatch:ci), TIERWATCH_BASE_IMAGE (default
#      tierwatch-base:node24-bookworm, built by build-base.sh when missing; set BUILD_IMAGE and
#      RUNTIME_IMAGE to use other bases, e.g. the official node:24-bookworm(-slim) where pullable),
#      KEEP=1 leaves the containers, volume and temp dir in place for inspection.
#
# Network: image builds may reach the npm registry (like `npm ci`); once running, the container
# uses host networking and talks only to the simulator on 127.0.0.1.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export PATH="$REPO/node_modules/.bin:$PATH"

IMAGE="${TIERWATCH_IMAGE:-tierwatch:ci}"
BASE_IMAGE="${TIERWATCH_BASE_IMAGE:-tierwatch-base:node24-bookworm}"
BUILD_IMAGE="${BUILD_IMAGE:-$BASE_IMAGE}"
RUNTIME_IMAGE="${RUNTIME_IMAGE:-$BASE_IMAGE}"
PROJECT="tierwatch-ci-$$"
BUILD_LOG=/tmp/tierwatch-docker-build.log # kept after the run, for a failed build
DEMO_PUBLIC_KEY=qfex_pub_demo_tierwatch
DEMO_SECRET_KEY=qfex_secret_demo_tierwatch_not_a_real_key
STOP_WITHIN_S=15       # "well inside" the grace period (sweep shutdown bound is 10 s)

RESULTS=()
FAILED=0
TIMINGS=()
pass() { RESULTS+=("PASS  $1"); printf 'PASS  %s\n' "$1"; }
fail() { RESULTS+=("FAIL  $1${2:+ ($2)}"); FAILED=$((FAILED + 1)); printf 'FAIL  %s%s\n' "$1" "${2:+ ($2)}"; }
info() { printf '[docker-test] %s\n' "$*" >&2; }
timed() { # <label> <command...>: runs it, records how long it took, returns its status
  local label=$1 start=$SECONDS status
  shift
  "$@"
  status=$?
  TIMINGS+=("$label: $((SECONDS - start))s")
  info "$label took $((SECONDS - start))s (status $status)"
  return "$status"
}
# wait_for <seconds> <command...>: polls every half second until the command succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.5
  done
}

summary_and_exit() {
  echo
  echo "== tierwatch Docker test: summary =="
  printf '%s\n' "${RESULTS[@]}"
  printf 'timing  %s\n' "${TIMINGS[@]}"
  if [ "$FAILED" -gt 0 ] || [ "${#RESULTS[@]}" -eq 0 ]; then
    echo "RESULT: FAIL ($FAILED of ${#RESULTS[@]} checks failed)"
    exit 1
  fi
  echo "RESULT: PASS (${#RESULTS[@]} checks)"
  exit 0
}

# --- 1. engine, base image, project build ------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
  # debootstrap, chown of the secret to uid 1000 and strace of the daemon all need root.
  fail "the Docker test runs as root" "run it with sudo"
  summary_and_exit
fi
# shellcheck source=engine.sh
source "$HERE/engine.sh"
set +e # engine.sh runs with -e for its own steps; the checks below handle each status themselves
if ! timed "engine (install + start)" engine_ensure; then
  fail "a Docker engine is available" "no engine could be started; see the lines above"
  summary_and_exit
fi
pass "a Docker engine is available ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"

if [ "$BUILD_IMAGE" = "$BASE_IMAGE" ] || [ "$RUNTIME_IMAGE" = "$BASE_IMAGE" ]; then
  if ! timed "base image" env TIERWATCH_BASE_IMAGE="$BASE_IMAGE" bash "$HERE/build-base.sh"; then
    fail "the Node 24 stand-in base image builds"
    summary_and_exit
  fi
fi

if ! timed "host build (npm run build)" bash -c "cd '$REPO' && npm run --silent build >/dev/null"; then
  fail "npm run build on the host (needed for the simulator)"
  summary_and_exit
fi

VERSION=$(node -p "require('$REPO/package.json').version")
if ! timed "image build" docker build --network host --force-rm \
  --build-arg BUILD_IMAGE="$BUILD_IMAGE" --build-arg RUNTIME_IMAGE="$RUNTIME_IMAGE" \
  --build-arg VERSION="$VERSION" --build-arg REVISION="$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)" \
  -t "$IMAGE" "$REPO" >"$BUILD_LOG" 2>&1; then
  tail -n 30 "$BUILD_LOG" >&2
  fail "the project image builds" "log: $BUILD_LOG"
  summary_and_exit
fi
pass "the project image builds ($IMAGE)"

# Issue 13: the image documents its port and carries the OCI labels.
exposed=$(docker image inspect "$IMAGE" --format '{{json .Config.ExposedPorts}}')
label_version=$(docker image inspect "$IMAGE" --format '{{index .Config.Labels "org.opencontainers.image.version"}}')
label_title=$(docker image inspect "$IMAGE" --format '{{index .Config.Labels "org.opencontainers.image.title"}}')
if printf '%s' "$exposed" | grep -q '"9464/tcp"' && [ "$label_version" = "$VERSION" ] && [ "$label_title" = "tierwatch" ]; then
  pass "the image EXPOSEs 9464 and carries OCI labels (version $label_version)"
else
  fail "the image EXPOSEs 9464 and carries OCI labels" "exposed: $exposed; version: $label_version; title: $label_title"
fi
if grep -q '^[[:space:]]*logging:' "$REPO/docker-compose.yml"; then
  fail "docker-compose.yml leaves the log driver to the host" "it sets logging:"
else
  pass "docker-compose.yml leaves the log driver to the host"
fi

# --- 2. simulator and compose project -----------------------------------------------------------
WORK=$(mktemp -d "/tmp/$PROJECT.XXXXXX")
SIM_PID=""
DC=(docker-compose --project-directory "$WORK" -p "$PROJECT" -f "$REPO/docker-compose.yml" -f "$HERE/compose.ci.yml")
cleanup() {
  if [ -n "$SIM_PID" ]; then kill "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null; fi
  if [ "${KEEP:-0}" = "1" ]; then
    info "KEEP=1: left project $PROJECT and $WORK in place"
    return
  fi
  TIERWATCH_IMAGE="$IMAGE" "${DC[@]}" down -v --remove-orphans >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_simulator() {
  (cd "$REPO" && exec node dist/src/cli.js simulate --port "${1:-0}" --change-every 2s) \
    >"$WORK/simulator.out" 2>"$WORK/simulator.log" &
  SIM_PID=$!
  wait_for 15 grep -q 'ws://127\.0\.0\.1:[0-9]' "$WORK/simulator.out"
}
stop_simulator() {
  kill "$SIM_PID" 2>/dev/null
  wait "$SIM_PID" 2>/dev/null
  SIM_PID=""
}

if ! start_simulator 0; then
  cat "$WORK/simulator.log" >&2
  fail "the simulator starts on loopback"
  summary_and_exit
fi
SIM_URL=$(grep -o 'ws://127\.0\.0\.1:[0-9]*' "$WORK/simulator.out" | head -n 1)
info "simulator at $SIM_URL (pid $SIM_PID)"

# The operator's files, as docker-compose.yml documents them: .env (no secret) and the secret file
# owned by the container's uid with mode 0400.
cat >"$WORK/.env" <<EOF
QFEX_WS_URL=$SIM_URL
QFEX_PUBLIC_KEY=$DEMO_PUBLIC_KEY
QFEX_ACCOUNT_IDS=primary
EOF
mkdir -p "$WORK/secrets"
(umask 077 && printf '%s\n' "$DEMO_SECRET_KEY" >"$WORK/secrets/qfex_secret_key")
chown 1000 "$WORK/secrets/qfex_secret_key" && chmod 0400 "$WORK/secrets/qfex_secret_key"

export TIERWATCH_IMAGE="$IMAGE"
TIERWATCH_CI_HTTP_PORT=$(node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })")
export TIERWATCH_CI_HTTP_PORT
if ! "${DC[@]}" up -d --no-build >"$WORK/compose-up.log" 2>&1; then
  cat "$WORK/compose-up.log" >&2
  fail "docker-compose up starts the service"
  summary_and_exit
fi
CONTAINER=$("${DC[@]}" ps -q tierwatch)
VOLUME=$(docker inspect "$CONTAINER" --format '{{range .Mounts}}{{if eq .Destination "/data"}}{{.Name}}{{end}}{{end}}')
info "container $CONTAINER, volume $VOLUME"

health() { docker inspect "$CONTAINER" --format '{{if .State.Health}}{{.State.Health.Status}}{{end}}'; }
is_health() { [ "$(health)" = "$1" ]; }
last_health_output() { docker inspect "$CONTAINER" --format '{{range .State.Health.Log}}{{println .Output}}{{end}}' | grep -v '^[[:space:]]*$' | tail -n 1; }
# One value from the database on the volume, read by the image's own better-sqlite3 in a separate
# container with no network (so this works whether the service is running or stopped).
db_value() {
  docker run --rm --network none -v "$VOLUME:/data" --entrypoint node "$IMAGE" -e '
    const Database = require("better-sqlite3");
    const db = new Database("/data/tierwatch.db", { readonly: true, fileMustExist: true });
    const row = db.prepare(process.argv[1]).raw().get();
    console.log(row === undefined ? "" : String(row[0]));' "$1" 2>/dev/null
}
db_at_least() { local v; v=$(db_value "$1"); [ -n "$v" ] && [ "$v" -ge "$2" ]; }

# --- 3. the checks ------------------------------------------------------------------------------
start=$SECONDS
if wait_for 60 is_health healthy; then
  pass "the container becomes healthy ($((SECONDS - start))s)"
else
  fail "the container becomes healthy within 60s" "health: $(health); last check: $(last_health_output)"
fi

# The health check asks /healthz (the HTTP server is on), without Node; with the port unset it
# falls back to `tierwatch health`.
via_http=$(docker exec "$CONTAINER" /app/healthcheck.sh 2>&1)
via_cli=$(docker exec -e TIERWATCH_HTTP_PORT= "$CONTAINER" /app/healthcheck.sh 2>&1)
if [[ $via_http == "via /healthz: healthy"* ]] && [[ $via_cli == "healthy:"* ]] && [[ $(last_health_output) == "via /healthz:"* ]]; then
  pass "the health check uses /healthz when the HTTP server is on, \`tierwatch health\` otherwise"
else
  fail "the health check uses /healthz when the HTTP server is on" "http: $via_http; cli: $via_cli; last: $(last_health_output)"
fi
engine_driver=$(docker info --format '{{.LoggingDriver}}' 2>/dev/null)
container_driver=$(docker inspect "$CONTAINER" --format '{{.HostConfig.LogConfig.Type}}')
if [ -n "$engine_driver" ] && [ "$container_driver" = "$engine_driver" ]; then
  pass "the container logs through the engine's own driver ($container_driver)"
else
  fail "the container logs through the engine's own driver" "engine: $engine_driver; container: $container_driver"
fi

uids=$(docker exec "$CONTAINER" sh -c 'for s in /proc/[0-9]*/status; do awk "/^Uid:/ { print \$2 }" "$s"; done' 2>/dev/null | sort -u | tr '\n' ' ')
if [ "${uids% }" = "1000" ]; then
  pass "every process in the container runs as uid 1000 (node), not root"
else
  fail "every process in the container runs as uid 1000" "uids seen: ${uids:-none}"
fi

if wait_for 30 db_at_least "select count(*) from tiers_current" 1 &&
  wait_for 10 db_at_least "select count(*) from run_ledger where status = 'ok'" 1; then
  pass "the volume's database holds tiers ($(db_value "select count(*) from tiers_current")) and ledger rows ($(db_value "select count(*) from run_ledger"))"
else
  fail "the volume's database holds tiers and ledger rows" "tiers: $(db_value "select count(*) from tiers_current"); runs: $(db_value "select count(*) from run_ledger")"
fi

if wait_for 30 db_at_least "select count(*) from tier_changes where change = 'changed'" 1; then
  changed_symbol=$(db_value "select symbol from tier_changes where change = 'changed' order by observed_at, symbol limit 1")
  changes_out=$(docker run --rm --network none -v "$VOLUME:/data" "$IMAGE" changes --format json 2>"$WORK/changes.err")
  changes_status=$?
  if [ "$changes_status" -eq 0 ] && printf '%s' "$changes_out" | grep -q "\"$changed_symbol\""; then
    pass "a tier changed by the simulator ($changed_symbol) shows up in \`tierwatch changes\` run from the image"
  else
    fail "a tier changed by the simulator shows up in \`tierwatch changes\`" \
      "exit $changes_status, $(head -c 300 "$WORK/changes.err" | tr '\n' ' ')"
  fi
else
  fail "the simulator's tier changes are recorded within 30s" "changes: $(db_value "select count(*) from tier_changes")"
fi

# Loopback only: trace every connect() the daemon makes over a few sweeps (a sweep's connection
# lives ~10 ms, too short to sample). Every IPv4/IPv6 peer must be 127.0.0.1 or ::1; a DNS lookup or
# a connection to any other address would show here.
init_pid=$(docker inspect "$CONTAINER" --format '{{.State.Pid}}')
daemon_pid=$(pgrep -P "$init_pid" -f cli.js | head -n 1)
daemon_pid=${daemon_pid:-$init_pid} # no init process in between
timeout 7 strace -f -qq -p "$daemon_pid" -e trace=connect -o "$WORK/connect.trace" >/dev/null 2>&1
peers=$(grep -o 'sin6\?_addr=inet\(_pton(AF_INET6, \|_addr(\)"[^"]*"' "$WORK/connect.trace" 2>/dev/null | grep -o '"[^"]*"' | tr -d '"' | sort | uniq -c)
foreign=$(printf '%s\n' "$peers" | awk '$2 != "" && $2 != "127.0.0.1" && $2 != "::1" { printf " %s", $2 }')
if [ -z "$peers" ]; then
  fail "the daemon's connections go to loopback only" "no connect() of pid $daemon_pid traced in 7s"
elif [ -n "$foreign" ]; then
  fail "the daemon's connections go to loopback only" "it connected to:$foreign"
else
  pass "the daemon's connections go to loopback only ($(printf '%s' "$peers" | awk '{ n += $1 } END { print n }') connects traced, all to $(printf '%s' "$peers" | awk '{ printf "%s ", $2 }' | sed 's/ $//'))"
fi

if docker logs "$CONTAINER" 2>&1 | grep -qF "$DEMO_SECRET_KEY"; then
  fail "no secret appears in docker logs"
elif [ "$(docker logs "$CONTAINER" 2>&1 | wc -l)" -lt 3 ]; then
  fail "no secret appears in docker logs" "the log is nearly empty, so the check proves nothing"
else
  pass "no secret appears in docker logs ($(docker logs "$CONTAINER" 2>&1 | wc -l) lines at debug level)"
fi

# docker stop, as an operator would: it uses the container's stop timeout from stop_grace_period.
runs_before=$(db_value "select count(*) from run_ledger")
stop_start_ms=$(date +%s%3N)
docker stop "$CONTAINER" >/dev/null
stop_ms=$(($(date +%s%3N) - stop_start_ms))
stop_s="$((stop_ms / 1000)).$(printf '%03d' $((stop_ms % 1000)))"
exit_code=$(docker inspect "$CONTAINER" --format '{{.State.ExitCode}}')
stop_timeout=$(docker inspect "$CONTAINER" --format '{{.Config.StopTimeout}}')
if [ "$exit_code" = "0" ] && [ "$stop_ms" -lt $((STOP_WITHIN_S * 1000)) ]; then
  pass "docker stop ends it with exit 0 in ${stop_s}s (grace period ${stop_timeout:-?}s)"
else
  fail "docker stop ends it with exit 0 within ${STOP_WITHIN_S}s" "exit $exit_code after ${stop_s}s"
fi
# A log shipper reads docker logs: every line, through the sweeps and the SIGTERM, is JSON.
not_json=$(docker logs "$CONTAINER" 2>&1 | node -e '
  let n = 0, bad = 0, signal = 0;
  for (const line of require("fs").readFileSync(0, "utf8").split("\n")) {
    if (line === "") continue;
    n++;
    try { if (JSON.parse(line).signal === "SIGTERM") signal++; } catch { bad++; console.error(line.slice(0, 120)); }
  }
  console.log(`${n} ${bad} ${signal}`);' 2>"$WORK/not-json.txt")
read -r log_lines bad_lines signal_lines <<<"$not_json"
if [ "${bad_lines:-1}" = "0" ] && [ "${signal_lines:-0}" -ge 1 ]; then
  pass "every docker log line is JSON, the SIGTERM line included ($log_lines lines)"
else
  fail "every docker log line is JSON, the SIGTERM line included" "$not_json; first: $(head -n 1 "$WORK/not-json.txt")"
fi
running_left=$(db_value "select count(*) from run_ledger where status = 'running'")
if [ "$running_left" = "0" ]; then
  pass "no run is left 'running' in the ledger after the stop"
else
  fail "no run is left 'running' in the ledger after the stop" "running: ${running_left:-?}"
fi

# Restart the same container on the same volume: history intact, collection resumes.
versions_before=$(db_value "select count(*) from tier_version")
changes_before=$(db_value "select count(*) from tier_changes")
max_run_before=$(db_value "select max(run_id) from run_ledger")
ok_before=$(db_value "select count(*) from run_ledger where status = 'ok'")
"${DC[@]}" start tierwatch >/dev/null 2>&1
if wait_for 60 db_at_least "select count(*) from run_ledger where status = 'ok' and run_id > ${max_run_before:-0}" 1 &&
  wait_for 30 is_health healthy; then
  pass "after a restart, collection resumes (new ok runs after run $max_run_before) and the container is healthy"
else
  fail "after a restart, collection resumes" "health: $(health); runs after: $(db_value "select count(*) from run_ledger where run_id > ${max_run_before:-0}")"
fi
kept=$(db_value "select (select count(*) from tier_version where run_id <= ${max_run_before:-0}) || ',' ||
  (select count(*) from tier_changes where run_id <= ${max_run_before:-0}) || ',' ||
  (select count(*) from run_ledger where run_id <= ${max_run_before:-0} and status = 'ok')")
if [ -n "$runs_before" ] && [ "$kept" = "$versions_before,$changes_before,$ok_before" ]; then
  pass "after a restart, the history is intact ($versions_before versions, $changes_before changes, $ok_before ok runs)"
else
  fail "after a restart, the history is intact" "before: $versions_before,$changes_before,$ok_before; now: $kept"
fi

# Take the exchange away: the health check must notice within the (short) threshold.
# It must be healthy first, or turning unhealthy would prove nothing.
if ! wait_for 30 is_health healthy; then
  fail "with the simulator gone, the container turns unhealthy" "it was not healthy before the simulator stopped: $(health)"
  summary_and_exit
fi
stop_simulator
start=$SECONDS
if wait_for 45 is_health unhealthy; then
  pass "with the simulator gone, the container turns unhealthy ($((SECONDS - start))s): $(last_health_output | head -c 160)"
else
  fail "with the simulator gone, the container turns unhealthy within 45s" "health: $(health)"
fi

# Stop during a sweep: the simulator comes back on the same port with every page answered 8 s late,
# so a sweep is in flight when docker stop arrives. The daemon must abort it, record it as aborted
# (nothing half-written) and exit 0 well inside the grace period.
SIM_PORT=${SIM_URL##*:}
printf '{ "faults": [{ "kind": "delay_page", "ms": 8000, "persistent": true }] }\n' >"$WORK/slow.json"
(cd "$REPO" && exec node dist/src/cli.js simulate --port "$SIM_PORT" --scenario "$WORK/slow.json") \
  >"$WORK/simulator-slow.out" 2>"$WORK/simulator-slow.log" &
SIM_PID=$!
if wait_for 30 db_at_least "select count(*) from run_ledger where status = 'running' and run_id > ${max_run_before:-0}" 1; then
  inflight_run=$(db_value "select max(run_id) from run_ledger where status = 'running'")
  stop_start_ms=$(date +%s%3N)
  docker stop "$CONTAINER" >/dev/null
  stop_ms=$(($(date +%s%3N) - stop_start_ms))
  exit_code=$(docker inspect "$CONTAINER" --format '{{.State.ExitCode}}')
  inflight_status=$(db_value "select status from run_ledger where run_id = $inflight_run")
  half=$(db_value "select (select count(*) from tier_version where run_id = $inflight_run) + (select count(*) from tier_changes where run_id = $inflight_run)")
  if [ "$exit_code" = "0" ] && [ "$stop_ms" -lt $((STOP_WITHIN_S * 1000)) ] && [ "$inflight_status" = "aborted" ] && [ "$half" = "0" ]; then
    pass "docker stop during a sweep: exit 0 in $((stop_ms / 1000)).$(printf '%03d' $((stop_ms % 1000)))s, run $inflight_run recorded 'aborted' with no rows written"
  else
    fail "docker stop during a sweep exits 0 quickly and records the run as aborted" \
      "exit $exit_code after ${stop_ms} ms; run $inflight_run is '${inflight_status}', rows written: ${half:-?}"
  fi
else
  fail "docker stop during a sweep" "no sweep was seen in flight within 30s (health: $(health))"
fi

summary_and_exit
