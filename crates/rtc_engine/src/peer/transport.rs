//! The secure transport of one peer: DTLS over the ICE path, the SRTP/SRTCP contexts keyed
//! from it, the SCTP association inside it, and the queue of datagrams to send (buffers
//! pooled so that steady-state sending does not allocate).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tympan_dtls::{DtlsContext, DtlsEndpoint, DtlsEvent, DtlsRole, Fingerprint};
use tympan_ice::agent::Transport as IceTransport;
use tympan_rtp::srtp::{SrtpConfig, SrtpContext, SrtpProfile};
use tympan_sctp::{ChannelId, Event as SctpEvent, MessageKind, Role, SctpAssociation, SctpConfig};
use tympan_sdp::Setup;

use super::negotiation::TransportParams;
use super::{DisconnectReason, PeerError, PeerEvent, TransmitMeta};

/// Room for any datagram we queue (MTU-sized media plus SRTP overhead).
const BUF_CAPACITY: usize = 1600;
/// Largest plaintext handed to the media machinery to fill (room left for SRTP).
const MEDIA_MAX: usize = 1500 - 64;
/// Buffers kept for reuse.
const POOL_LIMIT: usize = 256;
/// Remote paths remembered from answered checks (before ICE selects one).
const MAX_PATHS: usize = 8;

/// A 5-tuple as seen from us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Path {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub transport: IceTransport,
}

#[derive(Debug)]
struct Queued {
    path: Path,
    buf: Vec<u8>,
}

/// Datagrams waiting for `poll_transmit`, and a pool of their buffers.
#[derive(Debug, Default)]
pub(crate) struct TxQueue {
    queue: VecDeque<Queued>,
    pool: Vec<Vec<u8>>,
}

impl TxQueue {
    fn take(&mut self) -> Vec<u8> {
        let mut b = self
            .pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BUF_CAPACITY));
        b.clear();
        b
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        if self.pool.len() < POOL_LIMIT && buf.capacity() >= BUF_CAPACITY {
            self.pool.push(buf);
        }
    }

    fn push(&mut self, path: Path, buf: Vec<u8>) {
        self.queue.push_back(Queued { path, buf });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Copies the next datagram into `out`; datagrams that do not fit are dropped.
    pub(crate) fn pop_into(&mut self, out: &mut [u8]) -> Option<TransmitMeta> {
        while let Some(q) = self.queue.pop_front() {
            let len = q.buf.len();
            let fits = match out.get_mut(..len) {
                Some(dst) => {
                    dst.copy_from_slice(&q.buf);
                    true
                }
                None => false,
            };
            let path = q.path;
            self.recycle(q.buf);
            if fits {
                return Some(TransmitMeta {
                    local: path.local,
                    remote: path.remote,
                    transport: path.transport,
                    len,
                });
            }
        }
        None
    }
}

fn to_srtp_profile(p: tympan_dtls::SrtpProfile) -> SrtpProfile {
    match p {
        tympan_dtls::SrtpProfile::Aes128CmHmacSha1_80 => SrtpProfile::AesCm128HmacSha1_80,
        tympan_dtls::SrtpProfile::AeadAes128Gcm => SrtpProfile::AeadAes128Gcm,
        tympan_dtls::SrtpProfile::AeadAes256Gcm => SrtpProfile::AeadAes256Gcm,
    }
}

/// DTLS + SRTP + SCTP over the ICE-selected path.
#[derive(Debug)]
pub(crate) struct Transport {
    dtls: Option<DtlsEndpoint>,
    role: Option<DtlsRole>,
    dtls_started: bool,
    connected: bool,
    pub srtp_tx: Option<SrtpContext>,
    pub srtp_rx: Option<SrtpContext>,
    sctp: Option<SctpAssociation>,
    sctp_params: Option<(u16, u64)>,
    path: Option<Path>,
    /// Paths the remote proved with a check we answered (newest last).
    checked: Vec<Path>,
    pub tx: TxQueue,
    failure: Option<DisconnectReason>,
    closing: bool,
}

