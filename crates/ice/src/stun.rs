//! STUN (RFC 8489) codec: a zero-copy [`StunMessage`] view over received bytes and a
//! [`MessageBuilder`] writing into a caller's buffer, with MESSAGE-INTEGRITY (HMAC-SHA1),
//! MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, plus the ICE (RFC 8445) and TURN (RFC 8656)
//! attributes.
//!
//! Parsing validates the header and the shape of every known attribute once, so the typed
//! accessors afterwards cannot fail; nothing here allocates.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::Sha256;

/// The fixed magic cookie of RFC 5389/8489 (`0x2112A442`).
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Length of the STUN header in bytes.
pub const HEADER_LEN: usize = 20;
/// XOR constant for FINGERPRINT ("STUN").
pub const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// STUN attribute type numbers.
pub mod attr {
    /// MAPPED-ADDRESS.
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    /// USERNAME.
    pub const USERNAME: u16 = 0x0006;
    /// MESSAGE-INTEGRITY (HMAC-SHA1).
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    /// ERROR-CODE.
    pub const ERROR_CODE: u16 = 0x0009;
    /// UNKNOWN-ATTRIBUTES.
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    /// CHANNEL-NUMBER (TURN).
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    /// LIFETIME (TURN).
    pub const LIFETIME: u16 = 0x000D;
    /// XOR-PEER-ADDRESS (TURN).
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    /// DATA (TURN).
    pub const DATA: u16 = 0x0013;
    /// REALM.
    pub const REALM: u16 = 0x0014;
    /// NONCE.
    pub const NONCE: u16 = 0x0015;
    /// XOR-RELAYED-ADDRESS (TURN).
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    /// REQUESTED-ADDRESS-FAMILY (TURN).
    pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
    /// EVEN-PORT (TURN).
    pub const EVEN_PORT: u16 = 0x0018;
    /// REQUESTED-TRANSPORT (TURN).
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    /// DONT-FRAGMENT (TURN).
    pub const DONT_FRAGMENT: u16 = 0x001A;
    /// MESSAGE-INTEGRITY-SHA256.
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    /// PASSWORD-ALGORITHM.
    pub const PASSWORD_ALGORITHM: u16 = 0x001D;
    /// USERHASH.
    pub const USERHASH: u16 = 0x001E;
    /// XOR-MAPPED-ADDRESS.
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    /// RESERVATION-TOKEN (TURN).
    pub const RESERVATION_TOKEN: u16 = 0x0022;
    /// PRIORITY (ICE).
    pub const PRIORITY: u16 = 0x0024;
    /// USE-CANDIDATE (ICE).
    pub const USE_CANDIDATE: u16 = 0x0025;
    /// PASSWORD-ALGORITHMS.
    pub const PASSWORD_ALGORITHMS: u16 = 0x8002;
    /// ALTERNATE-DOMAIN.
    pub const ALTERNATE_DOMAIN: u16 = 0x8003;
    /// SOFTWARE.
    pub const SOFTWARE: u16 = 0x8022;
    /// ALTERNATE-SERVER.
    pub const ALTERNATE_SERVER: u16 = 0x8023;
    /// FINGERPRINT.
    pub const FINGERPRINT: u16 = 0x8028;
    /// ICE-CONTROLLED (ICE).
    pub const ICE_CONTROLLED: u16 = 0x8029;
    /// ICE-CONTROLLING (ICE).
    pub const ICE_CONTROLLING: u16 = 0x802A;

    /// Whether `typ` is in the comprehension-required range (0x0000-0x7FFF).
    pub fn is_comprehension_required(typ: u16) -> bool {
        typ < 0x8000
    }

    /// Whether this crate understands attribute `typ`.
    pub fn is_known(typ: u16) -> bool {
        matches!(
            typ,
            MAPPED_ADDRESS
                | USERNAME
                | MESSAGE_INTEGRITY
                | ERROR_CODE
                | UNKNOWN_ATTRIBUTES
                | CHANNEL_NUMBER
                | LIFETIME
                | XOR_PEER_ADDRESS
                | DATA
                | REALM
                | NONCE
                | XOR_RELAYED_ADDRESS
                | REQUESTED_ADDRESS_FAMILY
                | EVEN_PORT
                | REQUESTED_TRANSPORT
                | DONT_FRAGMENT
                | MESSAGE_INTEGRITY_SHA256
                | PASSWORD_ALGORITHM
                | USERHASH
                | XOR_MAPPED_ADDRESS
                | RESERVATION_TOKEN
                | PRIORITY
                | USE_CANDIDATE
                | PASSWORD_ALGORITHMS
                | ALTERNATE_DOMAIN
                | SOFTWARE
                | ALTERNATE_SERVER
                | FINGERPRINT
                | ICE_CONTROLLED
                | ICE_CONTROLLING
        )
    }
}

/// STUN method numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Method(pub u16);

impl Method {
    /// Binding (RFC 8489).
    pub const BINDING: Method = Method(0x001);
    /// Allocate (TURN).
    pub const ALLOCATE: Method = Method(0x003);
    /// Refresh (TURN).
    pub const REFRESH: Method = Method(0x004);
    /// Send (TURN indication).
    pub const SEND: Method = Method(0x006);
    /// Data (TURN indication).
    pub const DATA: Method = Method(0x007);
    /// CreatePermission (TURN).
    pub const CREATE_PERMISSION: Method = Method(0x008);
    /// ChannelBind (TURN).
    pub const CHANNEL_BIND: Method = Method(0x009);
}

/// STUN message class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A request.
    Request,
    /// An indication.
    Indication,
    /// A success response.
    Success,
    /// An error response.
    Error,
}

/// A 96-bit transaction id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TransactionId(pub [u8; 12]);

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// What was wrong with a STUN message, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunError {
    /// Fewer than 20 bytes.
    TooShort {
        /// Bytes available.
        len: usize,
    },
    /// The two most significant bits of the first byte are not zero.
    NotStun,
    /// The magic cookie (offset 4) is wrong.
    BadMagicCookie,
    /// The header's length field disagrees with the datagram size or is not a multiple of 4.
    BadLength {
        /// Length declared in the header (bytes after the header).
        declared: usize,
        /// Bytes actually present after the header.
        actual: usize,
    },
    /// An attribute header or value runs past the end of the message.
    AttributeTruncated {
        /// Offset of the attribute header in the message.
        offset: usize,
        /// The attribute type.
        attr_type: u16,
    },
    /// A known attribute has a malformed value.
    BadAttribute {
        /// Offset of the attribute header in the message.
        offset: usize,
        /// The attribute type.
        attr_type: u16,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// FINGERPRINT is not the last attribute.
    FingerprintNotLast {
        /// Offset of the FINGERPRINT attribute.
        offset: usize,
    },
    /// The output buffer is too small for the message being built.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A value is too long to be encoded in a STUN attribute.
    ValueTooLong {
        /// The attribute type.
        attr_type: u16,
    },
}

