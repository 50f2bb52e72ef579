#!/usr/bin/env bash
# The README's "Running it in production (Prefect)", command by command: from a machine where
# `make install` ran to a scheduled deployment and a green run of it against the sandbox.
#
#   scripts/try-deployment.sh [--keep]
#
# --keep leaves the Prefect server (UI at http://127.0.0.1:$PREFECT_PORT) and the worker running
# afterwards; without it the script stops what it started. Optional environment:
#   PREFECT_API_URL  a running Prefect server to use (then none is started)
#   PREFECT_PORT     port of the server this script starts (default 4200)
#   M3SYNC_HOME      the home of the try-out (default ./.m3sync-try in the checkout)
#   VENV             the project's environment (default ./.venv, what `make install` made)
#   ALERT_WEBHOOK    URL the failure alerts are POSTed to as JSON (default: nowhere, 127.0.0.1:9)
#   DEMO_ORDERS      orders in the sandbox world (default 400, m3sync demo's)
set -euo pipefail

keep=false
[ "${1:-}" = "--keep" ] && keep=true

cd "$(dirname "$0")/.."
# 1. Where things are. The worker runs the flows from this checkout (prefect.yaml's pull step
#    reads M3SYNC_CHECKOUT from the worker's environment); M3SYNC_HOME holds the state store,
#    the sandbox, the reports and Prefect's own files.
export M3SYNC_CHECKOUT="$PWD"
export M3SYNC_HOME="${M3SYNC_HOME:-$M3SYNC_CHECKOUT/.m3sync-try}"
export PREFECT_HOME="${PREFECT_HOME:-$M3SYNC_HOME/prefect}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
BIN="${VENV:-$M3SYNC_CHECKOUT/.venv}/bin"
mkdir -p "$M3SYNC_HOME"
set -m # each background process gets a process group of its own, stopped as one at the end

started_pids=()
stop_started() {
    for pid in "${started_pids[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in "${started_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
if ! $keep; then
    trap stop_started EXIT
fi

wait_until_answering() { # URL, seconds
    "$BIN/python" - "$1" "$2" <<'EOF'
import sys, time, urllib.request
url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while True:
    try:
        urllib.request.urlopen(url, timeout=5)
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(f"{url} did not answer")
        time.sleep(0.5)
EOF
}

# 2. A Prefect server, and PREFECT_API_URL pointing every command below at it.
if [ -z "${PREFECT_API_URL:-}" ]; then
    port="${PREFECT_PORT:-4200}"
    "$BIN/prefect" server start --host 127.0.0.1 --port "$port" >"$M3SYNC_HOME/prefect-server.log" 2>&1 &
    started_pids+=("$!")
    export PREFECT_API_URL="http://127.0.0.1:$port/api"
fi
wait_until_answering "$PREFECT_API_URL/health" 120
echo "Prefect server: $PREFECT_API_URL"

# 3. config.toml. A sandbox run needs no [m3] or [amazon]: the deployment's `sandbox: true`
#    parameter runs against the emulators under HOME/sandbox. Live runs need both (README,
#    "Pointing it at a real M3 and a real Amazon account").
if [ ! -e "$M3SYNC_HOME/config.toml" ]; then
    cat >"$M3SYNC_HOME/config.toml" <<'EOF'
# What settle does with a refund or an order M3 has no credit note or invoice for: hold the settlement.
[settlement]
refunds_without_credit = "hold"
missing_invoices = "hold"
EOF
fi

# 4. Where alerts go: a notification block (here a webhook; Slack and e-mail in the README).
"$BIN/python" -c '
import sys
from prefect.blocks.notifications import CustomWebhookNotificationBlock
CustomWebhookNotificationBlock(
    name="m3sync alerts", url=sys.argv[1], json_data={"subject": "{{subject}}", "text": "{{body}}"}
).save("m3sync-alerts", overwrite=True)
' "${ALERT_WEBHOOK:-http://127.0.0.1:9/m3sync-alerts}"

# 5. Work pool, a concurrency limit of 1 per deployment, the alerting automations.
"$BIN/m3sync" ops setup --notify-block custom-webhook/m3sync-alerts

# 6. The deployments of prefect.yaml, with their schedules and concurrency limits.
"$BIN/prefect" --no-prompt deploy --all

# 7. A worker from the project's environment: its environment (M3SYNC_CHECKOUT, M3SYNC_HOME,
#    PREFECT_API_URL) is the flow runs'.
"$BIN/prefect" worker start --pool m3sync-process >"$M3SYNC_HOME/worker.log" 2>&1 &
started_pids+=("$!")

# 8. Something to settle: the demo's world, then the next 14 days of orders, invoices and settlements.
"$BIN/m3sync" demo --home "$M3SYNC_HOME" --orders "${DEMO_ORDERS:-400}"
"$BIN/m3sync" sandbox --advance 14d --home "$M3SYNC_HOME"

# 9. A run of the deployment against the sandbox, watched until it ends; it must end Completed.
"$BIN/prefect" deployment run settlement-reconciliation/settlement-reconciliation \
    --param sandbox=true --watch --watch-timeout 600 | tee "$M3SYNC_HOME/try-run.log" || true
grep -q "finished successfully in 'Completed'" "$M3SYNC_HOME/try-run.log" || {
    echo "try-deployment: the run did not end Completed (see $M3SYNC_HOME/try-run.log and worker.log)" >&2
    exit 1
}
echo "try-deployment: the settlement deployment ran against the sandbox and ended Completed"
if $keep; then
    echo "still running (process groups ${started_pids[*]:-none}): stop them with kill -- -PID"
fi
