//! A sans-IO TURN client (RFC 8656) over UDP or TCP (split the stream with
//! [`stream_message_len`]): Allocate with long-term credentials
//! (401 → REALM/NONCE → retry; 438 stale nonce), Refresh before expiry, CreatePermission,
//! ChannelBind, Send/Data indications, ChannelData and deallocation.
//!
//! Every datagram the client produces goes to the TURN server
//! ([`TurnClient::server`]). Hand the allocation to the ICE agent with
//! [`TurnClient::relayed_candidate`]; when the agent asks to send from the relayed address,
//! wrap the payload with [`TurnClient::encode_send`]; feed datagrams from the server to
//! [`TurnClient::handle_packet`], which returns peer data as [`TurnInput::Data`] for
//! `agent.handle_packet(now, peer, relayed, data)`.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::agent::Candidate;
use crate::stun::{
    Class, IntegrityKey, MessageBuilder, Method, StunMessage, TransactionId, long_term_key,
};

/// Client configuration.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    /// The TURN server.
    pub server: SocketAddr,
    /// Long-term credential username.
    pub username: String,
    /// Long-term credential password (already SASLprep/OpaqueString-processed).
    pub password: String,
    /// Requested allocation lifetime in seconds.
    pub lifetime: u32,
    /// Initial retransmission timeout over UDP.
    pub initial_rto: Duration,
    /// Transmissions of a request before it fails.
    pub max_transmissions: u32,
    /// PRNG seed for transaction ids (use a random value in production).
    pub seed: u64,
    /// SOFTWARE attribute, if any.
    pub software: Option<String>,
}

impl TurnConfig {
    /// A configuration with RFC defaults for `server` and the credentials.
    pub fn new(
        server: SocketAddr,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        TurnConfig {
            server,
            username: username.into(),
            password: password.into(),
            lifetime: 600,
            initial_rto: Duration::from_millis(500),
            max_transmissions: 7,
            seed: 0x7E57_0001,
            software: None,
        }
    }
}

/// Client errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnError {
    /// No allocation yet (or it failed/expired).
    NotAllocated,
    /// No permission for the peer's IP; call [`TurnClient::create_permission`] first.
    NoPermission(IpAddr),
    /// The output buffer is too small.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// All channel numbers are in use.
    NoChannelLeft,
}

impl fmt::Display for TurnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TurnError::NotAllocated => write!(f, "no TURN allocation"),
            TurnError::NoPermission(ip) => write!(f, "no TURN permission for {ip}"),
            TurnError::BufferTooSmall { needed } => write!(f, "buffer too small, need {needed}"),
            TurnError::NoChannelLeft => write!(f, "no TURN channel number left"),
        }
    }
}

impl std::error::Error for TurnError {}

/// State of the allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnState {
    /// Nothing requested yet.
    Idle,
    /// Allocate in flight.
    Allocating,
    /// Allocation active.
    Allocated,
    /// Deallocation in flight.
    Deallocating,
    /// Deallocated or expired.
    Closed,
    /// The server refused or did not answer.
    Failed,
}

/// Events for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnEvent {
    /// The allocation succeeded.
    Allocated {
        /// The relayed transport address (a local candidate for ICE).
        relayed: SocketAddr,
        /// Our server-reflexive address as the server saw it.
        mapped: Option<SocketAddr>,
        /// Granted lifetime.
        lifetime: Duration,
    },
    /// The allocation was refreshed.
    Refreshed {
        /// Granted lifetime.
        lifetime: Duration,
    },
    /// A permission is installed for this peer IP.
    PermissionCreated(IpAddr),
    /// A channel is bound.
    ChannelBound {
        /// Peer.
        peer: SocketAddr,
        /// Channel number.
        channel: u16,
    },
    /// A request failed.
    Failed {
        /// What was asked.
        request: &'static str,
        /// STUN error code (0 for a timeout).
        code: u16,
    },
    /// The allocation is gone (deallocated or expired).
    Closed,
}

/// What an incoming datagram from the server was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnInput<'a> {
    /// Not for this client.
    NotTurn,
    /// A response consumed by the client.
    Handled,
    /// Data from a peer (Data indication or ChannelData), borrowed from the input.
    Data {
        /// The peer.
        peer: SocketAddr,
        /// Payload.
        data: &'a [u8],
    },
}

