//! Unit tests of the SRTP module: RFC 7714 §16–17 vectors (which are given with session keys,
//! so they need the private constructor), index estimation and stream state.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A GCM context keyed directly with the RFC 7714 §16/§17 session key and salt (the RFC's
/// vectors skip key derivation and use the same key for SRTP and SRTCP).
fn rfc7714_context(profile: SrtpProfile) -> SrtpContext {
    let key = match profile {
        SrtpProfile::AeadAes128Gcm => hex("000102030405060708090a0b0c0d0e0f"),
        _ => hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
    };
    let salt: [u8; 12] = hex("517569642070726f2071756f").try_into().unwrap();
    SrtpContext::with_transforms(
        profile,
        SrtpConfig::default(),
        Transform::gcm(&key, salt).unwrap(),
        Transform::gcm(&key, salt).unwrap(),
    )
}

/// RFC 7714 §16: "Gallia est omnis divisa in partes tres", SSRC 0x5501a0b2, seq 0xf17b, ROC 0.
const RFC7714_RTP: &str = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973
                           20646976 69736120 696e2070 61727465 73207472 6573";
/// RFC 7714 §17: an SR from SSRC "Mars", SRTCP index 0x5d4.
const RFC7714_RTCP: &str = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930
                            4c756e61 deadbeef deadbeef deadbeef deadbeef deadbeef";

fn rfc7714_vectors() -> [(SrtpProfile, &'static str, &'static str, &'static str); 2] {
    [
        (
            SrtpProfile::AeadAes128Gcm,
            // §16.1.1
            "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5
             0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce",
            // §17.1
            "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d
             c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872
             45d9eade 800005d4",
            // §17.3 (authentication only, E = 0)
            "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
             deadbeef deadbeef deadbeef deadbeef deadbeef 841dd968 3dd78ec9 2ae58790
             125f62b3 000005d4",
        ),
        (
            SrtpProfile::AeadAes256Gcm,
            // §16.2.1
            "8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa b1801238
             9a58e2f3 b50b2a02 76ffae0f 1ba63799 b87b7aa3 db36dfff d6b0f9bb 7878d7a7 6c13",
            // §17.2
            "81c8000d 4d617273 d50ae4d1 f5ce5d30 4ba297e4 7d470c28 2c3ece5d bffe0a50
             a2eaa5c1 110555be 8415f658 c61de047 6f1b6fad 1d1eb30c 4446839f 57ff6f6c
             b26ac3be 800005d4",
            // §17.4 (authentication only, E = 0)
            "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
             deadbeef deadbeef deadbeef deadbeef deadbeef 91db4afb feee5a97 8fab4393
             ed2615fe 000005d4",
        ),
    ]
}

#[test]
fn rfc7714_16_srtp_encryption_and_decryption() {
    for (profile, srtp, _, _) in rfc7714_vectors() {
        let plain = hex(RFC7714_RTP);
        let mut buf = plain.clone();
        rfc7714_context(profile).protect_rtp(&mut buf).unwrap();
        assert_eq!(buf, hex(srtp), "{profile} protect");

        let mut rx = rfc7714_context(profile);
        let n = rx.unprotect_rtp(&mut buf).unwrap();
        assert_eq!(buf[..n], plain[..], "{profile} unprotect");
    }
}

#[test]
fn rfc7714_17_srtcp_encryption_decryption_and_auth_only() {
    for (profile, _, srtcp, auth_only) in rfc7714_vectors() {
        let plain = hex(RFC7714_RTCP);
        let mut tx = rfc7714_context(profile);
        tx.tx_rtcp.insert(0x4d617273, 0x5d4);
        let mut buf = plain.clone();
        tx.protect_rtcp(&mut buf).unwrap();
        assert_eq!(buf, hex(srtcp), "{profile} protect");

        let n = rfc7714_context(profile).unprotect_rtcp(&mut buf).unwrap();
        assert_eq!(buf[..n], plain[..], "{profile} unprotect");

        // E = 0: the packet is only authenticated, and comes back unchanged.
        let mut buf = hex(auth_only);
        let n = rfc7714_context(profile).unprotect_rtcp(&mut buf).unwrap();
        assert_eq!(buf[..n], plain[..], "{profile} auth-only");
        // ...and its tag covers the E flag: claiming E = 1 fails.
        let mut flipped = hex(auth_only);
        let last = flipped.len() - 4;
        flipped[last] |= 0x80;
        assert_eq!(
            rfc7714_context(profile).unprotect_rtcp(&mut flipped),
            Err(SrtpError::AuthenticationFailed)
        );
    }
}

#[test]
fn rfc7714_ivs() {
    // §16.1.1 and §17.1 print the IVs.
    let salt: [u8; 12] = hex("517569642070726f2071756f").try_into().unwrap();
    assert_eq!(
        gcm_iv(&salt, 0x5501a0b2, 0xf17b)[..],
        hex("51753c6580c2726f20718414")[..]
    );
    assert_eq!(
        gcm_iv(&salt, 0x4d617273, 0x5d4)[..],
        hex("517524055203726f207170bb")[..]
    );
}

#[test]
fn index_estimation_follows_rfc3711_appendix_a() {
    // Fresh stream near zero: never guesses ROC -1.
    assert_eq!(estimate_index(5, 65530), 65530);
    // Forward and backward within the same ROC.
    assert_eq!(estimate_index(0x1_0010, 0x0020), 0x1_0020);
    assert_eq!(estimate_index(0x1_0010, 0x0005), 0x1_0005);
    // Late packet from the previous ROC.
    assert_eq!(estimate_index(0x1_0010, 0xfff0), 0x0_fff0);
    // Wrap forward.
    assert_eq!(estimate_index(0x1_fff0, 0x0003), 0x2_0003);
    // High s_l, a packet slightly behind stays in this ROC.
    assert_eq!(estimate_index(0x1_fff0, 0xff00), 0x1_ff00);
}

fn cm_pair(profile: SrtpProfile, config: SrtpConfig) -> (SrtpContext, SrtpContext) {
    let master = SrtpMasterKey::new(
        profile,
        &[3; 32][..profile.master_key_len()],
        &[4; 14][..profile.master_salt_len()],
    )
    .unwrap();
    (
        SrtpContext::new(profile, &master, config).unwrap(),
        SrtpContext::new(profile, &master, config).unwrap(),
    )
}

fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&1234u32.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

#[test]
fn rollover_is_tracked_across_wrap_with_reordering_and_loss() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = cm_pair(profile, SrtpConfig::default());
        // Seqs around the wrap, with reordering across it and a gap.
        let order: [u16; 15] = [
            65530, 65531, 65533, 65532, 65535, 1, 0, 2, 3, 65534, 10, 9, 2, 3000, 20000,
        ];
        let mut protected = Vec::new();
        // The sender sees them in send order (monotonic), the network reorders.
        let mut send_order = order.to_vec();
        send_order.sort_by_key(|s| {
            if *s >= 65530 {
                i32::from(*s) - 65536
            } else {
                i32::from(*s)
            }
        });
        send_order.dedup();
        for &seq in &send_order {
            let mut p = rtp(seq, 7, &seq.to_be_bytes());
            tx.protect_rtp(&mut p).unwrap();
            protected.push((seq, p));
        }
        let mut accepted = 0;
        for (i, &seq) in order.iter().enumerate() {
            let (_, p) = protected.iter().find(|(s, _)| *s == seq).unwrap();
            let mut p = p.clone();
            let result = rx.unprotect_rtp(&mut p);
            // A second copy of a packet is a replay.
            if order[..i].contains(&seq) {
                assert!(
                    matches!(result, Err(SrtpError::Replayed { .. })),
                    "{profile} {result:?}"
                );
            } else {
                let n = result.unwrap_or_else(|e| panic!("{profile} seq {seq}: {e}"));
                assert_eq!(p[..n], rtp(seq, 7, &seq.to_be_bytes())[..]);
                accepted += 1;
            }
        }
        assert_eq!(accepted, order.len() - 1);
        assert_eq!(tx.rtp_roc(7), Some(1));
        assert_eq!(rx.rtp_roc(7), Some(1));
    }
}