impl fmt::Display for StunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StunError::TooShort { len } => write!(f, "STUN message too short: {len} bytes"),
            StunError::NotStun => write!(f, "first two bits are not zero: not STUN"),
            StunError::BadMagicCookie => write!(f, "bad magic cookie at offset 4"),
            StunError::BadLength { declared, actual } => {
                write!(
                    f,
                    "STUN length field {declared} but {actual} bytes follow the header"
                )
            }
            StunError::AttributeTruncated { offset, attr_type } => {
                write!(
                    f,
                    "attribute 0x{attr_type:04x} at offset {offset} is truncated"
                )
            }
            StunError::BadAttribute {
                offset,
                attr_type,
                reason,
            } => write!(
                f,
                "attribute 0x{attr_type:04x} at offset {offset}: {reason}"
            ),
            StunError::FingerprintNotLast { offset } => {
                write!(
                    f,
                    "FINGERPRINT at offset {offset} is not the last attribute"
                )
            }
            StunError::BufferTooSmall { needed, available } => {
                write!(
                    f,
                    "output buffer too small: need {needed}, have {available}"
                )
            }
            StunError::ValueTooLong { attr_type } => {
                write!(f, "value too long for attribute 0x{attr_type:04x}")
            }
        }
    }
}

impl std::error::Error for StunError {}

/// Why an integrity or fingerprint check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrityError {
    /// The message has no such attribute.
    Missing,
    /// The attribute is present but the value does not match.
    Mismatch,
}

impl fmt::Display for IntegrityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntegrityError::Missing => write!(f, "attribute missing"),
            IntegrityError::Mismatch => write!(f, "integrity/fingerprint mismatch"),
        }
    }
}

impl std::error::Error for IntegrityError {}

/// Computes the long-term credential key `MD5(username ":" realm ":" password)` (RFC 8489
/// §9.2.2). The inputs must already be SASLprep/OpaqueString-processed by the caller (for ASCII
/// credentials they are unchanged).
pub fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h.finalize().into()
}

/// A pre-keyed HMAC-SHA1 state for MESSAGE-INTEGRITY. Creating it hashes the key pads once;
/// verifying or signing then costs only the message blocks. Cheap to clone, no heap.
#[derive(Clone)]
pub struct IntegrityKey {
    mac: Hmac<Sha1>,
}

impl IntegrityKey {
    /// Keys from raw bytes: the ICE password for short-term credentials, or
    /// [`long_term_key`] for long-term credentials.
    pub fn new(key: &[u8]) -> Self {
        // HMAC accepts keys of every length, so the fallback is never taken.
        let mac = match <Hmac<Sha1> as Mac>::new_from_slice(key) {
            Ok(m) => m,
            Err(_) => <Hmac<Sha1> as Mac>::new(&Default::default()),
        };
        IntegrityKey { mac }
    }
}

impl fmt::Debug for IntegrityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IntegrityKey(..)")
    }
}

/// A raw attribute as found in a message: type, value (without padding) and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAttribute<'a> {
    /// Attribute type.
    pub attr_type: u16,
    /// Value bytes (padding excluded).
    pub value: &'a [u8],
    /// Offset of the attribute header within the message.
    pub offset: usize,
}

/// A decoded attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute<'a> {
    /// MAPPED-ADDRESS.
    MappedAddress(SocketAddr),
    /// XOR-MAPPED-ADDRESS (already un-XORed).
    XorMappedAddress(SocketAddr),
    /// USERNAME.
    Username(&'a str),
    /// MESSAGE-INTEGRITY (20-byte HMAC).
    MessageIntegrity(&'a [u8]),
    /// MESSAGE-INTEGRITY-SHA256 (16-32 byte HMAC).
    MessageIntegritySha256(&'a [u8]),
    /// FINGERPRINT value.
    Fingerprint(u32),
    /// ERROR-CODE.
    ErrorCode {
        /// Code 300-699.
        code: u16,
        /// Reason phrase.
        reason: &'a str,
    },
    /// UNKNOWN-ATTRIBUTES: a list of 16-bit types.
    UnknownAttributes(U16List<'a>),
    /// REALM.
    Realm(&'a str),
    /// NONCE.
    Nonce(&'a str),
    /// PASSWORD-ALGORITHMS (raw list of algorithm/params entries).
    PasswordAlgorithms(&'a [u8]),
    /// PASSWORD-ALGORITHM (raw).
    PasswordAlgorithm(&'a [u8]),
    /// USERHASH (32 bytes).
    UserHash(&'a [u8]),
    /// SOFTWARE.
    Software(&'a str),
    /// ALTERNATE-SERVER.
    AlternateServer(SocketAddr),
    /// ALTERNATE-DOMAIN.
    AlternateDomain(&'a str),
    /// PRIORITY.
    Priority(u32),
    /// USE-CANDIDATE.
    UseCandidate,
    /// ICE-CONTROLLED tie-breaker.
    IceControlled(u64),
    /// ICE-CONTROLLING tie-breaker.
    IceControlling(u64),
    /// CHANNEL-NUMBER.
    ChannelNumber(u16),
    /// LIFETIME in seconds.
    Lifetime(u32),
    /// XOR-PEER-ADDRESS.
    XorPeerAddress(SocketAddr),
    /// DATA.
    Data(&'a [u8]),
    /// XOR-RELAYED-ADDRESS.
    XorRelayedAddress(SocketAddr),
    /// REQUESTED-TRANSPORT protocol number (17 = UDP).
    RequestedTransport(u8),
    /// DONT-FRAGMENT.
    DontFragment,
    /// REQUESTED-ADDRESS-FAMILY (1 = IPv4, 2 = IPv6).
    RequestedAddressFamily(u8),
    /// RESERVATION-TOKEN.
    ReservationToken(u64),
    /// EVEN-PORT; `true` when the R bit asks to reserve the next port.
    EvenPort(bool),
    /// Any other attribute, kept as raw bytes.
    Unknown {
        /// Attribute type.
        attr_type: u16,
        /// Raw value.
        value: &'a [u8],
    },
}

/// A borrowed list of big-endian u16 values (UNKNOWN-ATTRIBUTES).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct U16List<'a>(&'a [u8]);

impl<'a> U16List<'a> {
    /// Iterates the values.
    pub fn iter(&self) -> impl Iterator<Item = u16> + 'a {
        self.0
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
    }
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(s) => u16::from_be_bytes([s[0], s[1]]),
        None => 0,
    }
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

#[inline]
fn be64(b: &[u8], at: usize) -> u64 {
    match b.get(at..at + 8) {
        Some(s) => {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_be_bytes(a)
        }
        None => 0,
    }
}

fn decode_address(v: &[u8], xor: Option<&[u8; 16]>) -> Option<SocketAddr> {
    if v.len() < 4 {
        return None;
    }
    let family = v[1];
    let mut port = be16(v, 2);
    if let Some(x) = xor {
        port ^= u16::from_be_bytes([x[0], x[1]]);
    }
    match family {
        0x01 if v.len() == 8 => {
            let mut a = [v[4], v[5], v[6], v[7]];
            if let Some(x) = xor {
                for (i, b) in a.iter_mut().enumerate() {
                    *b ^= x[i];
                }
            }
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), port))
        }
        0x02 if v.len() == 20 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&v[4..20]);
            if let Some(x) = xor {
                for (i, b) in a.iter_mut().enumerate() {
                    *b ^= x[i];
                }
            }
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a)), port))
        }
        _ => None,
    }
}

/// Validates the value of a known attribute; `None` means fine.
fn check_value(attr_type: u16, v: &[u8]) -> Option<&'static str> {
    use attr::*;
    let n = v.len();
    match attr_type {
        MAPPED_ADDRESS | XOR_MAPPED_ADDRESS | XOR_PEER_ADDRESS | XOR_RELAYED_ADDRESS
        | ALTERNATE_SERVER => {
            if n < 4 {
                return Some("address shorter than 4 bytes");
            }
            match (v[1], n) {
                (1, 8) | (2, 20) => None,
                (1, _) | (2, _) => Some("address length does not match family"),
                _ => Some("unknown address family"),
            }
        }
        USERNAME | REALM | NONCE | SOFTWARE | ALTERNATE_DOMAIN => {
            if n > 763 {
                Some("text value too long")
            } else if core::str::from_utf8(v).is_err() {
                Some("not UTF-8")
            } else {
                None
            }
        }
        MESSAGE_INTEGRITY => (n != 20).then_some("MESSAGE-INTEGRITY must be 20 bytes"),
        MESSAGE_INTEGRITY_SHA256 => (!(16..=32).contains(&n) || n % 4 != 0)
            .then_some("MESSAGE-INTEGRITY-SHA256 must be 16..32 bytes, multiple of 4"),
        FINGERPRINT => (n != 4).then_some("FINGERPRINT must be 4 bytes"),
        ERROR_CODE => {
            if n < 4 {
                Some("ERROR-CODE shorter than 4 bytes")
            } else if !(3..=6).contains(&(v[2] & 0x07)) || v[3] > 99 {
                Some("ERROR-CODE class/number out of range")
            } else if core::str::from_utf8(&v[4..]).is_err() {
                Some("ERROR-CODE reason not UTF-8")
            } else {
                None
            }
        }
        UNKNOWN_ATTRIBUTES => (n % 2 != 0).then_some("UNKNOWN-ATTRIBUTES length odd"),
        USERHASH => (n != 32).then_some("USERHASH must be 32 bytes"),
        PASSWORD_ALGORITHMS | PASSWORD_ALGORITHM => (n < 4).then_some("too short"),
        PRIORITY | LIFETIME | CHANNEL_NUMBER | REQUESTED_TRANSPORT => {
            (n != 4).then_some("must be 4 bytes")
        }
        REQUESTED_ADDRESS_FAMILY => {
            if n != 4 {
                Some("must be 4 bytes")
            } else if v[0] != 1 && v[0] != 2 {
                Some("unknown address family")
            } else {
                None
            }
        }
        ICE_CONTROLLED | ICE_CONTROLLING | RESERVATION_TOKEN => {
            (n != 8).then_some("must be 8 bytes")
        }
        USE_CANDIDATE | DONT_FRAGMENT => (n != 0).then_some("must be empty"),
        EVEN_PORT => (n != 1).then_some("EVEN-PORT must be 1 byte"),
        _ => None,
    }
}

