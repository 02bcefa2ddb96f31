#!/usr/bin/env bash
# Browser end-to-end: three headless Chromium sessions (Debian's chromium + chromium-driver)
# drive the web room served by the sfu example on 127.0.0.1 (tests/browser/e2e.py: join,
# participants, audio/video both ways, chat, mute, leave). The harness picks free ports, starts
# the server and chromedriver, and stops them (and the browsers) when it exits.
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --example sfu --locked
# The WHIP phase: a str0m WHIP publisher (crates/sfu/examples/whip_publish.rs) that e2e.py
# starts into a room a browser then watches.
cargo build -p tympan-sfu --example whip_publish --locked
PY_PID=
cleanup() {
    if [ -n "$PY_PID" ] && kill -0 "$PY_PID" 2>/dev/null; then
        kill -TERM "$PY_PID" 2>/dev/null || true
        wait "$PY_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
python3 tests/browser/e2e.py --server-bin "$TARGET/debug/examples/sfu" \
    --whip-bin "$TARGET/debug/examples/whip_publish" \
    --pcap "$PWD/../shared/testdata/rtp-captures/vp8.pcap" &
PY_PID=$!
wait "$PY_PID"
