//! Every SDP in the shared corpora (Mozilla's webrtc-sdp examples and the WebRTC fuzz seeds)
//! is parsed. Valid files must round-trip (parse → serialise → parse gives an equal value);
//! invalid files must give a typed error on the expected line.
//!
//! Which files are invalid, and why, was decided by reading each file against the RFCs (not by
//! running our parser): see `INVALID`.

use std::path::{Path, PathBuf};

use tympan_sdp::{ParseErrorKind, parse};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/testdata");

/// (folder/file, line number in the file, reason). Lines starting with `;` in the Mozilla files
/// are comments of Mozilla's example runner (not SDP): they are dropped before parsing, as that
/// runner does, and the line numbers below are counted in the file as stored.
const INVALID: &[(&str, usize, &str)] = &[
    (
        "sdp/mozilla/08.sdp",
        48,
        "a=ssrc:5150 has no source attribute (RFC 5576 §4.1 ssrc-attr = ssrc-id SP attribute); \
         the file also has a 32-byte sha-1 fingerprint and a media-level a=ice-lite further down",
    ),
    (
        "sdp/mozilla/09.sdp",
        17,
        "a=fmtp:101 0-5. is not a telephone-event list (RFC 4733 §2.4.1); later lines have \
         -12, 12-, 1-2-3, 33-2 and empty items",
    ),
    (
        "sdp/mozilla/11.sdp",
        65,
        "a=ice-lite inside a media section: session level only (RFC 8839 §5.3)",
    ),
    (
        "sdp/mozilla/14.sdp",
        6,
        "a=candidate at session level: media level only (RFC 8839 §5.1)",
    ),
    (
        "sdp/mozilla/15.sdp",
        6,
        "a=bundle-only at session level: media level only (RFC 9143 §6)",
    ),
    (
        "sdp/mozilla/16.sdp",
        6,
        "a=fmtp at session level: media level only (RFC 8866 §6.15)",
    ),
    (
        "sdp/mozilla/17.sdp",
        6,
        "a=ice-mismatch at session level: media level only (RFC 8839 §5.5)",
    ),
    (
        "sdp/mozilla/18.sdp",
        6,
        "a=imageattr at session level: media level only (RFC 6236 §3)",
    ),
    (
        "sdp/mozilla/19.sdp",
        6,
        "a=label at session level: media level only (RFC 4574 §4)",
    ),
    (
        "sdp/mozilla/20.sdp",
        6,
        "a=maxptime at session level: media level only (RFC 8866 §6.5)",
    ),
    (
        "sdp/mozilla/21.sdp",
        6,
        "a=mid at session level: media level only (RFC 5888 §4)",
    ),
    (
        "sdp/mozilla/22.sdp",
        6,
        "a=msid at session level: media level only (RFC 8830 §2)",
    ),
    (
        "sdp/mozilla/23.sdp",
        6,
        "a=ptime at session level: media level only (RFC 8866 §6.4)",
    ),
    (
        "sdp/mozilla/24.sdp",
        6,
        "a=remote-candidates at session level: media level only (RFC 8839 §5.2)",
    ),
    (
        "sdp/mozilla/25.sdp",
        6,
        "a=rtcp at session level: media level only (RFC 3605 §2.1)",
    ),
    (
        "sdp/mozilla/26.sdp",
        6,
        "a=rtcp-fb at session level: media level only (RFC 4585 §4.2)",
    ),
    (
        "sdp/mozilla/27.sdp",
        6,
        "a=rtcp-mux at session level: media level only (RFC 5761 §5.1.1)",
    ),
    (
        "sdp/mozilla/28.sdp",
        6,
        "a=rtcp-rsize at session level: media level only (RFC 5506 §5)",
    ),
    (
        "sdp/mozilla/29.sdp",
        6,
        "a=rtpmap at session level: media level only (RFC 8866 §6.6)",
    ),
    (
        "sdp/mozilla/30.sdp",
        6,
        "a=sctpmap at session level: media level only (draft-ietf-mmusic-sctp-sdp-05)",
    ),
    (
        "sdp/mozilla/31.sdp",
        6,
        "a=ssrc:5000 at session level and without a source attribute (RFC 5576 §4.1)",
    ),
    (
        "sdp/mozilla/32.sdp",
        6,
        "a=ssrc-group at session level: media level only (RFC 5576 §4.2)",
    ),
    (
        "sdp/mozilla/33.sdp",
        9,
        "a=imageattr:flob has no format and send/recv sets (RFC 6236 §3.1)",
    ),
    (
        "fuzz-seeds/sdp/unittest-3.sdp",
        1,
        "a media-section fragment: no v=/o=/s=/t= lines (RFC 8866 §5)",
    ),
    (
        "fuzz-seeds/sdp/unittest-6.sdp",
        1,
        "a media-section fragment: no v=/o=/s=/t= lines (RFC 8866 §5)",
    ),
    (
        "fuzz-seeds/sdp/unittest-7.sdp",
        1,
        "a media-section fragment: no v=/o=/s=/t= lines (RFC 8866 §5)",
    ),
];

