//! Property tests: anything the builder writes parses back to the same attributes and
//! verifies; arbitrary bytes never panic the decoder.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use tympan_ice::stun::{Attribute, Class, MessageBuilder, Method, StunMessage, TransactionId};

#[derive(Debug, Clone)]
enum Op {
    Username(String),
    Realm(String),
    Nonce(String),
    Software(String),
    XorMapped(SocketAddr),
    Mapped(SocketAddr),
    XorPeer(SocketAddr),
    XorRelayed(SocketAddr),
    Priority(u32),
    UseCandidate,
    Controlling(u64),
    Controlled(u64),
    ErrorCode(u16, String),
    Lifetime(u32),
    Channel(u16),
    Data(Vec<u8>),
    Transport(u8),
    DontFragment,
    Token(u64),
    EvenPort(bool),
    Optional(u16, Vec<u8>),
}

fn addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, p)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), p)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, p)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), p)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        "[a-zA-Z0-9:+/]{0,60}".prop_map(Op::Username),
        "\\PC{0,20}".prop_map(Op::Realm),
        "[a-z0-9]{0,40}".prop_map(Op::Nonce),
        "\\PC{0,30}".prop_map(Op::Software),
        addr().prop_map(Op::XorMapped),
        addr().prop_map(Op::Mapped),
        addr().prop_map(Op::XorPeer),
        addr().prop_map(Op::XorRelayed),
        any::<u32>().prop_map(Op::Priority),
        Just(Op::UseCandidate),
        any::<u64>().prop_map(Op::Controlling),
        any::<u64>().prop_map(Op::Controlled),
        (300u16..700, "[ -~]{0,30}").prop_map(|(c, r)| Op::ErrorCode(c, r)),
        any::<u32>().prop_map(Op::Lifetime),
        (0x4000u16..0x5000).prop_map(Op::Channel),
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(Op::Data),
        any::<u8>().prop_map(Op::Transport),
        Just(Op::DontFragment),
        any::<u64>().prop_map(Op::Token),
        any::<bool>().prop_map(Op::EvenPort),
        (
            0xC000u16..0xFFFF,
            proptest::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(t, v)| Op::Optional(t, v)),
    ]
}

fn expected(op: &Op) -> Attribute<'_> {
    match op {
        Op::Username(s) => Attribute::Username(s),
        Op::Realm(s) => Attribute::Realm(s),
        Op::Nonce(s) => Attribute::Nonce(s),
        Op::Software(s) => Attribute::Software(s),
        Op::XorMapped(a) => Attribute::XorMappedAddress(*a),
        Op::Mapped(a) => Attribute::MappedAddress(*a),
        Op::XorPeer(a) => Attribute::XorPeerAddress(*a),
        Op::XorRelayed(a) => Attribute::XorRelayedAddress(*a),
        Op::Priority(p) => Attribute::Priority(*p),
        Op::UseCandidate => Attribute::UseCandidate,
        Op::Controlling(t) => Attribute::IceControlling(*t),
        Op::Controlled(t) => Attribute::IceControlled(*t),
        Op::ErrorCode(c, r) => Attribute::ErrorCode {
            code: *c,
            reason: r,
        },
        Op::Lifetime(l) => Attribute::Lifetime(*l),
        Op::Channel(c) => Attribute::ChannelNumber(*c),
        Op::Data(d) => Attribute::Data(d),
        Op::Transport(t) => Attribute::RequestedTransport(*t),
        Op::DontFragment => Attribute::DontFragment,
        Op::Token(t) => Attribute::ReservationToken(*t),
        Op::EvenPort(r) => Attribute::EvenPort(*r),
        Op::Optional(t, v) => Attribute::Unknown {
            attr_type: *t,
            value: v,
        },
    }
}

fn apply(b: &mut MessageBuilder<'_>, op: &Op) {
    match op {
        Op::Username(s) => b.username(s),
        Op::Realm(s) => b.realm(s),
        Op::Nonce(s) => b.nonce(s),
        Op::Software(s) => b.software(s),
        Op::XorMapped(a) => b.xor_mapped_address(*a),
        Op::Mapped(a) => b.mapped_address(*a),
        Op::XorPeer(a) => b.xor_peer_address(*a),
        Op::XorRelayed(a) => b.xor_relayed_address(*a),
        Op::Priority(p) => b.priority(*p),
        Op::UseCandidate => b.use_candidate(),
        Op::Controlling(t) => b.ice_controlling(*t),
        Op::Controlled(t) => b.ice_controlled(*t),
        Op::ErrorCode(c, r) => b.error_code(*c, r),
        Op::Lifetime(l) => b.lifetime(*l),
        Op::Channel(c) => b.channel_number(*c),
        Op::Data(d) => b.data(d),
        Op::Transport(t) => b.requested_transport(*t),
        Op::DontFragment => b.dont_fragment(),
        Op::Token(t) => b.reservation_token(*t),
        Op::EvenPort(r) => b.even_port(*r),
        Op::Optional(t, v) => b.raw(*t, v),
    };
}

proptest! {
    #[test]
    fn build_parse_round_trip(
        ops in proptest::collection::vec(op(), 0..12),
        tid in any::<[u8; 12]>(),
        class in 0u8..4,
        key in proptest::collection::vec(any::<u8>(), 1..40),
        sha256 in any::<bool>(),
    ) {
        let class = [Class::Request, Class::Indication, Class::Success, Class::Error][class as usize];
        let mut buf = vec![0u8; 4096];
        let mut b = MessageBuilder::new(&mut buf, Method::ALLOCATE, class, TransactionId(tid));
        for o in &ops {
            apply(&mut b, o);
        }
        b.message_integrity(&key);
        if sha256 {
            b.message_integrity_sha256(&key);
        }
        b.fingerprint();
        let bytes = b.finish().unwrap().to_vec();

        let m = StunMessage::parse(&bytes).unwrap();
        prop_assert_eq!(m.class(), class);
        prop_assert_eq!(m.method(), Method::ALLOCATE);
        prop_assert_eq!(m.transaction_id(), TransactionId(tid));
        let got: Vec<Attribute<'_>> = m
            .typed_attributes()
            .filter(|a| !matches!(a, Attribute::MessageIntegrity(_) | Attribute::MessageIntegritySha256(_) | Attribute::Fingerprint(_)))
            .collect();
        let want: Vec<Attribute<'_>> = ops.iter().map(expected).collect();
        prop_assert_eq!(got, want);
        prop_assert!(m.verify_integrity(&key).is_ok());
        if sha256 {
            prop_assert!(m.verify_integrity_sha256(&key).is_ok());
        }
        prop_assert!(m.verify_fingerprint().is_ok());
        prop_assert_eq!(m.unknown_comprehension_required(), None);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = tympan_ice::stun::fuzz_decode(&data);
    }

    #[test]
    fn mutated_valid_message_never_panics(pos in 0usize..108, byte in any::<u8>()) {
        let mut bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/testdata/fuzz-seeds/stun/5.stun")).unwrap();
        let p = pos % bytes.len();
        bytes[p] = byte;
        let _ = tympan_ice::stun::fuzz_decode(&bytes);
    }
}
