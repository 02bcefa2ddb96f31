//! SRTP and SRTCP (RFC 3711), with the AEAD AES-GCM profiles (RFC 7714) and the AES-256 key
//! derivation (RFC 6188), keyed from DTLS-SRTP (RFC 5764).
//!
//! One [`SrtpContext`] protects **or** unprotects one direction of a session: the DTLS handshake
//! exports keying material, [`DtlsSrtpKeys`] splits it into the client's and the server's master
//! keys, and each side builds an outbound context from its own key and an inbound one from the
//! peer's ([`SrtpContext::pair_from_dtls`] does all of that). Per-SSRC state (rollover counter,
//! replay window, SRTCP index) is created the first time an SSRC is seen — for inbound packets only
//! once the packet has authenticated, so forged packets cannot create state.
//!
//! Packets are transformed in place. Protecting appends the authentication tag (and, for SRTCP,
//! the E-flag and index word), so the buffer needs [`SrtpProfile::rtp_overhead`] /
//! [`SrtpProfile::rtcp_overhead`] spare bytes: either a `Vec` with enough capacity
//! ([`SrtpContext::protect_rtp`]) or a caller slice ([`SrtpContext::protect_rtp_in_place`]).
//! Unprotecting returns the length of the plain packet at the front of the buffer.
//!
//! ```
//! use tympan_rtp::srtp::{DtlsRole, SrtpConfig, SrtpContext, SrtpProfile};
//!
//! let profile = SrtpProfile::AeadAes128Gcm;
//! // In real use this comes from the DTLS exporter ("EXTRACTOR-dtls_srtp").
//! let material = vec![7u8; profile.keying_material_len()];
//! let (mut client_out, _client_in) =
//!     SrtpContext::pair_from_dtls(profile, &material, DtlsRole::Client, SrtpConfig::default())?;
//! let (_server_out, mut server_in) =
//!     SrtpContext::pair_from_dtls(profile, &material, DtlsRole::Server, SrtpConfig::default())?;
//!
//! // An RTP packet: V=2, PT 96, seq 1, ts 0, SSRC 0x11223344, payload "hello".
//! let rtp = [0x80, 0x60, 0, 1, 0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44, b'h', b'e', b'l', b'l', b'o'];
//! let mut buf = Vec::with_capacity(1500);
//! buf.extend_from_slice(&rtp);
//! client_out.protect_rtp(&mut buf)?;
//! assert_eq!(buf.len(), rtp.len() + profile.rtp_overhead());
//! let copy = buf.clone();
//!
//! let len = server_in.unprotect_rtp(&mut buf)?;
//! assert_eq!(&buf[..len], &rtp[..]);
//!
//! // The same packet again is a replay.
//! let mut replayed = copy;
//! assert!(matches!(
//!     server_in.unprotect_rtp(&mut replayed),
//!     Err(tympan_rtp::srtp::SrtpError::Replayed { index: 1 })
//! ));
//! # Ok::<(), tympan_rtp::srtp::SrtpError>(())
//! ```
//!
//! Not supported: MKI, key derivation rates other than zero, the NULL cipher and the encrypted
//! header extensions of RFC 6904 (none is negotiated by WebRTC's DTLS-SRTP).

mod crypto;
mod packet;
mod replay;

use std::collections::HashMap;
use std::fmt;

use crypto::{AesCtr, AesGcm, GCM_TAG_LEN, HmacSha1, Label};
use packet::{RTCP_HEADER_LEN, rtcp_sender_ssrc, rtp_header};
use replay::ReplayWindow;

/// The largest SRTP packet index (48 bits: 32-bit ROC and 16-bit sequence number).
const MAX_SRTP_INDEX: u64 = (1 << 48) - 1;
/// The largest SRTCP index (31 bits).
const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;
/// The E flag of the SRTCP index word.
const SRTCP_E_FLAG: u32 = 0x8000_0000;
/// Length of the SRTCP E flag + index word.
const SRTCP_INDEX_LEN: usize = 4;
/// Length of the HMAC-SHA1-80 tag (also the SRTCP tag of both AES-CM profiles, RFC 5764 §4.1.2).
const HMAC_SHA1_80_LEN: usize = 10;
/// Length of the HMAC-SHA1-32 tag.
const HMAC_SHA1_32_LEN: usize = 4;
/// Length of the AES-CM session salt.
const CM_SALT_LEN: usize = 14;
/// Length of the AES-GCM session salt.
const GCM_SALT_LEN: usize = 12;
/// Length of the HMAC-SHA1 session authentication key.
const AUTH_KEY_LEN: usize = 20;
/// The smallest replay window RFC 3711 §3.3.2 allows.
const MIN_REPLAY_WINDOW: usize = 64;
/// The largest replay window: beyond 2^15 the index estimation of RFC 3711 §3.3.1 could not tell
/// an old packet from a rolled-over one anyway.
const MAX_REPLAY_WINDOW: usize = 1 << 15;