/// A datagram for the TURN server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnTransmit {
    /// Destination (the server).
    pub destination: SocketAddr,
    /// Bytes.
    pub contents: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Req {
    Allocate,
    Refresh(u32),
    Permission(IpAddr),
    Channel(u16, SocketAddr),
}

impl Req {
    fn name(self) -> &'static str {
        match self {
            Req::Allocate => "Allocate",
            Req::Refresh(_) => "Refresh",
            Req::Permission(_) => "CreatePermission",
            Req::Channel(..) => "ChannelBind",
        }
    }
}

#[derive(Debug, Clone)]
struct Pending {
    tid: TransactionId,
    req: Req,
    bytes: Vec<u8>,
    next_retx: Instant,
    rto: Duration,
    sent: u32,
    auth_retries: u32,
}

#[derive(Debug, Clone, Copy)]
struct Channel {
    number: u16,
    bound: bool,
    refresh_at: Option<Instant>,
}

/// Permission lifetime is 300 s (RFC 8656 §9); refresh a minute early.
const PERMISSION_REFRESH: Duration = Duration::from_secs(240);
/// Channel lifetime is 600 s (RFC 8656 §12); refresh a minute early.
const CHANNEL_REFRESH: Duration = Duration::from_secs(540);

/// The TURN client.
#[derive(Debug)]
pub struct TurnClient {
    cfg: TurnConfig,
    rng: u64,
    state: TurnState,
    realm: Option<String>,
    nonce: Option<String>,
    key: Option<IntegrityKey>,
    relayed: Option<SocketAddr>,
    mapped: Option<SocketAddr>,
    refresh_at: Option<Instant>,
    expires_at: Option<Instant>,
    pending: Vec<Pending>,
    permissions: HashMap<IpAddr, Option<Instant>>,
    channels: HashMap<SocketAddr, Channel>,
    channel_peers: HashMap<u16, SocketAddr>,
    next_channel: u16,
    transmits: VecDeque<TurnTransmit>,
    events: VecDeque<TurnEvent>,
    buf: Vec<u8>,
}

impl TurnClient {
    /// A client for `cfg.server`.
    pub fn new(cfg: TurnConfig) -> Self {
        TurnClient {
            rng: cfg.seed | 1,
            cfg,
            state: TurnState::Idle,
            realm: None,
            nonce: None,
            key: None,
            relayed: None,
            mapped: None,
            refresh_at: None,
            expires_at: None,
            pending: Vec::new(),
            permissions: HashMap::new(),
            channels: HashMap::new(),
            channel_peers: HashMap::new(),
            next_channel: 0x4000,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            buf: vec![0; 1600],
        }
    }

    /// The TURN server address.
    pub fn server(&self) -> SocketAddr {
        self.cfg.server
    }

    /// Allocation state.
    pub fn state(&self) -> TurnState {
        self.state
    }

    /// The relayed address, once allocated.
    pub fn relayed_address(&self) -> Option<SocketAddr> {
        self.relayed
    }

    /// The relayed address as an ICE candidate.
    pub fn relayed_candidate(&self) -> Option<Candidate> {
        self.relayed.map(Candidate::relayed)
    }

    /// The server-reflexive address reported by the Allocate response, as an ICE candidate
    /// whose base is `local` (the socket used to talk to the server).
    pub fn server_reflexive_candidate(&self, local: SocketAddr) -> Option<Candidate> {
        self.mapped.map(|m| Candidate::server_reflexive(m, local))
    }

    /// The channel bound to `peer`, if any.
    pub fn channel_of(&self, peer: SocketAddr) -> Option<u16> {
        self.channels
            .get(&peer)
            .filter(|c| c.bound)
            .map(|c| c.number)
    }

    fn txid(&mut self) -> TransactionId {
        let mut t = [0u8; 12];
        for chunk in t.chunks_mut(4) {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            chunk.copy_from_slice(&(self.rng as u32).to_be_bytes());
        }
        TransactionId(t)
    }

