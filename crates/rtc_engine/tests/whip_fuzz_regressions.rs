//! Replays every file in `fuzz/regressions/whip_sdpfrag` (crash reproducers and seeds)
//! through the fuzz target's entry point, `tympan_rtc_engine::whip::fuzz_sdpfrag`.

use std::path::Path;

#[test]
fn whip_sdpfrag_regressions_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/whip_sdpfrag");
    let mut replayed = 0;
    let mut with_candidates = 0;
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if !path.is_file() {
                continue;
            }
            let data = std::fs::read(&path).expect("read reproducer");
            if tympan_rtc_engine::whip::fuzz_sdpfrag(&data) > 0 {
                with_candidates += 1;
            }
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no whip_sdpfrag files in {}", dir.display());
    assert!(
        with_candidates > 0,
        "no seed parsed to candidates: the seeds no longer exercise the parser"
    );
}