#[test]
fn sender_refuses_repeats_unless_allowed() {
    let (mut tx, _) = cm_pair(SrtpProfile::AesCm128HmacSha1_80, SrtpConfig::default());
    let mut a = rtp(100, 1, b"x");
    tx.protect_rtp(&mut a).unwrap();
    let mut b = rtp(100, 1, b"x");
    assert_eq!(
        tx.protect_rtp(&mut b),
        Err(SrtpError::Replayed { index: 100 })
    );
    assert_eq!(b, rtp(100, 1, b"x"), "a refused packet is left as it was");

    let config = SrtpConfig {
        allow_repeat_tx: true,
        ..SrtpConfig::default()
    };
    let (mut tx, _) = cm_pair(SrtpProfile::AesCm128HmacSha1_80, config);
    let mut a = rtp(100, 1, b"x");
    tx.protect_rtp(&mut a).unwrap();
    let mut b = rtp(100, 1, b"x");
    tx.protect_rtp(&mut b).unwrap();
    assert_eq!(a, b, "same index, same payload, same output");
}

#[test]
fn forged_packets_do_not_create_streams() {
    let config = SrtpConfig {
        max_streams: 2,
        ..SrtpConfig::default()
    };
    let (mut tx, mut rx) = cm_pair(SrtpProfile::AeadAes128Gcm, config);
    for ssrc in 0..10 {
        let mut p = rtp(1, ssrc, b"forged");
        p.extend_from_slice(&[0; 16]);
        assert_eq!(
            rx.unprotect_rtp(&mut p),
            Err(SrtpError::AuthenticationFailed)
        );
    }
    assert!(rx.rx_rtp.is_empty());
    for ssrc in 0..2 {
        let mut p = rtp(1, ssrc, b"real");
        tx.protect_rtp(&mut p).unwrap();
        rx.unprotect_rtp(&mut p).unwrap();
    }
    let mut p = rtp(1, 2, b"real");
    assert_eq!(
        tx.protect_rtp(&mut p),
        Err(SrtpError::TooManyStreams { limit: 2 })
    );
}

