//! The ICE agent (RFC 8445, RFC 8838 trickle, RFC 7675 consent freshness), sans-IO.
//!
//! Drive it with five calls: [`IceAgent::handle_packet`], [`IceAgent::handle_timeout`],
//! [`IceAgent::poll_transmit`], [`IceAgent::poll_event`] and [`IceAgent::poll_timeout`].
//! The caller owns the sockets and the clock; the agent owns the checklist.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::stun::{
    self, Class, IntegrityKey, MessageBuilder, Method, StunMessage, TransactionId, attr,
};

/// Transport of a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP (RFC 6544); packets are framed by the caller with [`crate::stun::framing`].
    Tcp,
}

/// RFC 6544 TCP candidate type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpType {
    /// Opens connections, never accepts them.
    Active,
    /// Accepts connections, never opens them (what an SFU advertises).
    Passive,
    /// Simultaneous open.
    So,
}

impl TcpType {
    fn as_str(self) -> &'static str {
        match self {
            TcpType::Active => "active",
            TcpType::Passive => "passive",
            TcpType::So => "so",
        }
    }

    /// Whether a local candidate of this type may pair with a remote of type `remote`.
    pub fn pairs_with(self, remote: TcpType) -> bool {
        matches!(
            (self, remote),
            (TcpType::Active, TcpType::Passive)
                | (TcpType::Passive, TcpType::Active)
                | (TcpType::So, TcpType::So)
        )
    }
}

/// Candidate type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CandidateKind {
    /// A local interface address.
    Host,
    /// Address seen by a STUN server.
    ServerReflexive,
    /// Learned from connectivity checks.
    PeerReflexive,
    /// A TURN relayed address.
    Relayed,
}

impl CandidateKind {
    /// RFC 8445 §5.1.2.2 recommended type preference.
    pub fn type_preference(self) -> u32 {
        match self {
            CandidateKind::Host => 126,
            CandidateKind::PeerReflexive => 110,
            CandidateKind::ServerReflexive => 100,
            CandidateKind::Relayed => 0,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            CandidateKind::Host => "host",
            CandidateKind::PeerReflexive => "prflx",
            CandidateKind::ServerReflexive => "srflx",
            CandidateKind::Relayed => "relay",
        }
    }
}

/// RFC 8445 §5.1.2.1 candidate priority: `2^24*type + 2^8*local + (256 - component)`.
pub fn candidate_priority(type_pref: u32, local_pref: u32, component: u16) -> u32 {
    (type_pref << 24) + ((local_pref & 0xFFFF) << 8) + (256 - u32::from(component.clamp(1, 256)))
}

/// RFC 8445 §6.1.2.3 pair priority from the controlling (`g`) and controlled (`d`) candidate
/// priorities: `2^32*min + 2*max + (g > d)`.
pub fn pair_priority(g: u32, d: u32) -> u64 {
    let (g, d) = (u64::from(g), u64::from(d));
    (g.min(d) << 32) + 2 * g.max(d) + u64::from(g > d)
}

/// An ICE candidate (component 1; BUNDLE is assumed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Type.
    pub kind: CandidateKind,
    /// Transport.
    pub transport: Transport,
    /// For TCP candidates, the RFC 6544 tcptype.
    pub tcp_type: Option<TcpType>,
    /// Transport address.
    pub addr: SocketAddr,
    /// The base: the local address the agent sends from for this candidate (the relayed
    /// address for a relayed candidate).
    pub base: SocketAddr,
    /// Priority.
    pub priority: u32,
    /// Foundation.
    pub foundation: String,
    /// Component id (1 = RTP).
    pub component: u16,
}

impl Candidate {
    fn make(
        kind: CandidateKind,
        transport: Transport,
        tcp_type: Option<TcpType>,
        addr: SocketAddr,
        base: SocketAddr,
    ) -> Self {
        // RFC 6544 §4.2: for TCP, local pref = 2^13 * direction-pref + other-pref.
        let local_pref = match (transport, tcp_type) {
            (Transport::Udp, _) => 65535,
            (Transport::Tcp, Some(t)) => {
                let dir = match (kind, t) {
                    (CandidateKind::Host, TcpType::Active) => 6,
                    (CandidateKind::Host, TcpType::Passive) => 4,
                    (CandidateKind::Host, TcpType::So) => 2,
                    (_, TcpType::Active) => 6,
                    (_, TcpType::Passive) => 2,
                    (_, TcpType::So) => 4,
                };
                (dir << 13) + 8191
            }
            (Transport::Tcp, None) => 8191,
        };
        // UDP preferred over TCP by lowering the type preference for TCP a little.
        let type_pref = match transport {
            Transport::Udp => kind.type_preference(),
            Transport::Tcp => kind
                .type_preference()
                .saturating_sub(16)
                .max(if kind == CandidateKind::Relayed { 0 } else { 1 }),
        };
        let foundation = foundation_of(kind, base, transport);
        Candidate {
            kind,
            transport,
            tcp_type,
            addr,
            base,
            priority: candidate_priority(type_pref, local_pref, 1),
            foundation,
            component: 1,
        }
    }

    /// A host UDP candidate.
    pub fn host(addr: SocketAddr) -> Self {
        Self::make(CandidateKind::Host, Transport::Udp, None, addr, addr)
    }

    /// A host TCP candidate with a tcptype.
    pub fn host_tcp(addr: SocketAddr, tcp_type: TcpType) -> Self {
        Self::make(
            CandidateKind::Host,
            Transport::Tcp,
            Some(tcp_type),
            addr,
            addr,
        )
    }

    /// A server-reflexive UDP candidate `addr` whose base is the host address `base`.
    pub fn server_reflexive(addr: SocketAddr, base: SocketAddr) -> Self {
        Self::make(
            CandidateKind::ServerReflexive,
            Transport::Udp,
            None,
            addr,
            base,
        )
    }

    /// A relayed UDP candidate (TURN allocation address). Checks for it are sent with the
    /// relayed address as `source`: the caller routes such transmits through its TURN client.
    pub fn relayed(addr: SocketAddr) -> Self {
        Self::make(CandidateKind::Relayed, Transport::Udp, None, addr, addr)
    }

    /// A remote candidate as learned by signalling, with its advertised priority.
    pub fn remote(
        kind: CandidateKind,
        transport: Transport,
        addr: SocketAddr,
        priority: u32,
    ) -> Self {
        let mut c = Self::make(kind, transport, None, addr, addr);
        c.priority = priority;
        c
    }

    /// Sets the tcptype (builder style).
    pub fn with_tcp_type(mut self, t: TcpType) -> Self {
        self.tcp_type = Some(t);
        self
    }

    /// Overrides the priority (builder style).
    pub fn with_priority(mut self, p: u32) -> Self {
        self.priority = p;
        self
    }

