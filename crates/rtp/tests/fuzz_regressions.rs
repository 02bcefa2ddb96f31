//! Replays every crash reproducer and seed in `fuzz/regressions/<target>/` for this crate's fuzz
//! targets through the same entry points the targets call.

use std::path::Path;

fn replay(target: &str, entry: fn(&[u8]) -> usize) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries {
        let path = e.unwrap().path();
        if path.is_file() {
            let data = std::fs::read(&path).unwrap();
            entry(&data);
            n += 1;
        }
    }
    n
}

#[test]
fn rtp_header_regressions() {
    assert!(replay("rtp_header", tympan_rtp::rtp::fuzz_rtp_header) > 0);
}

#[test]
fn rtcp_compound_regressions() {
    assert!(replay("rtcp_compound", tympan_rtp::rtcp::fuzz_rtcp_compound) > 0);
    // The hand-made TWCC packet with zero-length run-length chunks is valid and yields 1 status.
    let data = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/rtcp_compound/twcc-zero-runs"),
    )
    .unwrap();
    assert_eq!(tympan_rtp::rtcp::fuzz_rtcp_compound(&data), 1);
}

#[test]
fn codec_descriptors_regressions() {
    assert!(
        replay(
            "codec_descriptors",
            tympan_rtp::codecs::fuzz_codec_descriptors
        ) > 0
    );
}

#[test]
fn missing_folder_replays_nothing() {
    assert_eq!(
        replay("no_such_target", tympan_rtp::rtp::fuzz_rtp_header),
        0
    );
}
