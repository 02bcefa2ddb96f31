//! Replays every file in `fuzz/regressions/signalling_parse` (crash reproducers and seeds)
//! through the fuzz target's entry point, `tympan_sfu::protocol::parse_client_message`.
//! Files whose name starts with `join` are well-formed joins; every other seed is malformed
//! and must be rejected with a typed error.

use std::path::Path;

use tympan_sfu::protocol::{Request, parse_client_message};

#[test]
fn signalling_parse_regressions_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/signalling_parse");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("regressions folder") {
        let path = entry.expect("dir entry").path();
        if !path.is_file() {
            continue;
        }
        let data = std::fs::read(&path).expect("read reproducer");
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let parsed = parse_client_message(text);
        if name.starts_with("join") {
            let msg = parsed.unwrap_or_else(|e| panic!("{name}: a valid join was refused: {e:?}"));
            assert!(
                matches!(msg.request, Request::Join { .. }),
                "{name}: {msg:?}"
            );
        } else {
            assert!(
                parsed.is_err(),
                "{name}: malformed input accepted: {parsed:?}"
            );
        }
        replayed += 1;
    }
    assert!(replayed > 0, "no files replayed from {}", dir.display());
}
