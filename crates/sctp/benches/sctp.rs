//! One-association bulk transfer in memory (no loss, no delay), reliable ordered, 1 KiB and
//! 64 KiB messages: tympan-sctp next to a raw `sctp-proto` pair and an `rtc-sctp` pair.
//! Throughput is payload bytes delivered to the receiving application.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::collections::VecDeque;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tympan_sctp::{
    ChannelConfig, ChannelId, Event, MessageKind, Role, SctpAssociation, SctpConfig,
};

/// Bytes moved per measured iteration.
const BATCH: usize = 4 * 1024 * 1024;
/// Keep at most this much queued on the sender.
const WINDOW: usize = 1024 * 1024;
/// Payload per SCTP packet (1160-byte packets, as tympan's default).
const MAX_PAYLOAD: u32 = 1160 - 28;

/// A sender/receiver pair that moves `BATCH` bytes in `size`-byte messages.
trait BulkPair {
    fn transfer(&mut self, size: usize, message: &[u8]) -> usize;
}

// ---------------------------------------------------------------------------------------------
// tympan-sctp

struct Tympan {
    a: SctpAssociation,
    b: SctpAssociation,
    channel: ChannelId,
    now: Instant,
}

impl Tympan {
    fn new() -> Self {
        let mut now = Instant::now();
        let config = SctpConfig {
            remote_max_message_size: 0,
            ..SctpConfig::default()
        };
        let mut a = SctpAssociation::new(Role::Client, config.clone(), now).unwrap();
        let mut b = SctpAssociation::new(Role::Server, config, now).unwrap();
        let channel = a.open(ChannelConfig::new("bulk")).unwrap();
        let mut open = false;
        for _ in 0..100 {
            pump_tympan(&mut a, &mut b, now);
            while let Some(e) = b.poll_event() {
                open |= matches!(e, Event::ChannelOpen { .. });
            }
            while a.poll_event().is_some() {}
            now += Duration::from_millis(1);
            if open {
                break;
            }
        }
        assert!(open);
        Tympan { a, b, channel, now }
    }
}

fn pump_tympan(a: &mut SctpAssociation, b: &mut SctpAssociation, now: Instant) -> bool {
    let mut moved = false;
    while let Some(p) = a.poll_transmit() {
        b.handle_dtls_data(now, &p);
        moved = true;
    }
    while let Some(p) = b.poll_transmit() {
        a.handle_dtls_data(now, &p);
        moved = true;
    }
    moved
}

/// Advances simulated time: a little when packets moved, else straight to the next timer
/// (a delayed SACK), so no pair spins through idle simulated time.
fn advance(now: &mut Instant, moved: bool, timeouts: [Option<Instant>; 2]) {
    let next = timeouts.into_iter().flatten().min();
    *now = match (moved, next) {
        (false, Some(t)) if t > *now => t,
        _ => *now + Duration::from_micros(10),
    };
}

impl BulkPair for Tympan {
    fn transfer(&mut self, size: usize, message: &[u8]) -> usize {
        let count = BATCH / size;
        let (mut sent, mut received) = (0, 0);
        while received < count {
            while sent < count && self.a.buffered_amount(self.channel).unwrap() < WINDOW {
                self.a
                    .send(self.channel, MessageKind::Binary, &message[..size])
                    .unwrap();
                sent += 1;
            }
            let moved = pump_tympan(&mut self.a, &mut self.b, self.now);
            while let Some(e) = self.b.poll_event() {
                if let Event::Message { data, .. } = e {
                    black_box(&data);
                    received += 1;
                }
            }
            while self.a.poll_event().is_some() {}
            advance(
                &mut self.now,
                moved,
                [self.a.poll_timeout(), self.b.poll_timeout()],
            );
            if self.a.poll_timeout().is_some_and(|t| t <= self.now) {
                self.a.handle_timeout(self.now);
            }
            if self.b.poll_timeout().is_some_and(|t| t <= self.now) {
                self.b.handle_timeout(self.now);
            }
        }
        received * size
    }
}

// ---------------------------------------------------------------------------------------------
// raw sctp-proto

struct ProtoSide {
    endpoint: sctp_proto::Endpoint,
    association: Option<(sctp_proto::AssociationHandle, sctp_proto::Association)>,
    out: VecDeque<Bytes>,
}

fn addr() -> SocketAddr {
    "127.0.0.1:5000".parse().unwrap()
}

impl ProtoSide {
    fn new(client: bool) -> Self {
        let mut endpoint_config = sctp_proto::EndpointConfig::new();
        endpoint_config.max_payload_size(MAX_PAYLOAD);
        let transport = Arc::new(
            sctp_proto::TransportConfig::default()
                .with_max_send_message_size(u32::MAX)
                .with_max_receive_message_size(262_144),
        );
        let mut server_config = sctp_proto::ServerConfig::new();
        server_config.transport = transport.clone();
        let mut endpoint =
            sctp_proto::Endpoint::new(Arc::new(endpoint_config), Some(Arc::new(server_config)));
        let association = client.then(|| {
            let mut config = sctp_proto::ClientConfig::new();
            config.transport = transport;
            endpoint.connect(config, addr()).unwrap()
        });
        ProtoSide {
            endpoint,
            association,
            out: VecDeque::new(),
        }
    }