/// An SRTP protection profile (RFC 5764 §4.1.2, RFC 7714 §14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    /// `SRTP_AES128_CM_HMAC_SHA1_80`: AES-128 counter mode, 80-bit HMAC-SHA1 tag.
    AesCm128HmacSha1_80,
    /// `SRTP_AES128_CM_HMAC_SHA1_32`: AES-128 counter mode, 32-bit HMAC-SHA1 tag on SRTP (SRTCP
    /// keeps the 80-bit tag).
    AesCm128HmacSha1_32,
    /// `SRTP_AEAD_AES_128_GCM`: AES-128-GCM with a 16-octet tag.
    AeadAes128Gcm,
    /// `SRTP_AEAD_AES_256_GCM`: AES-256-GCM with a 16-octet tag.
    AeadAes256Gcm,
}

impl SrtpProfile {
    /// All profiles, in the order of their DTLS-SRTP identifiers.
    pub const ALL: [SrtpProfile; 4] = [
        SrtpProfile::AesCm128HmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32,
        SrtpProfile::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm,
    ];

    /// Length of the master key in octets.
    pub const fn master_key_len(self) -> usize {
        match self {
            Self::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Length of the master salt in octets (14 for AES-CM, 12 for AES-GCM).
    pub const fn master_salt_len(self) -> usize {
        if self.is_aead() {
            GCM_SALT_LEN
        } else {
            CM_SALT_LEN
        }
    }

    /// Whether this is an AEAD (AES-GCM) profile.
    pub const fn is_aead(self) -> bool {
        matches!(self, Self::AeadAes128Gcm | Self::AeadAes256Gcm)
    }

    /// Length of the SRTP authentication tag.
    pub const fn rtp_tag_len(self) -> usize {
        match self {
            Self::AesCm128HmacSha1_80 => HMAC_SHA1_80_LEN,
            Self::AesCm128HmacSha1_32 => HMAC_SHA1_32_LEN,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => GCM_TAG_LEN,
        }
    }

    /// Length of the SRTCP authentication tag.
    pub const fn rtcp_tag_len(self) -> usize {
        if self.is_aead() {
            GCM_TAG_LEN
        } else {
            HMAC_SHA1_80_LEN
        }
    }

    /// Octets that protecting adds to an RTP packet (the tag).
    pub const fn rtp_overhead(self) -> usize {
        self.rtp_tag_len()
    }

    /// Octets that protecting adds to an RTCP packet (tag and E-flag/index word).
    pub const fn rtcp_overhead(self) -> usize {
        self.rtcp_tag_len() + SRTCP_INDEX_LEN
    }

    /// Length of the DTLS-SRTP keying material to export for this profile (RFC 5764 §4.2):
    /// `2 * (master key + master salt)`.
    pub const fn keying_material_len(self) -> usize {
        2 * (self.master_key_len() + self.master_salt_len())
    }

    /// The DTLS `use_srtp` protection profile identifier.
    pub const fn dtls_id(self) -> u16 {
        match self {
            Self::AesCm128HmacSha1_80 => 0x0001,
            Self::AesCm128HmacSha1_32 => 0x0002,
            Self::AeadAes128Gcm => 0x0007,
            Self::AeadAes256Gcm => 0x0008,
        }
    }

    /// The profile with a DTLS `use_srtp` identifier, if supported.
    pub const fn from_dtls_id(id: u16) -> Option<Self> {
        match id {
            0x0001 => Some(Self::AesCm128HmacSha1_80),
            0x0002 => Some(Self::AesCm128HmacSha1_32),
            0x0007 => Some(Self::AeadAes128Gcm),
            0x0008 => Some(Self::AeadAes256Gcm),
            _ => None,
        }
    }

    /// The profile's name as registered by RFC 5764/7714 (and understood by OpenSSL's
    /// `SSL_CTX_set_tlsext_use_srtp`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::AesCm128HmacSha1_80 => "SRTP_AES128_CM_SHA1_80",
            Self::AesCm128HmacSha1_32 => "SRTP_AES128_CM_SHA1_32",
            Self::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            Self::AeadAes256Gcm => "SRTP_AEAD_AES_256_GCM",
        }
    }
}