impl Transport {
    pub(crate) fn new() -> Self {
        Transport {
            dtls: None,
            role: None,
            dtls_started: false,
            connected: false,
            srtp_tx: None,
            srtp_rx: None,
            sctp: None,
            sctp_params: None,
            path: None,
            checked: Vec::new(),
            tx: TxQueue::default(),
            failure: None,
            closing: false,
        }
    }

    /// Sets up DTLS (first negotiation) and SCTP (once a data channel section exists).
    pub(crate) fn configure(
        &mut self,
        context: &Arc<DtlsContext>,
        params: &TransportParams,
        now: Instant,
    ) {
        if self.dtls.is_none() && self.failure.is_none() {
            let role = match params.local_setup {
                Setup::Active => DtlsRole::Client,
                _ => DtlsRole::Server,
            };
            let expected = Fingerprint::from_sha256(params.remote_fingerprint);
            match DtlsEndpoint::new(context, role, expected) {
                Ok(d) => {
                    self.dtls = Some(d);
                    self.role = Some(role);
                }
                Err(e) => {
                    tracing::warn!("DTLS setup failed: {e}");
                    self.failure = Some(DisconnectReason::DtlsFailed);
                }
            }
        }
        if params.sctp.is_some() {
            self.sctp_params = params.sctp;
        }
        self.maybe_start_dtls(now);
        self.maybe_start_sctp(now);
    }

    fn maybe_start_dtls(&mut self, now: Instant) {
        if self.dtls_started || self.path.is_none() {
            return;
        }
        if let Some(d) = self.dtls.as_mut() {
            d.start(now);
            self.dtls_started = true;
        }
    }

    fn maybe_start_sctp(&mut self, now: Instant) {
        if self.sctp.is_some() || !self.connected {
            return;
        }
        let (Some((port, max)), Some(role)) = (self.sctp_params, self.role) else {
            return;
        };
        let config = SctpConfig {
            remote_max_message_size: u32::try_from(max).unwrap_or(u32::MAX),
            sctp_port: port,
            ..SctpConfig::default()
        };
        let role = match role {
            DtlsRole::Client => Role::Client,
            DtlsRole::Server => Role::Server,
        };
        match SctpAssociation::new(role, config, now) {
            Ok(a) => self.sctp = Some(a),
            Err(e) => tracing::warn!("SCTP setup failed: {e}"),
        }
    }

    /// ICE selected (or switched) the path.
    pub(crate) fn select_path(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        transport: IceTransport,
    ) {
        self.path = Some(Path {
            local,
            remote,
            transport,
        });
        self.maybe_start_dtls(now);
    }

    pub(crate) fn has_path(&self) -> bool {
        self.send_path().is_some()
    }

    /// Where to send: the ICE-selected path, else (before the controlling side nominated)
    /// the latest path the remote proved with a check.
    fn send_path(&self) -> Option<Path> {
        self.path.or_else(|| self.checked.last().copied())
    }

    /// UDP or TCP, of the path we send on.
    pub(crate) fn path_transport(&self) -> Option<IceTransport> {
        self.send_path().map(|p| p.transport)
    }

    /// Whether a datagram on this 5-tuple may be DTLS/media of ours: the selected path or
    /// one the remote proved with a connectivity check.
    pub(crate) fn knows_path(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        transport: IceTransport,
    ) -> bool {
        let p = Path {
            local,
            remote,
            transport,
        };
        self.path == Some(p) || self.checked.contains(&p)
    }

    /// A STUN datagram from ICE (all a lite agent sends are answers to valid checks).
    pub(crate) fn on_ice_transmit(&mut self, t: tympan_ice::agent::Transmit) {
        let path = Path {
            local: t.source,
            remote: t.destination,
            transport: t.transport,
        };
        if !self.checked.contains(&path) {
            if self.checked.len() >= MAX_PATHS {
                self.checked.remove(0);
            }
            self.checked.push(path);
        }
        self.tx.push(path, t.contents);
    }

