//! The engine actor: one task owns the sans-IO [`Engine`] and is the only place that reads
//! the clock for it. It selects over UDP readiness, ICE-TCP frames, calls from WebSocket
//! tasks and the engine's next deadline; after every input it drains the engine's transmits
//! (to the sockets) and notices (to each participant's WebSocket task).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, trace, warn};
use tympan_rtc_engine::{Datagram, Engine, Notice, ParticipantId, Transport};

use crate::media::{TcpConnections, TcpEvent, UdpMedia};

/// Room for one outgoing datagram (the engine writes into it).
const MAX_TRANSMIT: usize = 2048;
/// The send buffer: one datagram, or a run of equal-sized datagrams to one destination that
/// leaves in one GSO send.
const TRANSMIT_BUF: usize = 65_000;
/// Batches read per UDP wake-up before the other inputs get a turn.
const MAX_BATCHES_PER_WAKE: usize = 16;

/// What the actor sends to a participant's WebSocket task.
pub(crate) type NoticeTx = mpsc::UnboundedSender<Notice>;

/// The actor's state that calls may touch: the engine and the notice routes.
pub(crate) struct Core {
    pub(crate) engine: Engine,
    routes: HashMap<ParticipantId, NoticeTx>,
}

impl Core {
    /// Routes this participant's notices to `tx` (after a successful join); returns the
    /// route it replaces (a resume taking over from a socket not yet seen closed).
    pub(crate) fn register(
        &mut self,
        participant: ParticipantId,
        tx: NoticeTx,
    ) -> Option<NoticeTx> {
        self.routes.insert(participant, tx)
    }

    /// Whether `participant`'s notices go to `tx`, or nowhere (false once another socket
    /// resumed the participant).
    pub(crate) fn routes_to(&self, participant: ParticipantId, tx: &NoticeTx) -> bool {
        self.routes
            .get(&participant)
            .is_none_or(|r| r.same_channel(tx))
    }

    /// Stops routing notices to this participant (it left or its socket closed).
    pub(crate) fn unregister(&mut self, participant: ParticipantId) {
        self.routes.remove(&participant);
    }

    /// Number of participants with a live WebSocket.
    pub(crate) fn connected(&self) -> usize {
        self.routes.len()
    }
}

type Call = Box<dyn FnOnce(&mut Core, Instant) + Send>;

enum Command {
    Call(Call),
    Shutdown(oneshot::Sender<()>),
}

/// A cheap, cloneable handle to the actor.
#[derive(Clone)]
pub(crate) struct EngineHandle {
    tx: mpsc::Sender<Command>,
}

/// The actor is gone (shut down or crashed).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ActorGone;

impl EngineHandle {
    /// Runs `f` on the actor with the engine and the current time; returns its result.
    pub(crate) async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core, Instant) -> R + Send + 'static,
    ) -> Result<R, ActorGone> {
        let (reply, rx) = oneshot::channel();
        // Engine logs during the call land in the caller's span (room, participant).
        let span = tracing::Span::current();
        let call: Call = Box::new(move |core, now| {
            let _entered = span.enter();
            let _ = reply.send(f(core, now));
        });
        self.tx
            .send(Command::Call(call))
            .await
            .map_err(|_| ActorGone)?;
        rx.await.map_err(|_| ActorGone)
    }

    /// Like [`EngineHandle::call`] without waiting for the result (for `Drop`-like paths).
    pub(crate) fn cast(&self, f: impl FnOnce(&mut Core, Instant) + Send + 'static) {
        let tx = self.tx.clone();
        let span = tracing::Span::current();
        tokio::spawn(async move {
            let call: Call = Box::new(move |core, now| {
                let _entered = span.enter();
                f(core, now);
            });
            let _ = tx.send(Command::Call(call)).await;
        });
    }

    /// Closes the engine (DTLS close_notify flushed) and stops the actor.
    pub(crate) async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// A run of UDP datagrams to one destination at the start of the transmit buffer.