    /// The SDP `candidate:` attribute value (without `a=`).
    pub fn to_sdp(&self) -> String {
        let proto = match self.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        };
        let mut s = format!(
            "candidate:{} {} {} {} {} {} typ {}",
            self.foundation,
            self.component,
            proto,
            self.priority,
            self.addr.ip(),
            self.addr.port(),
            self.kind.as_str()
        );
        if self.kind != CandidateKind::Host {
            s.push_str(&format!(
                " raddr {} rport {}",
                self.base.ip(),
                self.base.port()
            ));
        }
        if let Some(t) = self.tcp_type {
            s.push_str(" tcptype ");
            s.push_str(t.as_str());
        }
        s
    }

    /// Parses an SDP candidate attribute (`candidate:...`, with or without `a=`).
    pub fn from_sdp(line: &str) -> Result<Self, CandidateParseError> {
        let line = line.trim();
        let line = line.strip_prefix("a=").unwrap_or(line);
        let line = line.strip_prefix("candidate:").unwrap_or(line);
        let mut it = line.split_ascii_whitespace();
        let mut field = |name: &'static str| it.next().ok_or(CandidateParseError::Missing(name));
        let foundation = field("foundation")?.to_string();
        let component: u16 = field("component")?
            .parse()
            .map_err(|_| CandidateParseError::Invalid("component"))?;
        let transport = match field("transport")?.to_ascii_lowercase().as_str() {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            _ => return Err(CandidateParseError::Invalid("transport")),
        };
        let priority: u32 = field("priority")?
            .parse()
            .map_err(|_| CandidateParseError::Invalid("priority"))?;
        let ip: std::net::IpAddr = field("address")?
            .parse()
            .map_err(|_| CandidateParseError::Invalid("address"))?;
        let port: u16 = field("port")?
            .parse()
            .map_err(|_| CandidateParseError::Invalid("port"))?;
        if field("typ")? != "typ" {
            return Err(CandidateParseError::Invalid("typ"));
        }
        let kind = match field("type")? {
            "host" => CandidateKind::Host,
            "srflx" => CandidateKind::ServerReflexive,
            "prflx" => CandidateKind::PeerReflexive,
            "relay" => CandidateKind::Relayed,
            _ => return Err(CandidateParseError::Invalid("type")),
        };
        let addr = SocketAddr::new(ip, port);
        let mut c = Candidate::remote(kind, transport, addr, priority);
        c.foundation = foundation;
        c.component = component;
        while let Some(k) = it.next() {
            let v = it.next();
            if k == "tcptype" {
                c.tcp_type = match v {
                    Some("active") => Some(TcpType::Active),
                    Some("passive") => Some(TcpType::Passive),
                    Some("so") => Some(TcpType::So),
                    _ => return Err(CandidateParseError::Invalid("tcptype")),
                };
            }
        }
        Ok(c)
    }
}

/// Error parsing an SDP candidate line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateParseError {
    /// A required field is missing.
    Missing(&'static str),
    /// A field has an invalid value.
    Invalid(&'static str),
}

impl fmt::Display for CandidateParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CandidateParseError::Missing(x) => write!(f, "candidate: missing {x}"),
            CandidateParseError::Invalid(x) => write!(f, "candidate: invalid {x}"),
        }
    }
}

impl std::error::Error for CandidateParseError {}

fn foundation_of(kind: CandidateKind, base: SocketAddr, transport: Transport) -> String {
    // FNV-1a over (type, base IP, transport): same inputs, same foundation.
    let mut h: u32 = 0x811C_9DC5;
    let mut feed = |b: u8| {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    };
    feed(kind as u8);
    feed(transport as u8);
    match base.ip() {
        std::net::IpAddr::V4(ip) => ip.octets().iter().for_each(|b| feed(*b)),
        std::net::IpAddr::V6(ip) => ip.octets().iter().for_each(|b| feed(*b)),
    }
    format!("{}", h % 1_000_000_000)
}

/// ICE credentials (ufrag and password).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// Username fragment.
    pub ufrag: String,
    /// Password.
    pub pwd: String,
}

impl Credentials {
    /// Credentials from strings.
    pub fn new(ufrag: impl Into<String>, pwd: impl Into<String>) -> Self {
        Credentials {
            ufrag: ufrag.into(),
            pwd: pwd.into(),
        }
    }
}

/// Nomination style of a controlling agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nomination {
    /// Check first, then repeat the check on the chosen pair with USE-CANDIDATE.
    Regular,
    /// USE-CANDIDATE on every check; the first working pair is used (RFC 5245 style).
    Aggressive,
}

/// Agent configuration. `Default` gives a full, controlled agent with RFC timings.
#[derive(Debug, Clone)]
pub struct IceConfig {
    /// ICE-lite: answer checks, never send them (always controlled).
    pub lite: bool,
    /// Start in the controlling role.
    pub controlling: bool,
    /// Nomination style when controlling.
    pub nomination: Nomination,
    /// Pacing interval Ta between new checks (RFC 8445 default 50 ms).
    pub ta: Duration,
    /// Initial retransmission timeout of a check.
    pub initial_rto: Duration,
    /// Upper bound of the doubling RTO.
    pub max_rto: Duration,
    /// Transmissions of a check before the pair fails (Rc).
    pub max_transmissions: u32,
    /// Regular nomination: longest wait for a better pair after the first valid pair.
    pub nomination_delay: Duration,
    /// Mean interval of consent checks (RFC 7675: 5 s, randomised ±20 %).
    pub consent_interval: Duration,
    /// Without consent for this long the agent reports `Disconnected`.
    pub disconnected_timeout: Duration,
    /// Without consent for this long the agent reports `Failed` (RFC 7675: 30 s).
    pub consent_timeout: Duration,
    /// Upper bound of candidate pairs.
    pub max_pairs: usize,
    /// Seed of the agent's PRNG (tie-breaker, transaction ids, credentials, jitter). Give a
    /// random value in production (for example from the OS); fix it in tests.
    pub seed: u64,
    /// Local credentials; generated from the seed when `None`.
    pub local_credentials: Option<Credentials>,
    /// SOFTWARE attribute to send, if any.
    pub software: Option<String>,
}

impl Default for IceConfig {
    fn default() -> Self {
        IceConfig {
            lite: false,
            controlling: false,
            nomination: Nomination::Regular,
            ta: Duration::from_millis(50),
            initial_rto: Duration::from_millis(250),
            max_rto: Duration::from_secs(3),
            max_transmissions: 7,
            nomination_delay: Duration::from_millis(500),
            consent_interval: Duration::from_secs(5),
            disconnected_timeout: Duration::from_secs(10),
            consent_timeout: Duration::from_secs(30),
            max_pairs: 100,
            seed: 0x5EED_1CE5,
            local_credentials: None,
            software: None,
        }
    }
}

/// Connection state, as in the W3C `RTCIceConnectionState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceState {
    /// Waiting for remote candidates/credentials.
    New,
    /// Checks in progress, no selected pair yet.
    Checking,
    /// A pair is selected; checks may still run.
    Connected,
    /// A pair is selected and the checklist is done.
    Completed,
    /// Consent has not been refreshed for a while; may recover.
    Disconnected,
    /// Every pair failed, or consent expired.
    Failed,
    /// [`IceAgent::close`] was called.
    Closed,
}

/// Events for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IceEvent {
    /// The connection state changed.
    StateChanged(IceState),
    /// The selected pair changed: send media from `local` (a candidate base) to `remote`.
    SelectedPair {
        /// Local base address to send from.
        local: SocketAddr,
        /// Remote address to send to.
        remote: SocketAddr,
        /// Transport.
        transport: Transport,
    },
    /// The agent switched role after a role conflict.
    RoleChanged {
        /// The new role.
        controlling: bool,
    },
    /// A peer-reflexive remote candidate was learned from an incoming check.
    PeerReflexiveRemote(SocketAddr),
}

/// A datagram (or, for TCP, a frame payload) to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Transport.
    pub transport: Transport,
    /// Local address to send from.
    pub source: SocketAddr,
    /// Destination.
    pub destination: SocketAddr,
    /// Bytes.
    pub contents: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PairState {
    Frozen,
    Waiting,
    InProgress,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Copy)]
struct Txn {
    id: TransactionId,
    next_retx: Instant,
    rto: Duration,
    sent: u32,
    nominate: bool,
}

