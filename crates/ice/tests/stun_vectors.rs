//! STUN codec against RFC 5769 test vectors, real browser traffic (pion's corpus) and the
//! fuzz seed corpus.

use std::net::SocketAddr;

use tympan_ice::stun::{
    Attribute, Class, IntegrityError, MessageBuilder, Method, StunMessage, TransactionId,
    long_term_key,
};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/testdata");

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{TESTDATA}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn tid_of(b: &[u8]) -> TransactionId {
    let mut t = [0u8; 12];
    t.copy_from_slice(&b[8..20]);
    TransactionId(t)
}

/// RFC 5769 §2.1: the short-term password of the vectors.
const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

#[test]
fn rfc5769_request_decodes_verifies_and_reencodes() {
    let bytes = read("fuzz-seeds/stun/5.stun");
    let m = StunMessage::parse(&bytes).expect("parse");
    assert_eq!(m.class(), Class::Request);
    assert_eq!(m.method(), Method::BINDING);
    // Values stated in RFC 5769 §2.1.
    assert_eq!(m.software(), Some("STUN test client"));
    assert_eq!(m.priority(), Some(0x6e0001ff));
    assert_eq!(m.ice_controlled(), Some(0x932ff9b151263b36));
    assert_eq!(m.username(), Some("evtj:h6vY"));
    assert_eq!(m.verify_integrity(PASSWORD), Ok(()));
    assert_eq!(m.verify_fingerprint(), Ok(()));
    assert_eq!(m.verify_integrity(b"wrong"), Err(IntegrityError::Mismatch));
    assert_eq!(m.unknown_comprehension_required(), None);

    let mut out = [0u8; 256];
    let mut b = MessageBuilder::new(&mut out, Method::BINDING, Class::Request, tid_of(&bytes));
    b.padding_byte(0x20)
        .software("STUN test client")
        .priority(0x6e0001ff)
        .ice_controlled(0x932ff9b151263b36)
        .username("evtj:h6vY")
        .message_integrity(PASSWORD)
        .fingerprint();
    assert_eq!(b.finish().expect("fits"), &bytes[..]);
}

#[test]
fn rfc5769_ipv4_response() {
    let bytes = read("fuzz-seeds/stun/6.stun");
    let m = StunMessage::parse(&bytes).expect("parse");
    assert_eq!(m.class(), Class::Success);
    assert_eq!(m.software(), Some("test vector"));
    let addr: SocketAddr = "192.0.2.1:32853".parse().unwrap();
    assert_eq!(m.xor_mapped_address(), Some(addr));
    assert_eq!(m.verify_integrity(PASSWORD), Ok(()));
    assert_eq!(m.verify_fingerprint(), Ok(()));

    let mut out = [0u8; 256];
    let mut b = MessageBuilder::new(&mut out, Method::BINDING, Class::Success, tid_of(&bytes));
    b.padding_byte(0x20)
        .software("test vector")
        .xor_mapped_address(addr)
        .message_integrity(PASSWORD)
        .fingerprint();
    assert_eq!(b.finish().expect("fits"), &bytes[..]);
}

#[test]
fn rfc5769_ipv6_response() {
    let bytes = read("fuzz-seeds/stun/7.stun");
    let m = StunMessage::parse(&bytes).expect("parse");
    let addr: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
        .parse()
        .unwrap();
    assert_eq!(m.xor_mapped_address(), Some(addr));
    assert_eq!(m.verify_integrity(PASSWORD), Ok(()));
    assert_eq!(m.verify_fingerprint(), Ok(()));

    let mut out = [0u8; 256];
    let mut b = MessageBuilder::new(&mut out, Method::BINDING, Class::Success, tid_of(&bytes));
    b.padding_byte(0x20)
        .software("test vector")
        .xor_mapped_address(addr)
        .message_integrity(PASSWORD)
        .fingerprint();
    assert_eq!(b.finish().expect("fits"), &bytes[..]);
}

#[test]
fn rfc5769_long_term_request() {
    let bytes = read("fuzz-seeds/stun/8.stun");
    let m = StunMessage::parse(&bytes).expect("parse");
    // RFC 5769 §2.4: username U+30DE U+30C8 U+30EA U+30C3 U+30AF U+30B9, password
    // "The<U+00AD>M<U+00AA>tr<U+2168>" which SASLprep maps to "TheMatrIX".
    let user = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
    assert_eq!(m.username(), Some(user));
    assert_eq!(m.nonce(), Some("f//499k954d6OL34oL9FSTvy64sA"));
    assert_eq!(m.realm(), Some("example.org"));
    let key = long_term_key(user, "example.org", "TheMatrIX");
    assert_eq!(m.verify_integrity(&key), Ok(()));
    assert_eq!(m.fingerprint(), None);
    assert_eq!(m.verify_fingerprint(), Err(IntegrityError::Missing));

    let mut out = [0u8; 256];
    let mut b = MessageBuilder::new(&mut out, Method::BINDING, Class::Request, tid_of(&bytes));
    b.username(user)
        .nonce("f//499k954d6OL34oL9FSTvy64sA")
        .realm("example.org")
        .message_integrity(&key);
    assert_eq!(b.finish().expect("fits"), &bytes[..]);
}

