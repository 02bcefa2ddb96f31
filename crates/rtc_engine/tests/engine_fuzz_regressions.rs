//! Replays every file in `fuzz/regressions/engine_forward` (crash reproducers and seeds)
//! through the fuzz target's entry point, `tympan_rtc_engine::fuzz_forward`.

use std::path::Path;
use std::time::Instant;

#[test]
fn engine_forward_regressions_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/engine_forward");
    let now = Instant::now();
    let mut replayed = 0;
    let mut forwarded = 0;
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if !path.is_file() {
                continue;
            }
            let data = std::fs::read(&path).expect("read reproducer");
            // Panics (the fuzz target's failure) on a bad rewrite.
            if tympan_rtc_engine::fuzz_forward(now, &data) > 0 {
                forwarded += 1;
            }
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no engine_forward files in {}", dir.display());
    assert!(
        forwarded > 0,
        "no seed was forwarded: the seeds no longer exercise the rewrite"
    );
}