fn corpus_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["sdp/mozilla", "fuzz-seeds/sdp"] {
        let path = Path::new(TESTDATA).join(dir);
        let entries = std::fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("corpus folder {} missing: {e}", path.display()));
        for entry in entries {
            let p = entry.expect("dir entry").path();
            if p.extension().is_some_and(|e| e == "sdp") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

fn rel(path: &Path) -> String {
    path.strip_prefix(TESTDATA)
        .expect("under testdata")
        .to_string_lossy()
        .replace('\\', "/")
}

/// Drops the `;` comment lines Mozilla's example runner skips; returns the text and how many
/// leading lines were dropped.
fn strip_comments(text: &str) -> (String, usize) {
    let mut dropped = 0;
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with(';') {
            dropped += 1;
        } else {
            out.push_str(line);
        }
    }
    (out, dropped)
}

#[test]
fn every_corpus_file_round_trips_or_fails_where_expected() {
    let files = corpus_files();
    assert_eq!(files.len(), 40 + 67, "corpus size changed");
    let mut valid = 0;
    let mut invalid = 0;
    for path in &files {
        let name = rel(path);
        let raw = std::fs::read_to_string(path).expect("read");
        let (text, dropped) = strip_comments(&raw);
        let expected = INVALID.iter().find(|(f, _, _)| *f == name);
        match (parse(&text), expected) {
            (Ok(sdp), None) => {
                let written = sdp.to_string();
                assert!(written.ends_with("\r\n"), "{name}: no final CRLF");
                assert!(
                    !written.replace("\r\n", "").contains('\n'),
                    "{name}: bare LF in output"
                );
                let again = parse(&written)
                    .unwrap_or_else(|e| panic!("{name}: our own output does not parse: {e}"));
                assert_eq!(again, sdp, "{name}: round trip changed the session");
                // Lossless: one output line per input line.
                let input_lines = text.trim_end_matches(['\r', '\n']).lines().count();
                assert_eq!(written.lines().count(), input_lines, "{name}: line count");
                valid += 1;
            }
            (Err(e), Some((_, line, reason))) => {
                assert_eq!(
                    e.line + dropped,
                    *line,
                    "{name}: error on the wrong line ({e}); expected because: {reason}"
                );
                assert!(!e.to_string().is_empty());
                invalid += 1;
            }
            (Ok(_), Some((_, _, reason))) => {
                panic!("{name}: parsed, but is invalid because: {reason}")
            }
            (Err(e), None) => panic!("{name}: valid file rejected: {e}"),
        }
    }
    assert_eq!(invalid, INVALID.len());
    assert_eq!(valid, files.len() - INVALID.len());
}

#[test]
fn session_level_misplacement_is_reported_as_wrong_level() {
    let text = std::fs::read_to_string(Path::new(TESTDATA).join("sdp/mozilla/21.sdp")).unwrap();
    let err = parse(&text).unwrap_err();
    assert_eq!(err.text, "a=mid:foobar");
    assert!(
        matches!(&err.kind, ParseErrorKind::WrongLevel { attribute, .. } if attribute == "mid"),
        "{err:?}"
    );
}

#[test]
fn fingerprint_length_is_checked_against_the_hash() {
    // The second media section of Mozilla's 08.sdp: a sha-1 fingerprint with 32 bytes.
    let raw = std::fs::read_to_string(Path::new(TESTDATA).join("sdp/mozilla/08.sdp")).unwrap();
    let line = raw
        .lines()
        .find(|l| l.starts_with("a=fingerprint:sha-1"))
        .expect("fixture line");
    let sdp = format!("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n{line}\r\n");
    let err = parse(&sdp).unwrap_err();
    assert_eq!(err.line, 5);
    assert!(matches!(
        err.kind,
        ParseErrorKind::InvalidAttribute {
            attribute: "fingerprint",
            ..
        }
    ));
}

#[test]
fn browser_quirks_are_accepted() {
    // Pre-RFC 8853 Firefox simulcast, Chrome's `msid-semantic: WMS` with a space, legacy
    // sctpmap, telephone-event lists, ICE credentials with `_`.
    let text = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
                a=msid-semantic: WMS\r\n\
                m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n\
                a=ice-ufrag:ufrag_voice\r\na=ice-pwd:pwd_voice\r\n\
                a=simulcast: send rid=lo;~hi\r\n\
                m=audio 9 RTP/AVP 101\r\nc=IN IP4 0.0.0.0\r\n\
                a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15,66,32-34,67\r\n\
                m=application 9 DTLS/SCTP 5000\r\nc=IN IP4 0.0.0.0\r\n\
                a=sctpmap:5000 webrtc-datachannel 256\r\n";
    let sdp = parse(text).expect("accepted");
    match sdp.media[0].attribute("simulcast") {
        Some(tympan_sdp::Attribute::Simulcast(s)) => {
            assert_eq!(s.send.len(), 2);
            assert_eq!(s.send[0][0].id, "lo");
            assert!(s.send[1][0].paused);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(parse(&sdp.to_string()).unwrap(), sdp);
}
