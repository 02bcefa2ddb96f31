// tympan web room: plain JavaScript, no build step, nothing loaded from elsewhere.
//
// Speaks the signalling protocol of docs/signalling.md (version 1) over the WebSocket at /ws,
// and sends/receives media over ONE RTCPeerConnection to the server:
//   - after `joined`, two sendonly transceivers: audio (the microphone track, or none) and
//     video (the camera track, or none: replaceTrack(null) when the camera is off); mute state
//     travels in the `mute` message, never by renegotiation;
//   - the server offers the other participants' tracks; we answer. If our offer crosses one of
//     the server's (`glare`), we roll back, answer the server, and offer again;
//   - remote tracks are mapped to participants by the `tracks` list of each server offer
//     (mid -> participant/track), falling back to the stream id (a=msid) of the track;
//   - in last-N rooms the server offers audio *slots* (`slot` in the offer's tracks) instead of
//     one audio track per participant: each slot plays in its own <audio> element and makes no
//     participant card; `audio_slots` says whom a slot carries;
//   - the speaking indicators of the others follow the server's `speaking` events (RFC 6464
//     levels measured by the server); our own card follows the local microphone level.
//
// Test hook (used by tests/browser/e2e.py; tiny on purpose):
//   window.tympanTest.state()  -> {status, room, self: {id, name, mic, camOn}, participants:
//                                  [{id, name, micMuted, camOn, speaking, spoke, shownVideo}],
//                                  chat: [{from, name, text}], notices: [text],
//                                  slots: {slot: participant id | null}, activeSpeakers: [id]}
//                                 (spoke: how often the speaking indicator lit up)
//   window.tympanTest.stats()  -> Promise of [{mid, kind, participant, track, packetsReceived,
//                                  framesDecoded, audioLevel}] from pc.getStats() inbound-rtp
//   window.tympanTest.transport() -> Promise of 'udp' | 'tcp' | null (selected ICE pair)
//   window.tympanTest.rtpTotals() -> Promise of {packetsSent, bytesSent, headerBytesSent,
//                                  retransmittedPacketsSent} summed over outbound-rtp and
//                                  {packetsReceived, bytesReceived, headerBytesReceived,
//                                  packetsLost} over inbound-rtp (null without a session)
//   window.tympanTest.log()    -> the page's own log lines (signalling and errors)
//   window.tympanTest.renegotiate() -> send a new offer of the unchanged session now
//   window.tympanTest.sendData(data, {to, lossy, topic}) -> room data over the data channels
//                                 (to: participant id or list; lossy: the unordered channel);
//                                 false when that channel is not open
//   window.tympanTest.roomData() -> received room-data messages [{from, topic, data, lossy}]
//   window.tympanTest.dataOpen() -> {reliable, lossy}: which room-data channels are open
//   (state().chat entries carry `earlier: true` when they came from joined.chat_history)
//
// Room data (docs/signalling.md, "Room data"): the page opens `tympan-data` (reliable) and
// `tympan-data-lossy` (unordered, no retransmissions) before its first offer. "Raise hand"
// travels on the reliable one (topic `hand`; a newcomer asks with `hand-sync` and raised hands
// answer it alone), emoji reactions on the lossy one (topic `reaction`).
//   window.tympanTest.dropSocket() -> close the WebSocket abruptly (no `leave`): the page
//                                  keeps its peer connection and resumes (`join {resume}`)
//   window.tympanTest.access() -> {resumes, resumeFailures, iceRestarts, identity, canPublish,
//                                  canSubscribe}
//
// Reconnecting: when the WebSocket drops, the RTCPeerConnection stays; the page reconnects
// with backoff and sends `join` with the last `resume_token`. `resumed: true` keeps
// everything (the participant list is refreshed from the reply); `resume_failed` falls back
// to a full rejoin (new peer connection). When ICE goes `failed`, or stays `disconnected` for
// 3 s, the page calls `pc.restartIce()` and offers again. `?token=<JWT>` in the URL is sent
// with `join` (token-gated servers).
'use strict';

