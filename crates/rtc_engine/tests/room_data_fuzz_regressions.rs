//! Replays every file in `fuzz/regressions/room_data` (crash reproducers and seeds) through
//! the fuzz target's entry point, `tympan_rtc_engine::fuzz_room_data`, which panics when an
//! invariant breaks (a relayed message without the server's `from` or with changed data, an
//! error reply that is not JSON with a known code).

use std::path::Path;

#[test]
fn room_data_regressions_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/room_data");
    let (mut accepted, mut refused) = (0, 0);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if !path.is_file() {
                continue;
            }
            let data = std::fs::read(&path).expect("read reproducer");
            if tympan_rtc_engine::fuzz_room_data(&data) {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
    }
    assert!(
        accepted + refused > 0,
        "no room_data files in {}",
        dir.display()
    );
    assert!(accepted > 0, "no seed is a valid envelope any more");
    assert!(refused > 0, "no seed exercises a refusal any more");
}
