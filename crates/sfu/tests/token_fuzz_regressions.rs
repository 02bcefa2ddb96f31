//! Replays every file in `fuzz/regressions/token_verify` (crash reproducers and seeds) through
//! the fuzz target's entry point, `tympan_sfu::token::fuzz_token`. Files whose name starts with
//! `valid` are tokens signed with the target's key (accepted); every other one is refused.

use std::path::Path;

#[test]
fn token_verify_regressions_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/token_verify");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("regressions folder") {
        let path = entry.expect("dir entry").path();
        if !path.is_file() {
            continue;
        }
        let data = std::fs::read(&path).expect("read reproducer");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let accepted = tympan_sfu::token::fuzz_token(&data);
        assert_eq!(accepted, name.starts_with("valid"), "{name}");
        replayed += 1;
    }
    assert!(replayed > 0, "no files replayed from {}", dir.display());
}