impl fmt::Display for SrtpProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a packet could not be protected or unprotected, or a context not built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SrtpError {
    /// The packet is shorter than the smallest valid packet.
    TooShort {
        /// Length of the packet.
        len: usize,
        /// Minimum length required.
        needed: usize,
    },
    /// The RTP/RTCP version field is not 2.
    BadVersion {
        /// The version found.
        version: u8,
    },
    /// A header field claims more octets than the packet has.
    HeaderOverrun {
        /// The field that overran.
        field: &'static str,
        /// Offset at which the packet ended while reading it.
        offset: usize,
    },
    /// The caller's buffer has no room for the trailer that protecting appends.
    BufferTooSmall {
        /// Octets required.
        needed: usize,
        /// Octets available.
        available: usize,
    },
    /// The authentication tag does not match: forged, corrupted, or wrong key/ROC.
    AuthenticationFailed,
    /// This packet index was already received.
    Replayed {
        /// The packet index (48-bit for SRTP, 31-bit for SRTCP).
        index: u64,
    },
    /// The packet index is older than the replay window.
    TooOld {
        /// The packet index.
        index: u64,
        /// The highest index received so far.
        highest: u64,
    },
    /// The SRTP (2^48) or SRTCP (2^31) index space is used up: the session must be re-keyed.
    KeyExhausted,
    /// A new SSRC was seen but the configured stream limit is reached.
    TooManyStreams {
        /// The configured limit.
        limit: usize,
    },
    /// A key or salt has the wrong length for the profile.
    BadKeyLength {
        /// Which key.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// OpenSSL reported an error (not expected with valid keys).
    Crypto {
        /// The operation that failed.
        operation: &'static str,
    },
}

impl fmt::Display for SrtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len, needed } => {
                write!(f, "packet of {len} octets is shorter than {needed}")
            }
            Self::BadVersion { version } => write!(f, "version {version}, expected 2"),
            Self::HeaderOverrun { field, offset } => {
                write!(
                    f,
                    "{field} runs past the end of the packet at offset {offset}"
                )
            }
            Self::BufferTooSmall { needed, available } => {
                write!(f, "buffer of {available} octets, {needed} needed")
            }
            Self::AuthenticationFailed => f.write_str("authentication tag mismatch"),
            Self::Replayed { index } => write!(f, "packet index {index} replayed"),
            Self::TooOld { index, highest } => {
                write!(
                    f,
                    "packet index {index} is behind the replay window (highest {highest})"
                )
            }
            Self::KeyExhausted => f.write_str("index space exhausted, re-keying required"),
            Self::TooManyStreams { limit } => write!(f, "stream limit of {limit} SSRCs reached"),
            Self::BadKeyLength {
                what,
                expected,
                got,
            } => {
                write!(f, "{what} of {got} octets, expected {expected}")
            }
            Self::Crypto { operation } => write!(f, "OpenSSL failure in {operation}"),
        }
    }
}

impl std::error::Error for SrtpError {}

/// A master key and master salt for one direction.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpMasterKey {
    key: [u8; 32],
    key_len: usize,
    salt: [u8; CM_SALT_LEN],
    salt_len: usize,
}

impl SrtpMasterKey {
    /// A master key and salt of the lengths `profile` requires.
    pub fn new(profile: SrtpProfile, key: &[u8], salt: &[u8]) -> Result<Self, SrtpError> {
        if key.len() != profile.master_key_len() {
            return Err(SrtpError::BadKeyLength {
                what: "master key",
                expected: profile.master_key_len(),
                got: key.len(),
            });
        }
        if salt.len() != profile.master_salt_len() {
            return Err(SrtpError::BadKeyLength {
                what: "master salt",
                expected: profile.master_salt_len(),
                got: salt.len(),
            });
        }
        let mut k = [0u8; 32];
        k[..key.len()].copy_from_slice(key);
        let mut s = [0u8; CM_SALT_LEN];
        s[..salt.len()].copy_from_slice(salt);
        Ok(Self {
            key: k,
            key_len: key.len(),
            salt: s,
            salt_len: salt.len(),
        })
    }

    /// The master key.
    pub fn key(&self) -> &[u8] {
        &self.key[..self.key_len]
    }

    /// The master salt.
    pub fn salt(&self) -> &[u8] {
        &self.salt[..self.salt_len]
    }
}

impl fmt::Debug for SrtpMasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpMasterKey")
            .field("key_len", &self.key_len)
            .field("salt_len", &self.salt_len)
            .finish_non_exhaustive()
    }
}

/// Which end of the DTLS handshake we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsRole {
    /// The DTLS client.
    Client,
    /// The DTLS server.
    Server,
}

/// The two master keys of a DTLS-SRTP session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtlsSrtpKeys {
    /// Protects what the DTLS client sends.
    pub client_write: SrtpMasterKey,
    /// Protects what the DTLS server sends.
    pub server_write: SrtpMasterKey,
}