    /// Feeds a DTLS datagram; false when there is no DTLS endpoint yet.
    pub(crate) fn handle_dtls(&mut self, now: Instant, data: &[u8]) -> bool {
        let Some(d) = self.dtls.as_mut() else {
            return false;
        };
        d.handle_datagram(now, data);
        true
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if let Some(d) = self.dtls.as_mut() {
            if self.dtls_started || self.role == Some(DtlsRole::Server) {
                d.handle_timeout(now);
            }
        }
        if let Some(s) = self.sctp.as_mut() {
            s.handle_timeout(now);
        }
    }

    pub(crate) fn dtls_timeout(&self) -> Option<Instant> {
        let d = self.dtls.as_ref()?;
        if self.dtls_started || self.role == Some(DtlsRole::Server) {
            d.poll_timeout()
        } else {
            None
        }
    }

    pub(crate) fn sctp_timeout(&self) -> Option<Instant> {
        self.sctp.as_ref()?.poll_timeout()
    }

    pub(crate) fn take_failure(&mut self) -> Option<DisconnectReason> {
        self.failure.take()
    }

    /// Processes DTLS and SCTP events and moves their datagrams to the queue.
    pub(crate) fn pump(&mut self, now: Instant, events: &mut VecDeque<PeerEvent>) {
        for _ in 0..4 {
            let mut progressed = false;
            // DTLS events (the SCTP association is fed application data from here).
            while let Some(ev) = self.dtls.as_mut().and_then(|d| d.poll_event()) {
                progressed = true;
                match ev {
                    DtlsEvent::Connected {
                        srtp_profile,
                        keying_material,
                        ..
                    } => {
                        if let (Some(profile), Some(km), Some(role)) =
                            (srtp_profile, keying_material, self.role)
                        {
                            let role = match role {
                                DtlsRole::Client => tympan_rtp::srtp::DtlsRole::Client,
                                DtlsRole::Server => tympan_rtp::srtp::DtlsRole::Server,
                            };
                            let config = SrtpConfig {
                                // NACK without RTX resends the same packet index.
                                allow_repeat_tx: true,
                                ..SrtpConfig::default()
                            };
                            match SrtpContext::pair_from_dtls(
                                to_srtp_profile(profile),
                                km.as_bytes(),
                                role,
                                config,
                            ) {
                                Ok((tx, rx)) => {
                                    self.srtp_tx = Some(tx);
                                    self.srtp_rx = Some(rx);
                                }
                                Err(e) => tracing::warn!("SRTP keying failed: {e}"),
                            }
                        }
                        if !self.connected {
                            self.connected = true;
                            events.push_back(PeerEvent::Connected);
                        }
                    }
                    DtlsEvent::ApplicationData(data) => {
                        if let Some(s) = self.sctp.as_mut() {
                            s.handle_dtls_data(now, data);
                        } else if let (Some(_), true) = (self.sctp_params, self.connected) {
                            // The association is created right after Connected; a packet in
                            // between is recreated by SCTP retransmission.
                        }
                    }
                    DtlsEvent::Closed => {
                        if !self.closing {
                            self.failure = Some(DisconnectReason::DtlsClosed);
                        }
                    }
                    DtlsEvent::Failed(e) => {
                        tracing::debug!("DTLS failed: {e}");
                        self.failure = Some(DisconnectReason::DtlsFailed);
                    }
                }
                if self.sctp.is_none() && self.connected && self.sctp_params.is_some() {
                    self.maybe_start_sctp(now);
                }
            }
            // SCTP events.
            if let Some(sctp) = self.sctp.as_mut() {
                while let Some(ev) = sctp.poll_event() {
                    progressed = true;
                    match ev {
                        SctpEvent::ChannelOpen { channel } => {
                            let label = sctp
                                .channel(channel)
                                .map(|c| c.label.clone())
                                .unwrap_or_default();
                            events.push_back(PeerEvent::DataChannelOpen { channel, label });
                        }
                        SctpEvent::Message {
                            channel,
                            kind,
                            data,
                        } => events.push_back(PeerEvent::DataChannelMessage {
                            channel,
                            data: data.to_vec(),
                            binary: kind == MessageKind::Binary,
                        }),
                        SctpEvent::ChannelClosed { channel } => {
                            events.push_back(PeerEvent::DataChannelClosed { channel });
                        }
                        SctpEvent::Closed { reason } => {
                            tracing::debug!("SCTP closed: {reason}");
                        }
                        SctpEvent::Connected | SctpEvent::BufferedAmountLow { .. } => {}
                    }
                }
                // SCTP packets go out as DTLS application data.
                if let Some(dtls) = self.dtls.as_mut() {
                    while let Some(packet) = sctp.poll_transmit() {
                        progressed = true;
                        if let Err(e) = dtls.send_application_data(&packet) {
                            tracing::debug!("SCTP packet not sent over DTLS: {e}");
                        }
                    }
                }
            }
            self.drain_dtls();
            if !progressed {
                break;
            }
        }
    }