#[derive(Debug, Clone)]
struct Pair {
    local: usize,
    remote: usize,
    priority: u64,
    state: PairState,
    check: Option<Txn>,
    consent: Option<Txn>,
    nominated: bool,
    remote_nominated: bool,
    want_nominate: bool,
    consent_ok_at: Option<Instant>,
    next_consent: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct OldSelection {
    local: SocketAddr,
    remote: SocketAddr,
    transport: Transport,
}

/// A small deterministic PRNG (SplitMix64); seed it from a real random source in production.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn txid(&mut self) -> TransactionId {
        let a = self.next_u64().to_be_bytes();
        let b = self.next_u64().to_be_bytes();
        let mut t = [0u8; 12];
        t[..8].copy_from_slice(&a);
        t[8..].copy_from_slice(&b[..4]);
        TransactionId(t)
    }

    fn ice_string(&mut self, n: usize) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        (0..n)
            .map(|_| char::from(CHARS[(self.next_u64() % 64) as usize]))
            .collect()
    }

    /// A factor in [0.8, 1.2).
    fn jitter(&mut self, d: Duration) -> Duration {
        let f = 0.8 + (self.next_u64() % 4000) as f64 / 10_000.0;
        d.mul_f64(f)
    }
}

/// The ICE agent. See the module docs for the driving loop.
#[derive(Debug)]
pub struct IceAgent {
    cfg: IceConfig,
    rng: Rng,
    controlling: bool,
    tie_breaker: u64,
    local_creds: Credentials,
    local_key: IntegrityKey,
    remote_creds: Option<Credentials>,
    remote_key: Option<IntegrityKey>,
    locals: Vec<Candidate>,
    remotes: Vec<Candidate>,
    pairs: Vec<Pair>,
    triggered: VecDeque<usize>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<IceEvent>,
    state: IceState,
    selected: Option<usize>,
    emitted_selection: Option<(SocketAddr, SocketAddr, Transport)>,
    next_check_at: Option<Instant>,
    first_valid_at: Option<Instant>,
    remote_end_of_candidates: bool,
    last_now: Option<Instant>,
    old_selection: Option<OldSelection>,
    closed: bool,
    buf: Vec<u8>,
}

impl IceAgent {
    /// Creates an agent.
    pub fn new(cfg: IceConfig) -> Self {
        let mut rng = Rng(cfg.seed);
        let local_creds = cfg
            .local_credentials
            .clone()
            .unwrap_or_else(|| Credentials::new(rng.ice_string(8), rng.ice_string(24)));
        let tie_breaker = rng.next_u64();
        let controlling = cfg.controlling && !cfg.lite;
        IceAgent {
            local_key: IntegrityKey::new(local_creds.pwd.as_bytes()),
            local_creds,
            remote_creds: None,
            remote_key: None,
            rng,
            controlling,
            tie_breaker,
            locals: Vec::new(),
            remotes: Vec::new(),
            pairs: Vec::new(),
            triggered: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            state: IceState::New,
            selected: None,
            emitted_selection: None,
            next_check_at: None,
            first_valid_at: None,
            remote_end_of_candidates: false,
            last_now: None,
            old_selection: None,
            closed: false,
            buf: vec![0; 1500],
            cfg,
        }
    }

    /// Local credentials, to signal to the peer (`a=ice-ufrag`/`a=ice-pwd`).
    pub fn local_credentials(&self) -> &Credentials {
        &self.local_creds
    }

    /// Whether the agent is controlling.
    pub fn is_controlling(&self) -> bool {
        self.controlling
    }

    /// Whether this is an ICE-lite agent.
    pub fn is_lite(&self) -> bool {
        self.cfg.lite
    }

    /// Overrides the role tie-breaker (normally random from the seed).
    pub fn set_tie_breaker(&mut self, t: u64) {
        self.tie_breaker = t;
    }

    /// Current state.
    pub fn state(&self) -> IceState {
        self.state
    }

    /// The selected pair as (local base, remote, transport), if any.
    pub fn selected_pair(&self) -> Option<(SocketAddr, SocketAddr, Transport)> {
        match self.selected {
            Some(i) => self.pair_addrs(i),
            None => self.old_selection.map(|o| (o.local, o.remote, o.transport)),
        }
    }

    /// Local candidates (including learned peer-reflexive ones).
    pub fn local_candidates(&self) -> &[Candidate] {
        &self.locals
    }

    /// Remote candidates (including learned peer-reflexive ones).
    pub fn remote_candidates(&self) -> &[Candidate] {
        &self.remotes
    }

    fn pair_addrs(&self, i: usize) -> Option<(SocketAddr, SocketAddr, Transport)> {
        let p = self.pairs.get(i)?;
        let l = self.locals.get(p.local)?;
        let r = self.remotes.get(p.remote)?;
        Some((l.base, r.addr, l.transport))
    }

    /// Sets the remote credentials (from the peer's SDP).
    pub fn set_remote_credentials(&mut self, creds: Credentials) {
        if self.remote_creds.as_ref() == Some(&creds) {
            return;
        }
        self.remote_key = Some(IntegrityKey::new(creds.pwd.as_bytes()));
        self.remote_creds = Some(creds);
    }

    /// Adds a local candidate (host, server reflexive or relayed); returns false if it was a
    /// duplicate.
    pub fn add_local_candidate(&mut self, c: Candidate) -> bool {
        if self
            .locals
            .iter()
            .any(|l| l.addr == c.addr && l.base == c.base && l.transport == c.transport)
        {
            return false;
        }
        self.locals.push(c);
        let li = self.locals.len() - 1;
        for ri in 0..self.remotes.len() {
            self.form_pair(li, ri);
        }
        true
    }

    /// Adds a remote candidate (trickled at any time); returns false if it was a duplicate.
    pub fn add_remote_candidate(&mut self, c: Candidate) -> bool {
        if let Some(ri) = self
            .remotes
            .iter()
            .position(|r| r.addr == c.addr && r.transport == c.transport)
        {
            // A signalled candidate replaces a peer-reflexive one with the same address.
            if self.remotes[ri].kind == CandidateKind::PeerReflexive
                && c.kind != CandidateKind::PeerReflexive
            {
                self.remotes[ri].kind = c.kind;
                self.remotes[ri].priority = c.priority;
                self.recompute_priorities();
                return true;
            }
            return false;
        }
        self.remotes.push(c);
        let ri = self.remotes.len() - 1;
        for li in 0..self.locals.len() {
            self.form_pair(li, ri);
        }
        true
    }

    /// The peer signalled end-of-candidates.
    pub fn end_of_remote_candidates(&mut self) {
        self.remote_end_of_candidates = true;
    }

    /// Closes the agent (state `Closed`; no more transmits).
    pub fn close(&mut self) {
        self.closed = true;
        self.transmits.clear();
        self.set_state(IceState::Closed);
    }

    /// ICE restart with new local credentials: the checklist starts over once the peer's new
    /// credentials and candidates arrive, while the current selected pair stays in use until a
    /// new one is selected. Local candidates are kept.
    pub fn restart(&mut self, new_local: Credentials) {
        if let Some((local, remote, transport)) = self.selected.and_then(|i| self.pair_addrs(i)) {
            self.old_selection = Some(OldSelection {
                local,
                remote,
                transport,
            });
        }
        // The pair selected by the new checklist is announced even if its addresses match.
        self.emitted_selection = None;
        self.local_key = IntegrityKey::new(new_local.pwd.as_bytes());
        self.local_creds = new_local;
        self.remote_creds = None;
        self.remote_key = None;
        self.remotes.clear();
        self.pairs.clear();
        self.triggered.clear();
        self.selected = None;
        self.first_valid_at = None;
        self.remote_end_of_candidates = false;
        self.locals
            .retain(|c| c.kind != CandidateKind::PeerReflexive);
        if self.old_selection.is_none() {
            self.set_state(IceState::Checking);
        }
    }