    fn build(&mut self, req: Req, tid: TransactionId) -> Vec<u8> {
        let method = match req {
            Req::Allocate => Method::ALLOCATE,
            Req::Refresh(_) => Method::REFRESH,
            Req::Permission(_) => Method::CREATE_PERMISSION,
            Req::Channel(..) => Method::CHANNEL_BIND,
        };
        let mut b = MessageBuilder::new(&mut self.buf, method, Class::Request, tid);
        if let Some(s) = &self.cfg.software {
            b.software(s);
        }
        match req {
            Req::Allocate => {
                b.requested_transport(17).lifetime(self.cfg.lifetime);
            }
            Req::Refresh(l) => {
                b.lifetime(l);
            }
            Req::Permission(ip) => {
                b.xor_peer_address(SocketAddr::new(ip, 0));
            }
            Req::Channel(ch, peer) => {
                b.channel_number(ch).xor_peer_address(peer);
            }
        }
        if let (Some(realm), Some(nonce), Some(key)) = (&self.realm, &self.nonce, &self.key) {
            b.username(&self.cfg.username).realm(realm).nonce(nonce);
            b.message_integrity_with(key);
        }
        b.fingerprint();
        b.finish().map(|x| x.to_vec()).unwrap_or_default()
    }

    fn request(&mut self, now: Instant, req: Req) {
        let tid = self.txid();
        let bytes = self.build(req, tid);
        self.transmits.push_back(TurnTransmit {
            destination: self.cfg.server,
            contents: bytes.clone(),
        });
        self.pending.push(Pending {
            tid,
            req,
            bytes,
            next_retx: now + self.cfg.initial_rto,
            rto: self.cfg.initial_rto,
            sent: 1,
            auth_retries: 0,
        });
    }

    /// Starts the allocation.
    pub fn allocate(&mut self, now: Instant) {
        if matches!(
            self.state,
            TurnState::Idle | TurnState::Closed | TurnState::Failed
        ) {
            self.state = TurnState::Allocating;
            self.request(now, Req::Allocate);
        }
    }

    /// Installs (and keeps refreshing) a permission for `peer`'s IP.
    pub fn create_permission(&mut self, now: Instant, peer: IpAddr) -> Result<(), TurnError> {
        if self.state != TurnState::Allocated {
            return Err(TurnError::NotAllocated);
        }
        if self.permissions.contains_key(&peer)
            || self.pending.iter().any(|p| p.req == Req::Permission(peer))
        {
            return Ok(());
        }
        self.request(now, Req::Permission(peer));
        Ok(())
    }

    /// Binds a channel to `peer` (also installs the permission); returns the channel number.
    pub fn bind_channel(&mut self, now: Instant, peer: SocketAddr) -> Result<u16, TurnError> {
        if self.state != TurnState::Allocated {
            return Err(TurnError::NotAllocated);
        }
        if let Some(c) = self.channels.get(&peer) {
            return Ok(c.number);
        }
        if self.next_channel > 0x4FFF {
            return Err(TurnError::NoChannelLeft);
        }
        let number = self.next_channel;
        self.next_channel += 1;
        self.channels.insert(
            peer,
            Channel {
                number,
                bound: false,
                refresh_at: None,
            },
        );
        self.channel_peers.insert(number, peer);
        self.request(now, Req::Channel(number, peer));
        Ok(number)
    }

    /// Releases the allocation (Refresh with LIFETIME 0).
    pub fn deallocate(&mut self, now: Instant) {
        if self.state == TurnState::Allocated {
            self.state = TurnState::Deallocating;
            self.request(now, Req::Refresh(0));
        }
    }

    /// Wraps `data` for `peer` into `out`: ChannelData if a channel is bound, else a Send
    /// indication. Returns the number of bytes to send to [`Self::server`]. No allocation.
    pub fn encode_send(
        &mut self,
        peer: SocketAddr,
        data: &[u8],
        out: &mut [u8],
    ) -> Result<usize, TurnError> {
        if self.state != TurnState::Allocated {
            return Err(TurnError::NotAllocated);
        }
        if let Some(ch) = self.channel_of(peer) {
            return encode_channel_data(ch, data, out);
        }
        if !self.permissions.contains_key(&peer.ip()) {
            return Err(TurnError::NoPermission(peer.ip()));
        }
        let tid = self.txid();
        let mut b = MessageBuilder::new(out, Method::SEND, Class::Indication, tid);
        b.xor_peer_address(peer).data(data);
        b.finish_len().map_err(|_| TurnError::BufferTooSmall {
            needed: 20 + 12 + 24 + 4 + data.len() + 3,
        })
    }