impl DtlsSrtpKeys {
    /// Splits exported keying material (RFC 5764 §4.2): client write key, server write key,
    /// client write salt, server write salt.
    pub fn from_keying_material(profile: SrtpProfile, material: &[u8]) -> Result<Self, SrtpError> {
        if material.len() != profile.keying_material_len() {
            return Err(SrtpError::BadKeyLength {
                what: "DTLS-SRTP keying material",
                expected: profile.keying_material_len(),
                got: material.len(),
            });
        }
        let (k, s) = (profile.master_key_len(), profile.master_salt_len());
        let (client_key, rest) = material.split_at(k);
        let (server_key, rest) = rest.split_at(k);
        let (client_salt, server_salt) = rest.split_at(s);
        Ok(Self {
            client_write: SrtpMasterKey::new(profile, client_key, client_salt)?,
            server_write: SrtpMasterKey::new(profile, server_key, server_salt)?,
        })
    }

    /// The key that protects what `role` sends.
    pub fn outbound(&self, role: DtlsRole) -> &SrtpMasterKey {
        match role {
            DtlsRole::Client => &self.client_write,
            DtlsRole::Server => &self.server_write,
        }
    }

    /// The key that protects what `role` receives.
    pub fn inbound(&self, role: DtlsRole) -> &SrtpMasterKey {
        match role {
            DtlsRole::Client => &self.server_write,
            DtlsRole::Server => &self.client_write,
        }
    }
}

/// Tuning of an [`SrtpContext`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrtpConfig {
    /// Replay window size in packets (clamped to 64..=32768, rounded up to a multiple of 64).
    /// Default 128.
    pub replay_window: usize,
    /// Allow protecting the same RTP packet index twice (retransmission without RTX). The payload
    /// MUST then be identical, or the keystream reuse leaks plaintext. Default `false`, like
    /// libsrtp.
    pub allow_repeat_tx: bool,
    /// Maximum number of SSRCs tracked per packet kind and direction. Default 1024.
    pub max_streams: usize,
}

impl Default for SrtpConfig {
    fn default() -> Self {
        Self {
            replay_window: 128,
            allow_repeat_tx: false,
            max_streams: 1024,
        }
    }
}

/// AES-CM + HMAC-SHA1 session keys of one packet kind.
struct CmTransform {
    ctr: AesCtr,
    salt: [u8; CM_SALT_LEN],
    mac: HmacSha1,
}

/// AES-GCM session keys of one packet kind.
struct GcmTransform {
    gcm: AesGcm,
    salt: [u8; GCM_SALT_LEN],
}

/// The keyed transform of one packet kind (SRTP or SRTCP).
enum Transform {
    Cm(CmTransform),
    Gcm(GcmTransform),
}

impl Transform {
    /// Derives the session keys of one packet kind from the master key.
    fn derive(
        profile: SrtpProfile,
        master: &SrtpMasterKey,
        labels: [Label; 3],
    ) -> Result<Self, SrtpError> {
        let [enc, auth, salt_label] = labels;
        let mut key = [0u8; 32];
        let key = &mut key[..profile.master_key_len()];
        crypto::derive(master.key(), master.salt(), enc, key)?;
        if profile.is_aead() {
            let mut salt = [0u8; GCM_SALT_LEN];
            crypto::derive(master.key(), master.salt(), salt_label, &mut salt)?;
            Self::gcm(key, salt)
        } else {
            let mut salt = [0u8; CM_SALT_LEN];
            crypto::derive(master.key(), master.salt(), salt_label, &mut salt)?;
            let mut auth_key = [0u8; AUTH_KEY_LEN];
            crypto::derive(master.key(), master.salt(), auth, &mut auth_key)?;
            Self::cm(key, salt, &auth_key)
        }
    }

    /// AES-CM + HMAC-SHA1 from session keys.
    fn cm(key: &[u8], salt: [u8; CM_SALT_LEN], auth_key: &[u8]) -> Result<Self, SrtpError> {
        Ok(Self::Cm(CmTransform {
            ctr: AesCtr::new(key)?,
            salt,
            mac: HmacSha1::new(auth_key)?,
        }))
    }

    /// AES-GCM from session keys.
    fn gcm(key: &[u8], salt: [u8; GCM_SALT_LEN]) -> Result<Self, SrtpError> {
        Ok(Self::Gcm(GcmTransform {
            gcm: AesGcm::new(key)?,
            salt,
        }))
    }
}

/// The AES-CM IV (RFC 3711 §4.1.1): `(salt·2^16) XOR (SSRC·2^64) XOR (index·2^16)`.
fn cm_iv(salt: &[u8; CM_SALT_LEN], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..CM_SALT_LEN].copy_from_slice(salt);
    for (d, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *d ^= s;
    }
    for (d, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *d ^= s;
    }
    iv
}

