//! Replays every file in `fuzz/regressions/sdp_parse` and `fuzz/regressions/sdp_negotiate`
//! through the fuzz targets' entry points (crash reproducers and seeds).

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut count = 0;
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_file() {
            let data = std::fs::read(&path).expect("read reproducer");
            run(&data);
            count += 1;
        }
    }
    count
}

#[test]
fn sdp_parse_regressions_replay() {
    let n = replay("sdp_parse", tympan_sdp::fuzz_parse);
    assert!(n > 0, "no sdp_parse reproducers found");
}

#[test]
fn sdp_negotiate_regressions_replay() {
    let n = replay("sdp_negotiate", tympan_sdp::jsep::fuzz_negotiate);
    assert!(n > 0, "no sdp_negotiate reproducers found");
}

#[test]
fn seeds_exercise_the_parser_for_real() {
    // The seeds are not just replayed: the valid ones parse, the broken ones are rejected.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/sdp_parse");
    let ok = std::fs::read(dir.join("simulcast-paused-tcp-candidate.sdp")).expect("seed");
    let sdp = tympan_sdp::parse(std::str::from_utf8(&ok).unwrap()).expect("valid seed");
    assert!(matches!(
        sdp.media[0].attribute("simulcast"),
        Some(tympan_sdp::Attribute::Simulcast(s)) if s.send[0][0].paused && s.recv[0][0].paused
    ));
    let bad = std::fs::read(dir.join("telephone-event-reversed-range.sdp")).expect("seed");
    let err = tympan_sdp::parse(std::str::from_utf8(&bad).unwrap()).unwrap_err();
    assert_eq!(err.line, 7);
}
