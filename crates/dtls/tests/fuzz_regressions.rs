//! Replays every file in `fuzz/regressions/dtls_input` through the fuzz target's entry point
//! (crash reproducers and seeds).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tympan_dtls::{DtlsCertificate, DtlsConfig, DtlsContext, DtlsEndpoint, DtlsRole};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/dtls_input")
}

#[test]
fn dtls_input_regressions_replay() {
    let base = Instant::now();
    let mut replayed = 0;
    let mut answered = 0;
    if let Ok(entries) = std::fs::read_dir(dir()) {
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if !path.is_file() {
                continue;
            }
            let data = std::fs::read(&path).expect("read reproducer");
            let (fed, sent) = tympan_dtls::fuzz_server_input(base, &data);
            replayed += 1;
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
            {
                assert!(fed > 0, "{} holds no datagram", path.display());
                // Seeds start with a real ClientHello: the server must answer with flight 2.
                assert!(sent > 0, "{}: server did not answer", path.display());
                answered += 1;
            }
        }
    }
    assert!(replayed > 0, "no dtls_input reproducers found");
    assert!(answered > 0, "no seed reached the handshake");
}

/// Length-prefixes datagrams the way the fuzz entry point reads them.
fn frame(datagrams: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for d in datagrams {
        out.extend_from_slice(&u16::try_from(d.len()).expect("len").to_be_bytes());
        out.extend_from_slice(d);
    }
    out
}

/// Writes seeds: the client flights of real handshakes (ours and dimpl's ClientHello).
#[test]
#[ignore = "writes fuzz seeds into fuzz/regressions/dtls_input; run manually"]
fn write_seeds() {
    let now = Instant::now();
    let ctx = |_| {
        DtlsContext::new(
            DtlsCertificate::generate().expect("cert"),
            DtlsConfig::default(),
        )
        .expect("ctx")
    };
    let (c, s) = (ctx(0), ctx(1));
    let mut client = DtlsEndpoint::new(&c, DtlsRole::Client, *s.fingerprint()).expect("client");
    let mut server = DtlsEndpoint::new(&s, DtlsRole::Server, *c.fingerprint()).expect("server");
    client.handle_timeout(now);
    let mut client_flights = Vec::new();
    for _ in 0..4 {
        let mut batch = Vec::new();
        while let Some(d) = client.poll_transmit() {
            batch.push(d.to_vec());
        }
        for d in &batch {
            server.handle_datagram(now, d);
        }
        client_flights.extend(batch);
        while let Some(d) = server.poll_transmit().map(<[u8]>::to_vec) {
            client.handle_datagram(now, &d);
        }
    }
    assert!(client.is_connected());
    client.send_application_data(b"hello").expect("send");
    client.close();
    while let Some(d) = client.poll_transmit() {
        client_flights.push(d.to_vec());
    }
    std::fs::create_dir_all(dir()).expect("mkdir");
    std::fs::write(
        dir().join("seed-openssl-client-flights"),
        frame(&client_flights),
    )
    .expect("write");

    let ident = DtlsCertificate::generate().expect("cert");
    let cert = dimpl::DtlsCertificate {
        certificate: ident.certificate_der(),
        private_key: ident.private_key_pkcs8_der(),
    };
    let config = Arc::new(dimpl::Config::builder().build().expect("config"));
    let mut peer = dimpl::Dtls::new_12(config, cert, now);
    peer.set_active(true);
    peer.handle_timeout(now).expect("timeout");
    let mut buf = vec![0u8; 4096];
    let mut hello = Vec::new();
    loop {
        match peer.poll_output(&mut buf) {
            dimpl::Output::Packet(p) => hello.push(p.to_vec()),
            dimpl::Output::Timeout(_) => break,
            _ => {}
        }
    }
    assert!(!hello.is_empty());
    std::fs::write(dir().join("seed-dimpl-client-hello"), frame(&hello)).expect("write");
}
