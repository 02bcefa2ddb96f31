//! Replays every file of `fuzz/regressions/media_streams/` (crash reproducers and seeds of the
//! `media_streams` fuzz target) through the same entry point as the fuzz target.

use tympan_rtc_engine::peer::{DropReason, TimeoutReason};

#[allow(dead_code)]
#[path = "../src/peer/media.rs"]
mod media;

#[test]
fn media_streams_regressions_replay() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/regressions/media_streams"
    );
    let mut files = 0;
    let mut records = 0;
    for entry in std::fs::read_dir(dir).expect("regressions folder") {
        let path = entry.expect("dir entry").path();
        if !path.is_file() {
            continue;
        }
        let data = std::fs::read(&path).expect("read reproducer");
        records += media::fuzz_media_input(std::time::Instant::now(), &data);
        files += 1;
    }
    assert!(files > 0, "no reproducers or seeds in {dir}");
    assert!(records > 0, "the seeds hold no records");
}
