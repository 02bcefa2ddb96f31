//! Two tympan-sctp endpoints in memory over a simulated lossy link with simulated time
//! (seeded loss, configurable RTT).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Sim, chunk_types, data_chunks};
use tympan_sctp::{
    ChannelConfig, ChannelId, CloseReason, Event, MessageKind, Reliability, Role, SctpAssociation,
    SctpConfig, SctpError,
};

type Pair = Sim<SctpAssociation, SctpAssociation>;

fn pair_with(client: SctpConfig, server: SctpConfig, loss: f64, rtt: Duration, seed: u64) -> Pair {
    let start = Instant::now();
    let a = SctpAssociation::new(Role::Client, client, start).unwrap();
    let b = SctpAssociation::new(Role::Server, server, start).unwrap();
    Sim::new(a, b, start, loss, rtt, seed)
}

fn pair(loss: f64, rtt: Duration, seed: u64) -> Pair {
    pair_with(
        SctpConfig::default(),
        SctpConfig::default(),
        loss,
        rtt,
        seed,
    )
}

/// Events collected from both sides.
#[derive(Default)]
struct Seen {
    a: Vec<Event>,
    b: Vec<Event>,
}

impl Seen {
    fn drain(&mut self, sim: &mut Pair) {
        while let Some(e) = sim.a.poll_event() {
            self.a.push(e);
        }
        while let Some(e) = sim.b.poll_event() {
            self.b.push(e);
        }
    }

    fn opened(events: &[Event]) -> BTreeSet<ChannelId> {
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

    fn closed(events: &[Event]) -> BTreeSet<ChannelId> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::ChannelClosed { channel } => Some(*channel),
                _ => None,
            })
            .collect()
    }
}

/// A message whose content encodes its index and size, so order and integrity are checkable.
fn message(index: usize, size: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(size);
    let mut x = index as u32 ^ 0x9e37_79b9;
    while m.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        m.push(x as u8);
    }
    if size >= 4 {
        m[..4].copy_from_slice(&(index as u32).to_be_bytes());
    }
    m
}

fn open_channel(sim: &mut Pair, seen: &mut Seen, config: ChannelConfig) -> ChannelId {
    let id = sim.a.open(config).unwrap();
    let ok = sim.run_until(Duration::from_secs(120), |s| {
        seen.drain(s);
        Seen::opened(&seen.a).contains(&id) && Seen::opened(&seen.b).contains(&id)
    });
    assert!(ok, "channel {id} did not open on both sides");
    id
}

/// Sends `sizes` on `channel` from a to b, pacing by buffered amount, and returns what b got.
fn transfer(
    sim: &mut Pair,
    seen: &mut Seen,
    channel: ChannelId,
    sizes: &[usize],
    limit: Duration,
    expect_all: bool,
) -> Vec<(MessageKind, Vec<u8>)> {
    let mut next = 0;
    let done = sim.run_until(limit, |s| {
        while next < sizes.len() && s.a.buffered_amount(channel).unwrap() < 256 * 1024 {
            let kind = if next % 3 == 0 {
                MessageKind::Text
            } else {
                MessageKind::Binary
            };
            s.a.send(channel, kind, &message(next, sizes[next]))
                .unwrap();
            next += 1;
        }
        seen.drain(s);
        next == sizes.len()
            && (!expect_all || Seen::messages(&seen.b, channel).len() == sizes.len())
            && s.a.buffered_amount(channel).unwrap() == 0
    });
    assert!(done, "transfer did not finish in {limit:?} ({next} sent)");
    Seen::messages(&seen.b, channel)
}

