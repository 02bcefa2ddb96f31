//! tympan's SRTP/SRTCP against libsrtp2, all four profiles: random packets protected by one
//! side, unprotected by the other, and the protected bytes of both sides compared octet for
//! octet.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tympan_rtp::srtp::{SrtpError, SrtpProfile};
use tympan_rtp_srtp_oracle::{
    libsrtp_session, random_master, random_rtcp, random_rtp, tympan_context,
};

const RTP_PACKETS: usize = 1500;
const RTCP_PACKETS: usize = 300;

#[test]
fn rtp_is_byte_identical_to_libsrtp_both_ways() {
    for (seed, profile) in SrtpProfile::ALL.into_iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0000 + seed as u64);
        let (master, key_salt) = random_master(profile, &mut rng);
        let mut ours_tx = tympan_context(profile, &master);
        let mut ours_rx = tympan_context(profile, &master);
        let mut lib_tx = libsrtp_session(profile, &key_salt, true);
        let mut lib_rx = libsrtp_session(profile, &key_salt, false);

        // Three streams; one starts just before the sequence number wraps (ROC 0 -> 1).
        let mut streams: Vec<(u32, u16)> = vec![
            (rng.random(), 65_000),
            (rng.random(), rng.random_range(0..30_000)),
            (rng.random(), 1),
        ];
        // Protected packets are delivered in shuffled groups of 8 (reordering within the window).
        let mut in_flight: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = Vec::new();
        let mut delivered = 0;
        for n in 0..RTP_PACKETS {
            let stream = rng.random_range(0..streams.len());
            let (ssrc, seq) = streams[stream];
            // Mostly consecutive, sometimes a gap (loss).
            let step = if rng.random_bool(0.1) {
                rng.random_range(2..20)
            } else {
                1
            };
            streams[stream].1 = seq.wrapping_add(step);
            let len = if n % 7 == 0 {
                0
            } else {
                rng.random_range(1..1200)
            };
            let plain = random_rtp(&mut rng, seq, ssrc, len);

            let mut ours = plain.clone();
            ours_tx.protect_rtp(&mut ours).expect("tympan protect");
            let mut theirs = plain.clone();
            lib_tx.protect(&mut theirs).expect("libsrtp protect");
            assert_eq!(
                ours, theirs,
                "{profile}: protected RTP differs (ssrc {ssrc:#x} seq {seq})"
            );
            in_flight.push((plain, ours, theirs));

            if in_flight.len() == 8 || n == RTP_PACKETS - 1 {
                in_flight.shuffle(&mut rng);
                for (plain, ours, mut theirs) in in_flight.drain(..) {
                    let mut by_lib = ours;
                    lib_rx
                        .unprotect(&mut by_lib)
                        .expect("libsrtp unprotects tympan's packet");
                    assert_eq!(by_lib, plain, "{profile}: libsrtp recovered other bytes");
                    let len = ours_rx
                        .unprotect_rtp(&mut theirs)
                        .expect("tympan unprotects libsrtp's");
                    assert_eq!(
                        theirs[..len],
                        plain[..],
                        "{profile}: tympan recovered other bytes"
                    );
                    delivered += 1;
                }
            }
        }
        assert_eq!(delivered, RTP_PACKETS);
        assert_eq!(
            ours_rx.rtp_roc(streams[0].0),
            Some(1),
            "{profile}: first stream wrapped"
        );
    }
}

#[test]
fn rtcp_is_byte_identical_to_libsrtp_both_ways() {
    for (seed, profile) in SrtpProfile::ALL.into_iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(0xc0de_0000 + seed as u64);
        let (master, key_salt) = random_master(profile, &mut rng);
        let mut ours_tx = tympan_context(profile, &master);
        let mut ours_rx = tympan_context(profile, &master);
        let mut lib_tx = libsrtp_session(profile, &key_salt, true);
        let mut lib_rx = libsrtp_session(profile, &key_salt, false);

        let ssrcs: [u32; 2] = [rng.random(), rng.random()];
        // libsrtp numbers its first SRTCP packet 1, tympan 0 (RFC 3711 §3.4 says the index is
        // zero before the first packet is sent). One throw-away packet per SSRC aligns them, so
        // that the protected bytes can be compared.
        for ssrc in ssrcs {
            let mut warmup = random_rtcp(&mut rng, ssrc);
            ours_tx.protect_rtcp(&mut warmup).unwrap();
            // E flag set, index 0; GCM puts the word after the tag, AES-CM before it.
            let at = if profile.is_aead() {
                warmup.len() - 4
            } else {
                warmup.len() - 14
            };
            assert_eq!(warmup[at..at + 4], [0x80, 0, 0, 0], "{profile}");
        }
        for _ in 0..RTCP_PACKETS {
            let ssrc = ssrcs[rng.random_range(0..2)];
            let plain = random_rtcp(&mut rng, ssrc);
            let mut ours = plain.clone();
            ours_tx.protect_rtcp(&mut ours).expect("tympan protect");
            let mut theirs = plain.clone();
            lib_tx.protect_rtcp(&mut theirs).expect("libsrtp protect");
            assert_eq!(ours, theirs, "{profile}: protected RTCP differs");

            let mut by_lib = ours;
            lib_rx
                .unprotect_rtcp(&mut by_lib)
                .expect("libsrtp unprotects tympan's SRTCP");
            assert_eq!(by_lib, plain);
            let len = ours_rx
                .unprotect_rtcp(&mut theirs)
                .expect("tympan unprotects libsrtp's");
            assert_eq!(theirs[..len], plain[..]);
        }
    }
}

#[test]
fn replayed_and_forged_libsrtp_packets_are_rejected() {
    for (seed, profile) in SrtpProfile::ALL.into_iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(0xbad_0000 + seed as u64);
        let (master, key_salt) = random_master(profile, &mut rng);
        let mut lib_tx = libsrtp_session(profile, &key_salt, true);
        let mut ours_rx = tympan_context(profile, &master);
        let ssrc = rng.random();
        for seq in 100..200u16 {
            let len = rng.random_range(0..300);
            let plain = random_rtp(&mut rng, seq, ssrc, len);
            let mut protected = plain.clone();
            lib_tx.protect(&mut protected).unwrap();

            // Any single flipped bit is refused (and leaves no state behind).
            let mut forged = protected.clone();
            let bit = rng.random_range(0..forged.len() * 8);
            forged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                ours_rx.unprotect_rtp(&mut forged).is_err(),
                "{profile}: forgery accepted"
            );

            let mut replay = protected.clone();
            let len = ours_rx
                .unprotect_rtp(&mut protected)
                .expect("genuine packet");
            assert_eq!(protected[..len], plain[..]);
            assert_eq!(
                ours_rx.unprotect_rtp(&mut replay),
                Err(SrtpError::Replayed {
                    index: u64::from(seq)
                }),
                "{profile}: replay accepted"
            );
        }

        let rtcp = random_rtcp(&mut rng, ssrc);
        let mut protected = rtcp.clone();
        lib_tx.protect_rtcp(&mut protected).unwrap();
        let mut forged = protected.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(ours_rx.unprotect_rtcp(&mut forged).is_err());
        let mut replay = protected.clone();
        ours_rx.unprotect_rtcp(&mut protected).unwrap();
        assert_eq!(
            ours_rx.unprotect_rtcp(&mut replay),
            Err(SrtpError::Replayed { index: 1 })
        );
    }
}
