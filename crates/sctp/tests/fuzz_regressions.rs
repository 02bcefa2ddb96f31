//! Replays every file in `fuzz/regressions/{dcep_decode,sctp_input}/` through the same entry
//! points as the fuzz targets, so crash reproducers stay fixed without cargo-fuzz.

use std::path::PathBuf;
use std::time::Instant;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/regressions"
    ))
    .join(target);
    let mut files: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect()
}

#[test]
fn dcep_decode_regressions() {
    let files = inputs("dcep_decode");
    assert!(
        !files.is_empty(),
        "no seeds in fuzz/regressions/dcep_decode"
    );
    let mut decoded = 0;
    for (path, data) in &files {
        // Panics (the bug class fuzzing finds) fail the test, naming nothing but the input:
        // print it first.
        eprintln!("replaying {}", path.display());
        if tympan_sctp::fuzz_dcep_decode(data) {
            decoded += 1;
        }
    }
    // The seeds hold three valid messages (an ACK and two OPENs, one of them a reliable channel
    // with a non-zero reliability parameter, found by fuzzing) and two malformed ones.
    assert_eq!(
        decoded, 3,
        "valid seeds must decode, malformed ones must not"
    );
}

#[test]
fn sctp_input_regressions() {
    let files = inputs("sctp_input");
    assert!(!files.is_empty(), "no seeds in fuzz/regressions/sctp_input");
    for (path, data) in &files {
        eprintln!("replaying {}", path.display());
        // `None` would mean the harness never reached an established association with an open
        // channel, so the input would not have been fed at all.
        let events = tympan_sctp::fuzz_sctp_input(Instant::now(), data);
        assert!(
            events.is_some(),
            "{}: association not established",
            path.display()
        );
    }
}
