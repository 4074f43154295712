#!/usr/bin/env bash
# Starts caseconf locally; called by `make run` after install, migrate and load.
#
# 1. Unless PREFECT_API_URL is set, start a Prefect server (SQLite under PREFECT_HOME) in the
#    background on PREFECT_SERVER_API_HOST:PREFECT_SERVER_API_PORT (default 127.0.0.1:4200),
#    log to var/prefect-server.log and wait until /api/health answers.
# 2. Run `python -m deployments serve` (the flows) until Ctrl-C.
# 3. On exit, stop the serve process and the server this script started (never anyone else's).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PY="$ROOT/.venv/bin/python"
PREFECT="$ROOT/.venv/bin/prefect"

export PREFECT_HOME="${PREFECT_HOME:-$ROOT/var/prefect}"
# A submitted form starts the run's next step within this many seconds (Prefect's default is 10).
export PREFECT_RUNNER_POLL_FREQUENCY="${PREFECT_RUNNER_POLL_FREQUENCY:-2}"
HOST="${PREFECT_SERVER_API_HOST:-127.0.0.1}"
PORT="${PREFECT_SERVER_API_PORT:-4200}"
LOG="$ROOT/var/prefect-server.log"
HEALTH_TIMEOUT=90

server_pid=""
serve_pid=""
catcher_pid=""
gateway_pid=""

healthy() { # $1 = API URL; true when GET $1/health answers 2xx
  "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/health", timeout=2)' \
    "$1" >/dev/null 2>&1
}

stop_serve() {
  [[ -n "$serve_pid" ]] || return 0
  kill -TERM "$serve_pid" 2>/dev/null || true # the Prefect runner shuts down gracefully on TERM
  wait "$serve_pid" 2>/dev/null || true
  serve_pid=""
}

stop_server() {
  [[ -n "$server_pid" ]] || return 0
  echo "Stopping the Prefect server (pid $server_pid)..."
  # The server runs in its own process group when setsid is available: signal the whole group.
  kill -TERM -- "-$server_pid" 2>/dev/null || kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.25
  done
  kill -KILL -- "-$server_pid" 2>/dev/null || kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

stop_gateway() {
  [[ -n "$gateway_pid" ]] || return 0
  kill -TERM "$gateway_pid" 2>/dev/null || true
  wait "$gateway_pid" 2>/dev/null || true
  gateway_pid=""
}

stop_catcher() {
  [[ -n "$catcher_pid" ]] || return 0
  kill -TERM "$catcher_pid" 2>/dev/null || true
  wait "$catcher_pid" 2>/dev/null || true
  catcher_pid=""
}

cleanup() {
  stop_serve
  stop_gateway
  stop_catcher
  stop_server
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n "${PREFECT_API_URL:-}" ]]; then
  echo "Using the Prefect server at PREFECT_API_URL=$PREFECT_API_URL (not starting one)."
  UI="${PREFECT_API_URL%/}"
  [[ "$UI" == */api ]] && UI="${UI%/api}" || UI="the UI of $PREFECT_API_URL"
else
  export PREFECT_API_URL="http://$HOST:$PORT/api"
  UI="http://$HOST:$PORT"
  if healthy "$PREFECT_API_URL"; then
    echo "error: a Prefect server already answers at $UI." >&2
    echo "       Stop it, set PREFECT_API_URL=$PREFECT_API_URL to use it," >&2
    echo "       or choose another port with PREFECT_SERVER_API_PORT." >&2
    exit 1
  fi

  mkdir -p "$PREFECT_HOME" "$(dirname "$LOG")"
  echo "Starting a Prefect server on $HOST:$PORT (PREFECT_HOME=$PREFECT_HOME, log: $LOG)..."
  # PREFECT_API_URL must not point the server at itself while it starts.
  if command -v setsid >/dev/null 2>&1; then
    env -u PREFECT_API_URL setsid "$PREFECT" server start --host "$HOST" --port "$PORT" \
      --analytics-off >"$LOG" 2>&1 &
  else
    env -u PREFECT_API_URL "$PREFECT" server start --host "$HOST" --port "$PORT" \
      --analytics-off >"$LOG" 2>&1 &
  fi
  server_pid=$!

  deadline=$((SECONDS + HEALTH_TIMEOUT))
  until healthy "$PREFECT_API_URL"; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "error: the Prefect server exited during start-up; last lines of $LOG:" >&2
      tail -n 30 "$LOG" >&2 || true
      server_pid=""
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      echo "error: no answer from $PREFECT_API_URL/health after ${HEALTH_TIMEOUT}s; see $LOG" >&2
      exit 1
    fi
    sleep 1
  done
  echo "Prefect server is up."
fi

# The demo Apprise config sends every e-mail to this local catcher: each message lands as an
# .eml file under var/mail/ and as one line in var/mail.log. Set CASECONF_APPRISE_CONFIG to
# your own config (kept outside the repository) to send for real; the catcher then stays idle.
MAIL_PORT="${CASECONF_MAIL_CATCHER_PORT:-2525}"
mkdir -p "$ROOT/var/mail"
"$PY" -m deployments.mailcatcher --host 127.0.0.1 --port "$MAIL_PORT" --dir "$ROOT/var/mail" \
  --chat-port 8765 --chat-dir "$ROOT/var/chat" \
  >>"$ROOT/var/mail.log" 2>&1 &
catcher_pid=$!

# The managers' read-only gateway: the same UI, every change refused (deployments/gateway.py).
MANAGER_PORT="${CASECONF_MANAGER_PORT:-4201}"
"$PY" -m deployments.gateway --upstream "${PREFECT_API_URL%/api}" --host 127.0.0.1 \
  --port "$MANAGER_PORT" >>"$ROOT/var/gateway.log" 2>&1 &
gateway_pid=$!

echo
echo "  Prefect UI:  $UI"
echo "  Managers:    http://127.0.0.1:$MANAGER_PORT (read-only; log: var/gateway.log)"
echo "  Mail:        every demo message under var/mail/ (chat: var/chat/), one line each in var/mail.log"
echo "  Stop with Ctrl-C."
echo

# In the background so that INT/TERM reach the traps at once; stop_serve forwards TERM.
"$PY" -m deployments serve &
serve_pid=$!
status=0
wait "$serve_pid" || status=$?
serve_pid=""
exit "$status"