/// A validated, zero-copy view of a STUN message.
#[derive(Clone, Copy)]
pub struct StunMessage<'a> {
    buf: &'a [u8],
    integrity: Option<u32>,
    integrity_sha256: Option<u32>,
    fingerprint: Option<u32>,
    first_unknown_required: Option<u16>,
}

impl fmt::Debug for StunMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StunMessage")
            .field("class", &self.class())
            .field("method", &self.method())
            .field("transaction_id", &self.transaction_id())
            .field("len", &self.buf.len())
            .finish()
    }
}

/// Cheap check: could these bytes be a STUN message (first two bits zero, magic cookie)?
pub fn is_stun(buf: &[u8]) -> bool {
    buf.len() >= HEADER_LEN && buf[0] & 0xC0 == 0 && be32(buf, 4) == MAGIC_COOKIE
}

impl<'a> StunMessage<'a> {
    /// Parses and validates `buf`, which must hold exactly one STUN message.
    pub fn parse(buf: &'a [u8]) -> Result<Self, StunError> {
        if buf.len() < HEADER_LEN {
            return Err(StunError::TooShort { len: buf.len() });
        }
        if buf[0] & 0xC0 != 0 {
            return Err(StunError::NotStun);
        }
        if be32(buf, 4) != MAGIC_COOKIE {
            return Err(StunError::BadMagicCookie);
        }
        let declared = be16(buf, 2) as usize;
        let actual = buf.len() - HEADER_LEN;
        if declared != actual || declared % 4 != 0 {
            return Err(StunError::BadLength { declared, actual });
        }
        let mut msg = StunMessage {
            buf,
            integrity: None,
            integrity_sha256: None,
            fingerprint: None,
            first_unknown_required: None,
        };
        let mut off = HEADER_LEN;
        while off < buf.len() {
            if off + 4 > buf.len() {
                return Err(StunError::AttributeTruncated {
                    offset: off,
                    attr_type: 0,
                });
            }
            let t = be16(buf, off);
            let l = be16(buf, off + 2) as usize;
            let padded = (l + 3) & !3;
            if off + 4 + padded > buf.len() {
                return Err(StunError::AttributeTruncated {
                    offset: off,
                    attr_type: t,
                });
            }
            if msg.fingerprint.is_some() {
                return Err(StunError::FingerprintNotLast {
                    offset: msg.fingerprint.map_or(0, |o| o as usize),
                });
            }
            let v = &buf[off + 4..off + 4 + l];
            if let Some(reason) = check_value(t, v) {
                return Err(StunError::BadAttribute {
                    offset: off,
                    attr_type: t,
                    reason,
                });
            }
            // Offsets can exceed u16 (20-byte header + 65535-byte body).
            let o16 = off as u32;
            match t {
                attr::MESSAGE_INTEGRITY if msg.integrity.is_none() => msg.integrity = Some(o16),
                attr::MESSAGE_INTEGRITY_SHA256 if msg.integrity_sha256.is_none() => {
                    msg.integrity_sha256 = Some(o16)
                }
                attr::FINGERPRINT => msg.fingerprint = Some(o16),
                _ => {
                    if msg.first_unknown_required.is_none()
                        && msg.integrity.is_none()
                        && attr::is_comprehension_required(t)
                        && !attr::is_known(t)
                    {
                        msg.first_unknown_required = Some(t);
                    }
                }
            }
            off += 4 + padded;
        }
        Ok(msg)
    }

    /// The whole message bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Message type field (14 bits).
    pub fn message_type(&self) -> u16 {
        be16(self.buf, 0) & 0x3FFF
    }

    /// Method.
    pub fn method(&self) -> Method {
        let t = self.message_type();
        Method((t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2))
    }

    /// Class.
    pub fn class(&self) -> Class {
        let t = self.message_type();
        match ((t >> 7) & 0x2) | ((t >> 4) & 0x1) {
            0 => Class::Request,
            1 => Class::Indication,
            2 => Class::Success,
            _ => Class::Error,
        }
    }

    /// Transaction id.
    pub fn transaction_id(&self) -> TransactionId {
        let mut t = [0u8; 12];
        t.copy_from_slice(&self.buf[8..20]);
        TransactionId(t)
    }

