//! Interop with an independent implementation: webrtc-rs' `rtc-sctp` association driven by the
//! `rtc-datachannel` DCEP state machine, in memory, over the simulated link. DCEP opens from
//! either side, messages in both directions, both SCTP roles.

mod common;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::{Peer, Sim};
use rtc_datachannel::data_channel::{DataChannel, DataChannelConfig, DataChannelMessage};
use rtc_datachannel::message::message_channel_open::ChannelType;
use rtc_sctp::{
    Association, AssociationHandle, ClientConfig, DatagramEvent, Endpoint, EndpointConfig,
    Event as RtcEvent, Payload, PayloadProtocolIdentifier as RtcPpi, ServerConfig, StreamEvent,
    TransportConfig,
};
use sansio::Protocol;
use tympan_sctp::{
    ChannelConfig, ChannelId, Event, MessageKind, Reliability, Role, SctpAssociation, SctpConfig,
};

/// The webrtc-rs peer: rtc-sctp association + one rtc-datachannel `DataChannel` per stream.
struct RtcPeer {
    endpoint: Endpoint,
    association: Option<(AssociationHandle, Association)>,
    out: VecDeque<Bytes>,
    now: Instant,
    channels: HashMap<u16, DataChannel>,
    /// (stream id, ppid, payload) of user messages received.
    received: Vec<(u16, RtcPpi, Vec<u8>)>,
    connected: bool,
}

fn remote() -> SocketAddr {
    "127.0.0.1:5000".parse().unwrap()
}

impl RtcPeer {
    fn new(client: bool, now: Instant) -> Self {
        let transport = TransportConfig::default().with_max_message_size(262_144);
        let mut endpoint_config = EndpointConfig::default();
        endpoint_config.max_payload_size(1160 - 28);
        let mut endpoint = Endpoint::new(
            "127.0.0.1:5000".parse().unwrap(),
            Default::default(),
            Arc::new(endpoint_config),
            Some(Arc::new(ServerConfig::new(transport.clone()))),
        );
        let association = client.then(|| {
            endpoint
                .connect(now, ClientConfig::new(transport), remote())
                .unwrap()
        });
        RtcPeer {
            endpoint,
            association,
            out: VecDeque::new(),
            now,
            channels: HashMap::new(),
            received: Vec::new(),
            connected: false,
        }
    }

    /// Opens a channel the webrtc-rs way: `DataChannel::dial` writes DATA_CHANNEL_OPEN.
    fn dial(&mut self, stream_id: u16, label: &str, channel_type: ChannelType, param: u32) {
        let config = DataChannelConfig {
            channel_type,
            reliability_parameter: param,
            label: label.into(),
            protocol: "proto".into(),
            priority: 256,
            negotiated: false,
        };
        let (handle, association) = self.association.as_mut().unwrap();
        let channel = DataChannel::dial(config, handle.0, stream_id).unwrap();
        let mut stream = association.open_stream(stream_id, RtcPpi::Binary).unwrap();
        let (unordered, kind) = DataChannel::get_reliability_params(channel_type);
        stream
            .set_reliability_params(unordered, kind, param)
            .unwrap();
        self.channels.insert(stream_id, channel);
        self.flush(stream_id);
    }

    fn send(&mut self, stream_id: u16, text: bool, data: &[u8]) {
        let message = DataChannel::get_data_channel_message(text, BytesMut::from(data));
        let channel = self.channels.get_mut(&stream_id).unwrap();
        channel.handle_write(message).unwrap();
        self.flush(stream_id);
    }

    /// Writes what the DataChannel wants to send into the SCTP stream.
    fn flush(&mut self, stream_id: u16) {
        let (_, association) = self.association.as_mut().unwrap();
        let channel = self.channels.get_mut(&stream_id).unwrap();
        while let Some(message) = channel.poll_write() {
            let mut stream = association.stream(stream_id).unwrap();
            stream
                .write_with_ppi(self.now, &message.payload, message.ppi)
                .unwrap();
        }
    }

    fn process(&mut self) {
        loop {
            let Some((handle, association)) = self.association.as_mut() else {
                return;
            };
            while let Some(e) = association.poll_endpoint_event() {
                self.endpoint.handle_event(*handle, e);
            }
            let Some(event) = association.poll() else {
                return;
            };
            match event {
                RtcEvent::Connected => self.connected = true,
                RtcEvent::Stream(StreamEvent::Opened { .. }) => {
                    while association.accept_stream().is_some() {}
                }
                RtcEvent::Stream(StreamEvent::Readable { id }) => self.read(id),
                _ => {}
            }
        }
    }

