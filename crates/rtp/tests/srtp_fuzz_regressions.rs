//! Replays every file in `fuzz/regressions/srtp_unprotect/` (crash reproducers and seeds)
//! through the fuzz target's entry point, `tympan_rtp::srtp::fuzz_unprotect`, which itself
//! asserts the round-trip, replay and forgery invariants.

use std::path::Path;

#[test]
fn srtp_unprotect_regressions_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/srtp_unprotect");
    let mut replayed = 0;
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                let data = std::fs::read(&path).unwrap();
                tympan_rtp::srtp::fuzz_unprotect(&data);
                replayed += 1;
            }
        }
    }
    assert!(
        replayed > 0,
        "no regression inputs found in {}",
        dir.display()
    );
}

/// The public RTP/RTCP fuzz corpora (`../shared/testdata/fuzz-seeds/{rtp,rtcp}`), real and
/// malformed packets, through the same entry point for every profile: each either round-trips
/// (protect, unprotect, replay and forgery rejected) or is refused with a typed error.
#[test]
fn shared_rtp_and_rtcp_seeds_through_every_profile() {
    let root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata/fuzz-seeds"
    );
    let mut replayed = 0;
    for (kind, rtcp_bit) in [("rtp", 0u8), ("rtcp", 4u8)] {
        let dir = Path::new(root).join(kind);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let packet = std::fs::read(entry.unwrap().path()).unwrap();
            for profile in 0..4u8 {
                // Bits 3.. of the selector pick which bit the forgery check flips.
                let mut input = vec![profile | rtcp_bit | (replayed as u8) << 3];
                input.extend_from_slice(&packet);
                tympan_rtp::srtp::fuzz_unprotect(&input);
                replayed += 1;
            }
        }
    }
    assert!(
        replayed >= 4 * 80,
        "expected the shared corpora, replayed {replayed}"
    );
}