    /// Iterates every attribute, in order, including those after MESSAGE-INTEGRITY.
    pub fn attributes(&self) -> AttributeIter<'a> {
        AttributeIter {
            buf: self.buf,
            off: HEADER_LEN,
        }
    }

    /// Iterates every attribute decoded into [`Attribute`].
    pub fn typed_attributes(&self) -> impl Iterator<Item = Attribute<'a>> + 'a {
        let m = *self;
        self.attributes().map(move |a| m.decode(a))
    }

    /// The first comprehension-required attribute type this crate does not know, if any
    /// (RFC 8489 §6.3.1: a request carrying one gets a 420 with UNKNOWN-ATTRIBUTES).
    pub fn unknown_comprehension_required(&self) -> Option<u16> {
        self.first_unknown_required
    }

    /// All unknown comprehension-required attribute types (before MESSAGE-INTEGRITY).
    pub fn unknown_comprehension_required_all(&self) -> impl Iterator<Item = u16> + 'a {
        let end = self.integrity_boundary();
        self.attributes()
            .take_while(move |a| a.offset < end)
            .map(|a| a.attr_type)
            .filter(|t| attr::is_comprehension_required(*t) && !attr::is_known(*t))
    }

    fn integrity_boundary(&self) -> usize {
        match (self.integrity, self.integrity_sha256) {
            (Some(a), Some(b)) => a.min(b) as usize,
            (Some(a), None) | (None, Some(a)) => a as usize,
            (None, None) => match self.fingerprint {
                Some(f) => f as usize,
                None => self.buf.len(),
            },
        }
    }

    /// Decodes one raw attribute of this message.
    pub fn decode(&self, a: RawAttribute<'a>) -> Attribute<'a> {
        use attr::*;
        let v = a.value;
        let text = |v: &'a [u8]| core::str::from_utf8(v).unwrap_or("");
        let xor = || self.xor_key();
        let unknown = Attribute::Unknown {
            attr_type: a.attr_type,
            value: v,
        };
        match a.attr_type {
            MAPPED_ADDRESS => decode_address(v, None).map_or(unknown, Attribute::MappedAddress),
            ALTERNATE_SERVER => decode_address(v, None).map_or(unknown, Attribute::AlternateServer),
            XOR_MAPPED_ADDRESS => {
                decode_address(v, Some(&xor())).map_or(unknown, Attribute::XorMappedAddress)
            }
            XOR_PEER_ADDRESS => {
                decode_address(v, Some(&xor())).map_or(unknown, Attribute::XorPeerAddress)
            }
            XOR_RELAYED_ADDRESS => {
                decode_address(v, Some(&xor())).map_or(unknown, Attribute::XorRelayedAddress)
            }
            USERNAME => Attribute::Username(text(v)),
            REALM => Attribute::Realm(text(v)),
            NONCE => Attribute::Nonce(text(v)),
            SOFTWARE => Attribute::Software(text(v)),
            ALTERNATE_DOMAIN => Attribute::AlternateDomain(text(v)),
            MESSAGE_INTEGRITY => Attribute::MessageIntegrity(v),
            MESSAGE_INTEGRITY_SHA256 => Attribute::MessageIntegritySha256(v),
            FINGERPRINT => Attribute::Fingerprint(be32(v, 0)),
            ERROR_CODE => Attribute::ErrorCode {
                code: u16::from(v.get(2).copied().unwrap_or(0) & 7) * 100
                    + u16::from(v.get(3).copied().unwrap_or(0)),
                reason: text(v.get(4..).unwrap_or(&[])),
            },
            UNKNOWN_ATTRIBUTES => Attribute::UnknownAttributes(U16List(v)),
            PASSWORD_ALGORITHMS => Attribute::PasswordAlgorithms(v),
            PASSWORD_ALGORITHM => Attribute::PasswordAlgorithm(v),
            USERHASH => Attribute::UserHash(v),
            PRIORITY => Attribute::Priority(be32(v, 0)),
            USE_CANDIDATE => Attribute::UseCandidate,
            ICE_CONTROLLED => Attribute::IceControlled(be64(v, 0)),
            ICE_CONTROLLING => Attribute::IceControlling(be64(v, 0)),
            CHANNEL_NUMBER => Attribute::ChannelNumber(be16(v, 0)),
            LIFETIME => Attribute::Lifetime(be32(v, 0)),
            DATA => Attribute::Data(v),
            REQUESTED_TRANSPORT => Attribute::RequestedTransport(v.first().copied().unwrap_or(0)),
            DONT_FRAGMENT => Attribute::DontFragment,
            REQUESTED_ADDRESS_FAMILY => {
                Attribute::RequestedAddressFamily(v.first().copied().unwrap_or(0))
            }
            RESERVATION_TOKEN => Attribute::ReservationToken(be64(v, 0)),
            EVEN_PORT => Attribute::EvenPort(v.first().is_some_and(|b| b & 0x80 != 0)),
            _ => unknown,
        }
    }

    fn xor_key(&self) -> [u8; 16] {
        let mut k = [0u8; 16];
        k.copy_from_slice(&self.buf[4..20]);
        k
    }

    /// The value of the first attribute of type `t` that precedes MESSAGE-INTEGRITY (RFC 8489
    /// §14.5: later attributes other than FINGERPRINT are ignored).
    pub fn get(&self, t: u16) -> Option<&'a [u8]> {
        let end = self.integrity_boundary();
        self.attributes()
            .take_while(|a| a.offset < end)
            .find(|a| a.attr_type == t)
            .map(|a| a.value)
    }

    fn get_raw(&self, t: u16) -> Option<RawAttribute<'a>> {
        let end = self.integrity_boundary();
        self.attributes()
            .take_while(|a| a.offset < end)
            .find(|a| a.attr_type == t)
    }

    fn get_address(&self, t: u16) -> Option<SocketAddr> {
        let xor = matches!(
            t,
            attr::XOR_MAPPED_ADDRESS | attr::XOR_PEER_ADDRESS | attr::XOR_RELAYED_ADDRESS
        );
        let v = self.get(t)?;
        if xor {
            decode_address(v, Some(&self.xor_key()))
        } else {
            decode_address(v, None)
        }
    }

    fn get_text(&self, t: u16) -> Option<&'a str> {
        self.get(t).and_then(|v| core::str::from_utf8(v).ok())
    }

    /// XOR-MAPPED-ADDRESS.
    pub fn xor_mapped_address(&self) -> Option<SocketAddr> {
        self.get_address(attr::XOR_MAPPED_ADDRESS)
    }
    /// MAPPED-ADDRESS.
    pub fn mapped_address(&self) -> Option<SocketAddr> {
        self.get_address(attr::MAPPED_ADDRESS)
    }
    /// XOR-PEER-ADDRESS (the first one).
    pub fn xor_peer_address(&self) -> Option<SocketAddr> {
        self.get_address(attr::XOR_PEER_ADDRESS)
    }
    /// XOR-RELAYED-ADDRESS (the first one).
    pub fn xor_relayed_address(&self) -> Option<SocketAddr> {
        self.get_address(attr::XOR_RELAYED_ADDRESS)
    }
    /// ALTERNATE-SERVER.
    pub fn alternate_server(&self) -> Option<SocketAddr> {
        self.get_address(attr::ALTERNATE_SERVER)
    }
    /// USERNAME.
    pub fn username(&self) -> Option<&'a str> {
        self.get_text(attr::USERNAME)
    }
    /// REALM.
    pub fn realm(&self) -> Option<&'a str> {
        self.get_text(attr::REALM)
    }
    /// NONCE.
    pub fn nonce(&self) -> Option<&'a str> {
        self.get_text(attr::NONCE)
    }
    /// SOFTWARE.
    pub fn software(&self) -> Option<&'a str> {
        self.get_text(attr::SOFTWARE)
    }
    /// ERROR-CODE as (code, reason).
    pub fn error_code(&self) -> Option<(u16, &'a str)> {
        let a = self.get_raw(attr::ERROR_CODE)?;
        match self.decode(a) {
            Attribute::ErrorCode { code, reason } => Some((code, reason)),
            _ => None,
        }
    }
    /// UNKNOWN-ATTRIBUTES.
    pub fn unknown_attributes(&self) -> Option<U16List<'a>> {
        self.get(attr::UNKNOWN_ATTRIBUTES).map(U16List)
    }
    /// PASSWORD-ALGORITHMS raw value.
    pub fn password_algorithms(&self) -> Option<&'a [u8]> {
        self.get(attr::PASSWORD_ALGORITHMS)
    }
    /// USERHASH.
    pub fn userhash(&self) -> Option<&'a [u8]> {
        self.get(attr::USERHASH)
    }
    /// PRIORITY.
    pub fn priority(&self) -> Option<u32> {
        self.get(attr::PRIORITY).map(|v| be32(v, 0))
    }
    /// Whether USE-CANDIDATE is present.
    pub fn use_candidate(&self) -> bool {
        self.get(attr::USE_CANDIDATE).is_some()
    }
    /// ICE-CONTROLLING tie-breaker.
    pub fn ice_controlling(&self) -> Option<u64> {
        self.get(attr::ICE_CONTROLLING).map(|v| be64(v, 0))
    }
    /// ICE-CONTROLLED tie-breaker.
    pub fn ice_controlled(&self) -> Option<u64> {
        self.get(attr::ICE_CONTROLLED).map(|v| be64(v, 0))
    }
    /// CHANNEL-NUMBER.
    pub fn channel_number(&self) -> Option<u16> {
        self.get(attr::CHANNEL_NUMBER).map(|v| be16(v, 0))
    }
    /// LIFETIME in seconds.
    pub fn lifetime(&self) -> Option<u32> {
        self.get(attr::LIFETIME).map(|v| be32(v, 0))
    }
    /// DATA.
    pub fn data(&self) -> Option<&'a [u8]> {
        self.get(attr::DATA)
    }
    /// REQUESTED-TRANSPORT protocol number.
    pub fn requested_transport(&self) -> Option<u8> {
        self.get(attr::REQUESTED_TRANSPORT)
            .and_then(|v| v.first().copied())
    }
    /// Whether DONT-FRAGMENT is present.
    pub fn dont_fragment(&self) -> bool {
        self.get(attr::DONT_FRAGMENT).is_some()
    }
    /// REQUESTED-ADDRESS-FAMILY.
    pub fn requested_address_family(&self) -> Option<u8> {
        self.get(attr::REQUESTED_ADDRESS_FAMILY)
            .and_then(|v| v.first().copied())
    }
    /// RESERVATION-TOKEN.
    pub fn reservation_token(&self) -> Option<u64> {
        self.get(attr::RESERVATION_TOKEN).map(|v| be64(v, 0))
    }
    /// EVEN-PORT reserve bit.
    pub fn even_port(&self) -> Option<bool> {
        self.get(attr::EVEN_PORT)
            .map(|v| v.first().is_some_and(|b| b & 0x80 != 0))
    }
    /// FINGERPRINT value, if present.
    pub fn fingerprint(&self) -> Option<u32> {
        self.fingerprint.map(|o| be32(self.buf, o as usize + 4))
    }
    /// Whether MESSAGE-INTEGRITY is present.
    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some()
    }
    /// Whether MESSAGE-INTEGRITY-SHA256 is present.
    pub fn has_integrity_sha256(&self) -> bool {
        self.integrity_sha256.is_some()
    }

    /// Header bytes with the length field replaced so that the message "ends" at `end`.
    fn adjusted_header(&self, end: usize) -> [u8; 4] {
        let len = (end - HEADER_LEN) as u16;
        let l = len.to_be_bytes();
        [self.buf[0], self.buf[1], l[0], l[1]]
    }

    /// Verifies MESSAGE-INTEGRITY with a raw key (short-term: the password; long-term: the
    /// MD5 key from [`long_term_key`]).
    pub fn verify_integrity(&self, key: &[u8]) -> Result<(), IntegrityError> {
        self.verify_integrity_with(&IntegrityKey::new(key))
    }

    /// Verifies MESSAGE-INTEGRITY with a pre-keyed HMAC state. Does not allocate.
    pub fn verify_integrity_with(&self, key: &IntegrityKey) -> Result<(), IntegrityError> {
        let off = self.integrity.ok_or(IntegrityError::Missing)? as usize;
        let mut mac = key.mac.clone();
        mac.update(&self.adjusted_header(off + 24));
        mac.update(&self.buf[4..off]);
        let got = &self.buf[off + 4..off + 24];
        mac.verify_slice(got).map_err(|_| IntegrityError::Mismatch)
    }

    /// Verifies MESSAGE-INTEGRITY-SHA256 (truncated values of 16..32 bytes accepted).
    pub fn verify_integrity_sha256(&self, key: &[u8]) -> Result<(), IntegrityError> {
        let off = self.integrity_sha256.ok_or(IntegrityError::Missing)? as usize;
        let n = be16(self.buf, off + 2) as usize;
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
            Ok(m) => m,
            Err(_) => return Err(IntegrityError::Mismatch),
        };
        mac.update(&self.adjusted_header(off + 4 + n));
        mac.update(&self.buf[4..off]);
        let got = &self.buf[off + 4..off + 4 + n];
        mac.verify_truncated_left(got)
            .map_err(|_| IntegrityError::Mismatch)
    }

    /// Verifies FINGERPRINT (CRC-32 XOR 0x5354554E).
    pub fn verify_fingerprint(&self) -> Result<(), IntegrityError> {
        let off = self.fingerprint.ok_or(IntegrityError::Missing)? as usize;
        let mut h = crc32fast::Hasher::new();
        h.update(&self.adjusted_header(off + 8));
        h.update(&self.buf[4..off]);
        if h.finalize() ^ FINGERPRINT_XOR == be32(self.buf, off + 4) {
            Ok(())
        } else {
            Err(IntegrityError::Mismatch)
        }
    }
}