    fn read(&mut self, id: u16) {
        loop {
            let (handle, association) = self.association.as_mut().unwrap();
            let handle = handle.0;
            let Ok(mut stream) = association.stream(id) else {
                return;
            };
            let Ok(Some(chunks)) = stream.read_sctp() else {
                return;
            };
            let mut buf = vec![0; chunks.len()];
            let n = chunks.read(&mut buf).unwrap();
            buf.truncate(n);
            let ppi = chunks.ppi;
            if let Some(channel) = self.channels.get_mut(&id) {
                channel
                    .handle_read(DataChannelMessage {
                        association_handle: handle,
                        stream_id: id,
                        ppi,
                        payload: BytesMut::from(&buf[..]),
                        negotiated: false,
                    })
                    .unwrap();
                while let Some(m) = channel.poll_read() {
                    self.received.push((id, m.ppi, m.payload.to_vec()));
                }
            } else {
                // DATA_CHANNEL_OPEN from the peer: DataChannel::accept parses it and queues ACK.
                let channel =
                    DataChannel::accept(DataChannelConfig::default(), handle, id, ppi, &buf)
                        .expect("rtc-datachannel accepts our DATA_CHANNEL_OPEN");
                let config = channel.config().clone();
                let (unordered, kind) = DataChannel::get_reliability_params(config.channel_type);
                let mut stream = association.stream(id).unwrap();
                stream
                    .set_reliability_params(unordered, kind, config.reliability_parameter)
                    .unwrap();
                self.channels.insert(id, channel);
            }
            self.flush(id);
        }
    }
}

impl Peer for RtcPeer {
    fn receive(&mut self, now: Instant, packet: &[u8]) {
        self.now = now;
        match self
            .endpoint
            .handle(now, remote(), None, Bytes::copy_from_slice(packet))
        {
            Some((handle, DatagramEvent::NewAssociation(a))) if self.association.is_none() => {
                self.association = Some((handle, a));
            }
            Some((_, DatagramEvent::AssociationEvent(e))) => {
                if let Some((_, a)) = self.association.as_mut() {
                    a.handle_event(e);
                }
            }
            _ => {}
        }
        self.process();
    }

    fn transmit(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            self.process();
            if let Some((_, a)) = self.association.as_mut() {
                if let Some(t) = a.poll_transmit(self.now) {
                    if let Payload::RawEncode(packets) = t.message {
                        self.out.extend(packets);
                    }
                }
            }
        }
        self.out.pop_front()
    }

    fn timeout(&self) -> Option<Instant> {
        self.association
            .as_ref()
            .and_then(|(_, a)| a.poll_timeout())
    }

    fn on_timeout(&mut self, now: Instant) {
        self.now = now;
        if let Some((_, a)) = self.association.as_mut() {
            a.handle_timeout(now);
        }
        self.process();
    }
}

fn drain(ours: &mut SctpAssociation, into: &mut Vec<Event>) {
    while let Some(e) = ours.poll_event() {
        into.push(e);
    }
}

fn opened(events: &[Event]) -> Vec<ChannelId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ChannelOpen { channel } => Some(*channel),
            _ => None,
        })
        .collect()
}

fn messages(events: &[Event], on: ChannelId) -> Vec<(MessageKind, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message {
                channel,
                kind,
                data,
            } if *channel == on => Some((*kind, data.to_vec())),
            _ => None,
        })
        .collect()
}