/// The AES-GCM IV (RFC 7714 §8.1 and §9.1): `(00 00 || SSRC || 48-bit index) XOR salt`, where the
/// SRTP index is `ROC || SEQ` and the SRTCP index is `00 00 || 0 || 31-bit index`.
fn gcm_iv(salt: &[u8; GCM_SALT_LEN], ssrc: u32, index: u64) -> [u8; 12] {
    let mut iv = *salt;
    for (d, s) in iv[2..6].iter_mut().zip(ssrc.to_be_bytes()) {
        *d ^= s;
    }
    for (d, s) in iv[6..12].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *d ^= s;
    }
    iv
}

/// Estimates the 48-bit packet index of sequence number `seq` given the highest index received
/// (RFC 3711 §3.3.1 and Appendix A). The ROC is never guessed below zero.
fn estimate_index(highest: u64, seq: u16) -> u64 {
    let roc = highest >> 16;
    let s_l = highest as u16;
    let v = if s_l < 0x8000 {
        if i32::from(seq) - i32::from(s_l) > 0x8000 && roc > 0 {
            roc - 1
        } else {
            roc
        }
    } else if i32::from(s_l) - 0x8000 > i32::from(seq) {
        roc + 1
    } else {
        roc
    };
    (v << 16) | u64::from(seq)
}

/// One direction of an SRTP session: the keyed transforms and per-SSRC state.
///
/// Use one context to protect what you send and another to unprotect what you receive (the
/// per-SSRC state of the two directions is kept apart even within one context, so a loopback
/// test can also use a single one).
pub struct SrtpContext {
    profile: SrtpProfile,
    config: SrtpConfig,
    rtp: Transform,
    rtcp: Transform,
    /// Sender state per SSRC: highest index protected (and, unless repeats are allowed, which).
    tx_rtp: HashMap<u32, ReplayWindow>,
    /// Receiver state per SSRC: highest index (hence ROC) and replay window.
    rx_rtp: HashMap<u32, ReplayWindow>,
    /// Next SRTCP index per SSRC.
    tx_rtcp: HashMap<u32, u32>,
    /// SRTCP replay window per SSRC.
    rx_rtcp: HashMap<u32, ReplayWindow>,
}

