#!/usr/bin/env python3
"""Browser end-to-end test of the tympan web room (issue 6, "Proof").

Drives three headless Chromium sessions through the real page served by the real server,
talking W3C WebDriver (JSON over HTTP) to `chromedriver` with nothing but the Python 3 standard
library. Scenario (the server runs with --max-room-size 3):

  1. three participants A, B, C join one room (two through /room/<name>, one through
     /?room=<name>); the page's stylesheet is applied;
  2. each sees the other two (names on the cards);
  3. everyone turns the camera on; each receives the others' audio (inbound-rtp packetsReceived
     growing) and video (framesDecoded growing), read from RTCPeerConnection.getStats() through
     the page's test hook (window.tympanTest, documented in crates/sfu/static/app.js); the
     selected ICE pairs are UDP; every card's speaking indicator lights up (the fake
     microphone beeps); /metrics and /api/rooms/<room> are scraped while media flows and the
     server's RTP packet and byte counters are checked against the sums of the browsers' own
     getStats() counters (window.tympanTest.rtpTotals()), per-peer RTT/loss/jitter/bit rates
     against plausible ranges;
  4. chat messages arrive everywhere with the right sender names (and as text, not HTML);
     room data over the data channels: A to everyone reaches B and C with from = A, A to B
     only does not reach C, B's lossy message arrives on the lossy channels, A's raised hand
     shows on the others' cards, B's reaction reaches A;
  5. B mutes: the others' cards show the microphone off; unmuting shows it on again;
  6. a fourth browser D, whose microphone is blocked by the browser's settings, tries to join
     the full room: the page is back on the landing form with the room_full error (and
     /metrics counts it in tympan_signalling_errors_total{code="room_full"});
  7. C leaves and disappears from the others' pages (the random room/name buttons work on its
     landing page); at the same moment B, whose signalling
     goes through a proxy that now holds back what the server sends by 4 s, turns its camera
     off: B's offer crosses the server's offer (glare); B rolls back, answers, offers again, and
     A sees B's camera off, then on again; reloading, C finds room and name remembered; A and
     B keep receiving each other's audio and video;
  8. D joins (and sees the chat messages of step 4 as earlier messages), over ICE-TCP only (the page's `?transport=tcp` keeps only the server's TCP
     candidates): D is told about the microphone, A and B show D's microphone off, D hears and
     sees A and B, they see D's camera, the selected pair is TCP, D's chat message arrives;
  9. the server restarts on the same ports: every page says the connection was lost, rejoins
     by itself, and media flows again.

Usage (from the repository root; .ci/steps/40-browser.sh does this):

  cargo build --example sfu
  python3 tests/browser/e2e.py [--server-bin target/debug/examples/sfu] [--url http://host:port]

`--url` runs the scenario against a server that is already running (then the room-size and
restart steps are skipped); `--no-media` skips the audio/video checks.
Environment: CHROMEDRIVER (default `chromedriver`), CHROMIUM (binary, default: chromedriver's
choice), E2E_TIMEOUT (seconds per wait, default 60), E2E_VERBOSE=1 (print every page log line).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import queue
import re
import time
import traceback
import urllib.error
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
LIVE_BROWSERS = []  # every Browser session opened, closed at exit
ROOM_SIZE = 3  # the server's --max-room-size: a fourth participant is refused with room_full
GLARE_DELAY = 4.0  # seconds B's incoming signalling is held back to provoke a glare
TIMEOUT = float(os.environ.get("E2E_TIMEOUT", "60"))
START = time.monotonic()


def say(*parts):
    print(f"[e2e +{time.monotonic() - START:6.1f}s]", *parts, flush=True)


class Failure(Exception):
    """A scenario step did not hold."""


# ------------------------------------------------------------------------------ processes


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_both():
    """A port number free for both TCP and UDP on 127.0.0.1 (best effort)."""
    for _ in range(50):
        port = free_port(socket.SOCK_STREAM)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    return free_port()


def wait_http(url, timeout, what, proc=None, log_path=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise Failure(f"{what} exited with status {proc.returncode} before it was ready"
                          + log_tail(log_path))
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read()
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            last = e
            time.sleep(0.2)
    raise Failure(f"{what} not ready at {url} after {timeout:.0f}s: {last}" + log_tail(log_path))


def log_tail(path, lines=80):
    if not path or not os.path.exists(path):
        return ""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace").splitlines()
    return f"\n--- last {min(lines, len(text))} lines of {path}\n" + "\n".join(text[-lines:])


class Processes:
    """Children started by the test; all killed on exit."""

    def __init__(self):
        self.procs = []

    def start(self, args, log_path, env=None):
        log = open(log_path, "ab")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
        self.procs.append((proc, log))
        return proc

    def stop(self, proc):
        """SIGTERM (then SIGKILL) to the child's whole process group (start_new_session), so
        browsers started by chromedriver go too."""
        for entry in list(self.procs):
            if entry[0] is not proc:
                continue
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except (ProcessLookupError, PermissionError):
                    break
                try:
                    proc.wait(5)
                    break
                except subprocess.TimeoutExpired:
                    continue
            entry[1].close()
            self.procs.remove(entry)

    def stop_all(self):
        for proc, _ in reversed(list(self.procs)):
            self.stop(proc)


class Server:
    """The sfu example on fixed free ports, so it can be restarted at the same address."""

    def __init__(self, procs, binary, log_path):
        self.procs = procs
        self.log_path = log_path
        http_port, udp_port, tcp_port = free_port(), free_port_both(), free_port_both()
        while tcp_port == udp_port:
            tcp_port = free_port_both()
        self.url = f"http://127.0.0.1:{http_port}"
        self.cmd = [binary, "--http", f"127.0.0.1:{http_port}", "--udp", f"127.0.0.1:{udp_port}",
                    "--tcp", f"127.0.0.1:{tcp_port}", "--max-room-size", str(ROOM_SIZE)]
        self.env = dict(os.environ)
        self.env.setdefault("TYMPAN_LOG", "info")
        self.env.setdefault("NO_COLOR", "1")  # plain server log for the failure report
        self.proc = None

    def start(self):
        say("starting server:", " ".join(self.cmd))
        self.proc = self.procs.start(self.cmd, self.log_path, self.env)
        wait_http(self.url + "/healthz", 60, "server", self.proc, self.log_path)

    def stop(self):
        say("stopping server (SIGTERM)")
        self.procs.stop(self.proc)
        self.proc = None


class DelayProxy:
    """A TCP proxy on 127.0.0.1 in front of the server's HTTP port that can hold back what the
    server sends (order kept) by `delay` seconds: signalling latency for one browser, to make
    its offers cross the server's (glare). Media does not pass through it."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.delay = 0.0
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, src, dst, delayed):
        chunks = queue.Queue()

        def writer():
            while True:
                due, data = chunks.get()
                if data is None:
                    break
                time.sleep(max(0.0, due - time.monotonic()))
                try:
                    dst.sendall(data)
                except OSError:
                    break
            for sock in (dst, src):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=writer, daemon=True).start()
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            chunks.put((time.monotonic() + (self.delay if delayed else 0.0), data or None))
            if not data:
                return

    def close(self):
        self.listener.close()