struct Run {
    local: std::net::SocketAddr,
    remote: std::net::SocketAddr,
    segment: usize,
    count: usize,
    used: usize,
    /// The last datagram was shorter than `segment`: the run is closed.
    short_tail: bool,
}

impl Run {
    fn flush(self, udp: &mut UdpMedia, buf: &[u8]) {
        let segment = (self.count > 1).then_some(self.segment);
        if self.count > 1 {
            trace!(remote = %self.remote, datagrams = self.count, segment = self.segment, "gso send");
        }
        udp.send_segments(self.local, self.remote, &buf[..self.used], segment);
    }
}

pub(crate) struct Actor {
    core: Core,
    udp: UdpMedia,
    tcp: TcpConnections,
    tcp_rx: mpsc::Receiver<TcpEvent>,
    commands: mpsc::Receiver<Command>,
    transmit_buf: Vec<u8>,
    /// Consecutive engine deadlines that were already due when we went to sleep.
    due_in_a_row: u32,
}

impl Actor {
    pub(crate) fn new(
        engine: Engine,
        udp: UdpMedia,
        tcp_rx: mpsc::Receiver<TcpEvent>,
    ) -> (Self, EngineHandle) {
        let (tx, commands) = mpsc::channel(1024);
        (
            Self {
                core: Core {
                    engine,
                    routes: HashMap::new(),
                },
                udp,
                tcp: TcpConnections::default(),
                tcp_rx,
                commands,
                transmit_buf: vec![0u8; TRANSMIT_BUF],
                due_in_a_row: 0,
            },
            EngineHandle { tx },
        )
    }

    pub(crate) async fn run(mut self) {
        loop {
            let deadline = self.core.engine.poll_timeout();
            let sleep_until = deadline
                .map(|(at, _)| at)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                ready = self.udp.socket.readable() => {
                    if let Err(e) = ready {
                        warn!(error = %e, "udp socket failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                    self.on_udp_readable();
                }
                Some(event) = self.tcp_rx.recv() => self.on_tcp(event),
                command = self.commands.recv() => match command {
                    Some(Command::Call(call)) => {
                        let now = Instant::now();
                        call(&mut self.core, now);
                    }
                    Some(Command::Shutdown(done)) => {
                        self.close();
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.close();
                        return;
                    }
                },
                () = tokio::time::sleep_until(sleep_until.into()) => {
                    let now = Instant::now();
                    if let Some((at, reason)) = deadline {
                        trace!(?reason, "engine timeout");
                        // A deadline that stays in the past means a busy loop: say why.
                        if at + Duration::from_millis(1) < now {
                            self.due_in_a_row += 1;
                            if self.due_in_a_row == 10_000 {
                                warn!(?reason, "engine keeps asking for an overdue timeout (busy loop?)");
                            }
                        } else {
                            self.due_in_a_row = 0;
                        }
                    }
                    self.core.engine.handle_timeout(now);
                }
            }
            self.drain();
        }
    }

    fn on_udp_readable(&mut self) {
        let Self { core, udp, .. } = self;
        for _ in 0..MAX_BATCHES_PER_WAKE {
            let now = Instant::now();
            let engine = &mut core.engine;
            let result = udp.try_recv_batch(|local, remote, contents| {
                engine.handle_datagram(
                    now,
                    Datagram {
                        local,
                        remote,
                        transport: Transport::Udp,
                        contents,
                    },
                );
            });
            match result {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // ICMP errors (ECONNREFUSED from a vanished peer) surface here: ignore.
                    debug!(error = %e, "udp receive error");
                    break;
                }
            }
            // Keep latency low: send what this batch produced before reading more.
            Self::drain_transmits(core, udp, &mut self.tcp, &mut self.transmit_buf);
        }
    }

