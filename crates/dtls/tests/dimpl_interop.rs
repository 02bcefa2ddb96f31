//! Interop with `dimpl` (str0m's independent sans-IO DTLS 1.2 implementation, pure-Rust
//! crypto), in memory on simulated time, both roles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tympan_dtls::{
    DtlsCertificate, DtlsConfig, DtlsContext, DtlsEndpoint, DtlsEvent, DtlsRole, Fingerprint,
    KeyingMaterial, SrtpProfile,
};

/// A dimpl endpoint plus what it reported.
struct Peer {
    dtls: dimpl::Dtls,
    buf: Vec<u8>,
    connected: bool,
    peer_cert: Option<Vec<u8>>,
    keys: Option<(Vec<u8>, dimpl::SrtpProfile)>,
    data: Vec<Vec<u8>>,
    close_notify: bool,
}

impl Peer {
    fn new(active: bool, now: Instant) -> (Self, Fingerprint) {
        // dimpl's identity: an independent OpenSSL-made key pair handed over as DER.
        let ident = DtlsCertificate::generate().expect("certificate");
        let cert = dimpl::DtlsCertificate {
            certificate: ident.certificate_der(),
            private_key: ident.private_key_pkcs8_der(),
        };
        let fingerprint = Fingerprint::from_sha256(Sha256::digest(&cert.certificate).into());
        let config = Arc::new(dimpl::Config::builder().build().expect("dimpl config"));
        let mut dtls = dimpl::Dtls::new_12(config, cert, now);
        dtls.set_active(active);
        let peer = Self {
            dtls,
            buf: vec![0; 4096],
            connected: false,
            peer_cert: None,
            keys: None,
            data: Vec::new(),
            close_notify: false,
        };
        (peer, fingerprint)
    }

    /// Drains dimpl's output; returns the datagrams to send.
    fn poll(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            match self.dtls.poll_output(&mut self.buf) {
                dimpl::Output::Packet(p) => out.push(p.to_vec()),
                dimpl::Output::Timeout(_) => break,
                dimpl::Output::Connected => self.connected = true,
                dimpl::Output::PeerCert(der) => self.peer_cert = Some(der.to_vec()),
                dimpl::Output::KeyingMaterial(km, profile) => {
                    self.keys = Some((km.to_vec(), profile))
                }
                dimpl::Output::ApplicationData(d) => self.data.push(d.to_vec()),
                dimpl::Output::CloseNotify => self.close_notify = true,
                dimpl::Output::BufferTooSmall { needed } => self.buf.resize(needed, 0),
                _ => {}
            }
        }
        out
    }
}

#[derive(Default)]
struct Ours {
    connected: Option<(Option<SrtpProfile>, Option<KeyingMaterial>, Fingerprint)>,
    data: Vec<Vec<u8>>,
    closed: bool,
}

fn drain(ep: &mut DtlsEndpoint, ours: &mut Ours) {
    while let Some(event) = ep.poll_event() {
        match event {
            DtlsEvent::Connected {
                srtp_profile,
                keying_material,
                peer_fingerprint,
                ..
            } => ours.connected = Some((srtp_profile, keying_material, peer_fingerprint)),
            DtlsEvent::ApplicationData(d) => ours.data.push(d.to_vec()),
            DtlsEvent::Closed => ours.closed = true,
            DtlsEvent::Failed(e) => panic!("our endpoint failed: {e}"),
        }
    }
}

fn pump(ep: &mut DtlsEndpoint, peer: &mut Peer, ours: &mut Ours, now: Instant) {
    for _ in 0..30 {
        let mut moved = 0;
        peer.dtls.handle_timeout(now).expect("dimpl timeout");
        for d in peer.poll() {
            ep.handle_datagram(now, &d);
            moved += 1;
        }
        while let Some(d) = ep.poll_transmit().map(<[u8]>::to_vec) {
            assert!(d.len() <= 1200);
            peer.dtls
                .handle_packet(&d)
                .expect("dimpl accepts our records");
            moved += 1;
        }
        drain(ep, ours);
        if moved == 0 {
            break;
        }
    }
}

fn dimpl_profile(p: dimpl::SrtpProfile) -> SrtpProfile {
    match p {
        dimpl::SrtpProfile::AES128_CM_SHA1_80 => SrtpProfile::Aes128CmHmacSha1_80,
        dimpl::SrtpProfile::AEAD_AES_128_GCM => SrtpProfile::AeadAes128Gcm,
        dimpl::SrtpProfile::AEAD_AES_256_GCM => SrtpProfile::AeadAes256Gcm,
        other => panic!("unexpected dimpl profile {other:?}"),
    }
}