    /// Handles a datagram received from the server.
    pub fn handle_packet<'a>(&mut self, now: Instant, data: &'a [u8]) -> TurnInput<'a> {
        if let Some((ch, payload)) = decode_channel_data(data) {
            return match self.channel_peers.get(&ch) {
                Some(peer) => TurnInput::Data {
                    peer: *peer,
                    data: payload,
                },
                None => TurnInput::NotTurn,
            };
        }
        let Ok(msg) = StunMessage::parse(data) else {
            return TurnInput::NotTurn;
        };
        if msg.class() == Class::Indication {
            if msg.method() == Method::DATA {
                if let (Some(peer), Some(d)) = (msg.xor_peer_address(), msg.data()) {
                    return TurnInput::Data { peer, data: d };
                }
            }
            return TurnInput::NotTurn;
        }
        let tid = msg.transaction_id();
        let Some(idx) = self.pending.iter().position(|p| p.tid == tid) else {
            return TurnInput::NotTurn;
        };
        let p = self.pending.swap_remove(idx);
        if msg.class() == Class::Success {
            // Success responses to authenticated requests carry MESSAGE-INTEGRITY.
            if let Some(key) = &self.key {
                if msg.has_integrity() && msg.verify_integrity_with(key).is_err() {
                    self.pending.push(p);
                    return TurnInput::Handled;
                }
            }
            self.on_success(now, p.req, &msg);
            return TurnInput::Handled;
        }
        let code = msg.error_code().map_or(0, |(c, _)| c);
        let realm_nonce = (msg.realm(), msg.nonce());
        match (code, realm_nonce) {
            (401, (Some(realm), Some(nonce))) if p.auth_retries == 0 && self.key.is_none() => {
                self.realm = Some(realm.to_string());
                self.nonce = Some(nonce.to_string());
                self.key = Some(IntegrityKey::new(&long_term_key(
                    &self.cfg.username,
                    realm,
                    &self.cfg.password,
                )));
                self.retry(now, p);
            }
            (438, (_, Some(nonce))) if p.auth_retries < 2 => {
                self.nonce = Some(nonce.to_string());
                if let Some(realm) = msg.realm() {
                    self.realm = Some(realm.to_string());
                }
                self.retry(now, p);
            }
            _ => self.on_failure(p.req, code),
        }
        TurnInput::Handled
    }

    fn retry(&mut self, now: Instant, p: Pending) {
        let tid = self.txid();
        let bytes = self.build(p.req, tid);
        self.transmits.push_back(TurnTransmit {
            destination: self.cfg.server,
            contents: bytes.clone(),
        });
        self.pending.push(Pending {
            tid,
            req: p.req,
            bytes,
            next_retx: now + self.cfg.initial_rto,
            rto: self.cfg.initial_rto,
            sent: 1,
            auth_retries: p.auth_retries + 1,
        });
    }

    fn on_success(&mut self, now: Instant, req: Req, msg: &StunMessage<'_>) {
        match req {
            Req::Allocate => {
                let Some(relayed) = msg.xor_relayed_address() else {
                    self.on_failure(req, 0);
                    return;
                };
                let lifetime = Duration::from_secs(u64::from(msg.lifetime().unwrap_or(600)));
                self.relayed = Some(relayed);
                self.mapped = msg.xor_mapped_address();
                self.state = TurnState::Allocated;
                self.schedule_refresh(now, lifetime);
                self.events.push_back(TurnEvent::Allocated {
                    relayed,
                    mapped: self.mapped,
                    lifetime,
                });
            }
            Req::Refresh(0) => self.close(),
            Req::Refresh(_) => {
                let lifetime = Duration::from_secs(u64::from(msg.lifetime().unwrap_or(600)));
                self.schedule_refresh(now, lifetime);
                self.events.push_back(TurnEvent::Refreshed { lifetime });
            }
            Req::Permission(ip) => {
                let first = !self.permissions.contains_key(&ip);
                self.permissions.insert(ip, Some(now + PERMISSION_REFRESH));
                if first {
                    self.events.push_back(TurnEvent::PermissionCreated(ip));
                }
            }
            Req::Channel(number, peer) => {
                // A channel binding also installs the permission.
                self.permissions
                    .entry(peer.ip())
                    .or_insert(Some(now + PERMISSION_REFRESH));
                if let Some(c) = self.channels.get_mut(&peer) {
                    let first = !c.bound;
                    c.bound = true;
                    c.refresh_at = Some(now + CHANNEL_REFRESH);
                    if first {
                        self.events.push_back(TurnEvent::ChannelBound {
                            peer,
                            channel: number,
                        });
                    }
                }
            }
        }
    }

    fn schedule_refresh(&mut self, now: Instant, lifetime: Duration) {
        // Refresh a minute before expiry, or at half the lifetime when it is short.
        let margin = if lifetime > Duration::from_secs(120) {
            Duration::from_secs(60)
        } else {
            lifetime / 2
        };
        self.refresh_at = Some(now + lifetime - margin);
        self.expires_at = Some(now + lifetime);
    }

    fn on_failure(&mut self, req: Req, code: u16) {
        self.events.push_back(TurnEvent::Failed {
            request: req.name(),
            code,
        });
        match req {
            Req::Allocate => self.state = TurnState::Failed,
            Req::Refresh(0) => self.close(),
            Req::Refresh(_) => {}
            Req::Permission(ip) => {
                self.permissions.remove(&ip);
            }
            Req::Channel(number, peer) => {
                self.channels.remove(&peer);
                self.channel_peers.remove(&number);
            }
        }
    }

    fn close(&mut self) {
        self.state = TurnState::Closed;
        self.relayed = None;
        self.refresh_at = None;
        self.expires_at = None;
        self.permissions.clear();
        self.channels.clear();
        self.channel_peers.clear();
        self.events.push_back(TurnEvent::Closed);
    }

    /// Advances timers: retransmissions and refreshes of allocation, permissions, channels.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut failed = Vec::new();
        for p in &mut self.pending {
            if p.next_retx > now {
                continue;
            }
            if p.sent >= self.cfg.max_transmissions {
                failed.push(p.tid);
                continue;
            }
            p.sent += 1;
            p.rto *= 2;
            p.next_retx = now + p.rto;
            self.transmits.push_back(TurnTransmit {
                destination: self.cfg.server,
                contents: p.bytes.clone(),
            });
        }
        for tid in failed {
            if let Some(i) = self.pending.iter().position(|p| p.tid == tid) {
                let p = self.pending.swap_remove(i);
                self.on_failure(p.req, 0);
            }
        }
        if self.state != TurnState::Allocated {
            return;
        }
        if self.expires_at.is_some_and(|t| now >= t) {
            self.close();
            return;
        }
        let busy = |pending: &[Pending], r: Req| pending.iter().any(|p| p.req == r);
        if self.refresh_at.is_some_and(|t| now >= t)
            && !self
                .pending
                .iter()
                .any(|p| matches!(p.req, Req::Refresh(_)))
        {
            self.refresh_at = None;
            let l = self.cfg.lifetime;
            self.request(now, Req::Refresh(l));
        }
        let due: Vec<IpAddr> = self
            .permissions
            .iter()
            .filter(|(ip, t)| {
                t.is_some_and(|t| now >= t) && !busy(&self.pending, Req::Permission(**ip))
            })
            .map(|(ip, _)| *ip)
            .collect();
        for ip in due {
            self.permissions.insert(ip, None);
            self.request(now, Req::Permission(ip));
        }
        let due: Vec<(SocketAddr, u16)> = self
            .channels
            .iter()
            .filter(|(_, c)| c.refresh_at.is_some_and(|t| now >= t))
            .map(|(p, c)| (*p, c.number))
            .collect();
        for (peer, number) in due {
            if let Some(c) = self.channels.get_mut(&peer) {
                c.refresh_at = None;
            }
            self.request(now, Req::Channel(number, peer));
        }
    }

    /// Next datagram for the server.
    pub fn poll_transmit(&mut self) -> Option<TurnTransmit> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<TurnEvent> {
        self.events.pop_front()
    }

    /// When to call [`Self::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut consider = |x: Instant| t = Some(t.map_or(x, |y: Instant| y.min(x)));
        for p in &self.pending {
            consider(p.next_retx);
        }
        if self.state == TurnState::Allocated {
            if let Some(r) = self.refresh_at {
                consider(r);
            }
            if let Some(e) = self.expires_at {
                consider(e);
            }
            for x in self.permissions.values().flatten() {
                consider(*x);
            }
            for c in self.channels.values() {
                if let Some(x) = c.refresh_at {
                    consider(x);
                }
            }
        }
        t
    }
}