/// Iterator over the raw attributes of a validated message.
#[derive(Debug, Clone)]
pub struct AttributeIter<'a> {
    buf: &'a [u8],
    off: usize,
}

impl<'a> Iterator for AttributeIter<'a> {
    type Item = RawAttribute<'a>;
    fn next(&mut self) -> Option<RawAttribute<'a>> {
        let off = self.off;
        if off + 4 > self.buf.len() {
            return None;
        }
        let t = be16(self.buf, off);
        let l = be16(self.buf, off + 2) as usize;
        let value = self.buf.get(off + 4..off + 4 + l)?;
        self.off = off + 4 + ((l + 3) & !3);
        Some(RawAttribute {
            attr_type: t,
            value,
            offset: off,
        })
    }
}

/// Encodes message type bits from method and class.
pub fn message_type(method: Method, class: Class) -> u16 {
    let m = method.0 & 0x0FFF;
    let c: u16 = match class {
        Class::Request => 0,
        Class::Indication => 1,
        Class::Success => 2,
        Class::Error => 3,
    };
    (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
}

/// Builds a STUN message into a caller-provided buffer. Attribute methods chain; a buffer
/// overflow is remembered and reported by [`MessageBuilder::finish`].
#[derive(Debug)]
pub struct MessageBuilder<'b> {
    buf: &'b mut [u8],
    len: usize,
    error: Option<StunError>,
    pad: u8,
}