# ------------------------------------------------------------------------------ WebDriver


class WebDriver:
    """Minimal W3C WebDriver client."""

    def __init__(self, base):
        self.base = base.rstrip("/")

    def call(self, method, path, body=None, timeout=60):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json; charset=utf-8"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                payload = json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                payload = json.loads(e.read())
            except ValueError:
                raise Failure(f"WebDriver {method} {path}: HTTP {e.code}") from None
            value = payload.get("value") or {}
            raise Failure(f"WebDriver {method} {path}: {value.get('error')}: "
                          f"{(value.get('message') or '')[:800]}") from None
        return payload.get("value")


CHROMIUM_FLAGS = [
    "--headless=new",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-dev-shm-usage",
    # Chromium honours only the LAST --disable-features flag: keep every feature in this one.
    "--disable-features=WebRtcHideLocalIpsWithMdns,Translate,MediaRouter,OptimizationHints",
    "--window-size=1000,800",
]


class Browser:
    """One Chromium session, driving the page like a user would."""

    def __init__(self, wd, label, profile_dir, microphone_blocked=False):
        """`microphone_blocked`: no fake permission prompt; the profile's content settings
        block the microphone (the user said no) and allow the camera."""
        self.wd = wd
        self.label = label
        args = [f for f in CHROMIUM_FLAGS
                if not (microphone_blocked and f == "--use-fake-ui-for-media-stream")]
        args.append(f"--user-data-dir={profile_dir}")
        if os.geteuid() == 0:
            args.append("--no-sandbox")
        options = {"args": args}
        if microphone_blocked:
            options["prefs"] = {"profile.default_content_setting_values.media_stream_mic": 2,
                                "profile.default_content_setting_values.media_stream_camera": 1}
        if os.environ.get("CHROMIUM"):
            options["binary"] = os.environ["CHROMIUM"]
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "goog:loggingPrefs": {"browser": "ALL"},
        }}}
        value = wd.call("POST", "/session", caps, timeout=120)
        self.sid = value["sessionId"]
        self.console = []
        LIVE_BROWSERS.append(self)

    def _s(self, path):
        return f"/session/{self.sid}{path}"

    def get(self, url):
        self.wd.call("POST", self._s("/url"), {"url": url})

    def js(self, script, *args):
        """Runs `script` as a function body; a returned Promise is awaited (W3C semantics)."""
        return self.wd.call("POST", self._s("/execute/sync"), {"script": script, "args": list(args)})

    def find(self, css):
        value = self.wd.call("POST", self._s("/element"), {"using": "css selector", "value": css})
        return value[ELEMENT]

    def click(self, css):
        self.wd.call("POST", self._s(f"/element/{self.find(css)}/click"), {})

    def type(self, css, text, clear=True):
        el = self.find(css)
        if clear:
            self.wd.call("POST", self._s(f"/element/{el}/clear"), {})
        self.wd.call("POST", self._s(f"/element/{el}/value"), {"text": text})

    def value(self, css):
        return self.js("return document.querySelector(arguments[0]).value", css)

    def state(self):
        return self.js("return window.tympanTest ? window.tympanTest.state() : null")

    def stats(self):
        return self.js("return window.tympanTest ? window.tympanTest.stats() : []")

    def page_log(self):
        try:
            return self.js("return window.tympanTest ? window.tympanTest.log() : []") or []
        except Failure as e:
            return [f"(page log unavailable: {e})"]

    def browser_console(self):
        try:
            entries = self.wd.call("POST", self._s("/se/log"), {"type": "browser"}) or []
            self.console.extend(f"{e.get('level')} {e.get('message')}" for e in entries)
        except Failure:
            pass
        return self.console

    def quit(self):
        if self in LIVE_BROWSERS:
            LIVE_BROWSERS.remove(self)
        try:
            self.wd.call("DELETE", self._s(""), timeout=20)
        except Failure:
            pass


# ------------------------------------------------------------------------------ scenario