impl fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .field("config", &self.config)
            .field("rtp_streams", &(self.tx_rtp.len() + self.rx_rtp.len()))
            .field("rtcp_streams", &(self.tx_rtcp.len() + self.rx_rtcp.len()))
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    /// A context for `profile` keyed from `master` (session keys are derived here, once).
    pub fn new(
        profile: SrtpProfile,
        master: &SrtpMasterKey,
        config: SrtpConfig,
    ) -> Result<Self, SrtpError> {
        if master.key().len() != profile.master_key_len()
            || master.salt().len() != profile.master_salt_len()
        {
            return Err(SrtpError::BadKeyLength {
                what: "master key for this profile",
                expected: profile.master_key_len() + profile.master_salt_len(),
                got: master.key().len() + master.salt().len(),
            });
        }
        let rtp = Transform::derive(
            profile,
            master,
            [
                Label::RtpEncryption,
                Label::RtpAuthentication,
                Label::RtpSalt,
            ],
        )?;
        let rtcp = Transform::derive(
            profile,
            master,
            [
                Label::RtcpEncryption,
                Label::RtcpAuthentication,
                Label::RtcpSalt,
            ],
        )?;
        Ok(Self::with_transforms(profile, config, rtp, rtcp))
    }

    /// The outbound and inbound contexts of a DTLS-SRTP session for our `role`, from the exported
    /// keying material (`profile.keying_material_len()` octets).
    pub fn pair_from_dtls(
        profile: SrtpProfile,
        keying_material: &[u8],
        role: DtlsRole,
        config: SrtpConfig,
    ) -> Result<(Self, Self), SrtpError> {
        let keys = DtlsSrtpKeys::from_keying_material(profile, keying_material)?;
        Ok((
            Self::new(profile, keys.outbound(role), config)?,
            Self::new(profile, keys.inbound(role), config)?,
        ))
    }

    fn with_transforms(
        profile: SrtpProfile,
        mut config: SrtpConfig,
        rtp: Transform,
        rtcp: Transform,
    ) -> Self {
        config.replay_window = config
            .replay_window
            .clamp(MIN_REPLAY_WINDOW, MAX_REPLAY_WINDOW);
        Self {
            profile,
            config,
            rtp,
            rtcp,
            tx_rtp: HashMap::new(),
            rx_rtp: HashMap::new(),
            tx_rtcp: HashMap::new(),
            rx_rtcp: HashMap::new(),
        }
    }

    /// The profile of this context.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// The rollover counter of an SSRC's RTP stream, if known: the sender's when this context
    /// protects it, otherwise the receiver's estimate.
    pub fn rtp_roc(&self, ssrc: u32) -> Option<u32> {
        self.tx_rtp
            .get(&ssrc)
            .or_else(|| self.rx_rtp.get(&ssrc))
            .map(|w| (w.highest() >> 16) as u32)
    }

    /// Forgets an SSRC (e.g. after RTCP BYE), in both directions and for RTP and RTCP.
    pub fn remove_stream(&mut self, ssrc: u32) {
        self.tx_rtp.remove(&ssrc);
        self.rx_rtp.remove(&ssrc);
        self.tx_rtcp.remove(&ssrc);
        self.rx_rtcp.remove(&ssrc);
    }

    /// Protects the RTP packet in `packet`, appending the tag. Does not allocate when the
    /// capacity already has room for [`SrtpProfile::rtp_overhead`] more octets.
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let len = packet.len();
        packet.resize(len + self.profile.rtp_overhead(), 0);
        match self.protect_rtp_in_place(packet, len) {
            Ok(total) => {
                packet.truncate(total);
                Ok(())
            }
            Err(e) => {
                packet.truncate(len);
                Err(e)
            }
        }
    }

    /// Protects the RTP packet in `buf[..len]`, writing the tag after it; returns the protected
    /// length. `buf` needs [`SrtpProfile::rtp_overhead`] octets of room after `len`.
    pub fn protect_rtp_in_place(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtp_tag_len();
        let total = len + tag_len;
        if buf.len() < total {
            return Err(SrtpError::BufferTooSmall {
                needed: total,
                available: buf.len(),
            });
        }
        let hdr = rtp_header(&buf[..len])?;
        let index = self.next_tx_rtp_index(hdr.ssrc, hdr.sequence)?;
        let (head, rest) = buf[..total].split_at_mut(hdr.header_len);
        let (payload, tag) = rest.split_at_mut(len - hdr.header_len);
        match &mut self.rtp {
            Transform::Cm(t) => {
                t.ctr.apply(&cm_iv(&t.salt, hdr.ssrc, index), payload)?;
                let roc = ((index >> 16) as u32).to_be_bytes();
                // The MAC covers header || encrypted payload || ROC (RFC 3711 §4.2).
                let mac = hmac_over_split(&t.mac, head, payload, &roc);
                tag.copy_from_slice(&mac[..tag_len]);
            }
            Transform::Gcm(t) => {
                t.gcm
                    .seal(&gcm_iv(&t.salt, hdr.ssrc, index), head, &[], payload, tag)?;
            }
        }
        Ok(total)
    }

    /// Chooses (and records) the index of an outgoing RTP packet.
    fn next_tx_rtp_index(&mut self, ssrc: u32, seq: u16) -> Result<u64, SrtpError> {
        let window = self.config.replay_window;
        let limit = self.config.max_streams;
        let streams = self.tx_rtp.len();
        match self.tx_rtp.get_mut(&ssrc) {
            Some(w) => {
                let index = estimate_index(w.highest(), seq);
                if index > MAX_SRTP_INDEX {
                    return Err(SrtpError::KeyExhausted);
                }
                if !self.config.allow_repeat_tx {
                    w.check(index)?;
                }
                w.accept(index);
                Ok(index)
            }
            None => {
                if streams >= limit {
                    return Err(SrtpError::TooManyStreams { limit });
                }
                self.tx_rtp
                    .insert(ssrc, ReplayWindow::new(window, u64::from(seq)));
                Ok(u64::from(seq))
            }
        }
    }

    /// Verifies and decrypts the SRTP packet in `packet` in place; returns the length of the RTP
    /// packet now at its front. Replays, packets behind the replay window and packets whose tag
    /// does not verify are rejected; on error the buffer content is unspecified.
    pub fn unprotect_rtp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtp_tag_len();
        let len = packet.len();
        let Some(body_len) = len.checked_sub(tag_len).filter(|b| *b >= 12) else {
            return Err(SrtpError::TooShort {
                len,
                needed: 12 + tag_len,
            });
        };
        let hdr = rtp_header(&packet[..body_len])?;
        let known = self.rx_rtp.get(&hdr.ssrc);
        let index = match known {
            Some(w) => {
                let index = estimate_index(w.highest(), hdr.sequence);
                if index > MAX_SRTP_INDEX {
                    return Err(SrtpError::KeyExhausted);
                }
                w.check(index)?;
                index
            }
            None => {
                if self.rx_rtp.len() >= self.config.max_streams {
                    return Err(SrtpError::TooManyStreams {
                        limit: self.config.max_streams,
                    });
                }
                u64::from(hdr.sequence)
            }
        };
        let is_new = known.is_none();
        let (body, tag) = packet.split_at_mut(body_len);
        let (head, payload) = body.split_at_mut(hdr.header_len);
        match &mut self.rtp {
            Transform::Cm(t) => {
                let roc = ((index >> 16) as u32).to_be_bytes();
                let mac = hmac_over_split(&t.mac, head, payload, &roc);
                if !crypto::tags_equal(&mac[..tag_len], tag) {
                    return Err(SrtpError::AuthenticationFailed);
                }
                t.ctr.apply(&cm_iv(&t.salt, hdr.ssrc, index), payload)?;
            }
            Transform::Gcm(t) => {
                t.gcm
                    .open(&gcm_iv(&t.salt, hdr.ssrc, index), head, &[], payload, tag)?;
            }
        }
        if is_new {
            let window = self.config.replay_window;
            self.rx_rtp
                .insert(hdr.ssrc, ReplayWindow::new(window, index));
        } else if let Some(w) = self.rx_rtp.get_mut(&hdr.ssrc) {
            w.accept(index);
        }
        Ok(body_len)
    }

    /// Protects the RTCP (compound) packet in `packet`, appending the E-flag/index word and tag
    /// (the whole packet after the first 8 octets is encrypted). Does not allocate when the
    /// capacity already has room for [`SrtpProfile::rtcp_overhead`] more octets.
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let len = packet.len();
        packet.resize(len + self.profile.rtcp_overhead(), 0);
        match self.protect_rtcp_in_place(packet, len) {
            Ok(total) => {
                packet.truncate(total);
                Ok(())
            }
            Err(e) => {
                packet.truncate(len);
                Err(e)
            }
        }
    }

    /// Protects the RTCP packet in `buf[..len]` in place; returns the protected length. `buf`
    /// needs [`SrtpProfile::rtcp_overhead`] octets of room after `len`.
    pub fn protect_rtcp_in_place(
        &mut self,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtcp_tag_len();
        let total = len + SRTCP_INDEX_LEN + tag_len;
        if buf.len() < total {
            return Err(SrtpError::BufferTooSmall {
                needed: total,
                available: buf.len(),
            });
        }
        let ssrc = rtcp_sender_ssrc(&buf[..len])?;
        let index = self.next_tx_rtcp_index(ssrc)?;
        let word = (SRTCP_E_FLAG | index).to_be_bytes();
        let (head, rest) = buf[..total].split_at_mut(RTCP_HEADER_LEN);
        let (payload, trailer) = rest.split_at_mut(len - RTCP_HEADER_LEN);
        match &mut self.rtcp {
            Transform::Cm(t) => {
                // header || encrypted || E+index || tag; the tag covers all before it.
                t.ctr
                    .apply(&cm_iv(&t.salt, ssrc, u64::from(index)), payload)?;
                let (index_word, tag) = trailer.split_at_mut(SRTCP_INDEX_LEN);
                index_word.copy_from_slice(&word);
                let mac = hmac_over_split(&t.mac, head, payload, index_word);
                tag.copy_from_slice(&mac[..tag_len]);
            }
            Transform::Gcm(t) => {
                // header || encrypted || tag || E+index; AAD is header || E+index (RFC 7714 §9).
                let (tag, index_word) = trailer.split_at_mut(tag_len);
                index_word.copy_from_slice(&word);
                let iv = gcm_iv(&t.salt, ssrc, u64::from(index));
                t.gcm.seal(&iv, head, index_word, payload, tag)?;
            }
        }
        Ok(total)
    }

    /// Chooses the SRTCP index of an outgoing packet (0 for the first, RFC 3711 §3.4).
    fn next_tx_rtcp_index(&mut self, ssrc: u32) -> Result<u32, SrtpError> {
        let limit = self.config.max_streams;
        let streams = self.tx_rtcp.len();
        let next = match self.tx_rtcp.get_mut(&ssrc) {
            Some(next) => next,
            None => {
                if streams >= limit {
                    return Err(SrtpError::TooManyStreams { limit });
                }
                self.tx_rtcp.entry(ssrc).or_insert(0)
            }
        };
        let index = *next;
        if index > MAX_SRTCP_INDEX {
            return Err(SrtpError::KeyExhausted);
        }
        *next = index + 1;
        Ok(index)
    }

    /// Verifies and (if its E flag is set) decrypts the SRTCP packet in `packet` in place; returns
    /// the length of the RTCP packet now at its front. On error the buffer content is unspecified.
    pub fn unprotect_rtcp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtcp_tag_len();
        let len = packet.len();
        let needed = RTCP_HEADER_LEN + SRTCP_INDEX_LEN + tag_len;
        if len < needed {
            return Err(SrtpError::TooShort { len, needed });
        }
        let body_len = len - SRTCP_INDEX_LEN - tag_len;
        let ssrc = rtcp_sender_ssrc(&packet[..body_len])?;
        let word_at = if self.profile.is_aead() {
            len - SRTCP_INDEX_LEN
        } else {
            body_len
        };
        let mut word = [0u8; SRTCP_INDEX_LEN];
        word.copy_from_slice(&packet[word_at..word_at + SRTCP_INDEX_LEN]);
        let word = u32::from_be_bytes(word);
        let encrypted = word & SRTCP_E_FLAG != 0;
        let index = word & MAX_SRTCP_INDEX;
        let known = self.rx_rtcp.get(&ssrc);
        match known {
            Some(w) => w.check(u64::from(index))?,
            None if self.rx_rtcp.len() >= self.config.max_streams => {
                return Err(SrtpError::TooManyStreams {
                    limit: self.config.max_streams,
                });
            }
            None => {}
        }
        let is_new = known.is_none();
        let (body, trailer) = packet.split_at_mut(body_len);
        match &mut self.rtcp {
            Transform::Cm(t) => {
                let (index_word, tag) = trailer.split_at(SRTCP_INDEX_LEN);
                let (head, payload) = body.split_at_mut(RTCP_HEADER_LEN);
                let mac = hmac_over_split(&t.mac, head, payload, index_word);
                if !crypto::tags_equal(&mac[..tag_len], tag) {
                    return Err(SrtpError::AuthenticationFailed);
                }
                if encrypted {
                    t.ctr
                        .apply(&cm_iv(&t.salt, ssrc, u64::from(index)), payload)?;
                }
            }
            Transform::Gcm(t) => {
                let (tag, index_word) = trailer.split_at(tag_len);
                let iv = gcm_iv(&t.salt, ssrc, u64::from(index));
                if encrypted {
                    let (head, payload) = body.split_at_mut(RTCP_HEADER_LEN);
                    t.gcm.open(&iv, head, index_word, payload, tag)?;
                } else {
                    // Authentication only: the whole packet and the index word are AAD.
                    t.gcm.open(&iv, body, index_word, &mut [], tag)?;
                }
            }
        }
        if is_new {
            let window = self.config.replay_window;
            self.rx_rtcp
                .insert(ssrc, ReplayWindow::new(window, u64::from(index)));
        } else if let Some(w) = self.rx_rtcp.get_mut(&ssrc) {
            w.accept(u64::from(index));
        }
        Ok(body_len)
    }
}