fn interop(our_role: DtlsRole) -> (SrtpProfile, Ours, Peer) {
    let now = Instant::now();
    let ctx = DtlsContext::new(
        DtlsCertificate::generate().expect("certificate"),
        DtlsConfig::default(),
    )
    .expect("context");
    let (mut peer, peer_fp) = Peer::new(our_role == DtlsRole::Server, now);
    let mut ep = DtlsEndpoint::new(&ctx, our_role, peer_fp).expect("endpoint");
    let mut ours = Ours::default();
    ep.handle_timeout(now);
    pump(&mut ep, &mut peer, &mut ours, now);

    let (profile, keys, seen_fp) = ours.connected.clone().expect("we connected");
    assert!(peer.connected, "dimpl connected");
    assert_eq!(seen_fp, peer_fp);
    // dimpl saw our certificate; its SHA-256 is the fingerprint we put in SDP.
    let der = peer.peer_cert.clone().expect("dimpl got our certificate");
    assert_eq!(
        Fingerprint::from_sha256(Sha256::digest(&der).into()),
        *ctx.fingerprint()
    );
    // Identical exported SRTP keying material and profile on both sides.
    let (peer_keys, peer_profile) = peer.keys.clone().expect("dimpl exported keys");
    let profile = profile.expect("profile negotiated");
    assert_eq!(profile, dimpl_profile(peer_profile));
    let keys = keys.expect("keys");
    assert_eq!(keys.profile(), profile);
    assert_eq!(keys.as_bytes(), &peer_keys[..]);
    assert_eq!(peer_keys.len(), peer_profile.keying_material_len());

    // Application data both ways, up to one full record.
    let big: Vec<u8> = (0..ep.max_application_data_len())
        .map(|i| (i * 7) as u8)
        .collect();
    ep.send_application_data(b"tympan to dimpl").expect("send");
    ep.send_application_data(&big).expect("send big");
    peer.dtls
        .send_application_data(b"dimpl to tympan")
        .expect("dimpl send");
    let later = now + Duration::from_millis(10);
    pump(&mut ep, &mut peer, &mut ours, later);
    assert_eq!(peer.data, vec![b"tympan to dimpl".to_vec(), big]);
    assert_eq!(ours.data, vec![b"dimpl to tympan".to_vec()]);

    // Our close_notify is understood.
    ep.close();
    pump(&mut ep, &mut peer, &mut ours, later);
    assert!(ours.closed);
    assert!(peer.close_notify, "dimpl saw close_notify");
    (profile, ours, peer)
}

#[test]
fn our_client_with_dimpl_server() {
    let (profile, _, _) = interop(DtlsRole::Client);
    // dimpl as server chooses from its own preference list.
    assert!(SrtpProfile::ALL.contains(&profile));
}

#[test]
fn our_server_with_dimpl_client() {
    let (profile, _, _) = interop(DtlsRole::Server);
    // Our server's preference wins over dimpl's (AEAD_AES_256_GCM first).
    assert_eq!(profile, SrtpProfile::AeadAes128Gcm);
}

#[test]
fn dimpl_close_notify_closes_our_endpoint() {
    let now = Instant::now();
    let ctx = DtlsContext::new(
        DtlsCertificate::generate().expect("certificate"),
        DtlsConfig::default(),
    )
    .expect("context");
    let (mut peer, peer_fp) = Peer::new(true, now);
    let mut ep = DtlsEndpoint::new(&ctx, DtlsRole::Server, peer_fp).expect("endpoint");
    let mut ours = Ours::default();
    pump(&mut ep, &mut peer, &mut ours, now);
    assert!(ours.connected.is_some() && peer.connected);
    peer.dtls.close().expect("dimpl close");
    pump(&mut ep, &mut peer, &mut ours, now);
    assert!(ours.closed);
    assert!(ep.is_terminated());
}

#[test]
fn dimpl_certificate_with_wrong_fingerprint_is_refused() {
    let now = Instant::now();
    let ctx = DtlsContext::new(
        DtlsCertificate::generate().expect("certificate"),
        DtlsConfig::default(),
    )
    .expect("context");
    let (mut peer, peer_fp) = Peer::new(false, now);
    let wrong = Fingerprint::from_sha256([0x11; 32]);
    let mut ep = DtlsEndpoint::new(&ctx, DtlsRole::Client, wrong).expect("endpoint");
    ep.handle_timeout(now);
    let mut failure = None;
    for _ in 0..10 {
        peer.dtls.handle_timeout(now).expect("dimpl timeout");
        while let Some(d) = ep.poll_transmit().map(<[u8]>::to_vec) {
            // dimpl may reject our fatal alert as an error; that is its business.
            let _ = peer.dtls.handle_packet(&d);
        }
        for d in peer.poll() {
            ep.handle_datagram(now, &d);
        }
        while let Some(event) = ep.poll_event() {
            match event {
                DtlsEvent::Failed(e) => failure = Some(e),
                DtlsEvent::Connected { .. } => panic!("connected to the wrong peer"),
                _ => {}
            }
        }
    }
    assert_eq!(
        failure,
        Some(tympan_dtls::DtlsError::FingerprintMismatch {
            expected: wrong,
            actual: peer_fp,
        })
    );
    assert!(!peer.connected, "dimpl must not complete the handshake");
}