#[test]
fn srtcp_index_starts_at_zero_and_is_exhausted_at_2_pow_31() {
    let (mut tx, mut rx) = cm_pair(SrtpProfile::AesCm128HmacSha1_32, SrtpConfig::default());
    let sr = hex("80c80006 00000009 00000000 00000000 00000000 00000000 00000000");
    let mut p = sr.clone();
    tx.protect_rtcp(&mut p).unwrap();
    // SRTCP keeps the 80-bit tag in the _32 profile (RFC 5764 §4.1.2).
    assert_eq!(p.len(), sr.len() + 4 + 10);
    assert_eq!(p[sr.len()..sr.len() + 4], [0x80, 0, 0, 0]);
    let n = rx.unprotect_rtcp(&mut p).unwrap();
    assert_eq!(p[..n], sr[..]);

    tx.tx_rtcp.insert(9, MAX_SRTCP_INDEX);
    let mut p = sr.clone();
    tx.protect_rtcp(&mut p).unwrap();
    assert_eq!(p[sr.len()..sr.len() + 4], [0xff, 0xff, 0xff, 0xff]);
    let mut p = sr.clone();
    assert_eq!(tx.protect_rtcp(&mut p), Err(SrtpError::KeyExhausted));
}

#[test]
fn buffers_and_short_packets_are_typed_errors() {
    let (mut tx, mut rx) = cm_pair(SrtpProfile::AesCm128HmacSha1_80, SrtpConfig::default());
    let p = rtp(1, 1, b"abc");
    let mut buf = [0u8; 20];
    buf[..p.len()].copy_from_slice(&p);
    assert_eq!(
        tx.protect_rtp_in_place(&mut buf, p.len()),
        Err(SrtpError::BufferTooSmall {
            needed: 25,
            available: 20
        })
    );
    assert_eq!(
        rx.unprotect_rtp(&mut [0x80; 21]),
        Err(SrtpError::TooShort {
            len: 21,
            needed: 22
        })
    );
    assert_eq!(
        rx.unprotect_rtcp(&mut [0x80; 21]),
        Err(SrtpError::TooShort {
            len: 21,
            needed: 22
        })
    );
    assert_eq!(
        tx.protect_rtcp(&mut vec![0x80; 4]),
        Err(SrtpError::TooShort { len: 4, needed: 8 })
    );
}

#[test]
fn dtls_keying_material_is_split_client_key_server_key_client_salt_server_salt() {
    for profile in SrtpProfile::ALL {
        let material: Vec<u8> = (0..profile.keying_material_len() as u8).collect();
        let keys = DtlsSrtpKeys::from_keying_material(profile, &material).unwrap();
        let (k, s) = (profile.master_key_len(), profile.master_salt_len());
        assert_eq!(keys.client_write.key(), &material[..k]);
        assert_eq!(keys.server_write.key(), &material[k..2 * k]);
        assert_eq!(keys.client_write.salt(), &material[2 * k..2 * k + s]);
        assert_eq!(keys.server_write.salt(), &material[2 * k + s..]);
        assert_eq!(
            keys.outbound(DtlsRole::Client),
            keys.inbound(DtlsRole::Server)
        );
        assert_eq!(SrtpProfile::from_dtls_id(profile.dtls_id()), Some(profile));
        assert!(DtlsSrtpKeys::from_keying_material(profile, &material[1..]).is_err());
    }
    assert_eq!(SrtpProfile::AeadAes256Gcm.keying_material_len(), 88);
    assert_eq!(SrtpProfile::AesCm128HmacSha1_80.keying_material_len(), 60);
}

#[test]
fn replay_window_is_configurable() {
    for (window, accepted) in [(64, false), (128, false), (256, true), (1, false)] {
        let config = SrtpConfig {
            replay_window: window,
            ..SrtpConfig::default()
        };
        let (mut tx, mut rx) = cm_pair(SrtpProfile::AeadAes256Gcm, config);
        let mut late = rtp(1000, 5, b"late");
        tx.protect_rtp(&mut late).unwrap();
        let mut head = rtp(1200, 5, b"head");
        tx.protect_rtp(&mut head).unwrap();
        rx.unprotect_rtp(&mut head).unwrap();
        // (A stream is created by its first authenticated packet; 1000 then is 200 behind.)
        let result = rx.unprotect_rtp(&mut late);
        if accepted {
            assert!(result.is_ok(), "window {window}: {result:?}");
        } else {
            assert_eq!(
                result,
                Err(SrtpError::TooOld {
                    index: 1000,
                    highest: 1200
                }),
                "{window}"
            );
        }
    }
}