    fn transmit(&mut self, now: Instant) -> Option<Bytes> {
        if self.out.is_empty() {
            if let Some((_, a)) = self.association.as_mut() {
                if let Some(t) = a.poll_transmit(now) {
                    if let sctp_proto::Payload::RawEncode(v) = t.payload {
                        self.out.extend(v);
                    }
                }
            }
        }
        self.out.pop_front()
    }

    fn receive(&mut self, now: Instant, packet: &[u8]) {
        match self
            .endpoint
            .handle(now, addr(), None, None, Bytes::copy_from_slice(packet))
        {
            Some((h, sctp_proto::DatagramEvent::NewAssociation(a))) => {
                self.association = Some((h, a))
            }
            Some((_, sctp_proto::DatagramEvent::AssociationEvent(e))) => {
                if let Some((_, a)) = self.association.as_mut() {
                    a.handle_event(e);
                }
            }
            None => {}
        }
    }

    fn assoc(&mut self) -> &mut sctp_proto::Association {
        &mut self.association.as_mut().unwrap().1
    }

    /// Drains events; returns messages read.
    fn read(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        let a = self.assoc();
        while let Some(e) = a.poll() {
            if let sctp_proto::Event::Stream(sctp_proto::StreamEvent::Readable { id }) = e {
                let mut s = a.stream(id).unwrap();
                while let Ok(Some(chunks)) = s.read_sctp() {
                    black_box(chunks.read(buf).unwrap());
                    n += 1;
                }
            }
            if let sctp_proto::Event::Stream(sctp_proto::StreamEvent::Opened { .. }) = e {
                while a.accept_stream().is_some() {}
            }
        }
        n
    }
}

struct RawProto {
    a: ProtoSide,
    b: ProtoSide,
    now: Instant,
    buf: Vec<u8>,
}

impl RawProto {
    fn new() -> Self {
        let mut pair = RawProto {
            a: ProtoSide::new(true),
            b: ProtoSide::new(false),
            now: Instant::now(),
            buf: vec![0; 262_144],
        };
        for _ in 0..20 {
            let _ = pair.pump();
        }
        let a = pair.a.assoc();
        a.open_stream(0, sctp_proto::PayloadProtocolIdentifier::Binary)
            .unwrap();
        pair
    }

    fn pump(&mut self) -> bool {
        let mut moved = false;
        while let Some(p) = self.a.transmit(self.now) {
            self.b.receive(self.now, &p);
            moved = true;
        }
        while let Some(p) = self.b.transmit(self.now) {
            self.a.receive(self.now, &p);
            moved = true;
        }
        moved
    }
}

impl BulkPair for RawProto {
    fn transfer(&mut self, size: usize, message: &[u8]) -> usize {
        let count = BATCH / size;
        let (mut sent, mut received) = (0, 0);
        while received < count {
            {
                let mut s = self.a.assoc().stream(0).unwrap();
                while sent < count && s.buffered_amount().unwrap() < WINDOW {
                    s.write_with_ppi(
                        &message[..size],
                        sctp_proto::PayloadProtocolIdentifier::Binary,
                    )
                    .unwrap();
                    sent += 1;
                }
            }
            let moved = self.pump();
            received += self.b.read(&mut self.buf);
            let mut scratch = [0u8; 0];
            self.a.read(&mut scratch);
            let timeouts = [self.a.assoc().poll_timeout(), self.b.assoc().poll_timeout()];
            advance(&mut self.now, moved, timeouts);
            for side in [&mut self.a, &mut self.b] {
                let a = side.assoc();
                if a.poll_timeout().is_some_and(|t| t <= self.now) {
                    a.handle_timeout(self.now);
                }
            }
        }
        received * size
    }
}

// ---------------------------------------------------------------------------------------------
// rtc-sctp

struct RtcSide {
    endpoint: rtc_sctp::Endpoint,
    association: Option<(rtc_sctp::AssociationHandle, rtc_sctp::Association)>,
    out: VecDeque<Bytes>,
}

impl RtcSide {
    fn new(client: bool, now: Instant) -> Self {
        let transport = rtc_sctp::TransportConfig::default().with_max_message_size(262_144);
        let mut endpoint_config = rtc_sctp::EndpointConfig::default();
        endpoint_config.max_payload_size(MAX_PAYLOAD);
        let mut endpoint = rtc_sctp::Endpoint::new(
            addr(),
            Default::default(),
            Arc::new(endpoint_config),
            Some(Arc::new(rtc_sctp::ServerConfig::new(transport.clone()))),
        );
        let association = client.then(|| {
            endpoint
                .connect(now, rtc_sctp::ClientConfig::new(transport), addr())
                .unwrap()
        });
        RtcSide {
            endpoint,
            association,
            out: VecDeque::new(),
        }
    }

