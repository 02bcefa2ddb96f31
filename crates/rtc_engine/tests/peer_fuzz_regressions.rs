//! Replays every file in `fuzz/regressions/peer_datagram` (crash reproducers and seeds)
//! through the fuzz target's entry point, `tympan_rtc_engine::peer::fuzz_peer_input`.

use std::path::Path;
use std::time::Instant;

#[test]
fn peer_datagram_regressions_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/peer_datagram");
    let base = Instant::now();
    let mut replayed = 0;
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if !path.is_file() {
                continue;
            }
            let data = std::fs::read(&path).expect("read reproducer");
            let media = tympan_rtc_engine::peer::fuzz_peer_input(base, &data);
            assert_eq!(
                media,
                0,
                "{}: unauthenticated input came out as media",
                path.display()
            );
            replayed += 1;
        }
    }
    assert!(
        replayed > 0,
        "no peer_datagram reproducers in {}",
        dir.display()
    );
}