impl<'b> MessageBuilder<'b> {
    /// Starts a message of `class`/`method` with `tid` in `buf`.
    pub fn new(buf: &'b mut [u8], method: Method, class: Class, tid: TransactionId) -> Self {
        let mut b = MessageBuilder {
            buf,
            len: 0,
            error: None,
            pad: 0,
        };
        if b.buf.len() < HEADER_LEN {
            b.error = Some(StunError::BufferTooSmall {
                needed: HEADER_LEN,
                available: b.buf.len(),
            });
            return b;
        }
        b.buf[0..2].copy_from_slice(&message_type(method, class).to_be_bytes());
        b.buf[2..4].copy_from_slice(&[0, 0]);
        b.buf[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        b.buf[8..20].copy_from_slice(&tid.0);
        b.len = HEADER_LEN;
        b
    }

    /// Sets the byte used to pad attribute values to 4 bytes (default 0; RFC 5769 uses 0x20).
    pub fn padding_byte(&mut self, pad: u8) -> &mut Self {
        self.pad = pad;
        self
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written (only when the buffer was too small).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn set_length(&mut self, body: usize) {
        let l = (body as u16).to_be_bytes();
        self.buf[2] = l[0];
        self.buf[3] = l[1];
    }

    /// Prepares an integrity or fingerprint attribute with a `value_len`-byte value: checks that
    /// it fits the buffer and the 16-bit length field, then sets the header length to include it
    /// (these attributes are computed over a header that already counts them). Returns false,
    /// with the error recorded, when it does not fit or an earlier step failed.
    fn announce_trailing_attribute(&mut self, value_len: usize) -> bool {
        if self.error.is_some() {
            return false;
        }
        let end = self.len + 4 + value_len;
        if end > self.buf.len() || end - HEADER_LEN > 0xFFFF {
            self.error = Some(StunError::BufferTooSmall {
                needed: end,
                available: self.buf.len(),
            });
            return false;
        }
        self.set_length(end - HEADER_LEN);
        true
    }

    /// Appends an attribute whose value is written by `fill` into a slice of `n` bytes.
    fn attr_with(&mut self, t: u16, n: usize, fill: impl FnOnce(&mut [u8])) -> &mut Self {
        if self.error.is_some() {
            return self;
        }
        if n > 0xFFFF - 4 {
            self.error = Some(StunError::ValueTooLong { attr_type: t });
            return self;
        }
        let padded = (n + 3) & !3;
        let needed = self.len + 4 + padded;
        if needed > self.buf.len() || needed - HEADER_LEN > 0xFFFF {
            self.error = Some(StunError::BufferTooSmall {
                needed,
                available: self.buf.len(),
            });
            return self;
        }
        let o = self.len;
        self.buf[o..o + 2].copy_from_slice(&t.to_be_bytes());
        self.buf[o + 2..o + 4].copy_from_slice(&(n as u16).to_be_bytes());
        fill(&mut self.buf[o + 4..o + 4 + n]);
        for b in &mut self.buf[o + 4 + n..o + 4 + padded] {
            *b = self.pad;
        }
        self.len = needed;
        self
    }

    /// Appends an attribute with raw value bytes.
    pub fn raw(&mut self, t: u16, value: &[u8]) -> &mut Self {
        self.attr_with(t, value.len(), |d| d.copy_from_slice(value))
    }

    fn address(&mut self, t: u16, a: SocketAddr, xor: bool) -> &mut Self {
        let mut key = [0u8; 16];
        if xor && self.buf.len() >= HEADER_LEN {
            key.copy_from_slice(&self.buf[4..20]);
        }
        let (fam, n) = match a {
            SocketAddr::V4(_) => (1u8, 8),
            SocketAddr::V6(_) => (2u8, 20),
        };
        self.attr_with(t, n, |d| {
            d[0] = 0;
            d[1] = fam;
            let mut port = a.port();
            if xor {
                port ^= u16::from_be_bytes([key[0], key[1]]);
            }
            d[2..4].copy_from_slice(&port.to_be_bytes());
            match a.ip() {
                IpAddr::V4(ip) => {
                    let mut o = ip.octets();
                    if xor {
                        for (i, b) in o.iter_mut().enumerate() {
                            *b ^= key[i];
                        }
                    }
                    d[4..8].copy_from_slice(&o);
                }
                IpAddr::V6(ip) => {
                    let mut o = ip.octets();
                    if xor {
                        for (i, b) in o.iter_mut().enumerate() {
                            *b ^= key[i];
                        }
                    }
                    d[4..20].copy_from_slice(&o);
                }
            }
        })
    }

    /// MAPPED-ADDRESS.
    pub fn mapped_address(&mut self, a: SocketAddr) -> &mut Self {
        self.address(attr::MAPPED_ADDRESS, a, false)
    }
    /// XOR-MAPPED-ADDRESS.
    pub fn xor_mapped_address(&mut self, a: SocketAddr) -> &mut Self {
        self.address(attr::XOR_MAPPED_ADDRESS, a, true)
    }
    /// XOR-PEER-ADDRESS.
    pub fn xor_peer_address(&mut self, a: SocketAddr) -> &mut Self {
        self.address(attr::XOR_PEER_ADDRESS, a, true)
    }
    /// XOR-RELAYED-ADDRESS.
    pub fn xor_relayed_address(&mut self, a: SocketAddr) -> &mut Self {
        self.address(attr::XOR_RELAYED_ADDRESS, a, true)
    }
    /// ALTERNATE-SERVER.
    pub fn alternate_server(&mut self, a: SocketAddr) -> &mut Self {
        self.address(attr::ALTERNATE_SERVER, a, false)
    }
    /// USERNAME.
    pub fn username(&mut self, u: &str) -> &mut Self {
        self.raw(attr::USERNAME, u.as_bytes())
    }
    /// REALM.
    pub fn realm(&mut self, r: &str) -> &mut Self {
        self.raw(attr::REALM, r.as_bytes())
    }
    /// NONCE.
    pub fn nonce(&mut self, n: &str) -> &mut Self {
        self.raw(attr::NONCE, n.as_bytes())
    }
    /// SOFTWARE.
    pub fn software(&mut self, s: &str) -> &mut Self {
        self.raw(attr::SOFTWARE, s.as_bytes())
    }
    /// USERHASH (32 bytes).
    pub fn userhash(&mut self, h: &[u8; 32]) -> &mut Self {
        self.raw(attr::USERHASH, h)
    }
    /// PASSWORD-ALGORITHMS raw value.
    pub fn password_algorithms(&mut self, v: &[u8]) -> &mut Self {
        self.raw(attr::PASSWORD_ALGORITHMS, v)
    }
    /// ERROR-CODE.
    pub fn error_code(&mut self, code: u16, reason: &str) -> &mut Self {
        let r = reason.as_bytes();
        self.attr_with(attr::ERROR_CODE, 4 + r.len(), |d| {
            d[0] = 0;
            d[1] = 0;
            d[2] = ((code / 100) & 7) as u8;
            d[3] = (code % 100) as u8;
            d[4..].copy_from_slice(r);
        })
    }
    /// UNKNOWN-ATTRIBUTES.
    pub fn unknown_attributes(&mut self, types: &[u16]) -> &mut Self {
        self.attr_with(attr::UNKNOWN_ATTRIBUTES, types.len() * 2, |d| {
            for (c, t) in d.chunks_exact_mut(2).zip(types) {
                c.copy_from_slice(&t.to_be_bytes());
            }
        })
    }
    /// PRIORITY.
    pub fn priority(&mut self, p: u32) -> &mut Self {
        self.raw(attr::PRIORITY, &p.to_be_bytes())
    }
    /// USE-CANDIDATE.
    pub fn use_candidate(&mut self) -> &mut Self {
        self.raw(attr::USE_CANDIDATE, &[])
    }
    /// ICE-CONTROLLING.
    pub fn ice_controlling(&mut self, tie: u64) -> &mut Self {
        self.raw(attr::ICE_CONTROLLING, &tie.to_be_bytes())
    }
    /// ICE-CONTROLLED.
    pub fn ice_controlled(&mut self, tie: u64) -> &mut Self {
        self.raw(attr::ICE_CONTROLLED, &tie.to_be_bytes())
    }
    /// CHANNEL-NUMBER.
    pub fn channel_number(&mut self, ch: u16) -> &mut Self {
        let c = ch.to_be_bytes();
        self.raw(attr::CHANNEL_NUMBER, &[c[0], c[1], 0, 0])
    }
    /// LIFETIME in seconds.
    pub fn lifetime(&mut self, secs: u32) -> &mut Self {
        self.raw(attr::LIFETIME, &secs.to_be_bytes())
    }
    /// DATA.
    pub fn data(&mut self, d: &[u8]) -> &mut Self {
        self.raw(attr::DATA, d)
    }
    /// REQUESTED-TRANSPORT (17 = UDP, 6 = TCP).
    pub fn requested_transport(&mut self, proto: u8) -> &mut Self {
        self.raw(attr::REQUESTED_TRANSPORT, &[proto, 0, 0, 0])
    }
    /// DONT-FRAGMENT.
    pub fn dont_fragment(&mut self) -> &mut Self {
        self.raw(attr::DONT_FRAGMENT, &[])
    }
    /// REQUESTED-ADDRESS-FAMILY (1 = IPv4, 2 = IPv6).
    pub fn requested_address_family(&mut self, fam: u8) -> &mut Self {
        self.raw(attr::REQUESTED_ADDRESS_FAMILY, &[fam, 0, 0, 0])
    }
    /// RESERVATION-TOKEN.
    pub fn reservation_token(&mut self, tok: u64) -> &mut Self {
        self.raw(attr::RESERVATION_TOKEN, &tok.to_be_bytes())
    }
    /// EVEN-PORT.
    pub fn even_port(&mut self, reserve_next: bool) -> &mut Self {
        self.raw(attr::EVEN_PORT, &[if reserve_next { 0x80 } else { 0 }])
    }

    /// Appends MESSAGE-INTEGRITY computed with a raw key.
    pub fn message_integrity(&mut self, key: &[u8]) -> &mut Self {
        self.message_integrity_with(&IntegrityKey::new(key))
    }

    /// Appends MESSAGE-INTEGRITY computed with a pre-keyed HMAC state.
    pub fn message_integrity_with(&mut self, key: &IntegrityKey) -> &mut Self {
        if !self.announce_trailing_attribute(20) {
            return self;
        }
        let mut mac = key.mac.clone();
        mac.update(&self.buf[..self.len]);
        let out = mac.finalize().into_bytes();
        self.attr_with(attr::MESSAGE_INTEGRITY, 20, |d| d.copy_from_slice(&out))
    }

    /// Appends MESSAGE-INTEGRITY-SHA256 (full 32 bytes).
    pub fn message_integrity_sha256(&mut self, key: &[u8]) -> &mut Self {
        if !self.announce_trailing_attribute(32) {
            return self;
        }
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
            return self;
        };
        mac.update(&self.buf[..self.len]);
        let out = mac.finalize().into_bytes();
        self.attr_with(attr::MESSAGE_INTEGRITY_SHA256, 32, |d| {
            d.copy_from_slice(&out)
        })
    }

    /// Appends FINGERPRINT; must be the last attribute.
    pub fn fingerprint(&mut self) -> &mut Self {
        if !self.announce_trailing_attribute(4) {
            return self;
        }
        let crc = crc32fast::hash(&self.buf[..self.len]) ^ FINGERPRINT_XOR;
        self.raw(attr::FINGERPRINT, &crc.to_be_bytes())
    }

    /// Finishes the message, returning the written bytes.
    pub fn finish(&mut self) -> Result<&[u8], StunError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.set_length(self.len - HEADER_LEN);
        Ok(&self.buf[..self.len])
    }

