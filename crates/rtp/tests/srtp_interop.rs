//! tympan's SRTP against an implementation we did not write that builds everywhere: `rtc-srtp`
//! (webrtc-rs, on ring). The libsrtp2 oracle (`crates/rtp/oracle`) is the stronger check and
//! needs libclang; this one runs in the plain workspace test run.
//!
//! Also: the RFC-vector end-to-end packet from libsrtp's `srtp_validate` self-test (RFC 3711
//! Appendix B.3 master key), through the public API.

use rtc_srtp::context::Context;
use rtc_srtp::protection_profile::ProtectionProfile;
use tympan_rtp::srtp::{SrtpConfig, SrtpContext, SrtpError, SrtpMasterKey, SrtpProfile};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn rtc(profile: SrtpProfile, key: &[u8], salt: &[u8]) -> Context {
    let p = match profile {
        SrtpProfile::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        SrtpProfile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
    };
    let provider = rtc_srtp::crypto::default_provider().expect("ring provider");
    Context::new(key, salt, p, None, None, provider.crypto()).unwrap()
}

fn tympan(profile: SrtpProfile, key: &[u8], salt: &[u8]) -> SrtpContext {
    let master = SrtpMasterKey::new(profile, key, salt).unwrap();
    SrtpContext::new(profile, &master, SrtpConfig::default()).unwrap()
}

/// Simple deterministic generator (xorshift) for packet contents.
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn rtp_and_rtcp_interoperate_with_rtc_srtp_for_all_profiles() {
    let mut g = Gen(0x1234_5678_9abc_def1);
    for profile in SrtpProfile::ALL {
        let key = g.bytes(profile.master_key_len());
        let salt = g.bytes(profile.master_salt_len());
        let mut ours_tx = tympan(profile, &key, &salt);
        let mut ours_rx = tympan(profile, &key, &salt);
        let mut theirs_tx = rtc(profile, &key, &salt);
        let mut theirs_rx = rtc(profile, &key, &salt);
        // Cross the sequence-number wrap.
        for i in 0..400u16 {
            let seq = 65_400u16.wrapping_add(i);
            let mut plain = vec![0x80, 0x60];
            plain.extend_from_slice(&seq.to_be_bytes());
            plain.extend_from_slice(&[0, 0, 1, 0, 0x0b, 0xad, 0xca, 0xfe]);
            let len = (g.next() % 1200) as usize + 1;
            plain.extend(g.bytes(len));

            let mut ours = plain.clone();
            ours_tx.protect_rtp(&mut ours).unwrap();
            let theirs = theirs_tx.encrypt_rtp(&plain).unwrap();
            assert_eq!(
                ours[..],
                theirs[..],
                "{profile}: protected RTP differs at seq {seq}"
            );

            let back = theirs_rx.decrypt_rtp(&ours).unwrap();
            assert_eq!(back[..], plain[..]);
            let mut theirs = theirs.to_vec();
            let n = ours_rx.unprotect_rtp(&mut theirs).unwrap();
            assert_eq!(theirs[..n], plain[..]);
        }
        assert_eq!(ours_rx.rtp_roc(0x0badcafe), Some(1));

        for _ in 0..50 {
            let mut plain = vec![0x81, 0xc8, 0, 6, 0x0b, 0xad, 0xca, 0xfe];
            plain.extend(g.bytes(20));
            let mut ours = plain.clone();
            ours_tx.protect_rtcp(&mut ours).unwrap();
            // rtc-srtp numbers SRTCP from 1 like libsrtp, so compare decryptions, not bytes.
            let back = theirs_rx.decrypt_rtcp(&ours).unwrap();
            assert_eq!(
                back[..],
                plain[..],
                "{profile}: rtc-srtp decrypts our SRTCP"
            );
            let mut theirs = theirs_tx.encrypt_rtcp(&plain).unwrap().to_vec();
            let n = ours_rx.unprotect_rtcp(&mut theirs).unwrap();
            assert_eq!(
                theirs[..n],
                plain[..],
                "{profile}: we decrypt rtc-srtp's SRTCP"
            );
        }
    }
}

/// libsrtp's `srtp_validate`: AES_CM_128_HMAC_SHA1_80 with the RFC 3711 B.3 master key.
#[test]
fn libsrtp_validate_vector_and_tamper_rejection() {
    let key = hex("e1f97a0d3e018be0d64fa32c06de4139");
    let salt = hex("0ec675ad498afeebb6960b3aabe6");
    let plain = hex("800f1234 decafbad cafebabe abababab abababab abababab abababab");
    let expected = hex(
        "800f1234 decafbad cafebabe 4e55dc4c e79978d8 8ca4d215 949d2402 b78d6acc 99ea179b 8dbb",
    );
    let profile = SrtpProfile::AesCm128HmacSha1_80;
    let mut buf = plain.clone();
    tympan(profile, &key, &salt).protect_rtp(&mut buf).unwrap();
    assert_eq!(buf, expected);

    let mut rx = tympan(profile, &key, &salt);
    for i in 0..expected.len() * 8 {
        let mut forged = expected.clone();
        forged[i / 8] ^= 1 << (i % 8);
        assert!(
            rx.unprotect_rtp(&mut forged).is_err(),
            "bit {i} flipped and accepted"
        );
    }
    let mut ok = expected.clone();
    let n = rx.unprotect_rtp(&mut ok).unwrap();
    assert_eq!(ok[..n], plain[..]);
    let mut replay = expected.clone();
    assert_eq!(
        rx.unprotect_rtp(&mut replay),
        Err(SrtpError::Replayed { index: 0x1234 })
    );
}