/// Over TCP/TLS to the server (RFC 8656 §12.5), STUN messages and ChannelData are sent back
/// to back on the stream, each self-delimiting. Returns the length of the complete message
/// at the start of `buf` (ChannelData includes its padding), or `None` if more bytes are
/// needed or the stream is not TURN.
pub fn stream_message_len(buf: &[u8]) -> Option<usize> {
    let first = *buf.first()?;
    let len = u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize;
    let total = match first {
        0x00..=0x3F => crate::stun::HEADER_LEN + len,
        0x40..=0x4F => 4 + ((len + 3) & !3),
        _ => return None,
    };
    (buf.len() >= total).then_some(total)
}

/// Writes a ChannelData message (RFC 8656 §12.4), padded to 4 bytes, into `out`.
pub fn encode_channel_data(channel: u16, data: &[u8], out: &mut [u8]) -> Result<usize, TurnError> {
    let padded = (data.len() + 3) & !3;
    let needed = 4 + padded;
    if out.len() < needed || data.len() > 0xFFFF {
        return Err(TurnError::BufferTooSmall { needed });
    }
    out[..2].copy_from_slice(&channel.to_be_bytes());
    out[2..4].copy_from_slice(&(data.len() as u16).to_be_bytes());
    out[4..4 + data.len()].copy_from_slice(data);
    for b in &mut out[4 + data.len()..needed] {
        *b = 0;
    }
    Ok(needed)
}