    fn transmit(&mut self, now: Instant) -> Option<Bytes> {
        if self.out.is_empty() {
            if let Some((_, a)) = self.association.as_mut() {
                if let Some(t) = a.poll_transmit(now) {
                    if let rtc_sctp::Payload::RawEncode(v) = t.message {
                        self.out.extend(v);
                    }
                }
            }
        }
        self.out.pop_front()
    }

    fn receive(&mut self, now: Instant, packet: &[u8]) {
        match self
            .endpoint
            .handle(now, addr(), None, Bytes::copy_from_slice(packet))
        {
            Some((h, rtc_sctp::DatagramEvent::NewAssociation(a))) => {
                self.association = Some((h, a))
            }
            Some((_, rtc_sctp::DatagramEvent::AssociationEvent(e))) => {
                if let Some((_, a)) = self.association.as_mut() {
                    a.handle_event(e);
                }
            }
            _ => {}
        }
    }

    fn assoc(&mut self) -> &mut rtc_sctp::Association {
        &mut self.association.as_mut().unwrap().1
    }

    fn read(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        let a = self.assoc();
        while let Some(e) = a.poll() {
            if let rtc_sctp::Event::Stream(rtc_sctp::StreamEvent::Readable { id }) = e {
                let mut s = a.stream(id).unwrap();
                while let Ok(Some(chunks)) = s.read_sctp() {
                    black_box(chunks.read(buf).unwrap());
                    n += 1;
                }
            }
            if let rtc_sctp::Event::Stream(rtc_sctp::StreamEvent::Opened { .. }) = e {
                while a.accept_stream().is_some() {}
            }
        }
        n
    }
}

struct RtcPair {
    a: RtcSide,
    b: RtcSide,
    now: Instant,
    buf: Vec<u8>,
}

impl RtcPair {
    fn new() -> Self {
        let now = Instant::now();
        let mut pair = RtcPair {
            a: RtcSide::new(true, now),
            b: RtcSide::new(false, now),
            now,
            buf: vec![0; 262_144],
        };
        for _ in 0..20 {
            let _ = pair.pump();
        }
        pair.a
            .assoc()
            .open_stream(0, rtc_sctp::PayloadProtocolIdentifier::Binary)
            .unwrap();
        pair
    }

    fn pump(&mut self) -> bool {
        let mut moved = false;
        while let Some(p) = self.a.transmit(self.now) {
            self.b.receive(self.now, &p);
            moved = true;
        }
        while let Some(p) = self.b.transmit(self.now) {
            self.a.receive(self.now, &p);
            moved = true;
        }
        moved
    }
}

impl BulkPair for RtcPair {
    fn transfer(&mut self, size: usize, message: &[u8]) -> usize {
        let count = BATCH / size;
        let (mut sent, mut received) = (0, 0);
        while received < count {
            {
                let now = self.now;
                let mut s = self.a.assoc().stream(0).unwrap();
                while sent < count && s.buffered_amount().unwrap() < WINDOW {
                    s.write_with_ppi(
                        now,
                        &message[..size],
                        rtc_sctp::PayloadProtocolIdentifier::Binary,
                    )
                    .unwrap();
                    sent += 1;
                }
            }
            let moved = self.pump();
            received += self.b.read(&mut self.buf);
            let mut scratch = [0u8; 0];
            self.a.read(&mut scratch);
            let timeouts = [self.a.assoc().poll_timeout(), self.b.assoc().poll_timeout()];
            advance(&mut self.now, moved, timeouts);
            for side in [&mut self.a, &mut self.b] {
                let a = side.assoc();
                if a.poll_timeout().is_some_and(|t| t <= self.now) {
                    a.handle_timeout(self.now);
                }
            }
        }
        received * size
    }
}

fn bulk(c: &mut Criterion) {
    let message: Vec<u8> = (0..65_536u32).map(|i| i as u8).collect();
    let mut group = c.benchmark_group("sctp_bulk");
    group.throughput(Throughput::Bytes(BATCH as u64));
    group.sample_size(10);
    for size in [1024usize, 65_536] {
        let label = if size == 1024 { "1KiB" } else { "64KiB" };
        let mut tympan = Tympan::new();
        group.bench_with_input(BenchmarkId::new("tympan", label), &size, |b, &size| {
            b.iter(|| assert_eq!(tympan.transfer(size, &message), BATCH / size * size))
        });
        let mut raw = RawProto::new();
        group.bench_with_input(BenchmarkId::new("sctp-proto", label), &size, |b, &size| {
            b.iter(|| assert_eq!(raw.transfer(size, &message), BATCH / size * size))
        });
        let mut rtc = RtcPair::new();
        group.bench_with_input(BenchmarkId::new("rtc-sctp", label), &size, |b, &size| {
            b.iter(|| assert_eq!(rtc.transfer(size, &message), BATCH / size * size))
        });
    }
    group.finish();
}

criterion_group!(benches, bulk);
criterion_main!(benches);