    fn on_tcp(&mut self, event: TcpEvent) {
        match event {
            TcpEvent::Opened { local, remote, tx } => self.tcp.opened(local, remote, tx),
            TcpEvent::Closed { local, remote } => self.tcp.closed(local, remote),
            TcpEvent::Frame {
                local,
                remote,
                mut data,
            } => {
                self.core.engine.handle_datagram(
                    Instant::now(),
                    Datagram {
                        local,
                        remote,
                        transport: Transport::Tcp,
                        contents: &mut data,
                    },
                );
            }
        }
    }

    /// Sends everything the engine has queued. Consecutive UDP datagrams to the same
    /// destination with the same size (a video frame's packets to one subscriber) are
    /// written back to back into `buf` and leave in one GSO `sendmsg` (the last one may be
    /// shorter); everything else leaves one by one.
    fn drain_transmits(
        core: &mut Core,
        udp: &mut UdpMedia,
        tcp: &mut TcpConnections,
        buf: &mut [u8],
    ) {
        let max_segments = udp.max_segments();
        let mut run: Option<Run> = None;
        loop {
            let mut off = run.as_ref().map_or(0, |r| r.used);
            if off + MAX_TRANSMIT > buf.len() {
                if let Some(r) = run.take() {
                    r.flush(udp, buf);
                }
                off = 0;
            }
            let Some(slot) = buf.get_mut(off..off + MAX_TRANSMIT) else {
                break;
            };
            let Some(t) = core.engine.poll_transmit(slot) else {
                break;
            };
            if t.len > MAX_TRANSMIT {
                warn!(
                    len = t.len,
                    "engine transmit longer than the buffer; dropped"
                );
                continue;
            }
            match t.transport {
                Transport::Tcp => tcp.send(t.local, t.remote, &buf[off..off + t.len]),
                Transport::Udp => {
                    let joins = run.as_ref().is_some_and(|r| {
                        r.local == t.local
                            && r.remote == t.remote
                            && !r.short_tail
                            && t.len > 0
                            && t.len <= r.segment
                            && r.count < max_segments
                    });
                    if joins {
                        if let Some(r) = run.as_mut() {
                            r.used += t.len;
                            r.count += 1;
                            r.short_tail = t.len < r.segment;
                        }
                    } else {
                        if let Some(r) = run.take() {
                            r.flush(udp, buf);
                            buf.copy_within(off..off + t.len, 0);
                        }
                        run = Some(Run {
                            local: t.local,
                            remote: t.remote,
                            segment: t.len,
                            count: 1,
                            used: t.len,
                            short_tail: false,
                        });
                    }
                }
            }
        }
        if let Some(r) = run {
            r.flush(udp, buf);
        }
    }

    fn drain(&mut self) {
        Self::drain_transmits(
            &mut self.core,
            &mut self.udp,
            &mut self.tcp,
            &mut self.transmit_buf,
        );
        while let Some((participant, notice)) = self.core.engine.poll_notice() {
            let removed = matches!(notice, Notice::Removed { .. });
            match self.core.routes.get(&participant) {
                Some(tx) => {
                    if tx.send(notice).is_err() {
                        // The socket task ended; its leave is on the way.
                        self.core.routes.remove(&participant);
                    }
                }
                None => trace!(%participant, "notice for a participant without a socket"),
            }
            if removed {
                info!(%participant, "participant removed by the engine");
                self.core.routes.remove(&participant);
            }
        }
    }

    /// Shutdown: close every peer, flush the close_notify alerts, forget the routes (the
    /// WebSocket tasks send `bye {reason: shutdown}` on their own).
    fn close(&mut self) {
        let now = Instant::now();
        self.core.engine.close(now);
        Self::drain_transmits(
            &mut self.core,
            &mut self.udp,
            &mut self.tcp,
            &mut self.transmit_buf,
        );
        let mut discarded = 0usize;
        while self.core.engine.poll_notice().is_some() {
            discarded += 1;
        }
        debug!(discarded, "notices discarded at shutdown");
        self.core.routes.clear();
        info!(
            udp_send_drops = self.udp.send_drops,
            tcp_drops = self.tcp.drops,
            tcp_connections = self.tcp.len(),
            "engine closed"
        );
    }
}