/// HMAC-SHA1 over `a || b || c` (the packet is split around the in-place payload).
fn hmac_over_split(mac: &HmacSha1, a: &[u8], b: &[u8], c: &[u8]) -> [u8; 20] {
    mac.mac3(a, b, c)
}

/// Fuzzing entry point (`fuzz/fuzz_targets/srtp_unprotect.rs`): the first octet picks the
/// profile (bits 0–1) and RTP or RTCP (bit 2); the rest is unprotected by a fixed-key context
/// (must not panic), then, as plaintext, protected and unprotected again (must round-trip, and a
/// replay and a one-bit forgery must be rejected).
#[doc(hidden)]
pub fn fuzz_unprotect(data: &[u8]) {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let profile = SrtpProfile::ALL[usize::from(selector & 3)];
    let rtcp = selector & 4 != 0;
    let master = SrtpMasterKey::new(
        profile,
        &[0x5a; 32][..profile.master_key_len()],
        &[0xa5; CM_SALT_LEN][..profile.master_salt_len()],
    )
    .expect("fixed key has the profile's lengths");
    let new = || SrtpContext::new(profile, &master, SrtpConfig::default()).expect("valid key");
    let unprotect = |ctx: &mut SrtpContext, buf: &mut [u8]| {
        if rtcp {
            ctx.unprotect_rtcp(buf)
        } else {
            ctx.unprotect_rtp(buf)
        }
    };

    // 1. Arbitrary bytes as SRTP/SRTCP: a typed error or a shorter plain packet, never a panic.
    let mut buf = input.to_vec();
    if let Ok(n) = unprotect(&mut new(), &mut buf) {
        assert!(n <= input.len());
    }

    // 2. The same bytes as plaintext: protect, then unprotect must give them back.
    let mut tx = new();
    let mut packet = input.to_vec();
    let protected = if rtcp {
        tx.protect_rtcp(&mut packet)
    } else {
        tx.protect_rtp(&mut packet)
    };
    if protected.is_ok() {
        let mut rx = new();
        let mut forged = packet.clone();
        let mut replay = packet.clone();
        let n = unprotect(&mut rx, &mut packet).expect("own packet must unprotect");
        assert_eq!(&packet[..n], input);
        assert!(unprotect(&mut rx, &mut replay).is_err(), "replay accepted");
        let bit = usize::from(selector >> 3) % (forged.len() * 8);
        forged[bit / 8] ^= 1 << (bit % 8);
        assert!(
            unprotect(&mut new(), &mut forged).is_err(),
            "forgery accepted"
        );
    }
}

#[cfg(test)]
mod tests;