/// Runs the exchange with tympan as `our_role` and the rtc peer in the other role.
fn exchange(our_role: Role, loss: f64, seed: u64) {
    let start = Instant::now();
    let ours = SctpAssociation::new(our_role, SctpConfig::default(), start).unwrap();
    let theirs = RtcPeer::new(our_role == Role::Server, start);
    let mut sim = Sim::new(ours, theirs, start, loss, Duration::from_millis(40), seed);
    let mut events = Vec::new();

    // 1. tympan opens (DCEP OPEN from us, ACK from rtc-datachannel).
    let ours_config = ChannelConfig {
        protocol: "json".into(),
        priority: 512,
        ..ChannelConfig::new("from-tympan")
    };
    let ch = sim.a.open(ours_config).unwrap();
    assert!(
        sim.run_until(Duration::from_secs(60), |s| {
            drain(&mut s.a, &mut events);
            opened(&events).contains(&ch)
                && s.b
                    .channels
                    .get(&ch.stream_id())
                    .is_some_and(|c| c.is_handshake_complete())
        }),
        "our DCEP open did not complete with rtc-datachannel"
    );
    let seen_by_rtc = sim.b.channels[&ch.stream_id()].config().clone();
    assert_eq!(seen_by_rtc.label, "from-tympan");
    assert_eq!(seen_by_rtc.protocol, "json");
    assert_eq!(seen_by_rtc.priority, 512);
    assert_eq!(seen_by_rtc.channel_type, ChannelType::Reliable);

    // 2. rtc opens on the stream parity of its DTLS role (DCEP OPEN from rtc-datachannel).
    let theirs_id = match our_role {
        Role::Client => 1,
        Role::Server => 0,
    };
    sim.b.dial(
        theirs_id,
        "from-rtc",
        ChannelType::PartialReliableRexmitUnordered,
        3,
    );
    let theirs_ch = loop {
        assert!(sim.step(Duration::from_millis(100)));
        drain(&mut sim.a, &mut events);
        if let Some(c) = opened(&events)
            .into_iter()
            .find(|c| c.stream_id() == theirs_id)
        {
            break c;
        }
        assert!(sim.elapsed() < Duration::from_secs(60), "rtc open not seen");
    };
    let info = sim.a.channel(theirs_ch).unwrap().clone();
    assert_eq!(info.label, "from-rtc");
    assert_eq!(info.protocol, "proto");
    assert!(!info.ordered);
    assert_eq!(info.reliability, Reliability::MaxRetransmits(3));
    assert!(sim.run_until(Duration::from_secs(30), |s| {
        s.b.channels[&theirs_id].is_handshake_complete()
    }));

    // 3. Messages both ways on both channels, including empty ones and a large one.
    let big: Vec<u8> = (0..60_000u32).map(|i| (i * 7) as u8).collect();
    let ours_out: Vec<(MessageKind, Vec<u8>)> = vec![
        (MessageKind::Text, b"hello rtc".to_vec()),
        (MessageKind::Binary, vec![1, 2, 3]),
        (MessageKind::Text, vec![]),
        (MessageKind::Binary, vec![]),
        (MessageKind::Binary, big.clone()),
    ];
    for (kind, data) in &ours_out {
        sim.a.send(ch, *kind, data).unwrap();
        sim.a.send(theirs_ch, *kind, data).unwrap();
    }
    let rtc_out: Vec<(bool, Vec<u8>)> = vec![
        (true, b"hello tympan".to_vec()),
        (false, vec![9, 8, 7]),
        (true, vec![]),
        (false, vec![]),
        (false, big.clone()),
    ];
    for (text, data) in &rtc_out {
        sim.b.send(ch.stream_id(), *text, data);
        sim.b.send(theirs_id, *text, data);
    }
    assert!(
        sim.run_until(Duration::from_secs(300), |s| {
            drain(&mut s.a, &mut events);
            messages(&events, ch).len() == rtc_out.len()
                && messages(&events, theirs_ch).len() == rtc_out.len()
                && s.b.received.len() == 2 * ours_out.len()
        }),
        "messages not all delivered: tympan got {}+{}, rtc got {}",
        messages(&events, ch).len(),
        messages(&events, theirs_ch).len(),
        sim.b.received.len()
    );

    // rtc -> tympan: kinds from PPIDs 51/53/56/57, empty messages empty.
    let want: Vec<(MessageKind, Vec<u8>)> = rtc_out
        .iter()
        .map(|(text, d)| {
            let kind = if *text {
                MessageKind::Text
            } else {
                MessageKind::Binary
            };
            (kind, d.clone())
        })
        .collect();
    assert_eq!(messages(&events, ch), want, "ordered channel: exact order");
    let mut got_unordered = messages(&events, theirs_ch);
    let mut want_sorted = want.clone();
    got_unordered.sort();
    want_sorted.sort();
    assert_eq!(got_unordered, want_sorted);

    // tympan -> rtc: PPIDs as RFC 8831 section 6.6 says; empty = one byte with PPID 56/57.
    let on_ordered: Vec<_> = sim
        .b
        .received
        .iter()
        .filter(|(id, _, _)| *id == ch.stream_id())
        .map(|(_, ppi, d)| (*ppi, d.clone()))
        .collect();
    assert_eq!(
        on_ordered,
        vec![
            (RtcPpi::String, b"hello rtc".to_vec()),
            (RtcPpi::Binary, vec![1, 2, 3]),
            (RtcPpi::StringEmpty, vec![0]),
            (RtcPpi::BinaryEmpty, vec![0]),
            (RtcPpi::Binary, big),
        ]
    );
}

#[test]
fn tympan_client_with_rtc_server() {
    exchange(Role::Client, 0.0, 21);
}

#[test]
fn tympan_server_with_rtc_client() {
    exchange(Role::Server, 0.0, 22);
}

#[test]
fn tympan_client_with_rtc_server_under_loss() {
    exchange(Role::Client, 0.05, 23);
}

#[test]
fn tympan_server_with_rtc_client_under_loss() {
    exchange(Role::Server, 0.05, 24);
}
