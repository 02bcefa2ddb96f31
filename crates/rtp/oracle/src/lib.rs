//! Differential oracle for `tympan_rtp::srtp` against libsrtp2 (through the `srtp` crate).
//!
//! This package is its own workspace (building libsrtp2's bindings needs libclang), run by
//! `.ci/steps/30-srtp-oracle.sh`. The helpers here build matching tympan and libsrtp2 sessions
//! and random RTP/RTCP packets; `tests/differential.rs` and `benches/libsrtp.rs` use them.

use rand::Rng;
use srtp::{CryptoPolicy, Session, StreamPolicy};
use tympan_rtp::srtp::{SrtpConfig, SrtpContext, SrtpMasterKey, SrtpProfile};

/// The libsrtp2 crypto policies (SRTP, SRTCP) of a profile. The `_32` profile keeps the 80-bit
/// tag on SRTCP (RFC 5764 §4.1.2).
pub fn libsrtp_policies(profile: SrtpProfile) -> (CryptoPolicy, CryptoPolicy) {
    match profile {
        SrtpProfile::AesCm128HmacSha1_80 => (
            CryptoPolicy::aes_cm_128_hmac_sha1_80(),
            CryptoPolicy::aes_cm_128_hmac_sha1_80(),
        ),
        SrtpProfile::AesCm128HmacSha1_32 => (
            CryptoPolicy::aes_cm_128_hmac_sha1_32(),
            CryptoPolicy::aes_cm_128_hmac_sha1_80(),
        ),
        SrtpProfile::AeadAes128Gcm => (
            CryptoPolicy::aes_gcm_128_16_auth(),
            CryptoPolicy::aes_gcm_128_16_auth(),
        ),
        SrtpProfile::AeadAes256Gcm => (
            CryptoPolicy::aes_gcm_256_16_auth(),
            CryptoPolicy::aes_gcm_256_16_auth(),
        ),
    }
}

/// A random master key and salt for `profile`, also returned concatenated (libsrtp's form).
pub fn random_master(profile: SrtpProfile, rng: &mut impl Rng) -> (SrtpMasterKey, Vec<u8>) {
    let mut key_salt = vec![0u8; profile.master_key_len() + profile.master_salt_len()];
    rng.fill(&mut key_salt[..]);
    let (key, salt) = key_salt.split_at(profile.master_key_len());
    (
        SrtpMasterKey::new(profile, key, salt).expect("lengths from the profile"),
        key_salt,
    )
}

/// A libsrtp2 session that protects (outbound) or unprotects (inbound) any SSRC.
pub fn libsrtp_session(profile: SrtpProfile, key_salt: &[u8], outbound: bool) -> Session {
    let (rtp, rtcp) = libsrtp_policies(profile);
    let policy = StreamPolicy {
        rtp,
        rtcp,
        key: key_salt,
        window_size: 128,
        ..Default::default()
    };
    let session = if outbound {
        Session::with_outbound_template(policy)
    } else {
        Session::with_inbound_template(policy)
    };
    session.expect("libsrtp accepts the policy")
}

/// A tympan context with the default configuration.
pub fn tympan_context(profile: SrtpProfile, master: &SrtpMasterKey) -> SrtpContext {
    SrtpContext::new(profile, master, SrtpConfig::default()).expect("valid master key")
}

/// A random RTP packet: random marker/PT/timestamp, 0–3 CSRCs, an optional RFC 8285 one-byte
/// header extension block, and `payload_len` random payload octets.
pub fn random_rtp(rng: &mut impl Rng, seq: u16, ssrc: u32, payload_len: usize) -> Vec<u8> {
    let csrcs = rng.random_range(0..4u8);
    let extension = rng.random_bool(0.5);
    let mut p = Vec::with_capacity(1500);
    p.push(0x80 | if extension { 0x10 } else { 0 } | csrcs);
    p.push(rng.random_range(0..=127u8) | if rng.random_bool(0.3) { 0x80 } else { 0 });
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&rng.random::<u32>().to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    for _ in 0..csrcs {
        p.extend_from_slice(&rng.random::<u32>().to_be_bytes());
    }
    if extension {
        let words = rng.random_range(0..4u16);
        p.extend_from_slice(&[0xbe, 0xde]);
        p.extend_from_slice(&words.to_be_bytes());
        for _ in 0..words * 4 {
            p.push(rng.random());
        }
    }
    for _ in 0..payload_len {
        p.push(rng.random());
    }
    p
}

/// A random RTCP compound packet from `ssrc`: an SR or RR header with a consistent length field,
/// followed by 0–2 more random packets (RTCP bodies are opaque to SRTCP).
pub fn random_rtcp(rng: &mut impl Rng, ssrc: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(1500);
    let packets = rng.random_range(1..=3);
    for i in 0..packets {
        let words = rng.random_range(1..40u16);
        let pt = if i == 0 {
            [200u8, 201][rng.random_range(0..2)]
        } else {
            rng.random_range(192..=207)
        };
        p.push(0x80 | rng.random_range(0..32u8));
        p.push(pt);
        p.extend_from_slice(&words.to_be_bytes());
        let sender = if i == 0 { ssrc } else { rng.random() };
        p.extend_from_slice(&sender.to_be_bytes());
        for _ in 0..(words - 1) * 4 {
            p.push(rng.random());
        }
    }
    p
}