    fn is_prunable_duplicate(&self, li: usize, ri: usize) -> Option<usize> {
        let l = &self.locals[li];
        let r = &self.remotes[ri];
        self.pairs.iter().position(|p| {
            let pl = &self.locals[p.local];
            p.remote == ri
                && pl.base == l.base
                && pl.transport == l.transport
                && r.addr == self.remotes[p.remote].addr
        })
    }

    fn prio(&self, li: usize, ri: usize) -> u64 {
        let l = self.locals[li].priority;
        let r = self.remotes[ri].priority;
        if self.controlling {
            pair_priority(l, r)
        } else {
            pair_priority(r, l)
        }
    }

    fn form_pair(&mut self, li: usize, ri: usize) {
        let (l, r) = (&self.locals[li], &self.remotes[ri]);
        if l.transport != r.transport || l.addr.is_ipv4() != r.addr.is_ipv4() {
            return;
        }
        if l.transport == Transport::Tcp {
            match (l.tcp_type, r.tcp_type) {
                (Some(a), Some(b)) if a.pairs_with(b) => {}
                _ => return,
            }
        }
        // RFC 8445 §6.1.2.4: a server-reflexive local candidate is replaced by its base, so
        // it would duplicate the host pair; prune by (base, remote).
        let prio = self.prio(li, ri);
        if let Some(existing) = self.is_prunable_duplicate(li, ri) {
            if self.pairs[existing].priority < prio
                && self.pairs[existing].state == PairState::Waiting
            {
                self.pairs[existing].local = li;
                self.pairs[existing].priority = prio;
            }
            return;
        }
        if self.pairs.len() >= self.cfg.max_pairs {
            // Replace the lowest-priority waiting pair if the new one is better.
            let worst = self
                .pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| p.state == PairState::Waiting)
                .min_by_key(|(_, p)| p.priority)
                .map(|(i, p)| (i, p.priority));
            match worst {
                Some((i, wp)) if wp < prio => {
                    self.pairs[i] = new_pair(li, ri, prio);
                    self.triggered.retain(|t| *t != i);
                }
                _ => {}
            }
            return;
        }
        let mut pair = new_pair(li, ri, prio);
        if self.initially_frozen(li, ri) {
            pair.state = PairState::Frozen;
        }
        self.pairs.push(pair);
    }

    /// Pair foundation: (local foundation, remote foundation).
    fn same_foundation(&self, p: &Pair, li: usize, ri: usize) -> bool {
        self.locals[p.local].foundation == self.locals[li].foundation
            && self.remotes[p.remote].foundation == self.remotes[ri].foundation
    }

    /// RFC 8445 §6.1.2.6 / RFC 8838 §10: one pair per foundation starts Waiting, the others
    /// Frozen, unless a pair of that foundation already succeeded.
    fn initially_frozen(&self, li: usize, ri: usize) -> bool {
        let mut active = false;
        for p in self
            .pairs
            .iter()
            .filter(|p| self.same_foundation(p, li, ri))
        {
            match p.state {
                PairState::Succeeded => return false,
                PairState::Waiting | PairState::InProgress | PairState::Frozen => active = true,
                PairState::Failed => {}
            }
        }
        active
    }

    /// Frozen pairs whose foundation has no Waiting/In-Progress pair (§6.1.4.2 may unfreeze).
    fn unfreezable(&self) -> impl Iterator<Item = usize> + '_ {
        self.pairs.iter().enumerate().filter_map(|(i, p)| {
            (p.state == PairState::Frozen
                && !self.pairs.iter().any(|q| {
                    matches!(q.state, PairState::Waiting | PairState::InProgress)
                        && self.same_foundation(q, p.local, p.remote)
                }))
            .then_some(i)
        })
    }

    fn unfreeze_foundation_of(&mut self, pi: usize) {
        let (li, ri) = (self.pairs[pi].local, self.pairs[pi].remote);
        for i in 0..self.pairs.len() {
            if self.pairs[i].state == PairState::Frozen
                && self.same_foundation(&self.pairs[i], li, ri)
            {
                self.pairs[i].state = PairState::Waiting;
            }
        }
    }

    fn recompute_priorities(&mut self) {
        for i in 0..self.pairs.len() {
            let (li, ri) = (self.pairs[i].local, self.pairs[i].remote);
            self.pairs[i].priority = self.prio(li, ri);
        }
    }

    fn set_role(&mut self, controlling: bool) {
        if self.controlling == controlling {
            return;
        }
        self.controlling = controlling;
        self.recompute_priorities();
        self.events.push_back(IceEvent::RoleChanged { controlling });
    }

    // ------------------------------------------------------------------ input

    /// Handles a received packet. Returns `true` if it was a STUN message for this agent
    /// (a check, a response to one of our checks, or a keepalive indication).
    pub fn handle_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        data: &[u8],
    ) -> bool {
        self.handle_packet_on(now, Transport::Udp, from, to, data)
    }

    /// Like [`Self::handle_packet`] with an explicit transport (TCP: one de-framed packet).
    pub fn handle_packet_on(
        &mut self,
        now: Instant,
        transport: Transport,
        from: SocketAddr,
        to: SocketAddr,
        data: &[u8],
    ) -> bool {
        if self.closed {
            return false;
        }
        self.last_now = Some(now);
        let Ok(msg) = StunMessage::parse(data) else {
            return false;
        };
        if msg.method() != Method::BINDING {
            return false;
        }
        if msg.fingerprint().is_some() && msg.verify_fingerprint().is_err() {
            return false;
        }
        let handled = match msg.class() {
            Class::Request => self.on_request(now, transport, from, to, &msg),
            Class::Success | Class::Error => self.on_response(now, from, to, &msg),
            Class::Indication => true,
        };
        self.evaluate(now);
        handled
    }

    fn local_index_for(&self, transport: Transport, to: SocketAddr) -> Option<usize> {
        self.locals
            .iter()
            .position(|c| {
                c.base == to && c.transport == transport && c.kind != CandidateKind::PeerReflexive
            })
            .or_else(|| {
                // Caller bound to a wildcard address: match the port.
                self.locals.iter().position(|c| {
                    c.base.port() == to.port()
                        && c.transport == transport
                        && c.kind == CandidateKind::Host
                        && c.base.is_ipv4() == to.is_ipv4()
                })
            })
    }

    fn on_request(
        &mut self,
        now: Instant,
        transport: Transport,
        from: SocketAddr,
        to: SocketAddr,
        msg: &StunMessage<'_>,
    ) -> bool {
        // USERNAME = "<our ufrag>:<their ufrag>".
        let Some(username) = msg.username() else {
            return false;
        };
        let Some((ours, theirs)) = username.split_once(':') else {
            return false;
        };
        if ours != self.local_creds.ufrag {
            return false;
        }
        if msg.verify_integrity_with(&self.local_key).is_err() {
            // RFC 8489: 401 would go back; ICE silently discards bad integrity.
            return true;
        }
        if let Some(rc) = &self.remote_creds {
            if rc.ufrag != theirs {
                return true;
            }
        }
        let tid = msg.transaction_id();
        if let Some(unknown) = msg.unknown_comprehension_required() {
            self.send_error(
                transport,
                to,
                from,
                tid,
                420,
                "Unknown Attribute",
                Some(unknown),
            );
            return true;
        }
        let Some(li) = self.local_index_for(transport, to) else {
            return false;
        };
        let base = self.locals[li].base;

        // Role conflict, RFC 8445 §7.3.1.1.
        if !self.cfg.lite {
            if let (true, Some(theirs)) = (self.controlling, msg.ice_controlling()) {
                if self.tie_breaker >= theirs {
                    self.send_error(transport, base, from, tid, 487, "Role Conflict", None);
                    return true;
                }
                self.set_role(false);
            } else if let (false, Some(theirs)) = (self.controlling, msg.ice_controlled()) {
                if self.tie_breaker >= theirs {
                    self.set_role(true);
                } else {
                    self.send_error(transport, base, from, tid, 487, "Role Conflict", None);
                    return true;
                }
            }
        }

        // Answer first.
        self.send_success(transport, base, from, tid);

        // Remote candidate (peer reflexive if unknown).
        let ri = match self
            .remotes
            .iter()
            .position(|r| r.addr == from && r.transport == transport)
        {
            Some(ri) => ri,
            None if self.remotes.len() >= self.cfg.max_pairs
                || self.pairs.len() >= self.cfg.max_pairs =>
            {
                // Answered above, but no more state for an unbounded set of sources.
                return true;
            }
            None => {
                let prio = msg.priority().unwrap_or(0);
                let mut c = Candidate::remote(CandidateKind::PeerReflexive, transport, from, prio);
                if transport == Transport::Tcp {
                    // The peer connected to us, so it is active (or so) relative to our passive.
                    c.tcp_type = self.locals[li].tcp_type.map(|t| match t {
                        TcpType::Passive => TcpType::Active,
                        TcpType::Active => TcpType::Passive,
                        TcpType::So => TcpType::So,
                    });
                }
                self.remotes.push(c);
                self.events.push_back(IceEvent::PeerReflexiveRemote(from));
                self.remotes.len() - 1
            }
        };
        let pi = match self.pairs.iter().position(|p| {
            p.remote == ri
                && self.locals[p.local].base == base
                && self.locals[p.local].transport == transport
        }) {
            Some(pi) => pi,
            None if self.pairs.len() >= self.cfg.max_pairs => return true,
            None => {
                let prio = self.prio(li, ri);
                self.pairs.push(new_pair(li, ri, prio));
                self.pairs.len() - 1
            }
        };

        let use_candidate = msg.use_candidate() && !self.controlling;
        if self.cfg.lite {
            // A lite agent never checks: a check from the peer validates the pair.
            let p = &mut self.pairs[pi];
            p.state = PairState::Succeeded;
            p.consent_ok_at = Some(now);
            if use_candidate {
                p.nominated = true;
            }
            if self.first_valid_at.is_none() {
                self.first_valid_at = Some(now);
            }
            self.update_selected();
            return true;
        }
        if use_candidate {
            self.pairs[pi].remote_nominated = true;
        }
        match self.pairs[pi].state {
            PairState::Succeeded => {
                if use_candidate && !self.pairs[pi].nominated {
                    self.pairs[pi].nominated = true;
                    self.update_selected();
                }
                // A check from the peer also proves the path is alive.
                self.pairs[pi].consent_ok_at = Some(now);
            }
            PairState::Frozen | PairState::Waiting | PairState::Failed => {
                self.pairs[pi].state = PairState::Waiting;
                if !self.triggered.contains(&pi) {
                    self.triggered.push_back(pi);
                }
            }
            PairState::InProgress => {}
        }
        true
    }

    fn on_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        msg: &StunMessage<'_>,
    ) -> bool {
        let tid = msg.transaction_id();
        let Some((pi, is_consent)) = self.pairs.iter().enumerate().find_map(|(i, p)| {
            if p.check.is_some_and(|t| t.id == tid) {
                Some((i, false))
            } else if p.consent.is_some_and(|t| t.id == tid) {
                Some((i, true))
            } else {
                None
            }
        }) else {
            return false;
        };
        let Some(key) = &self.remote_key else {
            return false;
        };
        if msg.verify_integrity_with(key).is_err() {
            return true;
        }
        let Some((base, raddr, _)) = self.pair_addrs(pi) else {
            return false;
        };
        let txn = if is_consent {
            self.pairs[pi].consent.take()
        } else {
            self.pairs[pi].check.take()
        };
        // RFC 8445 §7.2.5.2.1: responses must come back on the same path.
        if from != raddr || (to != base && to.port() != base.port()) {
            if !is_consent {
                self.pairs[pi].state = PairState::Failed;
            }
            return true;
        }
        if msg.class() == Class::Error {
            let code = msg.error_code().map_or(0, |(c, _)| c);
            if code == 487 && !is_consent {
                // Switch role and retry this pair as a triggered check.
                let want = !self.controlling;
                self.set_role(want);
                self.pairs[pi].state = PairState::Waiting;
                self.triggered.push_back(pi);
            } else if !is_consent {
                self.pairs[pi].state = PairState::Failed;
            }
            return true;
        }
        // Success.
        let p = &mut self.pairs[pi];
        p.consent_ok_at = Some(now);
        if is_consent {
            return true;
        }
        p.state = PairState::Succeeded;
        self.unfreeze_foundation_of(pi);
        let p = &mut self.pairs[pi];
        if txn.is_some_and(|t| t.nominate) {
            p.nominated = true;
            p.want_nominate = false;
        }
        if !self.controlling && p.remote_nominated {
            p.nominated = true;
        }
        if self.first_valid_at.is_none() {
            self.first_valid_at = Some(now);
        }
        // Learn a peer-reflexive local candidate from XOR-MAPPED-ADDRESS.
        if let Some(mapped) = msg.xor_mapped_address() {
            let li = self.pairs[pi].local;
            let transport = self.locals[li].transport;
            if !self
                .locals
                .iter()
                .any(|c| c.addr == mapped && c.transport == transport)
            {
                let mut c = Candidate::make(
                    CandidateKind::PeerReflexive,
                    transport,
                    self.locals[li].tcp_type,
                    mapped,
                    self.locals[li].base,
                );
                c.priority = self.prflx_priority(li);
                self.locals.push(c);
            }
        }
        self.update_selected();
        true
    }

    fn prflx_priority(&self, li: usize) -> u32 {
        let c = &self.locals[li];
        let local_pref = (c.priority >> 8) & 0xFFFF;
        candidate_priority(
            CandidateKind::PeerReflexive.type_preference(),
            local_pref,
            c.component,
        )
    }

    fn update_selected(&mut self) {
        let best = self
            .pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.nominated && p.state == PairState::Succeeded)
            .max_by_key(|(_, p)| p.priority)
            .map(|(i, _)| i);
        if best.is_some() && best != self.selected {
            self.selected = best;
            self.old_selection = None;
            if let Some(i) = best {
                if self.pairs[i].consent_ok_at.is_none() {
                    self.pairs[i].consent_ok_at = self.last_now;
                }
                if let Some(sel) = self.pair_addrs(i) {
                    if self.emitted_selection != Some(sel) {
                        self.emitted_selection = Some(sel);
                        self.events.push_back(IceEvent::SelectedPair {
                            local: sel.0,
                            remote: sel.1,
                            transport: sel.2,
                        });
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------ output builders

    fn send_success(
        &mut self,
        transport: Transport,
        source: SocketAddr,
        dest: SocketAddr,
        tid: TransactionId,
    ) {
        let mut b = MessageBuilder::new(&mut self.buf, Method::BINDING, Class::Success, tid);
        b.xor_mapped_address(dest);
        b.message_integrity_with(&self.local_key).fingerprint();
        if let Ok(bytes) = b.finish() {
            self.transmits.push_back(Transmit {
                transport,
                source,
                destination: dest,
                contents: bytes.to_vec(),
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn send_error(
        &mut self,
        transport: Transport,
        source: SocketAddr,
        dest: SocketAddr,
        tid: TransactionId,
        code: u16,
        reason: &str,
        unknown: Option<u16>,
    ) {
        let mut b = MessageBuilder::new(&mut self.buf, Method::BINDING, Class::Error, tid);
        b.error_code(code, reason);
        if let Some(u) = unknown {
            b.unknown_attributes(&[u]);
        }
        b.message_integrity_with(&self.local_key).fingerprint();
        if let Ok(bytes) = b.finish() {
            self.transmits.push_back(Transmit {
                transport,
                source,
                destination: dest,
                contents: bytes.to_vec(),
            });
        }
    }

    fn send_check(&mut self, pi: usize, tid: TransactionId, nominate: bool) {
        let (Some(rc), Some(key)) = (&self.remote_creds, &self.remote_key) else {
            return;
        };
        let Some((base, raddr, transport)) = self.pair_addrs(pi) else {
            return;
        };
        let prio = self.prflx_priority(self.pairs[pi].local);
        let mut b = MessageBuilder::new(&mut self.buf, Method::BINDING, Class::Request, tid);
        // USERNAME is "<their ufrag>:<our ufrag>", written without a temporary String.
        let (r, l) = (rc.ufrag.as_bytes(), self.local_creds.ufrag.as_bytes());
        let mut uname = [0u8; 514];
        let n = r.len() + 1 + l.len();
        if n <= uname.len() {
            uname[..r.len()].copy_from_slice(r);
            uname[r.len()] = b':';
            uname[r.len() + 1..n].copy_from_slice(l);
        }
        b.raw(attr::USERNAME, uname.get(..n).unwrap_or(&[]));
        if let Some(s) = &self.cfg.software {
            b.software(s);
        }
        b.priority(prio);
        if self.controlling {
            b.ice_controlling(self.tie_breaker);
            if nominate {
                b.use_candidate();
            }
        } else {
            b.ice_controlled(self.tie_breaker);
        }
        b.message_integrity_with(key).fingerprint();
        if let Ok(bytes) = b.finish() {
            self.transmits.push_back(Transmit {
                transport,
                source: base,
                destination: raddr,
                contents: bytes.to_vec(),
            });
        }
    }

    fn start_check(&mut self, now: Instant, pi: usize, nominate: bool) {
        let tid = self.rng.txid();
        let rto = self.cfg.initial_rto;
        self.pairs[pi].check = Some(Txn {
            id: tid,
            next_retx: now + rto,
            rto,
            sent: 1,
            nominate,
        });
        if self.pairs[pi].state != PairState::Succeeded {
            self.pairs[pi].state = PairState::InProgress;
        }
        self.send_check(pi, tid, nominate);
    }

    // ------------------------------------------------------------------ timers

    /// Advances timers: pacing of checks, retransmissions, nomination, consent freshness.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.last_now = Some(now);
        self.retransmit(now);
        if !self.cfg.lite && self.remote_creds.is_some() {
            self.nominate(now);
            self.pace(now);
            self.consent(now);
        }
        self.evaluate(now);
    }

    fn retransmit(&mut self, now: Instant) {
        for pi in 0..self.pairs.len() {
            for consent in [false, true] {
                let slot = if consent {
                    self.pairs[pi].consent
                } else {
                    self.pairs[pi].check
                };
                let Some(mut t) = slot else { continue };
                if t.next_retx > now {
                    continue;
                }
                if t.sent >= self.cfg.max_transmissions {
                    if consent {
                        self.pairs[pi].consent = None;
                    } else {
                        self.pairs[pi].check = None;
                        if self.pairs[pi].state == PairState::InProgress {
                            self.pairs[pi].state = PairState::Failed;
                        }
                        self.pairs[pi].want_nominate = false;
                    }
                    continue;
                }
                t.sent += 1;
                t.rto = (t.rto * 2).min(self.cfg.max_rto);
                t.next_retx = now + t.rto;
                if consent {
                    self.pairs[pi].consent = Some(t);
                } else {
                    self.pairs[pi].check = Some(t);
                }
                self.send_check(pi, t.id, t.nominate);
            }
        }
    }

    fn nominate(&mut self, now: Instant) {
        if !self.controlling || self.cfg.nomination != Nomination::Regular {
            return;
        }
        if self.pairs.iter().any(|p| p.nominated || p.want_nominate) {
            return;
        }
        let Some((best_i, best_p)) = self
            .pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.state == PairState::Succeeded)
            .max_by_key(|(_, p)| p.priority)
            .map(|(i, p)| (i, p.priority))
        else {
            return;
        };
        let better_pending = self.pairs.iter().any(|p| {
            matches!(
                p.state,
                PairState::Frozen | PairState::Waiting | PairState::InProgress
            ) && p.priority > best_p
        });
        let waited = self
            .first_valid_at
            .is_some_and(|t| now >= t + self.cfg.nomination_delay);
        if !better_pending || waited {
            self.pairs[best_i].want_nominate = true;
            self.triggered.retain(|t| *t != best_i);
            self.triggered.push_front(best_i);
        }
    }

    fn pace(&mut self, now: Instant) {
        if self.next_check_at.is_some_and(|t| t > now) {
            return;
        }
        // Triggered checks first.
        while let Some(pi) = self.triggered.pop_front() {
            let Some(p) = self.pairs.get(pi) else {
                continue;
            };
            if p.check.is_some() && !p.want_nominate {
                continue;
            }
            let nominate = p.want_nominate
                || (self.controlling && self.cfg.nomination == Nomination::Aggressive);
            self.start_check(now, pi, nominate);
            self.next_check_at = Some(now + self.cfg.ta);
            return;
        }
        // Then the highest-priority waiting pair.
        let next = self
            .pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.state == PairState::Waiting && p.check.is_none())
            .max_by_key(|(_, p)| p.priority)
            .map(|(i, _)| i);
        // RFC 8445 §6.1.4.2: with nothing Waiting, unfreeze the best Frozen pair whose
        // foundation has nothing Waiting or In-Progress.
        let next = next.or_else(|| self.unfreezable().max_by_key(|i| self.pairs[*i].priority));
        if let Some(pi) = next {
            let nominate = self.controlling && self.cfg.nomination == Nomination::Aggressive;
            self.start_check(now, pi, nominate);
            self.next_check_at = Some(now + self.cfg.ta);
        }
    }

    fn consent(&mut self, now: Instant) {
        let Some(pi) = self.selected else { return };
        let p = &self.pairs[pi];
        let due = p.next_consent.is_none_or(|t| now >= t);
        if due && p.consent.is_none() {
            let tid = self.rng.txid();
            let rto = self.cfg.initial_rto.max(Duration::from_millis(500));
            let next = now + self.rng.jitter(self.cfg.consent_interval);
            let p = &mut self.pairs[pi];
            p.next_consent = Some(next);
            p.consent = Some(Txn {
                id: tid,
                next_retx: now + rto,
                rto,
                sent: 1,
                nominate: false,
            });
            self.send_check(pi, tid, false);
        }
    }

    fn checklist_done(&self) -> bool {
        !self.pairs.iter().any(|p| {
            matches!(
                p.state,
                PairState::Frozen | PairState::Waiting | PairState::InProgress
            )
        })
    }

    fn evaluate(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        let new_state = if let Some(pi) = self.selected {
            let ok_at = self.pairs[pi].consent_ok_at.unwrap_or(now);
            let silent = now.saturating_duration_since(ok_at);
            if silent >= self.cfg.consent_timeout {
                IceState::Failed
            } else if silent >= self.cfg.disconnected_timeout {
                IceState::Disconnected
            } else if self.checklist_done() && (self.remote_end_of_candidates || self.cfg.lite) {
                IceState::Completed
            } else {
                IceState::Connected
            }
        } else if self.old_selection.is_some() {
            // Restarting: keep reporting the old connection.
            if self.state == IceState::New {
                IceState::Checking
            } else {
                self.state
            }
        } else if self.state == IceState::Failed
            || (!self.pairs.is_empty()
                && self.pairs.iter().all(|p| p.state == PairState::Failed)
                && self.remote_end_of_candidates
                && !self.cfg.lite)
        {
            IceState::Failed
        } else if !self.pairs.is_empty() || self.remote_creds.is_some() {
            IceState::Checking
        } else {
            IceState::New
        };
        if new_state == IceState::Failed && self.state != IceState::Failed {
            // Consent lost or all pairs failed: stop using the pair and stop checking.
            self.selected = None;
            for p in &mut self.pairs {
                p.consent = None;
                p.check = None;
                p.nominated = false;
                p.state = PairState::Failed;
            }
            self.triggered.clear();
        }
        self.set_state(new_state);
    }

    fn set_state(&mut self, s: IceState) {
        if self.state != s {
            self.state = s;
            self.events.push_back(IceEvent::StateChanged(s));
        }
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<IceEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed || matches!(self.state, IceState::Failed) {
            return None;
        }
        let now = self.last_now?;
        let mut t: Option<Instant> = None;
        let mut consider = |x: Instant| {
            t = Some(t.map_or(x, |y: Instant| y.min(x)));
        };
        for p in &self.pairs {
            if let Some(c) = p.check {
                consider(c.next_retx);
            }
            if let Some(c) = p.consent {
                consider(c.next_retx);
            }
        }
        if !self.cfg.lite && self.remote_creds.is_some() {
            let pending = !self.triggered.is_empty()
                || self
                    .pairs
                    .iter()
                    .any(|p| p.state == PairState::Waiting && p.check.is_none())
                || (!self
                    .pairs
                    .iter()
                    .any(|p| p.state == PairState::Waiting && p.check.is_none())
                    && self.unfreezable().next().is_some());
            if pending {
                consider(self.next_check_at.unwrap_or(now).max(now));
            }
            if self.controlling && self.cfg.nomination == Nomination::Regular {
                if let Some(f) = self.first_valid_at {
                    if !self.pairs.iter().any(|p| p.nominated || p.want_nominate)
                        && self.pairs.iter().any(|p| p.state == PairState::Succeeded)
                    {
                        consider((f + self.cfg.nomination_delay).max(now));
                    }
                }
            }
            if let Some(pi) = self.selected {
                // A new consent check starts only when the previous one has finished.
                if self.pairs[pi].consent.is_none() {
                    consider(self.pairs[pi].next_consent.unwrap_or(now));
                }
            }
        }
        if let Some(pi) = self.selected {
            if let Some(ok) = self.pairs[pi].consent_ok_at {
                if self.state != IceState::Disconnected {
                    consider(ok + self.cfg.disconnected_timeout);
                }
                consider(ok + self.cfg.consent_timeout);
            }
        }
        t
    }
}

fn new_pair(local: usize, remote: usize, priority: u64) -> Pair {
    Pair {
        local,
        remote,
        priority,
        state: PairState::Waiting,
        check: None,
        consent: None,
        nominated: false,
        remote_nominated: false,
        want_nominate: false,
        consent_ok_at: None,
        next_consent: None,
    }
}

/// Extracts the local (receiver's) ufrag from a STUN binding request's USERNAME
/// (`"<local>:<remote>"`), without allocating.
pub fn local_ufrag_of(packet: &[u8]) -> Option<&str> {
    let msg = StunMessage::parse(packet).ok()?;
    if msg.method() != Method::BINDING || msg.class() != Class::Request {
        return None;
    }
    let u = msg.username()?;
    u.split_once(':').map(|(l, _)| l)
}

/// Routes incoming binding requests on a shared socket to the agent that owns the local
/// ufrag, so one UDP port can serve every peer. `K` is the caller's key (e.g. a peer id).
#[derive(Debug, Clone)]
pub struct UfragRouter<K> {
    by_ufrag: HashMap<String, K>,
}

impl<K> Default for UfragRouter<K> {
    fn default() -> Self {
        UfragRouter {
            by_ufrag: HashMap::new(),
        }
    }
}

impl<K> UfragRouter<K> {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an agent's local ufrag.
    pub fn insert(&mut self, ufrag: impl Into<String>, key: K) -> Option<K> {
        self.by_ufrag.insert(ufrag.into(), key)
    }

    /// Forgets a ufrag (after restart or close).
    pub fn remove(&mut self, ufrag: &str) -> Option<K> {
        self.by_ufrag.remove(ufrag)
    }

    /// The agent owning the binding request in `packet`, if any.
    pub fn route(&self, packet: &[u8]) -> Option<&K> {
        self.by_ufrag.get(local_ufrag_of(packet)?)
    }
}

/// Fuzzing entry point: feeds `data` into a full and a lite agent with known credentials,
/// with simulated time starting at `base`. Returns how many STUN responses the agents sent
/// back (answers to input that passed the integrity check).
#[doc(hidden)]
pub fn fuzz_agent_input(base: Instant, data: &[u8]) -> usize {
    let a: SocketAddr = SocketAddr::from(([10, 0, 0, 1], 5000));
    let b: SocketAddr = SocketAddr::from(([10, 0, 0, 2], 6000));
    let mut answers = 0;
    for lite in [false, true] {
        let mut agent = IceAgent::new(IceConfig {
            lite,
            controlling: !lite,
            local_credentials: Some(Credentials::new("fuzz", "fuzzpasswordfuzzpassword")),
            ..IceConfig::default()
        });
        agent.set_remote_credentials(Credentials::new("peer", "peerpasswordpeerpassword"));
        agent.add_local_candidate(Candidate::host(a));
        agent.add_remote_candidate(Candidate::host(b));
        agent.handle_timeout(base);
        while agent.poll_transmit().is_some() {}
        // Split the input into several packets at 0xFF bytes.
        for (i, chunk) in data.split(|x| *x == 0xFF).enumerate() {
            let now = base + Duration::from_millis(i as u64 * 20);
            agent.handle_packet(now, b, a, chunk);
            while let Some(t) = agent.poll_transmit() {
                if StunMessage::parse(&t.contents)
                    .is_ok_and(|m| matches!(m.class(), Class::Success | Class::Error))
                {
                    answers += 1;
                }
            }
            agent.handle_timeout(now);
            while agent.poll_transmit().is_some() {}
            while agent.poll_event().is_some() {}
            let _ = agent.poll_timeout();
        }
    }
    let _ = stun::fuzz_decode(data);
    answers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn priorities_follow_rfc8445_formulas() {
        // 2^24*126 + 2^8*65535 + (256 - 1), computed by hand from RFC 8445 §5.1.2.1.
        assert_eq!(candidate_priority(126, 65535, 1), 2_130_706_431);
        assert_eq!(candidate_priority(0, 65535, 1), 16_777_215);
        assert_eq!(Candidate::host(sa("192.0.2.1:1")).priority, 2_130_706_431);
        // RFC 8445 §6.1.2.3 with G=10, D=20: 2^32*10 + 2*20 + 0.
        assert_eq!(pair_priority(10, 20), (10u64 << 32) + 40);
        assert_eq!(pair_priority(20, 10), (10u64 << 32) + 40 + 1);
    }

    #[test]
    fn parses_browser_candidate_lines() {
        // Lines as Chrome writes them.
        let c = Candidate::from_sdp(
            "candidate:1191081017 1 udp 2122129151 10.0.0.163 59267 typ host generation 0 network-id 1",
        )
        .unwrap();
        assert_eq!(
            (c.kind, c.transport, c.addr, c.priority),
            (
                CandidateKind::Host,
                Transport::Udp,
                sa("10.0.0.163:59267"),
                2_122_129_151
            )
        );
        let c = Candidate::from_sdp("a=candidate:142444745 1 tcp 1518149375 10.0.0.163 9 typ host tcptype active generation 0 network-id 1").unwrap();
        assert_eq!(
            (c.transport, c.tcp_type),
            (Transport::Tcp, Some(TcpType::Active))
        );
        let c = Candidate::from_sdp("candidate:2782917333 1 udp 1685921535 73.162.196.213 59267 typ srflx raddr 10.0.0.163 rport 59267 generation 0 network-id 1").unwrap();
        assert_eq!(c.kind, CandidateKind::ServerReflexive);
        assert_eq!(
            Candidate::from_sdp("candidate:1 1 udp 1 10.0.0.1 notaport typ host"),
            Err(CandidateParseError::Invalid("port"))
        );
        assert_eq!(
            Candidate::from_sdp("candidate:1 1 udp"),
            Err(CandidateParseError::Missing("priority"))
        );
        // Our own output parses back.
        let ours = Candidate::host_tcp(sa("[2001:db8::1]:443"), TcpType::Passive);
        let back = Candidate::from_sdp(&ours.to_sdp()).unwrap();
        assert_eq!(
            (back.addr, back.tcp_type, back.priority),
            (ours.addr, ours.tcp_type, ours.priority)
        );
    }

    fn request(username: &str, pwd: &[u8], extra: impl FnOnce(&mut MessageBuilder<'_>)) -> Vec<u8> {
        let mut buf = [0u8; 256];
        let mut b = MessageBuilder::new(
            &mut buf,
            Method::BINDING,
            Class::Request,
            TransactionId([5; 12]),
        );
        b.username(username)
            .priority(1_845_501_695)
            .ice_controlling(1);
        extra(&mut b);
        b.message_integrity(pwd).fingerprint();
        b.finish().unwrap().to_vec()
    }

    fn lite_agent() -> IceAgent {
        let mut a = IceAgent::new(IceConfig {
            lite: true,
            local_credentials: Some(Credentials::new("sfu1", "sfupasswordsfupassword")),
            ..IceConfig::default()
        });
        a.add_local_candidate(Candidate::host(sa("192.0.2.1:3478")));
        a
    }

    #[test]
    fn answers_check_and_reports_unknown_required_attribute_with_420() {
        let now = Instant::now();
        let mut a = lite_agent();
        let from = sa("198.51.100.5:50000");
        let to = sa("192.0.2.1:3478");
        let req = request("sfu1:browser", b"sfupasswordsfupassword", |_| {});
        assert!(a.handle_packet(now, from, to, &req));
        let t = a.poll_transmit().unwrap();
        assert_eq!((t.source, t.destination), (to, from));
        let m = StunMessage::parse(&t.contents).unwrap();
        assert_eq!(m.class(), Class::Success);
        assert_eq!(m.xor_mapped_address(), Some(from));
        assert_eq!(m.verify_integrity(b"sfupasswordsfupassword"), Ok(()));
        assert_eq!(m.verify_fingerprint(), Ok(()));
        assert!(matches!(a.poll_event(), Some(IceEvent::PeerReflexiveRemote(x)) if x == from));

        let req = request("sfu1:browser", b"sfupasswordsfupassword", |b| {
            b.raw(0x0777, b"?");
        });
        assert!(a.handle_packet(now, from, to, &req));
        let m_bytes = a.poll_transmit().unwrap().contents;
        let m = StunMessage::parse(&m_bytes).unwrap();
        assert_eq!(m.class(), Class::Error);
        assert_eq!(m.error_code().map(|e| e.0), Some(420));
        assert_eq!(
            m.unknown_attributes().map(|u| u.iter().collect::<Vec<_>>()),
            Some(vec![0x0777])
        );

        // Wrong password: silently dropped; wrong ufrag: not ours.
        let bad = request("sfu1:browser", b"wrong", |_| {});
        a.handle_packet(now, from, to, &bad);
        assert!(a.poll_transmit().is_none());
        let other = request("sfu2:browser", b"sfupasswordsfupassword", |_| {});
        assert!(!a.handle_packet(now, from, to, &other));
    }

    #[test]
    fn lite_selects_pair_on_use_candidate() {
        let now = Instant::now();
        let mut a = lite_agent();
        let from = sa("198.51.100.5:50000");
        let to = sa("192.0.2.1:3478");
        let req = request("sfu1:browser", b"sfupasswordsfupassword", |b| {
            b.use_candidate();
        });
        a.handle_packet(now, from, to, &req);
        assert_eq!(a.selected_pair(), Some((to, from, Transport::Udp)));
        assert_eq!(a.state(), IceState::Completed);
        // No consent traffic from a lite agent, but silence for 30 s fails it.
        a.handle_timeout(now + Duration::from_secs(31));
        assert_eq!(a.state(), IceState::Failed);
    }

    #[test]
    fn ufrag_router_finds_agent_for_binding_request() {
        let mut r = UfragRouter::new();
        r.insert("sfu1", 1u32);
        r.insert("sfu2", 2u32);
        let req = request("sfu2:browser", b"x", |_| {});
        assert_eq!(r.route(&req), Some(&2));
        assert_eq!(local_ufrag_of(&req), Some("sfu2"));
        assert_eq!(r.route(b"\x80\x00 not stun"), None);
        r.remove("sfu2");
        assert_eq!(r.route(&req), None);
    }

    #[test]
    fn same_foundation_pairs_start_frozen_and_unfreeze_on_success() {
        let t0 = Instant::now();
        let mut a = IceAgent::new(IceConfig {
            controlling: true,
            local_credentials: Some(Credentials::new("aaaa", "apasswordapasswordapassword")),
            ..IceConfig::default()
        });
        // Two host candidates on one IP share a foundation.
        a.add_local_candidate(Candidate::host(sa("192.0.2.1:1000")));
        a.add_local_candidate(Candidate::host(sa("192.0.2.1:1001")));
        a.set_remote_credentials(Credentials::new("bbbb", "bpasswordbpasswordbpassword"));
        a.add_remote_candidate(Candidate::host(sa("198.51.100.2:2000")));
        a.handle_timeout(t0);
        let first = a.poll_transmit().unwrap();
        // A few Ta later: still only the first pair is being checked (the other is Frozen).
        for i in 1..4 {
            a.handle_timeout(t0 + a.cfg.ta * i);
        }
        assert!(a.poll_transmit().is_none());
        // The peer answers the first check: the frozen pair of that foundation thaws.
        let req = StunMessage::parse(&first.contents).unwrap();
        let mut buf = [0u8; 128];
        let mut b = MessageBuilder::new(
            &mut buf,
            Method::BINDING,
            Class::Success,
            req.transaction_id(),
        );
        b.xor_mapped_address(first.source)
            .message_integrity(b"bpasswordbpasswordbpassword")
            .fingerprint();
        let resp = b.finish().unwrap().to_vec();
        let now = t0 + Duration::from_millis(200);
        assert!(a.handle_packet(now, first.destination, first.source, &resp));
        let mut sources = Vec::new();
        for i in 0..3 {
            a.handle_timeout(now + a.cfg.ta * i);
            while let Some(t) = a.poll_transmit() {
                sources.push(t.source);
            }
        }
        // (The nomination check on the first pair may go first; the thawed pair follows.)
        assert!(sources.contains(&sa("192.0.2.1:1001")), "{sources:?}");
    }
}
