#!/usr/bin/env bash
# TURN client against a real coturn on loopback (tympan-ice, tests/turn_coturn.rs).
set -euo pipefail
cd "$(dirname "$0")/../.."
PORT=${TYMPAN_TURN_PORT:-34780}
LOG=$(mktemp)
turnserver -n --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port="$PORT" \
    --lt-cred-mech --user=u:p --realm=tympan --allow-loopback-peers --no-cli --no-tls --no-dtls \
    --min-port=49200 --max-port=49400 --fingerprint --log-file=stdout --simple-log >"$LOG" 2>&1 &
TURN_PID=$!
cleanup() { kill "$TURN_PID" 2>/dev/null || true; wait "$TURN_PID" 2>/dev/null || true; rm -f "$LOG"; }
trap cleanup EXIT
for _ in $(seq 1 50); do
    if grep -q "Total General servers" "$LOG" 2>/dev/null || ss -lun 2>/dev/null | grep -q ":$PORT "; then break; fi
    sleep 0.1
done
TYMPAN_TURN_SERVER="127.0.0.1:$PORT" cargo test -p tympan-ice --test turn_coturn --locked -- --ignored --nocapture \
    || { echo "--- coturn log"; cat "$LOG"; exit 1; }
