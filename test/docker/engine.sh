#!/usr/bin/env bash
# Makes sure a Docker engine and docker-compose 1.x are usable on this machine.
#
# - installs Debian's docker.io, docker-compose, debootstrap (build-base.sh) and strace (run.sh's
#   loopback check) with apt-get when missing
#   (CI machines start bare; a developer machine usually has them already);
# - starts `dockerd --bridge=none --iptables=false` in the background when `docker info` fails:
#   no bridge and no iptables because the test runs everything with host networking on loopback,
#   and CI sandboxes often may not touch netfilter;
# - waits for the engine with a deadline and exits non-zero, saying why, when it never answers.
#
# Sourcing-safe: can be run (`bash test/docker/engine.sh`) or sourced by run.sh.
# Env: DOCKER_ENGINE_DEADLINE (seconds, default 60), DOCKERD_LOG (default /tmp/tierwatch-dockerd.log).
set -euo pipefail

engine_log() { printf '[engine] %s\n' "$*" >&2; }

engine_install_missing() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v strace >/dev/null 2>&1 || missing+=(strace) # run.sh traces the daemon's connect() calls
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  engine_log "installing with apt-get: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  # docker.io would overwrite a docker client installed elsewhere only if it lives in /usr/bin;
  # a newer client in /usr/local/bin keeps precedence and negotiates down to engine 20.10.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

engine_start_if_down() {
  local deadline_s="${DOCKER_ENGINE_DEADLINE:-60}"
  local log="${DOCKERD_LOG:-/tmp/tierwatch-dockerd.log}"
  if docker info >/dev/null 2>&1; then
    engine_log "engine already running"
    return 0
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    engine_log "FAIL: dockerd is not installed and could not be installed"
    return 1
  fi
  engine_log "starting dockerd --bridge=none --iptables=false (log: $log)"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  # setsid: the engine must outlive this script (later runs reuse it) and not get our signals.
  "${sudo[@]}" setsid dockerd --bridge=none --iptables=false >"$log" 2>&1 </dev/null &
  local pid=$!
  local waited=0
  until docker info >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      engine_log "FAIL: dockerd exited during start-up; last lines of $log:"
      tail -n 20 "$log" >&2 || true
      return 1
    fi
    if [ "$waited" -ge "$deadline_s" ]; then
      engine_log "FAIL: no Docker engine answered within ${deadline_s}s; last lines of $log:"
      tail -n 20 "$log" >&2 || true
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  engine_log "engine up after ${waited}s (dockerd pid $pid)"
}

engine_ensure() {
  engine_install_missing || { engine_log "FAIL: could not install the Docker packages"; return 1; }
  engine_start_if_down || {
    engine_log "FAIL: no Docker engine can be started on this machine; the Docker test cannot run"
    return 1
  }
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  engine_ensure
fi