/// Go's `hash/crc64` with the ISO table (reflected, init and xorout all-ones): pion's test
/// computes the corpus column with `crc64.MakeTable(crc64.ISO)`, although the testdata README
/// says ECMA (the ECMA polynomial does not reproduce the column).
fn crc64_go_iso(data: &[u8]) -> u64 {
    const POLY: u64 = 0xD800000000000000;
    let mut crc = !0u64;
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 char {c}"),
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c) << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}

#[test]
fn every_browser_message_decodes() {
    let csv = String::from_utf8(read("stun/browsers/frombrowsers.csv")).unwrap();
    let mut n = 0;
    let mut with_fp = 0;
    for line in csv.lines() {
        if line.starts_with('#') || line.starts_with("ip,") || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split(',').collect();
        let msg = base64_decode(cols[1]);
        let crc: u64 = cols[2].parse().unwrap();
        assert_eq!(crc64_go_iso(&msg), crc, "corpus row read wrongly: {line}");
        let m = StunMessage::parse(&msg).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(m.method() == Method::BINDING, "{line}");
        if m.fingerprint().is_some() {
            assert_eq!(m.verify_fingerprint(), Ok(()), "{line}");
            with_fp += 1;
        }
        let _: Vec<Attribute<'_>> = m.typed_attributes().collect();
        n += 1;
    }
    assert!(n >= 10, "only {n} messages in the corpus");
    assert!(with_fp > 0);

    let chrome = read("stun/browsers/ex1_chrome.stun");
    let m = StunMessage::parse(&chrome).expect("chrome request");
    assert_eq!(m.class(), Class::Request);
    // Chrome's old ORIGIN attribute (0x802F, comprehension-optional) is kept, not rejected.
    assert!(m.typed_attributes().any(|a| a
        == Attribute::Unknown {
            attr_type: 0x802F,
            value: b"http://localhost:3000/"
        }));
    assert_eq!(m.unknown_comprehension_required(), None);
}

#[test]
fn every_fuzz_seed_decodes_or_errors_cleanly() {
    let dir = format!("{TESTDATA}/fuzz-seeds/stun");
    let mut ok = 0;
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        total += 1;
        if tympan_ice::stun::fuzz_decode(&bytes) {
            ok += 1;
        }
    }
    assert_eq!(total, 19);
    // At least the four RFC 5769 vectors are valid.
    assert!(ok >= 4, "{ok} of {total} parsed");
}

#[test]
fn unknown_comprehension_required_is_reported_optional_kept() {
    let mut out = [0u8; 128];
    let mut b = MessageBuilder::new(
        &mut out,
        Method::BINDING,
        Class::Request,
        TransactionId([7; 12]),
    );
    b.raw(0x7777, b"abc").raw(0xC001, b"keep me").fingerprint();
    let bytes = b.finish().unwrap().to_vec();
    let m = StunMessage::parse(&bytes).unwrap();
    assert_eq!(m.unknown_comprehension_required(), Some(0x7777));
    assert!(m.typed_attributes().any(|a| a
        == Attribute::Unknown {
            attr_type: 0xC001,
            value: b"keep me"
        }));
}

#[test]
fn truncated_and_corrupted_messages_give_typed_errors() {
    use tympan_ice::stun::StunError;
    let bytes = read("fuzz-seeds/stun/5.stun");
    assert_eq!(
        StunMessage::parse(&bytes[..10]).unwrap_err(),
        StunError::TooShort { len: 10 }
    );
    assert!(matches!(
        StunMessage::parse(&bytes[..bytes.len() - 4]),
        Err(StunError::BadLength { .. })
    ));
    let mut bad = bytes.clone();
    bad[4] ^= 1;
    assert_eq!(
        StunMessage::parse(&bad).unwrap_err(),
        StunError::BadMagicCookie
    );
    // Attribute length pointing past the end.
    let mut bad = bytes.clone();
    bad[22] = 0x00;
    bad[23] = 0xF0;
    assert!(matches!(
        StunMessage::parse(&bad),
        Err(StunError::AttributeTruncated {
            offset: 20,
            attr_type: 0x8022
        })
    ));
    // A flipped payload bit breaks both checks.
    let mut bad = bytes.clone();
    bad[40] ^= 0x01;
    let m = StunMessage::parse(&bad).unwrap();
    assert_eq!(m.verify_integrity(PASSWORD), Err(IntegrityError::Mismatch));
    assert_eq!(m.verify_fingerprint(), Err(IntegrityError::Mismatch));
}