    /// Moves DTLS datagrams to the queue (once there is a path to send them on).
    fn drain_dtls(&mut self) {
        let Some(path) = self.send_path() else {
            return;
        };
        let Some(d) = self.dtls.as_mut() else { return };
        while let Some(datagram) = d.poll_transmit() {
            let mut buf = self.tx.pool.pop().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(datagram);
            self.tx.push(path, buf);
        }
    }

    /// Protects and queues one plaintext RTP packet.
    pub(crate) fn send_rtp(&mut self, packet: &[u8]) -> Result<(), PeerError> {
        let (Some(path), Some(srtp)) = (self.send_path(), self.srtp_tx.as_mut()) else {
            return Err(PeerError::NotReady);
        };
        let mut buf = self.tx.take();
        let len = packet.len();
        buf.extend_from_slice(packet);
        buf.resize(len + srtp.profile().rtp_overhead(), 0);
        match srtp.protect_rtp_in_place(&mut buf, len) {
            Ok(total) => {
                buf.truncate(total);
                self.tx.push(path, buf);
                Ok(())
            }
            Err(e) => {
                self.tx.recycle(buf);
                Err(PeerError::Send(format!("SRTP: {e}")))
            }
        }
    }

    /// Pulls plaintext packets from `fill` (RTP retransmissions, or RTCP when `rtcp`),
    /// protects and queues them.
    pub(crate) fn send_media(
        &mut self,
        mut fill: impl FnMut(&mut [u8]) -> Option<usize>,
        rtcp: bool,
    ) {
        let (Some(path), Some(srtp)) = (self.send_path(), self.srtp_tx.as_mut()) else {
            return;
        };
        loop {
            let mut buf = self.tx.take();
            buf.resize(BUF_CAPACITY, 0);
            let Some(len) = buf.get_mut(..MEDIA_MAX).and_then(&mut fill) else {
                self.tx.recycle(buf);
                return;
            };
            let len = len.min(MEDIA_MAX);
            let result = if rtcp {
                srtp.protect_rtcp_in_place(&mut buf, len)
            } else {
                srtp.protect_rtp_in_place(&mut buf, len)
            };
            match result {
                Ok(total) => {
                    buf.truncate(total);
                    self.tx.push(path, buf);
                }
                Err(e) => {
                    tracing::debug!("SRTP protect failed: {e}");
                    self.tx.recycle(buf);
                }
            }
        }
    }

    pub(crate) fn send_data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        binary: bool,
    ) -> Result<(), PeerError> {
        let Some(sctp) = self.sctp.as_mut() else {
            return Err(PeerError::NotReady);
        };
        let kind = if binary {
            MessageKind::Binary
        } else {
            MessageKind::Text
        };
        sctp.send(channel, kind, data)
            .map_err(|e| PeerError::Send(e.to_string()))
    }

    /// SCTP shutdown, DTLS close_notify, all queued for sending.
    pub(crate) fn close(&mut self, now: Instant) {
        self.closing = true;
        let mut ignored = VecDeque::new();
        if let Some(s) = self.sctp.as_mut() {
            let _ = s.shutdown();
        }
        self.pump(now, &mut ignored);
        if let Some(d) = self.dtls.as_mut() {
            d.close();
        }
        self.drain_dtls();
        self.sctp = None;
    }
}