    /// Finishes the message, returning its length in the buffer.
    pub fn finish_len(&mut self) -> Result<usize, StunError> {
        self.finish().map(|b| b.len())
    }
}

/// What kind of packet a datagram is, by its first byte (RFC 7983 / RFC 9443).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// STUN (first byte 0-3).
    Stun,
    /// ZRTP (16-19).
    Zrtp,
    /// DTLS (20-63).
    Dtls,
    /// TURN ChannelData (64-79).
    ChannelData,
    /// RTP (128-191, second byte's payload type not in the RTCP range).
    Rtp,
    /// RTCP (128-191, packet type 192-223 per RFC 5761).
    Rtcp,
    /// Anything else, including empty input.
    Unknown,
}

/// Classifies a datagram by RFC 7983 first-byte ranges (RFC 5761 splits RTP/RTCP).
pub fn classify(buf: &[u8]) -> PacketKind {
    match buf.first() {
        Some(0..=3) => PacketKind::Stun,
        Some(16..=19) => PacketKind::Zrtp,
        Some(20..=63) => PacketKind::Dtls,
        Some(64..=79) => PacketKind::ChannelData,
        Some(128..=191) => match buf.get(1) {
            Some(192..=223) => PacketKind::Rtcp,
            _ => PacketKind::Rtp,
        },
        _ => PacketKind::Unknown,
    }
}

/// RFC 6544 framing of STUN/media over TCP: each packet is preceded by a 2-byte length.
pub mod framing {
    use super::StunError;

    /// Writes `payload` framed with a 2-byte big-endian length into `out`; returns bytes used.
    pub fn encode_frame(payload: &[u8], out: &mut [u8]) -> Result<usize, StunError> {
        let needed = payload.len() + 2;
        if payload.len() > 0xFFFF {
            return Err(StunError::ValueTooLong { attr_type: 0 });
        }
        if out.len() < needed {
            return Err(StunError::BufferTooSmall {
                needed,
                available: out.len(),
            });
        }
        out[..2].copy_from_slice(&(payload.len() as u16).to_be_bytes());
        out[2..needed].copy_from_slice(payload);
        Ok(needed)
    }