fn check_in_order(got: &[(MessageKind, Vec<u8>)], sizes: &[usize]) {
    assert_eq!(got.len(), sizes.len());
    for (i, ((kind, data), &size)) in got.iter().zip(sizes).enumerate() {
        assert_eq!(
            data,
            &message(i, size),
            "message {i} corrupted or out of order"
        );
        let want = if i % 3 == 0 {
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        assert_eq!(*kind, want, "message {i} kind");
    }
}

fn sizes(count: usize, max: usize, seed: usize) -> Vec<usize> {
    (0..count)
        .map(|i| match (i * 7919 + seed) % 10 {
            0 => 0,
            1 => max,
            2..=5 => (i * 131 + seed) % 2000,
            _ => (i * 104_729 + seed) % max,
        })
        .collect()
}

fn reliable_ordered(loss: f64, rtt_ms: u64, seed: u64) {
    let mut sim = pair(loss, Duration::from_millis(rtt_ms), seed);
    let mut seen = Seen::default();
    let ch = open_channel(&mut sim, &mut seen, ChannelConfig::new("bulk"));
    let sizes = sizes(120, 65_536, seed as usize);
    let got = transfer(
        &mut sim,
        &mut seen,
        ch,
        &sizes,
        Duration::from_secs(3600),
        true,
    );
    check_in_order(&got, &sizes);
    assert!(
        sim.max_packet <= SctpConfig::default().max_packet_size,
        "packet of {} bytes exceeds the MTU",
        sim.max_packet
    );
    if loss > 0.0 {
        assert!(
            sim.ab.dropped > 0 && sim.ba.dropped > 0,
            "the link lost nothing"
        );
    }
}

#[test]
fn reliable_ordered_no_loss_no_delay() {
    reliable_ordered(0.0, 0, 1);
}

#[test]
fn reliable_ordered_no_loss_50ms() {
    reliable_ordered(0.0, 50, 2);
}

#[test]
fn reliable_ordered_5_percent_loss_no_delay() {
    reliable_ordered(0.05, 0, 3);
}

#[test]
fn reliable_ordered_5_percent_loss_50ms() {
    reliable_ordered(0.05, 50, 4);
}

#[test]
fn reliable_ordered_20_percent_loss_no_delay() {
    reliable_ordered(0.20, 0, 5);
}

#[test]
fn reliable_ordered_20_percent_loss_50ms() {
    reliable_ordered(0.20, 50, 6);
}

#[test]
fn channel_parameters_travel_in_dcep() {
    let mut sim = pair(0.0, Duration::from_millis(50), 7);
    let mut seen = Seen::default();
    let config = ChannelConfig {
        label: "ünïcode label".into(),
        protocol: "chat.v1".into(),
        ordered: false,
        reliability: Reliability::MaxLifetimeMs(1500),
        priority: 512,
        negotiated: None,
    };
    let ch = open_channel(&mut sim, &mut seen, config.clone());
    assert_eq!(ch.stream_id(), 0, "client opens on even ids, starting at 0");
    assert_eq!(sim.b.channel(ch), Some(&config));
    // The server side opens on odd ids.
    let back = sim.b.open(ChannelConfig::new("back")).unwrap();
    assert_eq!(back.stream_id(), 1);
    assert!(sim.run_until(Duration::from_secs(10), |s| {
        seen.drain(s);
        Seen::opened(&seen.a).contains(&back)
    }));
    assert_eq!(sim.a.channel(back).unwrap().label, "back");
}

#[test]
fn unordered_channel_sets_u_bit_and_delivers_everything() {
    let mut sim = pair(0.20, Duration::from_millis(50), 8);
    sim.ab.record = true;
    let mut seen = Seen::default();
    let config = ChannelConfig {
        ordered: false,
        ..ChannelConfig::new("unordered")
    };
    let ch = open_channel(&mut sim, &mut seen, config);
    let sizes = vec![300; 300];
    let got = transfer(
        &mut sim,
        &mut seen,
        ch,
        &sizes,
        Duration::from_secs(3600),
        true,
    );
    let want: BTreeSet<Vec<u8>> = (0..sizes.len()).map(|i| message(i, 300)).collect();
    let got_set: BTreeSet<Vec<u8>> = got.iter().map(|(_, d)| d.clone()).collect();
    assert_eq!(got_set, want, "reliable unordered loses nothing");
    // User messages (PPID 51/53) after the ACK are sent with the U bit; the DCEP OPEN is not.
    let chunks: Vec<_> = sim.ab.wire.iter().flat_map(|p| data_chunks(p)).collect();
    assert!(
        chunks
            .iter()
            .any(|&(flags, sid, ppid, _)| sid == ch.stream_id() && ppid == 53 && flags & 4 != 0),
        "no unordered DATA chunk seen"
    );
    assert!(
        chunks
            .iter()
            .all(|&(flags, _, ppid, _)| ppid != 50 || flags & 4 == 0),
        "DCEP must be ordered"
    );
    let reordered = got.windows(2).filter(|w| w[0].1[..4] > w[1].1[..4]).count();
    assert!(
        reordered > 0,
        "20 % loss should reorder an unordered channel"
    );
}

#[test]
fn max_retransmits_zero_abandons_under_loss() {
    let mut sim = pair(0.20, Duration::from_millis(50), 9);
    sim.ab.record = true;
    let mut seen = Seen::default();
    let config = ChannelConfig {
        reliability: Reliability::MaxRetransmits(0),
        ..ChannelConfig::new("lossy")
    };
    let ch = open_channel(&mut sim, &mut seen, config);
    let sizes = vec![200; 400];
    let got = transfer(
        &mut sim,
        &mut seen,
        ch,
        &sizes,
        Duration::from_secs(3600),
        false,
    );
    // Let the last FORWARD-TSNs land.
    sim.run_until(Duration::from_secs(5), |_| false);
    seen.drain(&mut sim);
    let got = if got.len() < Seen::messages(&seen.b, ch).len() {
        Seen::messages(&seen.b, ch)
    } else {
        got
    };
    assert!(got.len() < sizes.len(), "nothing was abandoned");
    assert!(got.len() > sizes.len() / 2, "too much lost: {}", got.len());
    // Ordered: what arrives arrives in order.
    let indices: Vec<u32> = got
        .iter()
        .map(|(_, d)| u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
        .collect();
    assert!(indices.windows(2).all(|w| w[0] < w[1]), "out of order");
    let forward_tsn = sim.ab.wire.iter().any(|p| chunk_types(p).contains(&192));
    assert!(
        forward_tsn,
        "PR-SCTP must announce abandoned data with FORWARD-TSN"
    );
}

#[test]
fn max_retransmits_zero_without_loss_delivers_all() {
    let mut sim = pair(0.0, Duration::from_millis(50), 10);
    let mut seen = Seen::default();
    let config = ChannelConfig {
        reliability: Reliability::MaxRetransmits(0),
        ..ChannelConfig::new("lossy")
    };
    let ch = open_channel(&mut sim, &mut seen, config);
    let sizes = vec![500; 100];
    let got = transfer(
        &mut sim,
        &mut seen,
        ch,
        &sizes,
        Duration::from_secs(60),
        true,
    );
    check_in_order(&got, &sizes);
}

#[test]
fn max_lifetime_abandons_under_loss() {
    let mut sim = pair(0.20, Duration::from_millis(50), 11);
    let mut seen = Seen::default();
    let config = ChannelConfig {
        ordered: false,
        reliability: Reliability::MaxLifetimeMs(10),
        ..ChannelConfig::new("timed")
    };
    let ch = open_channel(&mut sim, &mut seen, config);
    let sizes = vec![200; 400];
    transfer(
        &mut sim,
        &mut seen,
        ch,
        &sizes,
        Duration::from_secs(3600),
        false,
    );
    sim.run_until(Duration::from_secs(5), |_| false);
    seen.drain(&mut sim);
    let got = Seen::messages(&seen.b, ch);
    assert!(got.len() < sizes.len(), "nothing expired");
    assert!(!got.is_empty());
    let unique: BTreeSet<_> = got.iter().map(|(_, d)| d.clone()).collect();
    assert_eq!(unique.len(), got.len(), "duplicates delivered");
}

#[test]
fn message_sizes_from_empty_to_max_message_size() {
    let mut sim = pair(0.05, Duration::from_millis(50), 12);
    sim.ab.record = true;
    let mut seen = Seen::default();
    let ch = open_channel(&mut sim, &mut seen, ChannelConfig::new("sizes"));
    let max = SctpConfig::default().remote_max_message_size as usize;
    let payload = 1160 - 28;
    let sizes = vec![
        0,
        0,
        1,
        2,
        3,
        4,
        payload - 1,
        payload,
        payload + 1,
        2 * payload,
        max - 1,
        max,
        0,
    ];
    let got = transfer(
        &mut sim,
        &mut seen,
        ch,
        &sizes,
        Duration::from_secs(600),
        true,
    );
    check_in_order(&got, &sizes);
    // Empty messages travel as one zero byte with PPID 56 (text) or 57 (binary).
    let chunks: Vec<_> = sim.ab.wire.iter().flat_map(|p| data_chunks(p)).collect();
    assert!(
        chunks
            .iter()
            .any(|&(_, _, ppid, len)| ppid == 56 && len == 1)
    );
    assert!(
        chunks
            .iter()
            .any(|&(_, _, ppid, len)| ppid == 57 && len == 1)
    );
    assert!(chunks.iter().any(|&(_, _, ppid, _)| ppid == 51));
    // One byte more than the peer's max-message-size is refused with a clear error.
    let err = sim.a.send(ch, MessageKind::Binary, &vec![0; max + 1]);
    assert_eq!(
        err,
        Err(SctpError::MessageTooLarge {
            message_size: max + 1,
            max: max as u32
        })
    );
    assert!(err.unwrap_err().to_string().contains("max-message-size"));
}

#[test]
fn oversized_message_from_peer_is_refused_on_receive() {
    // The sender ignores the limit (remote_max_message_size 0 = unlimited); the receiver
    // advertises 4096.
    let client = SctpConfig {
        remote_max_message_size: 0,
        ..SctpConfig::default()
    };
    let server = SctpConfig {
        local_max_message_size: 4096,
        ..SctpConfig::default()
    };
    let mut sim = pair_with(client, server, 0.0, Duration::from_millis(10), 13);
    let mut seen = Seen::default();
    let ch = open_channel(&mut sim, &mut seen, ChannelConfig::new("big"));
    sim.a.send(ch, MessageKind::Binary, &[1; 4096]).unwrap();
    sim.a.send(ch, MessageKind::Binary, &[2; 4097]).unwrap();
    sim.run_until(Duration::from_secs(5), |s| {
        seen.drain(s);
        s.b.is_closed()
    });
    let msgs = Seen::messages(&seen.b, ch);
    assert_eq!(msgs.len(), 1, "the 4096-byte message is delivered");
    assert!(
        seen.b.iter().any(|e| matches!(
            e,
            Event::Closed {
                reason: CloseReason::Lost(_)
            }
        )),
        "the oversized message must end the association: {:?}",
        seen.b
    );
}

#[test]
fn many_channels_at_once_both_directions() {
    let mut sim = pair(0.05, Duration::from_millis(50), 14);
    let mut seen = Seen::default();
    let mut from_a = Vec::new();
    let mut from_b = Vec::new();
    // Open before the association exists: DCEP runs once it is up.
    for i in 0..60 {
        from_a.push(sim.a.open(ChannelConfig::new(format!("a{i}"))).unwrap());
    }
    assert!(sim.run_until(Duration::from_secs(60), |s| s.b.is_connected()));
    for i in 0..60 {
        from_b.push(sim.b.open(ChannelConfig::new(format!("b{i}"))).unwrap());
    }
    assert!(from_a.iter().all(|c| c.stream_id() % 2 == 0));
    assert!(from_b.iter().all(|c| c.stream_id() % 2 == 1));
    assert!(sim.run_until(Duration::from_secs(120), |s| {
        seen.drain(s);
        Seen::opened(&seen.a).len() == 120 && Seen::opened(&seen.b).len() == 120
    }));
    for (i, &ch) in from_a.iter().enumerate() {
        sim.a
            .send_text(ch, &format!("hello from a on {i}"))
            .unwrap();
    }
    for (i, &ch) in from_b.iter().enumerate() {
        sim.b
            .send_text(ch, &format!("hello from b on {i}"))
            .unwrap();
        sim.a
            .send_binary(ch, format!("reply from a on {i}").as_bytes())
            .unwrap();
    }
    assert!(sim.run_until(Duration::from_secs(300), |s| {
        seen.drain(s);
        from_a
            .iter()
            .all(|&c| Seen::messages(&seen.b, c).len() == 1)
            && from_b
                .iter()
                .all(|&c| Seen::messages(&seen.a, c).len() == 1)
            && from_b
                .iter()
                .all(|&c| Seen::messages(&seen.b, c).len() == 1)
    }));
    for (i, &ch) in from_a.iter().enumerate() {
        assert_eq!(sim.b.channel(ch).unwrap().label, format!("a{i}"));
        assert_eq!(
            Seen::messages(&seen.b, ch),
            vec![(
                MessageKind::Text,
                format!("hello from a on {i}").into_bytes()
            )]
        );
    }
    for (i, &ch) in from_b.iter().enumerate() {
        assert_eq!(
            Seen::messages(&seen.b, ch),
            vec![(
                MessageKind::Binary,
                format!("reply from a on {i}").into_bytes()
            )]
        );
    }
}

#[test]
fn close_and_reopen() {
    let mut sim = pair(0.05, Duration::from_millis(50), 15);
    let mut seen = Seen::default();
    let first = open_channel(&mut sim, &mut seen, ChannelConfig::new("first"));
    sim.a.send_text(first, "before close").unwrap();
    sim.a.close(first).unwrap();
    assert_eq!(
        sim.a.send_text(first, "after close"),
        Err(SctpError::ChannelClosing(first))
    );
    assert!(sim.run_until(Duration::from_secs(60), |s| {
        seen.drain(s);
        Seen::closed(&seen.a).contains(&first) && Seen::closed(&seen.b).contains(&first)
    }));
    // What was sent before the close still arrived.
    assert_eq!(
        Seen::messages(&seen.b, first),
        vec![(MessageKind::Text, b"before close".to_vec())]
    );
    assert!(sim.a.channel(first).is_none() && sim.b.channel(first).is_none());
    // Let the reset handshake finish, then the same id is handed out again.
    sim.run_until(Duration::from_secs(10), |_| false);
    seen = Seen::default();
    let second = open_channel(&mut sim, &mut seen, ChannelConfig::new("second"));
    assert_eq!(second, first, "the id is reused after the reset completed");
    assert_eq!(sim.b.channel(second).unwrap().label, "second");
    sim.b.send_text(second, "after reopen").unwrap();
    assert!(sim.run_until(Duration::from_secs(60), |s| {
        seen.drain(s);
        !Seen::messages(&seen.a, second).is_empty()
    }));
    assert_eq!(
        Seen::messages(&seen.a, second),
        vec![(MessageKind::Text, b"after reopen".to_vec())]
    );
    // The peer can close too.
    sim.b.close(second).unwrap();
    assert!(sim.run_until(Duration::from_secs(60), |s| {
        seen.drain(s);
        Seen::closed(&seen.a).contains(&second)
    }));
}

#[test]
fn pre_negotiated_channel_with_fixed_id() {
    let mut sim = pair(0.05, Duration::from_millis(50), 16);
    sim.ab.record = true;
    let mut seen = Seen::default();
    let config = ChannelConfig {
        negotiated: Some(7),
        ..ChannelConfig::new("negotiated")
    };
    let a = sim.a.open(config.clone()).unwrap();
    let b = sim.b.open(config.clone()).unwrap();
    assert_eq!((a.stream_id(), b.stream_id()), (7, 7));
    assert_eq!(
        sim.a.open(config),
        Err(SctpError::StreamIdInUse(7)),
        "a fixed id cannot be used twice"
    );
    assert!(sim.run_until(Duration::from_secs(60), |s| {
        seen.drain(s);
        Seen::opened(&seen.a).contains(&a) && Seen::opened(&seen.b).contains(&b)
    }));
    sim.a.send_text(a, "ping").unwrap();
    sim.b.send_text(b, "pong").unwrap();
    assert!(sim.run_until(Duration::from_secs(60), |s| {
        seen.drain(s);
        !Seen::messages(&seen.a, a).is_empty() && !Seen::messages(&seen.b, b).is_empty()
    }));
    assert_eq!(Seen::messages(&seen.b, b)[0].1, b"ping");
    assert_eq!(Seen::messages(&seen.a, a)[0].1, b"pong");
    let dcep = sim
        .ab
        .wire
        .iter()
        .flat_map(|p| data_chunks(p))
        .any(|(_, _, ppid, _)| ppid == 50);
    assert!(!dcep, "a pre-negotiated channel sends no DCEP");
}

#[test]
fn buffered_amount_and_low_threshold() {
    let mut sim = pair(0.0, Duration::from_millis(50), 17);
    let mut seen = Seen::default();
    let ch = open_channel(&mut sim, &mut seen, ChannelConfig::new("buffered"));
    sim.a.set_buffered_amount_low_threshold(ch, 40_000).unwrap();
    // The DCEP OPEN may still be unacknowledged; it counts like any other data in sctp-proto.
    let before = sim.a.buffered_amount(ch).unwrap();
    for i in 0..10 {
        sim.a.send_binary(ch, &message(i, 10_000)).unwrap();
    }
    assert_eq!(sim.a.buffered_amount(ch).unwrap(), before + 100_000);
    let mut low_at = None;
    assert!(sim.run_until(Duration::from_secs(30), |s| {
        let amount = s.a.buffered_amount(ch).unwrap();
        while let Some(e) = s.a.poll_event() {
            if e == (Event::BufferedAmountLow { channel: ch }) && low_at.is_none() {
                low_at = Some(amount);
            }
        }
        s.a.buffered_amount(ch).unwrap() == 0
    }));
    let low_at = low_at.expect("BufferedAmountLow fired");
    assert!(low_at <= 40_000, "fired at {low_at}");
}

#[test]
fn errors_are_typed() {
    let start = Instant::now();
    let mut a = SctpAssociation::new(Role::Client, SctpConfig::default(), start).unwrap();
    let ch = a.open(ChannelConfig::new("x")).unwrap();
    assert_eq!(a.send_text(ch, "too early"), Err(SctpError::NotConnected));
    let bogus = a
        .open(ChannelConfig {
            negotiated: Some(65535),
            ..ChannelConfig::new("bad")
        })
        .unwrap_err();
    assert_eq!(bogus, SctpError::ReservedStreamId);
    assert!(matches!(
        SctpAssociation::new(
            Role::Server,
            SctpConfig {
                max_packet_size: 100,
                ..SctpConfig::default()
            },
            start
        ),
        Err(SctpError::PacketSizeTooSmall(100))
    ));
    // Garbage never panics and never produces events.
    a.handle_dtls_data(start, &[]);
    a.handle_dtls_data(start, &[0xff; 3]);
    a.handle_dtls_data(start, &[0u8; 64]);
    assert!(a.poll_event().is_none());
}

#[test]
fn small_mtu_is_respected() {
    let config = SctpConfig {
        max_packet_size: 600,
        ..SctpConfig::default()
    };
    let mut sim = pair_with(config.clone(), config, 0.05, Duration::from_millis(50), 18);
    let mut seen = Seen::default();
    let ch = open_channel(&mut sim, &mut seen, ChannelConfig::new("mtu"));
    let sizes = sizes(40, 20_000, 3);
    let got = transfer(
        &mut sim,
        &mut seen,
        ch,
        &sizes,
        Duration::from_secs(600),
        true,
    );
    check_in_order(&got, &sizes);
    assert!(sim.max_packet <= 600, "packet of {} bytes", sim.max_packet);
}

#[test]
fn tiny_message_bursts_stay_within_mtu() {
    // sctp-proto alone overshoots its MTU when bundling many small DATA chunks; the glue splits.
    let mut sim = pair(0.05, Duration::from_millis(50), 19);
    let mut seen = Seen::default();
    let ch = open_channel(&mut sim, &mut seen, ChannelConfig::new("tiny"));
    let sizes: Vec<usize> = (0..600).map(|i| 1 + i % 5).collect();
    let got = transfer(
        &mut sim,
        &mut seen,
        ch,
        &sizes,
        Duration::from_secs(600),
        true,
    );
    check_in_order(&got, &sizes);
    assert!(sim.max_packet <= 1160, "packet of {} bytes", sim.max_packet);
}