(() => {
  const ROOM_RE = /^[A-Za-z0-9._-]{1,64}$/;
  const SPEAKING_LEVEL = 0.03; // audioLevel (0..1, linear) above which a participant "speaks"
  const DATA_LABEL = 'tympan-data';
  const LOSSY_LABEL = 'tympan-data-lossy';
  const REACTIONS = ['👍', '❤️', '😂', '👏', '🎉'];
  const $ = (id) => document.getElementById(id);
  // `?transport=tcp` (or `udp`) keeps only the server's candidates of that transport: a way to
  // try ICE over TCP (RFC 6544) as on a network that blocks UDP. Read once, at page load.
  const ONLY_TRANSPORT = (new URLSearchParams(location.search).get('transport') || '').toLowerCase();
  // `?token=<JWT>`: the access token of a token-gated server (docs/signalling.md, Tokens).
  const TOKEN = new URLSearchParams(location.search).get('token') || '';
  // ICE `disconnected` for this long triggers an ICE restart.
  const ICE_RESTART_AFTER_MS = 3000;

  // Drops the server's a=candidate lines of the other transport when ONLY_TRANSPORT is set.
  function filterCandidates(sdp) {
    if (ONLY_TRANSPORT !== 'tcp' && ONLY_TRANSPORT !== 'udp') return sdp;
    return sdp.split('\r\n').filter((line) => {
      const m = line.match(/^a=candidate:\S+ \d+ (\w+) /);
      return !m || m[1].toLowerCase() === ONLY_TRANSPORT;
    }).join('\r\n');
  }

  // ---------------------------------------------------------------- log
  const logLines = [];
  function log(...parts) {
    const text = parts.map((p) => (typeof p === 'string' ? p : safeJson(p))).join(' ');
    logLines.push(new Date().toISOString().slice(11, 23) + ' ' + text);
    if (logLines.length > 400) logLines.shift();
    console.log('[tympan] ' + text);
  }
  function safeJson(value) {
    try {
      return JSON.stringify(value, (k, v) => (k === 'sdp' && typeof v === 'string' ? `<sdp ${v.length} bytes>` : v));
    } catch (e) {
      return String(value);
    }
  }

  // ---------------------------------------------------------------- random names
  const ADJECTIVES = ['amber', 'brave', 'calm', 'clever', 'cosy', 'eager', 'gentle', 'happy', 'jolly',
    'lively', 'lucky', 'mellow', 'nimble', 'quiet', 'rapid', 'silver', 'sunny', 'swift', 'tidy', 'witty'];
  const NOUNS = ['otter', 'falcon', 'maple', 'harbor', 'comet', 'meadow', 'lynx', 'river', 'cedar',
    'panda', 'heron', 'orchid', 'badger', 'willow', 'tiger', 'canyon', 'robin', 'koala', 'pebble', 'fox'];
  const FIRST_NAMES = ['Ana', 'Ben', 'Chen', 'Dara', 'Emil', 'Fatou', 'Goran', 'Hana', 'Ines', 'Jonas',
    'Kemal', 'Lea', 'Mika', 'Noor', 'Olu', 'Priya', 'Quinn', 'Rosa', 'Sami', 'Tomas', 'Uma', 'Vera'];
  const pick = (list) => list[Math.floor(Math.random() * list.length)];
  const randomRoom = () => `${pick(ADJECTIVES)}-${pick(NOUNS)}-${Math.floor(10 + Math.random() * 90)}`;
  const randomName = () => `${pick(FIRST_NAMES)} ${pick(NOUNS)}`.replace(/ (\w)/, (m, c) => ' ' + c.toUpperCase());

  const store = {
    get(key) {
      try { return localStorage.getItem('tympan.' + key) || ''; } catch (e) { return ''; }
    },
    set(key, value) {
      try { localStorage.setItem('tympan.' + key, value); } catch (e) { /* private mode */ }
    },
  };

  // ---------------------------------------------------------------- landing
  function roomFromUrl() {
    const match = location.pathname.match(/^\/room\/([^/]+)\/?$/);
    if (match) return decodeURIComponent(match[1]);
    return new URLSearchParams(location.search).get('room') || '';
  }
  const roomUrl = (room) => `${location.origin}/room/${encodeURIComponent(room)}`;

  function showLanding(message, isError) {
    $('room').hidden = true;
    $('landing').hidden = false;
    const msg = $('landing-message');
    msg.hidden = !message;
    msg.textContent = message || '';
    msg.classList.toggle('error', !!isError);
    $('join-button').disabled = false;
  }

  function initLanding() {
    const roomInput = $('room-input');
    const nameInput = $('name-input');
    roomInput.value = roomFromUrl() || store.get('room') || randomRoom();
    nameInput.value = store.get('name') || randomName();
    $('room-random').onclick = () => { roomInput.value = randomRoom(); };
    $('name-random').onclick = () => { nameInput.value = randomName(); };
    $('join-form').onsubmit = (event) => {
      event.preventDefault();
      const room = roomInput.value.trim();
      const name = nameInput.value.trim();
      if (!ROOM_RE.test(room)) {
        showLanding('Room names are 1–64 letters, digits, "-", "_" or ".".', true);
        return;
      }
      if (!name || name.length > 64) {
        showLanding('Please enter a name (at most 64 characters).', true);
        return;
      }
      store.set('room', room);
      store.set('name', name);
      if (location.pathname !== `/room/${encodeURIComponent(room)}`) {
        history.pushState({}, '', `/room/${encodeURIComponent(room)}${ONLY_TRANSPORT || TOKEN ? location.search : ''}`);
      }
      $('join-button').disabled = true;
      session = new Session(room, name);
      session.start();
    };
    showLanding('');
    if (roomFromUrl()) nameInput.focus();
  }

  // ---------------------------------------------------------------- room UI helpers
  const notices = new Map(); // key -> element
  function notice(key, text, kind) {
    let el = notices.get(key);
    if (!text) {
      if (el) { el.remove(); notices.delete(key); }
      return;
    }
    if (!el) {
      el = document.createElement('div');
      el.className = 'notice';
      const span = document.createElement('span');
      const close = document.createElement('button');
      close.type = 'button';
      close.className = 'dismiss';
      close.textContent = '×';
      close.title = 'Dismiss';
      close.onclick = () => notice(key, null);
      el.append(span, close);
      $('notices').append(el);
      notices.set(key, el);
    }
    el.className = 'notice ' + (kind || 'info');
    el.firstChild.textContent = text;
    log('notice', key + ':', text);
  }
  function clearNotices() {
    for (const key of [...notices.keys()]) notice(key, null);
  }

  function setStatus(state, text) {
    const el = $('status');
    el.dataset.state = state;
    el.textContent = text || state;
  }

  function initials(name) {
    return name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join('') || '?';
  }

  const MIC_SVG = '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor"'
    + ' stroke-width="2" stroke-linecap="round"><rect x="9" y="3" width="6" height="11" rx="3"/>'
    + '<path d="M5 11a7 7 0 0 0 14 0M12 18v3"/><line class="slash" x1="4" y1="3" x2="20" y2="21"/></svg>';

  // One card per participant (ourselves included).
  class Card {
    constructor(id, name, isSelf) {
      this.el = document.createElement('article');
      this.el.className = 'card' + (isSelf ? ' self' : '');
      this.el.dataset.participant = id;
      this.spoke = 0; // how many times the speaking indicator lit up (for the test hook)
      this.media = document.createElement('div');
      this.media.className = 'card-media';
      this.avatar = document.createElement('div');
      this.avatar.className = 'avatar';
      this.video = document.createElement('video');
      this.video.autoplay = true;
      this.video.playsInline = true;
      this.video.muted = true; // audio plays through a separate <audio> element
      this.video.hidden = true;
      this.media.append(this.avatar, this.video);
      const footer = document.createElement('div');
      footer.className = 'card-footer';
      this.mic = document.createElement('span');
      this.mic.className = 'mic';
      this.nameEl = document.createElement('span');
      this.nameEl.className = 'name';
      footer.append(this.mic, this.nameEl);
      this.el.append(this.media, footer);
      this.setName(name, isSelf);
      $('participants').append(this.el);
    }
    setName(name, isSelf) {
      this.nameEl.textContent = isSelf ? `${name} (you)` : name;
      this.avatar.textContent = initials(name);
    }
    setMic(state) { // 'on' | 'off' | 'none'
      this.mic.dataset.state = state;
      if (!this.mic.firstChild) this.mic.innerHTML = MIC_SVG; // a constant, never user text
      this.mic.title = state === 'on' ? 'microphone on' : state === 'off' ? 'microphone off' : 'no microphone';
      this.el.dataset.mic = state;
    }
    setSpeaking(speaking) {
      if (speaking && !this.el.classList.contains('speaking')) this.spoke += 1;
      this.el.classList.toggle('speaking', speaking);
    }
    setVideo(stream, show) {
      if (stream && this.video.srcObject !== stream) this.video.srcObject = stream;
      if (!stream && !show) this.video.srcObject = null;
      this.video.hidden = !show;
      this.avatar.hidden = show;
      this.el.classList.toggle('has-video', show);
      if (show) this.video.play().catch(() => {});
    }
    setHand(raised) {
      this.el.dataset.hand = raised ? 'up' : 'down';
      if (!this.hand) {
        this.hand = document.createElement('span');
        this.hand.className = 'hand';
        this.hand.textContent = '✋';
        this.hand.title = 'hand raised';
        this.media.append(this.hand);
      }
      this.hand.hidden = !raised;
    }
    react(emoji) {
      this.reactions = (this.reactions || 0) + 1;
      const el = document.createElement('span');
      el.className = 'reaction';
      el.textContent = emoji;
      this.media.append(el);
      setTimeout(() => el.remove(), 2500);
    }
    remove() { this.el.remove(); }
  }

  // ---------------------------------------------------------------- session
  let session = null;
  const chatLog = []; // survives reconnects: what the test reads
  const roomDataLog = []; // received room-data messages (test hook)

  class Session {
    constructor(room, name) {
      this.room = room;
      this.name = name;
      this.ws = null;
      this.pc = null;
      this.selfId = null;
      this.nextId = 1;
      this.pending = new Map(); // request id -> {resolve, msg}
      this.participants = new Map(); // id -> {id, name, tracks: Map, card, audio, videoStream}
      this.trackByMid = new Map(); // mid -> {participant, track} or {participant: null, slot}
      this.slotAudio = new Map(); // last-N slot number -> <audio> element
      this.slotMap = new Map(); // last-N slot number -> participant id or null (audio_slots)
      this.activeSpeakers = []; // participant ids, loudest first (active_speakers)
      this.ownTrackIds = new Map(); // our mid -> server track id (when the server tells us)
      this.micTrack = null;
      this.micState = 'pending'; // 'on' | 'muted' | 'denied' | 'pending'
      this.camTrack = null;
      this.audioTx = null;
      this.videoTx = null;
      this.chain = Promise.resolve(); // serialises SDP work
      this.offerInFlight = false;
      this.needOffer = false;
      this.serverOffers = 0; // server offers received (to tell the order of a glare)
      this.serverOffersAtOffer = 0;
      this.leaving = false;
      this.attempt = 0;
      this.reconnectTimer = null;
      this.statsTimer = null;
      this.card = null;
      this.busy = new Set();
      this.dataChannel = null; // tympan-data
      this.lossyChannel = null; // tympan-data-lossy
      this.handRaised = false;
      this.resumeToken = null; // from the last `joined`: lets a new socket take us back
      this.access = { resumes: 0, resumeFailures: 0, iceRestarts: 0, identity: null, canPublish: true, canSubscribe: true };
      this.iceTimer = null;
    }

    async start() {
      $('landing').hidden = true;
      $('room').hidden = false;
      $('room-name').textContent = this.room;
      $('share-link').value = roomUrl(this.room);
      document.title = `${this.room} · tympan`;
      clearNotices();
      $('participants').textContent = '';
      $('chat-log').textContent = '';
      chatLog.length = 0;
      roomDataLog.length = 0;
      this.card = new Card('self', this.name, true);
      this.updateButtons();
      await this.acquireMic();
      this.connect();
    }

    async acquireMic() {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        this.micState = 'denied';
        notice('mic', 'This browser gives no microphone access here (the page needs https or localhost). You can listen and chat.', 'warn');
        this.updateButtons();
        return;
      }
      try {
        const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
        this.micTrack = stream.getAudioTracks()[0] || null;
        this.micState = this.micTrack ? 'on' : 'denied';
        notice('mic', null);
      } catch (err) {
        this.micState = 'denied';
        const denied = err && (err.name === 'NotAllowedError' || err.name === 'SecurityError');
        notice('mic', denied
          ? 'Microphone access was denied: you joined without audio. Others cannot hear you, but you can listen and chat. Allow the microphone in the browser and press "Mic" to retry.'
          : `No microphone available (${err && err.name}): you joined without audio. You can listen and chat.`, 'warn');
        log('getUserMedia audio failed', String(err));
      }
      this.updateButtons();
    }

    // ------------------------------------------------------------ WebSocket
    connect() {
      if (this.leaving) return;
      setStatus('connecting', this.attempt ? 'reconnecting…' : 'connecting…');
      if (this.ws) this.teardown();
      const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
      const ws = new WebSocket(`${proto}//${location.host}/ws`);
      this.ws = ws;
      ws.onmessage = (event) => {
        if (this.ws !== ws) return;
        let msg;
        try { msg = JSON.parse(event.data); } catch (e) { log('unparsable frame', String(event.data).slice(0, 200)); return; }
        this.onMessage(msg);
      };
      ws.onclose = (event) => {
        if (this.ws !== ws) return;
        log('websocket closed', event.code, event.reason || '');
        this.socketLost('The connection to the server was lost.');
      };
      ws.onerror = () => log('websocket error');
    }

    send(msg) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
      log('→', msg);
      this.ws.send(JSON.stringify(msg));
      return true;
    }

    // Sends a request; resolves with the reply (`joined`, `answer`, `ok` or `error`).
    request(msg) {
      const id = this.nextId++;
      return new Promise((resolve) => {
        if (!this.send({ ...msg, id })) {
          resolve({ type: 'error', code: 'disconnected', message: 'not connected' });
          return;
        }
        this.pending.set(id, { resolve, msg });
      });
    }

    onMessage(msg) {
      log('←', msg);
      if (typeof msg.id === 'number' && this.pending.has(msg.id)) {
        const { resolve } = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        resolve(msg);
        return;
      }
      switch (msg.type) {
        case 'welcome':
          if (msg.version !== 1) notice('version', `The server speaks protocol version ${msg.version}; this page speaks 1.`, 'error');
          this.join();
          break;
        case 'participant_joined':
          this.upsertParticipant(msg.participant);
          if (msg.participant) this.systemLine(`${msg.participant.name} joined`);
          break;
        case 'participant_updated':
          this.upsertParticipant(msg.participant);
          break;
        case 'participant_left': {
          const p = this.participants.get(msg.participant_id);
          if (p) this.systemLine(msg.reason === 'timeout' ? `${p.name} lost the connection` : `${p.name} left`);
          this.removeParticipant(msg.participant_id);
          break;
        }
        case 'track_published': {
          const p = this.participants.get(msg.participant_id);
          if (p && msg.track) { p.tracks.set(msg.track.id, msg.track); this.renderParticipant(p); }
          break;
        }
        case 'track_unpublished': {
          const p = this.participants.get(msg.participant_id);
          if (p) { p.tracks.delete(msg.track_id); this.renderParticipant(p); }
          break;
        }
        case 'offer':
          this.onServerOffer(msg);
          break;
        case 'chat':
          this.onChat(msg);
          break;
        case 'speaking': {
          const p = this.participants.get(msg.participant_id);
          if (p) p.card.setSpeaking(!!msg.speaking);
          break;
        }
        case 'active_speakers':
          this.activeSpeakers = (msg.speakers || []).map((s) => s.participant_id);
          break;
        case 'audio_slots':
          for (const s of msg.slots || []) this.slotMap.set(s.slot, s.participant_id || null);
          break;
        case 'bye':
          this.onBye(msg);
          break;
        case 'error':
          this.showError(msg);
          break;
        default:
          log('ignoring message of type', msg.type);
      }
    }

    showError(msg) {
      if (msg.code === 'disconnected') return; // our own placeholder: the connection notice says it
      notice('server-error', `Server error: ${msg.message || msg.code} (${msg.code})`, 'error');
    }

    async join() {
      const request = { type: 'join', version: 1, room: this.room, name: this.name };
      if (TOKEN) request.token = TOKEN;
      if (this.resumeToken && this.pc) request.resume = this.resumeToken;
      const reply = await this.request(request);
      if (reply.type !== 'joined' && reply.code === 'resume_failed') {
        // Our place is gone (grace period over): a full rejoin with a new peer connection.
        log('resume failed: joining afresh');
        this.access.resumeFailures += 1;
        this.resumeToken = null;
        this.teardown();
        this.connect();
        return;
      }
      if (reply.type === 'joined') {
        this.resumeToken = reply.resume_token || null;
        this.access.identity = reply.identity === undefined ? null : reply.identity;
        this.access.canPublish = reply.can_publish !== false;
        this.access.canSubscribe = reply.can_subscribe !== false;
        if (reply.resumed && this.pc) { this.onResumed(reply); return; }
      }
      if (reply.type !== 'joined') {
        if (reply.code === 'disconnected') return; // the socket closed: already reconnecting
        const fatal = ['bad_name', 'room_full', 'unsupported_version', 'too_large', 'unauthorized', 'forbidden'].includes(reply.code);
        if (fatal) {
          this.leaving = true;
          this.teardown();
          this.stopLocalMedia();
          showLanding(`Could not join: ${reply.message || reply.code} (${reply.code})`, true);
          session = null;
          return;
        }
        this.showError(reply);
        this.connectionLost('Joining failed.');
        return;
      }
      if (this.attempt > 0) notice('connection', 'Reconnected.', 'info');
      setTimeout(() => { if (notices.get('connection') && this.ws && this.ws.readyState === 1) notice('connection', null); }, 3000);
      this.attempt = 0;
      this.selfId = reply.participant_id;
      this.card.el.dataset.participant = this.selfId;
      setStatus('joined', 'joined');
      for (const p of reply.participants || []) this.upsertParticipant(p);
      this.showChatHistory(reply.chat_history);
      this.setupPeer();
    }

    // The server took us back on a new socket: same id, tracks and peer connection.
    onResumed(reply) {
      this.access.resumes += 1;
      this.attempt = 0;
      log('resumed as', reply.participant_id);
      notice('connection', 'Reconnected.', 'info');
      setTimeout(() => { if (notices.get('connection') && this.ws && this.ws.readyState === 1) notice('connection', null); }, 3000);
      const pc = this.pc;
      setStatus(pc && pc.connectionState === 'connected' ? 'connected' : 'joined',
        pc && pc.connectionState === 'connected' ? 'connected' : 'joined');
      const present = new Set((reply.participants || []).map((p) => p.id));
      for (const id of [...this.participants.keys()]) if (!present.has(id)) this.removeParticipant(id);
      for (const p of reply.participants || []) this.upsertParticipant(p);
      // Chat sent while the socket was down: the history's messages newer than the newest shown.
      const newest = chatLog.reduce((t, c) => (typeof c.ts === 'number' && c.ts > t ? c.ts : t), 0);
      for (const m of Array.isArray(reply.chat_history) ? reply.chat_history : []) {
        if (m && typeof m.ts === 'number' && m.ts > newest) this.onChat(m, false);
      }
      this.queue(async () => {
        if (this.pc !== pc || !pc) return;
        // An offer of ours that the old socket never got answered: take it back, offer again.
        if (pc.signalingState === 'have-local-offer') {
          await pc.setLocalDescription({ type: 'rollback' });
          this.needOffer = true;
        }
        this.offerInFlight = false;
        if (pc.connectionState === 'failed' || pc.connectionState === 'disconnected') this.restartIce('after resume');
        await this.maybeOffer();
      });
      this.refreshRemoteMedia();
    }

    // The WebSocket closed (not a `bye`): keep the peer connection and resume on a new socket.
    socketLost(why) {
      if (this.leaving) return;
      if (!this.pc || !this.resumeToken) { this.connectionLost(why); return; }
      const ws = this.ws;
      this.ws = null;
      if (ws) { ws.onclose = null; ws.onmessage = null; try { ws.close(); } catch (e) { /* already closed */ } }
      for (const { resolve } of this.pending.values()) resolve({ type: 'error', code: 'disconnected', message: 'connection closed' });
      this.pending.clear();
      if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
      this.attempt += 1;
      // Quick at first (the server keeps our place for 20 s), then slower.
      const delay = Math.min(5000, 250 * 2 ** (this.attempt - 1)) * (0.8 + Math.random() * 0.4);
      notice('connection', `${why} Reconnecting…`, 'warn');
      setStatus('reconnecting', 'reconnecting…');
      this.reconnectTimer = setTimeout(() => { this.reconnectTimer = null; this.connect(); }, delay);
    }

    // New ICE credentials and an offer: recovers the media path after a network change.
    restartIce(why) {
      const pc = this.pc;
      if (!pc || pc.signalingState === 'closed') return;
      if (this.iceTimer) { clearTimeout(this.iceTimer); this.iceTimer = null; }
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return; // done after the resume
      log('ICE restart:', why);
      this.access.iceRestarts += 1;
      pc.restartIce();
      this.queueOffer();
    }

    // ------------------------------------------------------------ participants
    upsertParticipant(info) {
      if (!info || info.id === this.selfId) return;
      let p = this.participants.get(info.id);
      if (!p) {
        p = { id: info.id, name: info.name, tracks: new Map(), card: new Card(info.id, info.name, false),
          audio: null, videoStream: null, level: 0 };
        this.participants.set(info.id, p);
      }
      p.name = info.name;
      p.card.setName(info.name, false);
      p.tracks = new Map((info.tracks || []).map((t) => [t.id, t]));
      this.renderParticipant(p);
    }

    removeParticipant(id) {
      const p = this.participants.get(id);
      if (!p) return;
      p.card.remove();
      if (p.audio) { p.audio.srcObject = null; p.audio.remove(); }
      this.participants.delete(id);
      for (const [mid, entry] of this.trackByMid) if (entry.participant === id) this.trackByMid.delete(mid);
    }

    renderParticipant(p) {
      const tracks = [...p.tracks.values()];
      const mic = tracks.find((t) => t.kind === 'audio' && t.source === 'microphone') || tracks.find((t) => t.kind === 'audio');
      p.card.setMic(mic ? (mic.muted ? 'off' : 'on') : 'none');
      const cam = tracks.find((t) => t.kind === 'video' && !t.muted);
      p.card.setVideo(p.videoStream, !!(cam && p.videoStream));
    }

    // ------------------------------------------------------------ WebRTC
    setupPeer() {
      const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
      this.pc = pc;
      const stream = new MediaStream();
      this.audioTx = pc.addTransceiver(this.micTrack && this.micState === 'on' ? this.micTrack : 'audio',
        { direction: 'sendonly', streams: [stream] });
      this.videoTx = pc.addTransceiver(this.camTrack || 'video', { direction: 'sendonly', streams: [stream] });
      pc.ontrack = (event) => this.onTrack(event);
      pc.onconnectionstatechange = () => {
        if (this.pc !== pc) return;
        log('peer connection', pc.connectionState);
        if (this.iceTimer) { clearTimeout(this.iceTimer); this.iceTimer = null; }
        if (pc.connectionState === 'connected') {
          setStatus('connected', 'connected');
          notice('media', null);
        } else if (pc.connectionState === 'disconnected') {
          setStatus('unstable', 'media interrupted…');
          this.iceTimer = setTimeout(() => { this.iceTimer = null; if (this.pc === pc && pc.connectionState === 'disconnected') this.restartIce('disconnected'); }, ICE_RESTART_AFTER_MS);
        } else if (pc.connectionState === 'failed') {
          // First an ICE restart; if the media path is still failed 15 s later, start over.
          this.restartIce('failed');
          this.iceTimer = setTimeout(() => {
            this.iceTimer = null;
            if (this.pc === pc && pc.connectionState === 'failed') this.connectionLost('The media connection to the server failed.');
          }, 15000);
        }
      };
      this.statsTimer = setInterval(() => this.pollLevels(), 300);
      this.openDataChannels(pc);
      this.queueOffer();
    }

    // ------------------------------------------------------------ room data
    // Both channels exist before the first offer, so that it has the m=application line.
    openDataChannels(pc) {
      const open = (label, options, lossy) => {
        const ch = pc.createDataChannel(label, options);
        ch.onopen = () => {
          log('data channel open', label);
          if (!lossy && this.pc === pc) this.onDataOpen();
        };
        ch.onclose = () => log('data channel closed', label);
        ch.onmessage = (event) => { if (this.pc === pc) this.onRoomData(event.data, lossy); };
        return ch;
      };
      this.dataChannel = open(DATA_LABEL, {}, false);
      this.lossyChannel = open(LOSSY_LABEL, { ordered: false, maxRetransmits: 0 }, true);
    }

    // Sends room data; false when the channel is not open.
    sendData(data, options) {
      const o = options || {};
      const ch = o.lossy ? this.lossyChannel : this.dataChannel;
      if (!ch || ch.readyState !== 'open') return false;
      const msg = { data: data === undefined ? null : data };
      if (o.to) msg.to = Array.isArray(o.to) ? o.to : [o.to];
      if (o.topic) msg.topic = o.topic;
      ch.send(JSON.stringify(msg));
      return true;
    }

    onRoomData(text, lossy) {
      let msg;
      try { msg = JSON.parse(text); } catch (e) { log('room data: not JSON', String(text).slice(0, 200)); return; }
      if (msg && typeof msg.error === 'string') {
        log('room data refused', msg.error, msg.message);
        notice('room-data', `The server refused a room-data message: ${msg.message || msg.error} (${msg.error})`, 'warn');
        return;
      }
      if (!msg || typeof msg.from !== 'string') return;
      roomDataLog.push({ from: msg.from, topic: msg.topic === undefined ? null : msg.topic, data: msg.data, lossy });
      if (roomDataLog.length > 500) roomDataLog.shift();
      const p = this.participants.get(msg.from);
      if (msg.topic === 'hand' && p) {
        p.card.setHand(!!(msg.data && msg.data.raised === true));
      } else if (msg.topic === 'hand-sync' && this.handRaised) {
        this.sendData({ raised: true }, { to: msg.from, topic: 'hand' });
      } else if (msg.topic === 'reaction' && p && REACTIONS.includes(msg.data)) {
        p.card.react(msg.data);
      }
    }

    // Our reliable channel is up: learn who has a hand raised, and tell ours again (after a
    // reconnect).
    onDataOpen() {
      this.sendData(null, { topic: 'hand-sync' });
      if (this.handRaised) this.sendData({ raised: true }, { topic: 'hand' });
    }

    toggleHand() {
      this.handRaised = !this.handRaised;
      this.card.setHand(this.handRaised);
      this.updateHandButton();
      this.sendData({ raised: this.handRaised }, { topic: 'hand' });
    }

    updateHandButton() {
      const button = $('hand-button');
      button.dataset.state = this.handRaised ? 'on' : 'off';
      button.textContent = this.handRaised ? '✋ Lower hand' : '✋ Raise hand';
    }

    react(emoji) {
      this.card.react(emoji);
      this.sendData(emoji, { lossy: true, topic: 'reaction' });
    }

    localTracks() {
      const list = [];
      if (this.audioTx && this.audioTx.mid !== null) {
        list.push({ mid: this.audioTx.mid, kind: 'audio', source: 'microphone', muted: this.micState !== 'on' });
      }
      if (this.videoTx && this.videoTx.mid !== null) {
        list.push({ mid: this.videoTx.mid, kind: 'video', source: 'camera', muted: !this.camTrack });
      }
      return list;
    }

    queue(task) {
      this.chain = this.chain.then(task).catch((err) => {
        log('negotiation step failed', String(err && err.stack || err));
        notice('negotiation', `Media negotiation failed: ${err && err.message || err}`, 'error');
      });
      return this.chain;
    }

    queueOffer() {
      this.needOffer = true;
      this.queue(() => this.maybeOffer());
    }

    // Send a fresh offer of the unchanged session (test hook: lets the e2e test make our offer
    // cross a server offer now that camera and mic changes no longer renegotiate).
    renegotiate() {
      this.needOffer = true;
      this.queue(() => this.maybeOffer());
    }

    async maybeOffer() {
      const pc = this.pc;
      if (!pc || !this.needOffer || this.offerInFlight || pc.signalingState !== 'stable') return;
      this.needOffer = false;
      this.offerInFlight = true;
      this.serverOffersAtOffer = this.serverOffers;
      await pc.setLocalDescription(await pc.createOffer());
      const reply = this.request({ type: 'offer', sdp: pc.localDescription.sdp, tracks: this.localTracks() });
      // Not awaited inside the queue: a server offer may arrive before the reply (glare).
      reply.then((msg) => this.queue(() => this.onOfferReply(pc, msg)));
    }

    async onOfferReply(pc, msg) {
      if (this.pc !== pc) return;
      this.offerInFlight = false;
      if (msg.type === 'answer') {
        if (pc.signalingState === 'have-local-offer') {
          await pc.setRemoteDescription({ type: 'answer', sdp: filterCandidates(msg.sdp) });
        }
        // Learn our own track ids if the server lists them (for `mute`).
        for (const t of msg.tracks || []) {
          const id = t.track_id || t.id;
          if (t.mid != null && id) this.ownTrackIds.set(String(t.mid), id);
        }
        notice('negotiation', null);
      } else if (msg.type === 'error' && msg.code === 'glare') {
        log('glare: rolling back and letting the server offer through');
        if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' });
        this.needOffer = true;
        if (this.serverOffers === this.serverOffersAtOffer) {
          // The server's offer has not reached us yet: offer again once we have answered it
          // (see onServerOffer), or after a pause - never in a tight loop.
          setTimeout(() => this.queue(() => this.maybeOffer()), 1000);
          return;
        }
      } else if (msg.type === 'error') {
        this.showError(msg);
        if (msg.code === 'disconnected') return;
        if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' });
      }
      await this.maybeOffer();
    }

    onServerOffer(msg) {
      const pc = this.pc;
      for (const t of msg.tracks || []) {
        if (t.slot !== undefined && t.slot !== null) {
          this.trackByMid.set(String(t.mid), { participant: null, track: null, slot: t.slot });
        } else {
          this.trackByMid.set(String(t.mid), { participant: t.participant_id, track: t.track_id });
        }
      }
      this.queue(async () => {
        if (this.pc !== pc || !pc) return;
        this.serverOffers += 1;
        if (pc.signalingState === 'have-local-offer') {
          // Our offer crossed the server's: the server wins (it answers ours with `glare`).
          log('server offer during our offer: rolling back');
          await pc.setLocalDescription({ type: 'rollback' });
          this.needOffer = true;
        } else if (pc.signalingState === 'have-remote-offer') {
          // The same offer again after a resume (our answer was lost with the old socket).
          await pc.setRemoteDescription({ type: 'rollback' });
        }
        await pc.setRemoteDescription({ type: 'offer', sdp: filterCandidates(msg.sdp) });
        await pc.setLocalDescription(await pc.createAnswer());
        const reply = await this.request({ type: 'answer', negotiation: msg.negotiation, sdp: pc.localDescription.sdp });
        if (reply.type === 'error') this.showError(reply);
        this.refreshRemoteMedia();
        await this.maybeOffer(); // after a glare: our offer again, now that we are stable
      });
    }

    onTrack(event) {
      const mid = event.transceiver && event.transceiver.mid;
      const entry = this.trackByMid.get(String(mid));
      const pid = entry ? entry.participant : event.streams[0] && event.streams[0].id;
      log('remote track', event.track.kind, 'mid', mid, '->', pid || '?');
      if (entry === undefined && pid) this.trackByMid.set(String(mid), { participant: pid, track: event.track.id });
      event.track.onunmute = () => this.refreshRemoteMedia();
      event.track.onended = () => this.refreshRemoteMedia();
      this.refreshRemoteMedia();
    }

    // Re-attaches every receiving transceiver's track to its participant's card / audio element.
    refreshRemoteMedia() {
      const pc = this.pc;
      if (!pc) return;
      const audioByP = new Map();
      const videoByP = new Map();
      const audioBySlot = new Map();
      for (const tx of pc.getTransceivers()) {
        if (tx === this.audioTx || tx === this.videoTx || tx.mid === null) continue;
        const dir = tx.currentDirection;
        if (dir !== 'recvonly' && dir !== 'sendrecv') continue;
        const entry = this.trackByMid.get(String(tx.mid));
        if (!entry) continue;
        const track = tx.receiver.track;
        if (entry.slot !== undefined && entry.slot !== null) {
          if (track.kind === 'audio') audioBySlot.set(entry.slot, track);
          continue;
        }
        const map = track.kind === 'audio' ? audioByP : videoByP;
        if (!map.has(entry.participant)) map.set(entry.participant, track);
      }
      for (const [slot, track] of audioBySlot) {
        let el = this.slotAudio.get(slot);
        if (!el) {
          el = document.createElement('audio');
          el.autoplay = true;
          el.dataset.slot = String(slot);
          $('audio-sink').append(el);
          this.slotAudio.set(slot, el);
        }
        const current = el.srcObject && el.srcObject.getAudioTracks()[0];
        if (current !== track) {
          el.srcObject = new MediaStream([track]);
          el.play().catch((err) => log('slot audio play blocked', String(err)));
        }
      }
      for (const [slot, el] of this.slotAudio) {
        if (!audioBySlot.has(slot)) { el.srcObject = null; el.remove(); this.slotAudio.delete(slot); }
      }
      for (const p of this.participants.values()) {
        const audioTrack = audioByP.get(p.id);
        if (audioTrack) {
          if (!p.audio) {
            p.audio = document.createElement('audio');
            p.audio.autoplay = true;
            $('audio-sink').append(p.audio);
          }
          const current = p.audio.srcObject && p.audio.srcObject.getAudioTracks()[0];
          if (current !== audioTrack) {
            p.audio.srcObject = new MediaStream([audioTrack]);
            p.audio.play().catch((err) => {
              notice('autoplay', 'The browser blocked sound. Click anywhere on the page to hear the others.', 'warn');
              log('audio play blocked', String(err));
            });
          }
        }
        const videoTrack = videoByP.get(p.id);
        const current = p.videoStream && p.videoStream.getVideoTracks()[0];
        if (videoTrack && current !== videoTrack) p.videoStream = new MediaStream([videoTrack]);
        if (!videoTrack) p.videoStream = null;
        this.renderParticipant(p);
      }
    }

    async pollLevels() {
      const pc = this.pc;
      if (!pc) return;
      let report;
      try { report = await pc.getStats(); } catch (e) { return; }
      // Only our own level: the others' speaking indicators follow the server's `speaking`.
      let ownLevel = 0;
      report.forEach((s) => {
        if (s.type === 'media-source' && s.kind === 'audio' && typeof s.audioLevel === 'number') ownLevel = s.audioLevel;
      });
      this.card.setSpeaking(this.micState === 'on' && ownLevel > SPEAKING_LEVEL);
    }

    // ------------------------------------------------------------ own media controls
    async setMuteFlag(tx, muted) {
      if (!tx || tx.mid === null) return;
      const trackId = this.ownTrackIds.get(String(tx.mid));
      if (trackId) {
        const reply = await this.request({ type: 'mute', track: trackId, muted });
        if (reply.type === 'error') this.showError(reply);
      } else {
        // The server did not tell us our track ids: re-announce the tracks with a new offer.
        this.queueOffer();
      }
    }

    // One toggle at a time per device (a second click while getUserMedia is pending is ignored).
    async exclusive(key, task) {
      if (this.busy.has(key)) return;
      this.busy.add(key);
      try { await task(); } finally { this.busy.delete(key); }
    }

    toggleMic() { return this.exclusive('mic', () => this.toggleMicNow()); }

    toggleCamera() { return this.exclusive('camera', () => this.toggleCameraNow()); }

    async toggleMicNow() {
      if (this.micState === 'denied' || !this.micTrack || this.micTrack.readyState === 'ended') {
        await this.acquireMic();
        if (this.micState !== 'on') return;
      } else {
        this.micState = this.micState === 'on' ? 'muted' : 'on';
      }
      const sending = this.micState === 'on';
      if (this.audioTx) await this.audioTx.sender.replaceTrack(sending ? this.micTrack : null);
      this.updateButtons();
      await this.setMuteFlag(this.audioTx, !sending);
    }

    async toggleCameraNow() {
      if (this.camTrack) {
        const track = this.camTrack;
        this.camTrack = null;
        if (this.videoTx) await this.videoTx.sender.replaceTrack(null);
        track.stop();
        this.card.setVideo(null, false);
        this.updateButtons();
        await this.setMuteFlag(this.videoTx, true);
        return;
      }
      try {
        const stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 360 } } });
        this.camTrack = stream.getVideoTracks()[0];
        notice('camera', null);
      } catch (err) {
        notice('camera', `Camera unavailable (${err && err.name}): ${err && err.message || ''}`, 'warn');
        return;
      }
      if (this.videoTx) await this.videoTx.sender.replaceTrack(this.camTrack);
      this.card.setVideo(new MediaStream([this.camTrack]), true);
      this.updateButtons();
      await this.setMuteFlag(this.videoTx, false);
    }

    updateButtons() {
      const mic = $('mic-button');
      mic.dataset.state = this.micState;
      mic.textContent = this.micState === 'on' ? 'Mute' : this.micState === 'muted' ? 'Unmute' : 'Mic';
      mic.title = this.micState === 'denied' ? 'No microphone: press to try again' : '';
      this.card.setMic(this.micState === 'on' ? 'on' : this.micState === 'muted' ? 'off' : 'none');
      const cam = $('cam-button');
      cam.dataset.state = this.camTrack ? 'on' : 'off';
      cam.textContent = this.camTrack ? 'Camera off' : 'Camera on';
    }

    // ------------------------------------------------------------ chat
    // `joined.chat_history`: the room's earlier messages, marked as such (skipping those we
    // already show, after a reconnect).
    showChatHistory(history) {
      const shown = (m) => chatLog.some((c) => c.from === m.from && c.ts === m.ts && c.text === m.text);
      const earlier = (Array.isArray(history) ? history : []).filter((m) => m && !shown(m));
      if (!earlier.length) return;
      this.systemLine(`Earlier messages (${earlier.length}), sent before you joined:`);
      for (const m of earlier) this.onChat(m, true);
      this.systemLine('You joined.');
    }

    onChat(msg, earlier) {
      const entry = { from: msg.from, name: msg.name, text: msg.text, ts: msg.ts, earlier: !!earlier };
      chatLog.push(entry);
      const li = document.createElement('li');
      if (msg.from === this.selfId) li.className = 'mine';
      if (earlier) li.classList.add('earlier');
      const who = document.createElement('span');
      who.className = 'who';
      who.textContent = msg.name;
      const when = document.createElement('time');
      const date = new Date(typeof msg.ts === 'number' ? msg.ts : Date.now());
      when.textContent = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
      const text = document.createElement('span');
      text.className = 'text';
      text.textContent = msg.text;
      li.append(who, when, text);
      const logEl = $('chat-log');
      logEl.append(li);
      logEl.scrollTop = logEl.scrollHeight;
    }

    // A grey line in the chat panel (joins and leaves); not part of the chat log of the test hook.
    systemLine(text) {
      const li = document.createElement('li');
      li.className = 'system';
      li.textContent = text;
      const logEl = $('chat-log');
      logEl.append(li);
      logEl.scrollTop = logEl.scrollHeight;
    }

    async sendChat(text) {
      const reply = await this.request({ type: 'chat', text });
      if (reply.type === 'error') {
        this.showError(reply);
        return false;
      }
      return true;
    }

    // ------------------------------------------------------------ leaving and reconnecting
    onBye(msg) {
      log('bye', msg.reason);
      if (msg.reason === 'left') return;
      const why = msg.reason === 'shutdown' ? 'The server is shutting down.'
        : msg.reason === 'timeout' ? 'The server lost our media connection.' : `The server closed the session (${msg.reason}).`;
      this.connectionLost(why);
    }

    connectionLost(why) {
      if (this.leaving) return;
      if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
      this.teardown();
      this.attempt += 1;
      const delay = Math.min(30, 2 ** (this.attempt - 1)) * 1000 * (0.8 + Math.random() * 0.4);
      notice('connection', `${why} Reconnecting in ${Math.round(delay / 1000)} s (attempt ${this.attempt})…`, 'error');
      setStatus('reconnecting', 'reconnecting…');
      this.reconnectTimer = setTimeout(() => { this.reconnectTimer = null; this.connect(); }, delay);
    }

    // Drops the WebSocket, the peer connection and the remote participants; keeps our own
    // microphone/camera tracks for the next join.
    teardown() {
      const ws = this.ws;
      this.ws = null;
      if (ws) { ws.onclose = null; try { ws.close(); } catch (e) { /* already closed */ } }
      for (const { resolve } of this.pending.values()) resolve({ type: 'error', code: 'disconnected', message: 'connection closed' });
      this.pending.clear();
      if (this.pc) { this.pc.ontrack = null; this.pc.onconnectionstatechange = null; this.pc.close(); }
      this.pc = null;
      this.dataChannel = null;
      this.lossyChannel = null;
      this.audioTx = null;
      this.videoTx = null;
      this.offerInFlight = false;
      this.needOffer = false;
      this.serverOffers = 0;
      this.serverOffersAtOffer = 0;
      this.chain = Promise.resolve();
      this.ownTrackIds.clear();
      this.trackByMid.clear();
      for (const el of this.slotAudio.values()) { el.srcObject = null; el.remove(); }
      this.slotAudio.clear();
      this.slotMap.clear();
      this.activeSpeakers = [];
      if (this.statsTimer) clearInterval(this.statsTimer);
      this.statsTimer = null;
      if (this.iceTimer) clearTimeout(this.iceTimer);
      this.iceTimer = null;
      for (const id of [...this.participants.keys()]) this.removeParticipant(id);
      this.selfId = null;
    }

    stopLocalMedia() {
      if (this.micTrack) this.micTrack.stop();
      if (this.camTrack) this.camTrack.stop();
      this.micTrack = null;
      this.camTrack = null;
      this.card.remove();
    }

    async leave() {
      this.leaving = true;
      if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
      if (this.ws && this.ws.readyState === WebSocket.OPEN) {
        await Promise.race([this.request({ type: 'leave' }), new Promise((r) => setTimeout(r, 1000))]);
      }
      this.teardown();
      this.stopLocalMedia();
      clearNotices();
      setStatus('left', 'left');
      showLanding(`You left room "${this.room}".`);
    }

    snapshot() {
      return {
        status: $('status').dataset.state,
        room: this.room,
        self: { id: this.selfId, name: this.name, mic: this.micState, camOn: !!this.camTrack },
        participants: [...this.participants.values()].map((p) => {
          const tracks = [...p.tracks.values()];
          const mic = tracks.find((t) => t.kind === 'audio');
          return {
            id: p.id,
            name: p.name,
            micMuted: mic ? !!mic.muted : null,
            camOn: tracks.some((t) => t.kind === 'video' && !t.muted),
            speaking: p.card.el.classList.contains('speaking'),
            spoke: p.card.spoke,
            shownVideo: p.card.el.classList.contains('has-video'),
          };
        }),
        slots: Object.fromEntries(this.slotMap),
        activeSpeakers: this.activeSpeakers,
      };
    }

    // 'udp' or 'tcp': the protocol of the selected ICE candidate pair, or null.
    async selectedTransport() {
      if (!this.pc) return null;
      const report = await this.pc.getStats();
      let protocol = null;
      report.forEach((s) => {
        if (s.type !== 'transport' || !s.selectedCandidatePairId) return;
        const pair = report.get(s.selectedCandidatePairId);
        const local = pair && report.get(pair.localCandidateId);
        if (local) protocol = local.protocol;
      });
      return protocol;
    }

    async inboundStats() {
      const pc = this.pc;
      if (!pc) return [];
      const report = await pc.getStats();
      const out = [];
      report.forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        const entry = this.trackByMid.get(String(s.mid)) || {};
        out.push({ mid: s.mid, kind: s.kind, participant: entry.participant || null, track: entry.track || null,
          packetsReceived: s.packetsReceived || 0, framesDecoded: s.framesDecoded || 0,
          audioLevel: s.audioLevel === undefined ? null : s.audioLevel });
      });
      return out;
    }
  }

  // ---------------------------------------------------------------- wiring
  function initRoomControls() {
    $('mic-button').onclick = () => session && session.toggleMic();
    $('cam-button').onclick = () => session && session.toggleCamera();
    $('hand-button').onclick = () => session && session.toggleHand();
    for (const button of document.querySelectorAll('#reactions button[data-emoji]')) {
      button.onclick = () => session && session.react(button.dataset.emoji);
    }
    $('leave-button').onclick = () => {
      if (!session) return;
      const s = session;
      session = null;
      s.leave();
    };
    $('chat-form').onsubmit = async (event) => {
      event.preventDefault();
      const input = $('chat-input');
      const text = input.value.trim();
      if (!text || !session) return;
      input.value = '';
      if (!(await session.sendChat(text))) input.value = text;
    };
    $('copy-link').onclick = async () => {
      const input = $('share-link');
      try {
        await navigator.clipboard.writeText(input.value);
        $('copy-link').textContent = 'Copied';
      } catch (e) {
        input.select();
        $('copy-link').textContent = 'Press Ctrl+C';
      }
      setTimeout(() => { $('copy-link').textContent = 'Copy link'; }, 2000);
    };
    document.addEventListener('click', () => {
      if (!session) return;
      for (const p of session.participants.values()) if (p.audio && p.audio.paused) p.audio.play().then(() => notice('autoplay', null)).catch(() => {});
    });
    window.addEventListener('popstate', () => {
      if (session) { const s = session; session = null; s.leave(); }
      initLanding();
    });
  }

  window.tympanTest = {
    state() {
      const base = session ? session.snapshot() : { status: $('room').hidden ? 'landing' : 'left', participants: [] };
      base.chat = chatLog.map(({ from, name, text, earlier }) => ({ from, name, text, earlier }));
      base.notices = [...notices.values()].map((el) => el.firstChild.textContent);
      return base;
    },
    stats() { return session ? session.inboundStats() : Promise.resolve([]); },
    async rtpTotals() {
      const pc = session && session.pc;
      if (!pc) return null;
      const t = { packetsSent: 0, bytesSent: 0, headerBytesSent: 0, retransmittedPacketsSent: 0,
        packetsReceived: 0, bytesReceived: 0, headerBytesReceived: 0, packetsLost: 0 };
      (await pc.getStats()).forEach((s) => {
        const fields = s.type === 'outbound-rtp'
          ? ['packetsSent', 'bytesSent', 'headerBytesSent', 'retransmittedPacketsSent']
          : s.type === 'inbound-rtp' ? ['packetsReceived', 'bytesReceived', 'headerBytesReceived', 'packetsLost'] : [];
        for (const f of fields) t[f] += s[f] || 0;
      });
      return t;
    },
    transport() { return session ? session.selectedTransport() : Promise.resolve(null); },
    log() { return logLines.slice(); },
    renegotiate() { if (session) session.renegotiate(); },
    sendData(data, options) { return session ? session.sendData(data, options) : false; },
    roomData() { return roomDataLog.slice(); },
    dataOpen() {
      const isOpen = (ch) => !!ch && ch.readyState === 'open';
      return { reliable: !!session && isOpen(session.dataChannel), lossy: !!session && isOpen(session.lossyChannel) };
    },
    dropSocket() {
      if (!session || !session.ws) return false;
      session.ws.close(); // no `leave`: the server keeps us for the resume grace period
      return true;
    },
    access() { return session ? { ...session.access } : null; },
  };

  initRoomControls();
  initLanding();
})();