    /// If `buf` starts with a complete frame, returns `(payload, bytes_consumed)`.
    pub fn decode_frame(buf: &[u8]) -> Option<(&[u8], usize)> {
        let len = u16::from_be_bytes([*buf.first()?, *buf.get(1)?]) as usize;
        let payload = buf.get(2..2 + len)?;
        Some((payload, 2 + len))
    }

    /// Reassembles RFC 6544 frames from a TCP byte stream. The buffer is allocated once
    /// (64 KiB + 2) at creation.
    #[derive(Debug)]
    pub struct FrameReader {
        buf: Vec<u8>,
        start: usize,
        end: usize,
    }

    impl Default for FrameReader {
        fn default() -> Self {
            Self::new()
        }
    }

    impl FrameReader {
        /// A reader with room for one maximal frame.
        pub fn new() -> Self {
            FrameReader {
                buf: vec![0; 2 * (0xFFFF + 2)],
                start: 0,
                end: 0,
            }
        }

        /// Appends stream bytes; returns how many were accepted (call [`Self::next_frame`]
        /// to drain, then push the rest).
        pub fn push(&mut self, data: &[u8]) -> usize {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let n = data.len().min(self.buf.len() - self.end);
            self.buf[self.end..self.end + n].copy_from_slice(&data[..n]);
            self.end += n;
            n
        }

        /// Returns the next complete frame's payload, if any.
        pub fn next_frame(&mut self) -> Option<&[u8]> {
            let (_, used) = decode_frame(&self.buf[self.start..self.end])?;
            let s = self.start;
            self.start += used;
            self.buf.get(s + 2..s + used)
        }
    }
}

/// Fuzzing entry point: parses `data`, exercises every accessor and the checks.
#[doc(hidden)]
pub fn fuzz_decode(data: &[u8]) -> bool {
    let _ = classify(data);
    let Ok(m) = StunMessage::parse(data) else {
        return false;
    };
    for a in m.typed_attributes() {
        let _ = a;
    }
    let _ = (m.method(), m.class(), m.transaction_id());
    let _ = (
        m.username(),
        m.xor_mapped_address(),
        m.error_code(),
        m.priority(),
    );
    let _ = m.unknown_comprehension_required_all().count();
    let _ = m.verify_integrity(b"key");
    let _ = m.verify_integrity_sha256(b"key");
    let _ = m.verify_fingerprint();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_by_rfc7983_ranges() {
        assert_eq!(classify(&[0x00, 0x01]), PacketKind::Stun);
        assert_eq!(classify(&[0x03]), PacketKind::Stun);
        assert_eq!(classify(&[16]), PacketKind::Zrtp);
        assert_eq!(classify(&[22, 0xfe, 0xfd]), PacketKind::Dtls);
        assert_eq!(classify(&[63]), PacketKind::Dtls);
        assert_eq!(classify(&[0x40, 0x00]), PacketKind::ChannelData);
        assert_eq!(classify(&[79]), PacketKind::ChannelData);
        assert_eq!(classify(&[0x80, 96]), PacketKind::Rtp);
        assert_eq!(classify(&[0x80, 0xE0]), PacketKind::Rtp); // marker + PT 96
        assert_eq!(classify(&[0x81, 200]), PacketKind::Rtcp); // SR
        assert_eq!(classify(&[0x81, 206]), PacketKind::Rtcp); // PSFB
        assert_eq!(classify(&[4]), PacketKind::Unknown);
        assert_eq!(classify(&[200]), PacketKind::Unknown);
        assert_eq!(classify(&[]), PacketKind::Unknown);
    }

    #[test]
    fn rfc6544_framing_round_trip_over_split_stream() {
        let mut stream = Vec::new();
        let mut out = [0u8; 64];
        for p in [&b"first"[..], &b""[..], &b"third packet"[..]] {
            let n = framing::encode_frame(p, &mut out).unwrap();
            stream.extend_from_slice(&out[..n]);
        }
        assert_eq!(&stream[..2], &[0, 5]);
        let mut r = framing::FrameReader::new();
        let mut got: Vec<Vec<u8>> = Vec::new();
        // Feed one byte at a time, as TCP may deliver it.
        for b in &stream {
            assert_eq!(r.push(std::slice::from_ref(b)), 1);
            while let Some(f) = r.next_frame() {
                got.push(f.to_vec());
            }
        }
        assert_eq!(
            got,
            vec![b"first".to_vec(), Vec::new(), b"third packet".to_vec()]
        );
        assert_eq!(framing::decode_frame(&[0, 9, 1]), None);
        assert!(framing::encode_frame(&[0; 63], &mut out).is_err());
    }

    #[test]
    fn builder_reports_overflow() {
        let mut small = [0u8; 30];
        let mut b = MessageBuilder::new(
            &mut small,
            Method::BINDING,
            Class::Request,
            TransactionId([0; 12]),
        );
        b.username("a-long-username").fingerprint();
        assert!(matches!(b.finish(), Err(StunError::BufferTooSmall { .. })));
    }

    #[test]
    fn method_and_class_bits_match_rfc8489() {
        // RFC 8489 §5: Binding request 0x0001, success 0x0101, error 0x0111; TURN Allocate
        // request 0x0003, Data indication 0x0017.
        assert_eq!(message_type(Method::BINDING, Class::Request), 0x0001);
        assert_eq!(message_type(Method::BINDING, Class::Success), 0x0101);
        assert_eq!(message_type(Method::BINDING, Class::Error), 0x0111);
        assert_eq!(message_type(Method::ALLOCATE, Class::Request), 0x0003);
        assert_eq!(message_type(Method::DATA, Class::Indication), 0x0017);
    }

    #[test]
    fn largest_message_fingerprint_beyond_u16_offset() {
        let mut buf = vec![0u8; 70_000];
        let mut b = MessageBuilder::new(
            &mut buf,
            Method::DATA,
            Class::Indication,
            TransactionId([3; 12]),
        );
        b.raw(0xC000, &[7; 65_520]).fingerprint();
        let bytes = b.finish().unwrap().to_vec();
        assert_eq!(bytes.len(), 65_552);
        let m = StunMessage::parse(&bytes).unwrap();
        assert_eq!(m.verify_fingerprint(), Ok(()));
        let mut bad = bytes.clone();
        bad[30] ^= 1;
        assert_eq!(
            StunMessage::parse(&bad).unwrap().verify_fingerprint(),
            Err(IntegrityError::Mismatch)
        );
    }

    #[test]
    fn trailing_attributes_never_overflow_the_length_field() {
        // 4 + 65_528 = 65_532 bytes of body: a FINGERPRINT (8 more) or MESSAGE-INTEGRITY would
        // push the 16-bit message length past 0xFFFF, so the builder must refuse, not wrap.
        let mut buf = vec![0u8; 70_000];
        for with_integrity in [false, true] {
            let mut b = MessageBuilder::new(
                &mut buf,
                Method::DATA,
                Class::Indication,
                TransactionId([4; 12]),
            );
            b.raw(0xC000, &[7; 65_528]);
            if with_integrity {
                b.message_integrity(b"key");
            } else {
                b.fingerprint();
            }
            assert!(
                matches!(b.finish(), Err(StunError::BufferTooSmall { needed, .. }) if needed > 0xFFFF),
                "with_integrity = {with_integrity}"
            );
        }
    }
}