def wait_for(what, predicate, timeout=TIMEOUT, interval=0.3):
    """Polls `predicate` (returns a truthy value when done, or raises Failure) until timeout."""
    deadline = time.monotonic() + timeout
    last_err = None
    while True:
        try:
            result = predicate()
            if result:
                return result
            last_err = None
        except Failure as e:
            last_err = e
        if time.monotonic() > deadline:
            detail = f": {last_err}" if last_err else ""
            raise Failure(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


def others_names(state):
    return sorted(p["name"] for p in state.get("participants", []))


def media_by_participant(stats):
    """{participant id: {"audio": packetsReceived, "video": framesDecoded, "video_packets": n}}"""
    out = {}
    for s in stats:
        pid = s.get("participant")
        if not pid:
            continue
        entry = out.setdefault(pid, {"audio": 0, "video": 0, "video_packets": 0})
        if s.get("kind") == "audio":
            entry["audio"] += s.get("packetsReceived") or 0
        elif s.get("kind") == "video":
            entry["video"] += s.get("framesDecoded") or 0
            entry["video_packets"] += s.get("packetsReceived") or 0
    return out


def check_media_flows(ids, who, audio_from=None, settle=3.0):
    """Each browser in `who` receives audio (packets growing) and video (frames growing) from
    every other browser in `who` (audio only from those in `audio_from`, default all)."""
    audio_from = who if audio_from is None else audio_from

    def sample():
        return {b.label: media_by_participant(b.stats()) for b in who}

    def all_nonzero():
        snap = sample()
        missing = []
        for b in who:
            for o in who:
                if o is b:
                    continue
                m = snap[b.label].get(ids[o.label], {})
                if o in audio_from and not m.get("audio"):
                    missing.append(f"{b.label} has no audio packets from {o.label}")
                if not m.get("video"):
                    missing.append(f"{b.label} has decoded no video frame from {o.label} "
                                   f"({m.get('video_packets', 0)} video packets)")
        if missing:
            raise Failure("; ".join(missing))
        return snap

    first = wait_for("media from every other participant", all_nonzero, timeout=max(TIMEOUT, 60))
    time.sleep(settle)
    second = sample()
    problems = []
    for b in who:
        for o in who:
            if o is b:
                continue
            pid = ids[o.label]
            a0, a1 = first[b.label][pid]["audio"], second[b.label].get(pid, {}).get("audio", 0)
            v0, v1 = first[b.label][pid]["video"], second[b.label].get(pid, {}).get("video", 0)
            if o in audio_from and a1 <= a0:
                problems.append(f"{b.label}: audio packets from {o.label} stalled at {a1}")
            if v1 <= v0:
                problems.append(f"{b.label}: decoded video frames from {o.label} stalled at {v1}")
            say(f"  {b.label} <- {o.label}: audio packets {a0} -> {a1}, video frames {v0} -> {v1}")
    if problems:
        raise Failure("media stopped flowing: " + "; ".join(problems))


def check_room_data(browsers, ids):
    """Room data over the data channels (docs/signalling.md, "Room data"), between A, B and C:
    A sends to everyone -> B and C receive it with from = A (A gets nothing back); A sends to B
    only -> B gets it, C does not (C gets A's next message, sent after it on the same ordered
    channel); B's message on the lossy channel arrives on the others' lossy channels; A's
    "raise hand" shows on the others' cards and lowers again; B's reaction reaches A."""
    a, b, c = browsers
    for br in browsers:
        wait_for(f"{br.label}: both room-data channels open",
                 lambda br=br: br.js("return window.tympanTest.dataOpen()") == {"reliable": True, "lossy": True})

    def received(br, pred):
        return [m for m in br.js("return window.tympanTest.roomData()") if pred(m)]

    def send(br, data, **options):
        if not br.js("return window.tympanTest.sendData(arguments[0], arguments[1])", data, options):
            raise Failure(f"{br.label}: sendData({data}, {options}) found no open channel")

    everyone = {"e2e": "to everyone", "n": [1, 2.5, None, "ü"]}
    send(a, everyone, topic="e2e")
    for br in (b, c):
        wait_for(f"{br.label}: A's message to everyone, from A",
                 lambda br=br: received(br, lambda m: m["data"] == everyone and m["from"] == ids["A"]
                                        and m["topic"] == "e2e" and not m["lossy"]))
    if received(a, lambda m: m["data"] == everyone):
        raise Failure("A received its own room-data message")

    private = {"e2e": "for B only"}
    marker = {"e2e": "after the private one"}
    send(a, private, to=[ids["B"]])
    send(a, marker)
    wait_for("B: A's private message", lambda: received(b, lambda m: m["data"] == private and m["from"] == ids["A"]))
    wait_for("C: A's message sent after the private one", lambda: received(c, lambda m: m["data"] == marker))
    if received(c, lambda m: m["data"] == private):
        raise Failure("C received the message A sent to B only")

    lossy = {"e2e": "lossy"}
    send(b, lossy, lossy=True)
    for br in (a, c):
        wait_for(f"{br.label}: B's message on the lossy channel",
                 lambda br=br: received(br, lambda m: m["data"] == lossy and m["from"] == ids["B"] and m["lossy"]))

    def hand_on(br, who, state):
        got = br.js("const el = document.querySelector(`.card[data-participant='${arguments[0]}']`);"
                    "return el && el.dataset.hand", ids[who])
        if got != state:
            raise Failure(f"{br.label}: {who}'s card shows hand {got!r}, expected {state!r}")
        return True

    a.click("#hand-button")
    for br in (b, c):
        wait_for(f"{br.label}: A's raised hand on A's card", lambda br=br: hand_on(br, "A", "up"))
    a.click("#hand-button")
    for br in (b, c):
        wait_for(f"{br.label}: A's hand lowered", lambda br=br: hand_on(br, "A", "down"))
    b.click("#reactions button[data-emoji='👏']")
    wait_for("A: B's reaction (lossy channel)",
             lambda: received(a, lambda m: m["from"] == ids["B"] and m["topic"] == "reaction"
                              and m["data"] == "👏" and m["lossy"]))
    for br in browsers:
        refused = [n for n in br.state()["notices"] if "room-data" in n]
        if refused:
            raise Failure(f"{br.label}: the server refused room data: {refused}")


def check_chat_history(late, label, expected):
    """A late joiner's page shows the room's earlier chat messages from `joined.chat_history`,
    in order and marked as earlier (`expected`: [(name, text)] oldest first)."""
    def history_shown():
        earlier = [(m["name"], m["text"]) for m in late.state()["chat"] if m.get("earlier")]
        if earlier != expected:
            raise Failure(f"{label} shows earlier messages {earlier}, expected {expected}")
        return True
    wait_for(f"{label}: the chat history of the room", history_shown)
    marked = late.js("return document.querySelectorAll('#chat-log li.earlier').length")
    if marked != len(expected):
        raise Failure(f"{label}: {marked} chat lines marked as earlier, expected {len(expected)}")


def scrape_metrics(base_url):
    """GET /metrics parsed into {(name, frozenset(labels)): value}; checks every sample has its
    family's # TYPE line before it."""
    with urllib.request.urlopen(base_url + "/metrics", timeout=10) as r:
        ctype = r.headers.get("Content-Type", "")
        text = r.read().decode("utf-8")
    if not ctype.startswith("text/plain; version=0.0.4"):
        raise Failure(f"/metrics Content-Type {ctype!r}")
    typed, out = set(), {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#") or not line:
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)', line)
        if not m:
            raise Failure(f"/metrics: bad sample line {line!r}")
        name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in typed and family not in typed:
            raise Failure(f"/metrics: {name} has no # TYPE line before it")
        out[(name, frozenset(re.findall(r'(\w+)="([^"]*)"', labels)))] = value
    return out


def metric(samples, name, **labels):
    key = (name, frozenset(labels.items()))
    if key not in samples:
        raise Failure(f"/metrics has no {name}{labels or ''}")
    return samples[key]


def rtp_totals(browsers):
    """Sums of the browsers' own getStats() RTP counters (window.tympanTest.rtpTotals())."""
    total = {}
    for br in browsers:
        t = br.js("return window.tympanTest.rtpTotals()") or {}
        for k, v in t.items():
            total[k] = total.get(k, 0) + (v or 0)
    return total


def check_metrics_against_browsers(base_url, room, browsers, ids):
    """Phase: /metrics and /api/rooms/<room> scraped while the three browsers send and receive
    audio and video, checked against what the browsers report through getStats().

    Each scrape is bracketed by two rounds of getStats() (before and after): the server's
    counters, which only grow, must lie between the two sums. Tolerance: 10% plus 50 packets,
    because (1) Chrome caches getStats() results for a short while and updates its RTP counters
    on its network thread, so a "before" round can be slightly stale; (2) what counts as a packet
    differs at the edges: Chrome's packetsSent/packetsReceived count the media SSRC only, while
    the server's rtp_in also counts RTX retransmissions it unwrapped, and padding-only bandwidth
    probes are counted by neither; (3) the subscriptions' first video packets before a keyframe
    are sent by the browser but not forwarded. Loopback itself loses nothing measurable."""
    say("metrics: /metrics and /api/rooms/<room> against the browsers' getStats()")
    m0 = scrape_metrics(base_url)
    for name in ("tympan_rooms", "tympan_participants", "tympan_tracks"):
        metric(m0, name)
    if metric(m0, "tympan_participants") < 3 or metric(m0, "tympan_websocket_connections") < 3:
        raise Failure("/metrics does not count the three participants and their WebSockets")
    time.sleep(3)
    before = rtp_totals(browsers)
    m = scrape_metrics(base_url)
    after = rtp_totals(browsers)
    checks = [
        ("RTP packets in", metric(m, "tympan_rtp_packets_in_total"), "packetsSent"),
        ("RTP packets forwarded", metric(m, "tympan_rtp_packets_forwarded_total"), "packetsReceived"),
    ]
    for what, server_value, field in checks:
        low, high = before.get(field, 0), after.get(field, 0)
        say(f"  {what}: server {server_value:.0f}, browsers' {field} {low}..{high}")
        if low <= 0:
            raise Failure(f"the browsers report no {field}")
        if not (low * 0.9 - 50 <= server_value <= high * 1.1 + 50):
            raise Failure(f"{what}: server says {server_value:.0f}, browsers' {field} was {low}..{high}")
    # Bytes: the server's plaintext RTP bytes (headers included) against payload + header bytes.
    for what, name, payload, header in [
        ("RTP bytes in", "tympan_rtp_bytes_in_total", "bytesSent", "headerBytesSent"),
        ("RTP bytes forwarded", "tympan_rtp_bytes_forwarded_total", "bytesReceived", "headerBytesReceived"),
    ]:
        server_value = metric(m, name)
        low = before.get(payload, 0) + before.get(header, 0)
        high = after.get(payload, 0) + after.get(header, 0)
        say(f"  {what}: server {server_value:.0f}, browsers {low}..{high}")
        if not (low * 0.85 <= server_value <= high * 1.15 + 50_000):
            raise Failure(f"{what}: server says {server_value:.0f}, browsers {low}..{high}")
    for name in ("tympan_bytes_in_total", "tympan_datagrams_out_total", "tympan_rtcp_packets_in_total"):
        if metric(m, name) <= metric(m0, name):
            raise Failure(f"{name} did not grow while media flowed")
    if metric(m, "tympan_bytes_in_total") < metric(m, "tympan_rtp_bytes_in_total"):
        raise Failure("datagram bytes in < RTP bytes in")
    if metric(m, "tympan_room_participants_count") < 1:
        raise Failure("the room histogram counts no room")
    with urllib.request.urlopen(f"{base_url}/api/rooms/{room}", timeout=10) as r:
        details = json.loads(r.read().decode("utf-8"))
    got = sorted(p["id"] for p in details["participants"])
    if got != sorted(ids[br.label] for br in browsers):
        raise Failure(f"/api/rooms/{room} lists {got}, expected {ids}")
    for p in details["participants"]:
        inbound, outbound = p["inbound"], p["outbound"]
        say(f"  {p['id']}: {p['transport']}, rtt {p['rtt_ms']} ms, in {inbound['bitrate_bps']} bit/s "
            f"(lost {inbound['packets_lost']}, jitter {inbound['jitter_ms']:.1f} ms), out {outbound['bitrate_bps']} bit/s "
            f"(lost {outbound['packets_lost']}, jitter {outbound['jitter_ms']:.1f} ms)")
        if not p["connected"] or p["transport"] != "udp" or len(p["tracks"]) != 2:
            raise Failure(f"/api/rooms/{room}: {p}")
        if p["rtt_ms"] is None or not 0 <= p["rtt_ms"] < 1000:
            raise Failure(f"{p['id']}: RTT {p['rtt_ms']} (the browsers send receiver reports)")
        if inbound["bitrate_bps"] <= 0 or outbound["bitrate_bps"] <= 0:
            raise Failure(f"{p['id']}: no bit rate while media flows: {p}")
        for d in (inbound, outbound):
            if not (0 <= d["fraction_lost"] <= 1 and 0 <= d["jitter_ms"] < 500):
                raise Failure(f"{p['id']}: implausible loss/jitter {d}")
    with urllib.request.urlopen(f"{base_url}/api/rooms", timeout=10) as r:
        listed = [x for x in json.loads(r.read().decode("utf-8")) if x["name"] == room]
    if not listed or listed[0]["participants"] != 3 or "totals" not in listed[0]:
        raise Failure(f"/api/rooms: {listed}")


def check_error_metric(base_url, code):
    """The signalling error counter for `code` has moved."""
    n = metric(scrape_metrics(base_url), "tympan_signalling_errors_total", code=code)
    if n < 1:
        raise Failure(f"tympan_signalling_errors_total{{code={code!r}}} is {n} after such an error")
    say(f"metrics: {n:.0f} {code} error(s) counted")


def check_socket_drop_resume(ids, dropper, others, media, audio_from=None):
    """Reconnect without refresh: `dropper`'s WebSocket is closed abruptly (no `leave`, the
    page stays). The others see no participant_left/participant_joined for it; it comes back
    with `joined {resumed: true}` and the same participant id; media keeps flowing both ways."""
    pid = ids[dropper.label]
    say(f"{dropper.label}'s WebSocket is dropped (not the page): it resumes as {pid}")
    marks = {}
    for o in others:
        lines = o.page_log()
        marks[o.label] = lines[-1] if lines else None
    before = dropper.js("return window.tympanTest.access()")
    if not dropper.js("return window.tympanTest.dropSocket()"):
        raise Failure(f"{dropper.label} had no WebSocket to drop")

    def resumed():
        acc = dropper.js("return window.tympanTest.access()")
        st = dropper.state()
        if acc["resumeFailures"] > before["resumeFailures"]:
            raise Failure(f"{dropper.label}: resume_failed (fell back to a full rejoin)")
        if acc["resumes"] <= before["resumes"] or st["status"] not in ("joined", "connected"):
            raise Failure(f"{dropper.label}: resumes {acc['resumes']}, status {st['status']!r}")
        return st
    st = wait_for(f"{dropper.label} resumed", resumed)
    if st["self"]["id"] != pid:
        raise Failure(f"{dropper.label} came back as {st['self']['id']}, expected {pid}")
    if not any('"resumed":true' in line for line in dropper.page_log()):
        raise Failure(f"{dropper.label}: no `joined` with resumed: true in its log")
    expected = sorted(p for p in ids.values() if p != pid and any(ids[o.label] == p for o in others))
    if sorted(p["id"] for p in st["participants"]) != expected:
        raise Failure(f"{dropper.label} sees {[p['id'] for p in st['participants']]} after resuming")
    for o in others:
        lines = o.page_log()
        if marks[o.label] in lines:
            lines = lines[lines.index(marks[o.label]) + 1:]
        flicker = [line for line in lines
                   if ('"type":"participant_left"' in line and f'"participant_id":"{pid}"' in line)
                   or ('"type":"participant_joined"' in line and f'"id":"{pid}"' in line)]
        if flicker:
            raise Failure(f"{o.label} saw {dropper.label} leave/join: {flicker}")
        if pid not in [p["id"] for p in o.state()["participants"]]:
            raise Failure(f"{o.label} no longer lists {dropper.label}")
        say(f"  {o.label} saw no leave/join of {dropper.label}")
    if media:
        check_media_flows(ids, [dropper, *others], audio_from=audio_from)


def run_scenario(base_url, wd, profiles, server, media=True):
    """Runs the scenario of the module docstring; raises Failure. Returns whether step 7
    provoked a glare."""
    room = f"e2e-{os.getpid()}-{int(time.time()) % 100000}"
    names = {"A": "Ana Álvarez", "B": "Ben", "C": "Chen 陈"}
    browsers = []
    for label in ("A", "B", "C"):
        say(f"starting browser {label}")
        browsers.append(Browser(wd, label, profiles[label]))
    a, b, c = browsers
    # B reaches the server through a proxy that can delay what the server sends it.
    proxy = DelayProxy(int(base_url.rsplit(":", 1)[1]))

    say("landing pages (shareable URLs /room/<name> and /?room=<name>)")
    a.get(f"{base_url}/room/{room}")
    b.get(f"{proxy.url}/room/{room}")
    c.get(f"{base_url}/?room={room}")
    for br in browsers:
        wait_for(f"{br.label}: landing page", lambda br=br: br.state() and br.state()["status"] == "landing")
        got = br.value("#room-input")
        if got != room:
            raise Failure(f"{br.label}: room field prefilled with {got!r}, expected {room!r} from the URL")
    background = a.js("return getComputedStyle(document.body).backgroundColor")
    if background != "rgb(16, 20, 26)":
        raise Failure(f"/static/style.css not applied (body background {background})")

    say("joining")
    for br in browsers:
        br.type("#name-input", names[br.label])
        br.click("#join-button")
    ids = {}
    for br in browsers:
        expected = sorted(names[o.label] for o in browsers if o is not br)

        def sees_others(br=br, expected=expected):
            st = br.state()
            if st is None or st.get("status") not in ("joined", "connected"):
                raise Failure(f"{br.label} status {st and st.get('status')!r}, notices {st and st.get('notices')}")
            if others_names(st) != expected:
                raise Failure(f"{br.label} sees {others_names(st)}, expected {expected}")
            return st

        st = wait_for(f"{br.label} to see the other two", sees_others)
        ids[br.label] = st["self"]["id"]
        say(f"  {br.label} joined as {ids[br.label]}, sees {others_names(st)}")
    if len(set(ids.values())) != 3:
        raise Failure(f"participant ids are not distinct: {ids}")
    if a.js("return document.getElementById('room-name').textContent") != room:
        raise Failure("room name not shown in the room header")
    share = a.value("#share-link")
    if share != f"{base_url}/room/{room}":
        raise Failure(f"A's shareable link is {share!r}")
    for br in browsers:
        cards = br.js("return document.querySelectorAll('#participants .card').length")
        if cards != 3:
            raise Failure(f"{br.label} shows {cards} participant cards, expected 3 (self + 2)")

    if media:
        say("cameras on")
        for br in browsers:
            br.click("#cam-button")
        for br in browsers:
            wait_for(f"{br.label}: camera on", lambda br=br: br.state()["self"]["camOn"])
        say("checking audio and video between all three")
        check_media_flows(ids, browsers)
        for br in browsers:
            transport = br.js("return window.tympanTest.transport()")
            if transport != "udp":
                raise Failure(f"{br.label}: selected ICE candidate pair is {transport!r}, expected udp")
        if server is not None:  # a shared server (--url) has other rooms in its totals
            check_metrics_against_browsers(base_url, room, browsers, ids)
        say("speaking indicators (the fake microphone beeps)")
        for br in browsers:
            def spoke(br=br):
                quiet = [p["name"] for p in br.state()["participants"] if not p.get("spoke")]
                if quiet:
                    raise Failure(f"{br.label}: the speaking indicator never lit for {quiet}")
                return True
            wait_for(f"{br.label}: speaking indicators", spoke)
        for br in browsers:
            def tiles(br=br):
                st = br.state()
                shown = [p["name"] for p in st["participants"] if p.get("shownVideo")]
                if len(shown) != 2:
                    raise Failure(f"{br.label} shows video tiles for {shown}")
                return True
            wait_for(f"{br.label}: video tiles of the other two", tiles)

    check_socket_drop_resume(ids, a, [b, c], media)

    say("chat")
    messages = [(a, "hello from Ana"), (b, "¡hola! <b>not bold</b>")]
    for br, text in messages:
        br.type("#chat-input", text)
        br.click("#chat-send")
    for br in browsers:
        def chat_arrived(br=br):
            log = [(m["name"], m["text"]) for m in br.state()["chat"]]
            for sender, text in messages:
                if (names[sender.label], text) not in log:
                    raise Failure(f"{br.label} chat log {log} lacks {(names[sender.label], text)}")
            return True
        wait_for(f"{br.label}: chat messages with sender names", chat_arrived)
    html = b.js("return document.getElementById('chat-log').innerHTML")
    if "<b>not bold</b>" in html:
        raise Failure("chat text was inserted as HTML")

    say("room data over the data channels: to everyone, to one participant, lossy, raise hand")
    check_room_data(browsers, ids)

    say("mute B")
    b.click("#mic-button")

    def b_muted_everywhere(expected):
        for br in (a, c):
            st = br.state()
            p = next((p for p in st["participants"] if p["id"] == ids["B"]), None)
            if p is None or p["micMuted"] is not expected:
                raise Failure(f"{br.label} sees B as {p}")
            card = br.js("const el = document.querySelector(`.card[data-participant='${arguments[0]}']`);"
                         "return el && el.dataset.mic", ids["B"])
            if card != ("off" if expected else "on"):
                raise Failure(f"{br.label}: B's card shows mic {card!r}")
        return True

    wait_for("A and C to show B muted", lambda: b_muted_everywhere(True))
    say("unmute B")
    b.click("#mic-button")
    wait_for("A and C to show B unmuted", lambda: b_muted_everywhere(False))

    if server is not None:
        say(f"D (microphone blocked, ICE-TCP only) tries to join the full room (--max-room-size {ROOM_SIZE})")
    d = Browser(wd, "D", profiles["D"], microphone_blocked=True)
    names["D"] = "Dara (no mic)"
    # ?transport=tcp: the page keeps only the server's TCP candidates (RFC 6544 passive).
    d.get(f"{base_url}/room/{room}?transport=tcp")
    d.type("#name-input", names["D"])
    if server is not None:
        d.click("#join-button")

        def refused():
            st = d.state()
            message = d.js("const m = document.getElementById('landing-message');"
                           "return m.hidden ? '' : m.textContent")
            if st["status"] != "landing" or "room_full" not in message:
                raise Failure(f"D status {st['status']!r}, landing message {message!r}, notices {st['notices']}")
            return True
        wait_for("D back on the landing page with the room_full error", refused)
        check_error_metric(base_url, "room_full")

    say(f"C leaves while B's signalling lags {GLARE_DELAY:.0f} s; B turns its camera off and re-offers: "
        "B's offer crosses the server's (glare)")
    log_mark = len(b.page_log())
    glare_started = time.monotonic()
    proxy.delay = GLARE_DELAY
    c.click("#leave-button")

    def a_sees_c_gone():
        return ids["C"] not in [p["id"] for p in a.state()["participants"]]

    # Once A (not delayed) sees C gone, the server has sent B its offer (C's tracks removed),
    # which the proxy holds back. Camera changes are `mute` messages (no renegotiation), so B
    # re-offers on purpose now: its offer crosses the server's.
    wait_for("A to see C gone", a_sees_c_gone)
    b.js("window.tympanTest.renegotiate(); return true")
    b.click("#cam-button")
    for br in (a, b):
        def c_gone(br=br):
            st = br.state()
            if ids["C"] in [p["id"] for p in st["participants"]]:
                raise Failure(f"{br.label} still lists C")
            cards = br.js("return document.querySelectorAll('#participants .card').length")
            if cards != 2:
                raise Failure(f"{br.label} shows {cards} cards")
            return True
        wait_for(f"{br.label}: C gone", c_gone)
    wait_for("C back on the landing page", lambda: c.state()["status"] == "landing")

    def b_camera_shown(on):
        p = next((p for p in a.state()["participants"] if p["id"] == ids["B"]), None)
        if p is None or p["camOn"] is not on:
            raise Failure(f"A sees B as {p}")
        return True

    wait_for("A to show B's camera off", lambda: b_camera_shown(False))

    def glare_resolved():
        lines = b.page_log()[log_mark:]
        # The server's `glare` error reply to B's offer (B may already have rolled back when the
        # server's offer arrived first); then B must answer and get its own offer answered.
        glare = [i for i, line in enumerate(lines) if '"code":"glare"' in line]
        if not glare:
            # The server's `glare` reply is itself held back by the proxy: give it time to land.
            if time.monotonic() < glare_started + GLARE_DELAY + 3.0:
                return None
            return "none"
        if not any('← {"type":"answer"' in line for line in lines[glare[0]:]):
            raise Failure("after the glare, B's offer has not been answered yet")
        return "resolved"

    outcome = wait_for("B to get its offer through after the glare", glare_resolved)
    proxy.delay = 0.0
    if outcome == "none":
        say("  note: no glare this time (B's offer did not cross the server's); the step proved nothing")
        for line in b.page_log()[log_mark:][-20:]:
            say(f"    B: {line[:160]}")
    else:
        say("  glare happened; B rolled back, answered the server, and its own offer went through")
    problems = [n for n in b.state()["notices"] if "negotiation" in n.lower() or "Server error" in n]
    if problems:
        raise Failure(f"B shows errors after the glare: {problems}")
    # Let messages the proxy still holds for B land first: B's camera-off toggle waits for
    # the reply to its `mute`, and a click while it waits is ignored (one toggle at a time).
    time.sleep(GLARE_DELAY + 1.0)
    b.click("#cam-button")
    wait_for("A to show B's camera on again", lambda: b_camera_shown(True))

    if media:
        say("A and B keep media flowing")
        check_media_flows(ids, [a, b])
    c.get(f"{base_url}/")
    wait_for("C's landing page after a reload", lambda: c.state() and c.state()["status"] == "landing")
    remembered = (c.value("#room-input"), c.value("#name-input"))
    if remembered != (room, names["C"]):
        raise Failure(f"C's landing page remembers {remembered}, expected {(room, names['C'])}")
    c.click("#room-random")
    c.click("#name-random")
    randomized = (c.value("#room-input"), c.value("#name-input"))
    if (randomized[0] == room or not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", randomized[0])
            or not randomized[1].strip() or randomized[1] == names["C"]):
        raise Failure(f"random room/name buttons gave {randomized}")
    c.quit()  # frees its CPU share for D

    say("D joins with the microphone blocked by the browser, over ICE-TCP only")
    d.click("#join-button")

    def d_joined():
        st = d.state()
        if st is None or st.get("status") not in ("joined", "connected"):
            raise Failure(f"D status {st and st.get('status')!r}, notices {st and st.get('notices')}")
        if st["self"]["mic"] != "denied":
            raise Failure(f"D's microphone state is {st['self']['mic']!r}, expected 'denied'")
        if not any("denied" in n for n in st["notices"]):
            raise Failure(f"D shows no denied-microphone message: {st['notices']}")
        if others_names(st) != sorted([names["A"], names["B"]]):
            raise Failure(f"D sees {others_names(st)}")
        return st

    ids["D"] = wait_for("D joined without a microphone", d_joined)["self"]["id"]
    say("D, a late joiner, sees the room's chat history")
    check_chat_history(d, "D", [(names[br.label], text) for br, text in messages])
    for br in (a, b):
        def d_shown_muted(br=br):
            p = next((p for p in br.state()["participants"] if p["id"] == ids["D"]), None)
            if p is None or p["micMuted"] is False:
                raise Failure(f"{br.label} sees D as {p}")
            return True
        wait_for(f"{br.label}: D listed with the microphone off", d_shown_muted)
    d.type("#chat-input", "I can only type")
    d.click("#chat-send")
    for br in (a, b, d):
        def d_chat(br=br):
            if (names["D"], "I can only type") not in [(m["name"], m["text"]) for m in br.state()["chat"]]:
                raise Failure(f"{br.label} chat: {br.state()['chat']}")
            return True
        wait_for(f"{br.label}: D's chat message", d_chat)
    if media:
        say("D turns the camera on; D hears and sees A and B, they see D")
        d.click("#cam-button")
        check_media_flows(ids, [a, b, d], audio_from=[a, b])
        transport = d.js("return window.tympanTest.transport()")
        if transport != "tcp":
            raise Failure(f"D: selected ICE candidate pair is {transport!r}, expected tcp")

    if server is not None:
        say("the server restarts: the pages say so and rejoin by themselves")
        server.stop()
        for br in (a, b, d):
            def lost(br=br):
                st = br.state()
                if st["status"] not in ("reconnecting", "connecting"):
                    raise Failure(f"{br.label} status {st['status']!r}")
                if not any("Reconnecting" in n for n in st["notices"]):
                    raise Failure(f"{br.label} notices {st['notices']}")
                return True
            wait_for(f"{br.label}: lost-connection message", lost)
        server.start()
        for br in (a, b, d):
            expected = sorted(names[o.label] for o in (a, b, d) if o is not br)

            def rejoined(br=br, expected=expected):
                st = br.state()
                if st["status"] not in ("joined", "connected") or others_names(st) != expected:
                    raise Failure(f"{br.label} status {st['status']!r}, sees {others_names(st)}")
                return st
            ids[br.label] = wait_for(f"{br.label}: rejoined", rejoined, timeout=max(TIMEOUT, 60))["self"]["id"]
        if media:
            check_media_flows(ids, [a, b, d], audio_from=[a, b])
    return outcome == "resolved"  # whether the glare step provoked a glare


def run_whip_phase(base_url, wd, profile, procs, whip_bin, pcap, log_path):
    """A browser watches a WHIP publisher: the `whip_publish` example (str0m, an independent
    WHIP client) publishes the real VP8 capture plus Opus into a fresh room over
    `POST /whip/<room>`; a browser joining that room shows the publisher's card, receives its
    audio and decodes its video (framesDecoded grows)."""
    room = f"whip-{os.getpid()}-{int(time.time()) % 100000}"
    name = "WHIP card"
    server = base_url.split("://", 1)[1]
    say(f"WHIP: starting the str0m publisher into room {room}")
    publisher = procs.start([whip_bin, "--server", server, "--room", room, "--name", name,
                             "--pcap", pcap], log_path)
    try:
        def published():
            if publisher.poll() is not None:
                raise Failure(f"whip_publish exited with {publisher.returncode}:\n{log_tail(log_path, 20)}")
            with urllib.request.urlopen(base_url + "/api/rooms", timeout=5) as r:
                rooms = json.loads(r.read())
            return any(x["name"] == room and x["tracks"] == 2 for x in rooms)
        wait_for("the WHIP publisher in /api/rooms", published, timeout=max(TIMEOUT, 60))
        w = Browser(wd, "W", profile)
        w.get(f"{base_url}/room/{room}")
        wait_for("W: landing page", lambda: w.state() and w.state()["status"] == "landing")
        w.type("#name-input", "Watcher")
        w.click("#join-button")

        def sees_publisher():
            st = w.state()
            if others_names(st) != [name]:
                raise Failure(f"W sees {others_names(st)}, expected [{name!r}]")
            return st
        st = wait_for("W to see the WHIP publisher", sees_publisher, timeout=max(TIMEOUT, 60))
        pid = next(p["id"] for p in st["participants"] if p["name"] == name)
        cards = w.js("return document.querySelectorAll('#participants .card').length")
        if cards != 2:
            raise Failure(f"W shows {cards} participant cards, expected 2 (self + WHIP publisher)")

        def decoding():
            m = media_by_participant(w.stats()).get(pid, {})
            if not m.get("video") or not m.get("audio"):
                raise Failure(f"from the WHIP publisher: {m}")
            return m
        first = wait_for("W decoding the WHIP publisher's video", decoding, timeout=max(TIMEOUT, 60))
        time.sleep(3)
        second = media_by_participant(w.stats()).get(pid, {})
        say(f"  W <- WHIP: audio packets {first['audio']} -> {second.get('audio')}, "
            f"video frames {first['video']} -> {second.get('video')}")
        if second.get("video", 0) <= first["video"] or second.get("audio", 0) <= first["audio"]:
            raise Failure(f"media from the WHIP publisher stalled: {first} -> {second}")
        shown = wait_for("W shows the WHIP publisher's video tile",
                         lambda: any(p["shownVideo"] for p in w.state()["participants"]))
        w.quit()
        return shown
    finally:
        procs.stop(publisher)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-bin", default=None, help="the sfu example binary")
    parser.add_argument("--url", default=None, help="use this running server instead of starting one")
    parser.add_argument("--no-media", action="store_true", help="skip the audio/video checks")
    parser.add_argument("--whip-bin", default=None,
                        help="the whip_publish example binary: adds the WHIP phase")
    parser.add_argument("--pcap", default=None, help="VP8 capture the WHIP publisher replays")
    parser.add_argument("--only-whip", action="store_true",
                        help="run only the WHIP phase (needs --whip-bin)")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="tympan-e2e-")
    procs = Processes()
    server_log = os.path.join(work, "server.log")
    driver_log = os.path.join(work, "chromedriver.log")
    ok = False
    server = None
    try:
        if args.url:
            base_url = args.url.rstrip("/")
        else:
            target = os.environ.get("CARGO_TARGET_DIR", "target")
            binary = args.server_bin or os.path.join(target, "debug", "examples", "sfu")
            if not os.path.exists(binary):
                raise Failure(f"server binary {binary} not found: run `cargo build --example sfu`")
            server = Server(procs, binary, server_log)
            server.start()
            base_url = server.url
        page = wait_http(base_url + "/", 10, "web page").decode("utf-8", "replace")
        if "/static/app.js" not in page:
            raise Failure("GET / does not serve the web room page")

        driver_port = free_port()
        chromedriver = os.environ.get("CHROMEDRIVER", "chromedriver")
        if not shutil.which(chromedriver):
            raise Failure(f"{chromedriver} not found (apt-get install chromium chromium-driver)")
        driver = procs.start([chromedriver, f"--port={driver_port}", "--allowed-ips=127.0.0.1"], driver_log)
        wait_http(f"http://127.0.0.1:{driver_port}/status", 30, "chromedriver", driver, driver_log)
        wd = WebDriver(f"http://127.0.0.1:{driver_port}")
        profiles = {}
        for label in ("A", "B", "C", "D"):
            profiles[label] = os.path.join(work, f"profile-{label}")
            os.makedirs(profiles[label])
        glare = False
        if not args.only_whip:
            glare = run_scenario(base_url, wd, profiles, server, media=not args.no_media)
        whip = False
        if args.whip_bin and not args.no_media:
            os.makedirs(os.path.join(work, "profile-W"))
            whip = run_whip_phase(base_url, wd, os.path.join(work, "profile-W"), procs,
                                  args.whip_bin, args.pcap, os.path.join(work, "whip.log"))
        ok = True
        if os.environ.get("E2E_VERBOSE"):
            dump_diagnostics(server_log if not args.url else None, driver_log)
        checked = ["join", "participants", "chat", "mute", "leave", "denied microphone"]
        checked += ["glare"] if glare else []
        checked += ["a browser watches a WHIP publisher"] if whip else []
        checked.append("WebSocket dropped and resumed")
        if not args.no_media:
            checked[2:2] = ["audio and video both ways", "speaking indicators", "video tiles"]
            checked.append("ICE-TCP")
        if server:
            checked += ["room_full error", "reconnect after a server restart"]
        if server and not args.no_media:
            checked.append("/metrics and /api/rooms against getStats()")
        if args.only_whip:
            checked = ["a browser watches a WHIP publisher"] if whip else []
        say("PASS:", ", ".join(checked))
    except Exception as e:  # noqa: BLE001 - every failure gets the diagnostics
        say("FAIL:", e if isinstance(e, Failure) else f"{type(e).__name__}: {e}")
        if not isinstance(e, Failure):
            traceback.print_exc()
        dump_diagnostics(server_log if not args.url else None, driver_log)
    finally:
        for br in list(LIVE_BROWSERS):
            br.quit()
        procs.stop_all()
        if ok and not os.environ.get("E2E_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
        elif not ok:
            say(f"logs kept in {work}")
    return 0 if ok else 1


def dump_diagnostics(server_log, driver_log):
    for br in LIVE_BROWSERS:
        lines = br.page_log()
        print(f"--- page log of browser {br.label} (last 60 of {len(lines)})")
        print("\n".join(lines[-60:]))
        console = [l for l in br.browser_console() if "[tympan]" not in l]
        if console:
            print(f"--- other console output of browser {br.label}")
            print("\n".join(console[-30:]))
    if server_log:
        print(log_tail(server_log, 80))
    print(log_tail(driver_log, 20))


def _exit_on_signal(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds through main's `finally`: children are stopped


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    sys.exit(main())