/// Parses a ChannelData message: `(channel, payload)`. Channel numbers are 0x4000-0x4FFF;
/// trailing padding is allowed.
pub fn decode_channel_data(buf: &[u8]) -> Option<(u16, &[u8])> {
    let ch = u16::from_be_bytes([*buf.first()?, *buf.get(1)?]);
    if !(0x4000..=0x4FFF).contains(&ch) {
        return None;
    }
    let len = u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize;
    let data = buf.get(4..4 + len)?;
    Some((ch, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "192.0.2.50:3478";

    fn server() -> SocketAddr {
        SERVER.parse().unwrap()
    }

    /// Builds a server response to `req` (what coturn would send).
    fn respond(req: &[u8], class: Class, f: impl FnOnce(&mut MessageBuilder<'_>)) -> Vec<u8> {
        let m = StunMessage::parse(req).unwrap();
        let mut buf = [0u8; 512];
        let mut b = MessageBuilder::new(&mut buf, m.method(), class, m.transaction_id());
        f(&mut b);
        b.finish().unwrap().to_vec()
    }

    fn key() -> [u8; 16] {
        long_term_key("u", "tympan", "p")
    }

    /// Drives a client to Allocated through 401 → authenticated retry.
    fn allocated(now: Instant) -> TurnClient {
        let mut c = TurnClient::new(TurnConfig::new(server(), "u", "p"));
        c.allocate(now);
        let first = c.poll_transmit().unwrap();
        let m = StunMessage::parse(&first.contents).unwrap();
        assert_eq!((m.method(), m.class()), (Method::ALLOCATE, Class::Request));
        assert_eq!(m.requested_transport(), Some(17));
        assert!(!m.has_integrity());
        let r401 = respond(&first.contents, Class::Error, |b| {
            b.error_code(401, "Unauthorized")
                .realm("tympan")
                .nonce("n1");
        });
        assert_eq!(c.handle_packet(now, &r401), TurnInput::Handled);
        let second = c.poll_transmit().unwrap();
        let m = StunMessage::parse(&second.contents).unwrap();
        assert_eq!(m.username(), Some("u"));
        assert_eq!(m.realm(), Some("tympan"));
        assert_eq!(m.nonce(), Some("n1"));
        assert_eq!(m.verify_integrity(&key()), Ok(()));
        let ok = respond(&second.contents, Class::Success, |b| {
            b.xor_relayed_address("192.0.2.50:50000".parse().unwrap())
                .xor_mapped_address("198.51.100.9:4000".parse().unwrap())
                .lifetime(600)
                .message_integrity(&key());
        });
        assert_eq!(c.handle_packet(now, &ok), TurnInput::Handled);
        assert_eq!(c.state(), TurnState::Allocated);
        c
    }

    #[test]
    fn allocate_with_401_then_refresh_before_expiry_and_stale_nonce() {
        let t0 = Instant::now();
        let mut c = allocated(t0);
        assert!(
            matches!(c.poll_event(), Some(TurnEvent::Allocated { lifetime, .. }) if lifetime == Duration::from_secs(600))
        );
        // Refresh a minute before expiry.
        let due = c.poll_timeout().unwrap();
        assert_eq!(due, t0 + Duration::from_secs(540));
        c.handle_timeout(due);
        let refresh = c.poll_transmit().unwrap();
        let m = StunMessage::parse(&refresh.contents).unwrap();
        assert_eq!((m.method(), m.lifetime()), (Method::REFRESH, Some(600)));
        // 438: the retry carries the new nonce.
        let stale = respond(&refresh.contents, Class::Error, |b| {
            b.error_code(438, "Stale Nonce").realm("tympan").nonce("n2");
        });
        c.handle_packet(due, &stale);
        let retry = c.poll_transmit().unwrap();
        let m = StunMessage::parse(&retry.contents).unwrap();
        assert_eq!(m.nonce(), Some("n2"));
        assert_eq!(m.verify_integrity(&key()), Ok(()));
        let ok = respond(&retry.contents, Class::Success, |b| {
            b.lifetime(600).message_integrity(&key());
        });
        c.handle_packet(due, &ok);
        assert_eq!(
            c.poll_event(),
            Some(TurnEvent::Refreshed {
                lifetime: Duration::from_secs(600)
            })
        );
        assert_eq!(c.poll_timeout(), Some(due + Duration::from_secs(540)));
    }

    #[test]
    fn response_with_bad_integrity_is_ignored() {
        let t0 = Instant::now();
        let mut c = allocated(t0);
        let peer: SocketAddr = "203.0.113.7:9000".parse().unwrap();
        c.create_permission(t0, peer.ip()).unwrap();
        let req = c.poll_transmit().unwrap();
        let forged = respond(&req.contents, Class::Success, |b| {
            b.message_integrity(b"not the key");
        });
        c.handle_packet(t0, &forged);
        assert_eq!(
            c.encode_send(peer, b"x", &mut [0u8; 64]),
            Err(TurnError::NoPermission(peer.ip()))
        );
        let ok = respond(&req.contents, Class::Success, |b| {
            b.message_integrity(&key());
        });
        c.handle_packet(t0, &ok);
        let mut out = [0u8; 64];
        let n = c.encode_send(peer, b"hello", &mut out).unwrap();
        let m = StunMessage::parse(&out[..n]).unwrap();
        assert_eq!((m.method(), m.class()), (Method::SEND, Class::Indication));
        assert_eq!(m.xor_peer_address(), Some(peer));
        assert_eq!(m.data(), Some(&b"hello"[..]));
    }

    #[test]
    fn unanswered_allocate_retransmits_then_fails() {
        let t0 = Instant::now();
        let mut c = TurnClient::new(TurnConfig::new(server(), "u", "p"));
        c.allocate(t0);
        let mut sent = 0;
        let mut now = t0;
        while let Some(t) = c.poll_timeout() {
            while c.poll_transmit().is_some() {
                sent += 1;
            }
            now = t;
            c.handle_timeout(now);
        }
        assert_eq!(sent, 7);
        assert_eq!(c.state(), TurnState::Failed);
        assert!(now - t0 >= Duration::from_secs(31));
        assert!(matches!(
            c.poll_event(),
            Some(TurnEvent::Failed {
                request: "Allocate",
                code: 0
            })
        ));
    }

    #[test]
    fn channel_data_codec() {
        let mut out = [0u8; 16];
        let n = encode_channel_data(0x4001, b"abcde", &mut out).unwrap();
        assert_eq!(n, 12);
        assert_eq!(
            &out[..n],
            &[0x40, 0x01, 0, 5, b'a', b'b', b'c', b'd', b'e', 0, 0, 0]
        );
        assert_eq!(
            decode_channel_data(&out[..n]),
            Some((0x4001, &b"abcde"[..]))
        );
        assert_eq!(decode_channel_data(&out[..6]), None);
        assert_eq!(decode_channel_data(&[0x00, 0x01, 0, 0]), None);
        assert_eq!(decode_channel_data(&[]), None);
        assert_eq!(
            encode_channel_data(0x4001, &[0; 20], &mut out),
            Err(TurnError::BufferTooSmall { needed: 24 })
        );
    }
}
