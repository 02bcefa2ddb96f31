//! Interop of `tympan_rtc_engine::peer::Peer` with str0m 0.24 (crates.io) as the client, both
//! sans-IO, wired through a simulated in-memory network with simulated time.
//!
//! str0m offers audio + video (sendrecv) + a data channel; our Peer answers (ICE-lite, DTLS
//! server); ICE, DTLS, SRTP and SCTP come up; media flows both ways and is compared byte for
//! byte; our Peer renegotiates (adds send tracks) without an ICE restart; data channel
//! messages go both ways (text, binary, several KiB); PLI from str0m reaches us; a packet we
//! send is dropped in the network and the NACK from str0m is answered.

use std::sync::Arc;
use std::time::Duration;

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, MediaTime, Mid as Str0mMid};
use str0m::{Event, IceConnectionState};

use tympan_rtc_engine::peer::{PeerEvent, SignalingState};
use tympan_rtp::codecs::Vp8Descriptor;
use tympan_rtp::rtp::{RtpPacket, RtpWriter};

mod peer_common;
use peer_common::{attr, connect, connect_with, str0m_pt, vp8_frame};

#[test]
fn str0m_media_and_data_channels_through_our_peer() {
    let (mut sim, audio, video, first_answer) = connect();
    let opus_pt = str0m_pt(&sim.rtc, Codec::Opus);
    let vp8_pt = str0m_pt(&sim.rtc, Codec::Vp8);

    // ---- str0m -> peer: Opus and VP8 frames through str0m's frame API.
    let opus_frames: Vec<Vec<u8>> = (0..10u8)
        .map(|i| {
            (0..(60 + usize::from(i) * 7))
                .map(|j| (j as u8) ^ i)
                .collect()
        })
        .collect();
    let vp8_frames: Vec<Vec<u8>> = (0..4u8)
        .map(|i| vp8_frame(2500 + usize::from(i) * 300, i))
        .collect();
    for (i, f) in opus_frames.iter().enumerate() {
        let wallclock = sim.now;
        sim.rtc
            .writer(audio)
            .expect("audio writer")
            .write(
                opus_pt,
                wallclock,
                MediaTime::from_millis(20 * i as u64),
                f.clone(),
            )
            .expect("write opus");
        if let Some(v) = vp8_frames.get(i) {
            sim.rtc
                .writer(video)
                .expect("video writer")
                .write(
                    vp8_pt,
                    wallclock,
                    MediaTime::from_90khz(3000 * i as u64),
                    v.clone(),
                )
                .expect("write vp8");
        }
        sim.run_for(Duration::from_millis(20));
    }
    sim.run_for(Duration::from_millis(200));

    let audio_payloads: Vec<Vec<u8>> = sim
        .peer_rtp
        .iter()
        .filter(|(mid, _)| *mid == audio.to_string())
        .map(|(_, p)| RtpPacket::parse(p).expect("valid RTP").payload().to_vec())
        .collect();
    assert_eq!(
        audio_payloads, opus_frames,
        "Opus payloads handed out by our peer are byte-identical to what str0m wrote"
    );
    // VP8: strip the payload descriptor and reassemble by marker bit.
    let mut frames = Vec::new();
    let mut current = Vec::new();
    for (mid, p) in &sim.peer_rtp {
        if *mid != video.to_string() {
            continue;
        }
        let rtp = RtpPacket::parse(p).expect("valid RTP");
        assert_eq!(rtp.payload_type(), *vp8_pt);
        let payload = rtp.payload();
        let d = Vp8Descriptor::parse(payload).expect("VP8 descriptor");
        current.extend_from_slice(&payload[d.header_len..]);
        if rtp.marker() {
            frames.push(std::mem::take(&mut current));
        }
    }
    assert_eq!(
        frames, vp8_frames,
        "VP8 frames reassembled from our peer's RTP are byte-identical"
    );

    // ---- data channels, both directions: text, binary, several KiB.
    let str0m_ch = sim.str0m_channel_open().expect("str0m channel");
    let (peer_ch, label) = sim.peer_channel_open().expect("peer channel");
    assert_eq!(label, "chat");
    let big: Vec<u8> = (0..6000u32).map(|i| (i * 7 % 251) as u8).collect();
    {
        let mut ch = sim.rtc.channel(str0m_ch).expect("str0m channel");
        ch.write(false, "héllo from str0m".as_bytes())
            .expect("write text");
        ch.write(true, &big).expect("write binary");
    }
    let ok = sim.run_until(Duration::from_secs(2), |s| {
        s.peer_events
            .iter()
            .filter(|e| matches!(e, PeerEvent::DataChannelMessage { .. }))
            .count()
            >= 2
    });
    assert!(ok, "{:?}", sim.peer_events);
    let msgs: Vec<(Vec<u8>, bool)> = sim
        .peer_events
        .iter()
        .filter_map(|e| match e {
            PeerEvent::DataChannelMessage {
                channel,
                data,
                binary,
            } if *channel == peer_ch => Some((data.clone(), *binary)),
            _ => None,
        })
        .collect();
    assert_eq!(
        msgs,
        vec![
            ("héllo from str0m".as_bytes().to_vec(), false),
            (big.clone(), true)
        ]
    );
    let big_back: Vec<u8> = (0..5000u32).map(|i| (i * 13 % 253) as u8).collect();
    sim.peer
        .send_data(sim.now, peer_ch, "grüße from tympan".as_bytes(), false)
        .expect("send text");
    sim.peer
        .send_data(sim.now, peer_ch, &big_back, true)
        .expect("send binary");
    let ok = sim.run_until(Duration::from_secs(2), |s| {
        s.rtc_events
            .iter()
            .filter(|e| matches!(e, Event::ChannelData(_)))
            .count()
            >= 2
    });
    assert!(ok, "str0m did not get our messages");
    let got: Vec<(Vec<u8>, bool)> = sim
        .rtc_events
        .iter()
        .filter_map(|e| match e {
            Event::ChannelData(d) if d.id == str0m_ch => Some((d.data.clone(), d.binary)),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("grüße from tympan".as_bytes().to_vec(), false),
            (big_back, true)
        ]
    );

    // ---- renegotiation: our peer adds send tracks and offers; str0m answers. No ICE restart.
    let video_ssrc = 0x5151_0001;
    let audio_ssrc = 0x5151_0002;
    let our_video = sim
        .peer
        .add_send_track(tympan_sdp::MediaKind::Video, video_ssrc, "p1", "t1");
    let our_audio = sim
        .peer
        .add_send_track(tympan_sdp::MediaKind::Audio, audio_ssrc, "p1", "t2");
    assert!(sim.peer.needs_offer());
    let offer = sim.peer.create_offer(sim.now).expect("our offer");
    assert_eq!(sim.peer.signaling_state(), SignalingState::HaveLocalOffer);
    assert_eq!(
        attr(&offer, "a=ice-ufrag:")[0],
        attr(&first_answer, "a=ice-ufrag:")[0],
        "same ICE credentials (no restart)"
    );
    assert_eq!(
        attr(&offer, "a=fingerprint:")[0],
        attr(&first_answer, "a=fingerprint:")[0]
    );
    assert!(offer.contains("a=msid:p1 t1"), "{offer}");
    assert!(
        offer.contains(&format!("a=ssrc:{video_ssrc} cname:tympan-test")),
        "{offer}"
    );
    assert!(
        offer.contains(&format!("a=ssrc:{video_ssrc} msid:p1 t1")),
        "{offer}"
    );
    assert!(offer.contains("a=ssrc-group:FID"), "{offer}");
    let str0m_ufrag_before = sim.rtc.direct_api().local_ice_credentials().ufrag;
    let events_before = sim.rtc_events.len();
    let answer = sim
        .rtc
        .sdp_api()
        .accept_offer(SdpOffer::from_sdp_string(&offer).expect("str0m parses our offer"))
        .expect("str0m accepts our re-offer");
    let answer_text = answer.to_sdp_string();
    sim.peer
        .accept_answer(sim.now, &answer_text)
        .expect("we accept str0m's answer");
    assert_eq!(sim.peer.signaling_state(), SignalingState::Stable);
    assert!(!sim.peer.needs_offer());
    assert_eq!(
        sim.rtc.direct_api().local_ice_credentials().ufrag,
        str0m_ufrag_before,
        "str0m kept its ICE credentials"
    );
    let infos: Vec<_> = sim.peer.media().collect();
    let vinfo = infos
        .iter()
        .find(|m| m.mid == our_video)
        .expect("our video");
    assert!(vinfo.sending && !vinfo.receiving);
    let our_vp8 = vinfo
        .codecs
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case("vp8"))
        .expect("VP8 negotiated")
        .payload_type;
    let ainfo = infos
        .iter()
        .find(|m| m.mid == our_audio)
        .expect("our audio");
    let our_opus = ainfo.codecs[0].payload_type;
    assert_eq!(ainfo.codecs[0].name, "opus");

    // ---- peer -> str0m: RTP through send_rtp; str0m's MediaData must match.
    // Drop the 2nd packet of the 3rd video frame: str0m NACKs, our peer retransmits.
    let target_seq = Arc::new(std::sync::atomic::AtomicU32::new(u32::MAX));
    let t = Arc::clone(&target_seq);
    sim.drop_to_rtc = Box::new(move |d: &[u8]| {
        let is_rtp = d.len() > 12 && (128..192).contains(&d[0]) && !(192..224).contains(&d[1]);
        is_rtp
            && u32::from_be_bytes([d[8], d[9], d[10], d[11]]) == video_ssrc
            && u32::from(u16::from_be_bytes([d[2], d[3]]))
                == t.load(std::sync::atomic::Ordering::SeqCst)
    });
    let our_vp8_frames: Vec<Vec<u8>> = (0..6u8)
        .map(|i| vp8_frame(2000 + usize::from(i) * 100, 100 + i))
        .collect();
    let our_opus_frames: Vec<Vec<u8>> = (0..6u8)
        .map(|i| {
            (0..(80 + usize::from(i)))
                .map(|j| (j as u8).wrapping_add(i))
                .collect()
        })
        .collect();
    let mut vseq: u16 = 1000;
    let mut aseq: u16 = 7000;
    let mut buf = [0u8; 1500];
    for (i, (vf, af)) in our_vp8_frames.iter().zip(&our_opus_frames).enumerate() {
        let n = RtpWriter {
            marker: true,
            ..RtpWriter::new(our_opus, aseq, 960 * i as u32, audio_ssrc, af)
        }
        .write(&mut buf)
        .unwrap();
        aseq = aseq.wrapping_add(1);
        sim.peer
            .send_rtp(sim.now, &our_audio, &buf[..n])
            .expect("send audio");
        let chunks: Vec<&[u8]> = vf.chunks(900).collect();
        for (k, chunk) in chunks.iter().enumerate() {
            if i == 2 && k == 1 {
                target_seq.store(u32::from(vseq), std::sync::atomic::Ordering::SeqCst);
            }
            let mut payload = vec![if k == 0 { 0x10 } else { 0x00 }];
            payload.extend_from_slice(chunk);
            let n = RtpWriter {
                marker: k + 1 == chunks.len(),
                ..RtpWriter::new(our_vp8, vseq, 3000 * i as u32, video_ssrc, &payload)
            }
            .write(&mut buf)
            .unwrap();
            vseq = vseq.wrapping_add(1);
            sim.peer
                .send_rtp(sim.now, &our_video, &buf[..n])
                .expect("send video");
        }
        sim.run_for(Duration::from_millis(33));
        if i == 2 {
            // Let the drop happen once only.
            sim.exchange();
            target_seq.store(u32::MAX, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let vmid: Str0mMid = our_video.as_str().into();
    let amid: Str0mMid = our_audio.as_str().into();
    let ok = sim.run_until(Duration::from_secs(3), |s| {
        s.rtc_events
            .iter()
            .filter(|e| matches!(e, Event::MediaData(d) if d.mid == vmid))
            .count()
            >= our_vp8_frames.len()
    });
    assert_eq!(
        sim.dropped_to_rtc, 1,
        "one packet was dropped in the network"
    );
    let got_video: Vec<Vec<u8>> = sim
        .rtc_events
        .iter()
        .filter_map(|e| match e {
            Event::MediaData(d) if d.mid == vmid => Some(d.data.to_vec()),
            _ => None,
        })
        .collect();
    assert!(ok, "str0m got {} video frames", got_video.len());
    assert_eq!(
        got_video, our_vp8_frames,
        "str0m's VP8 frames equal ours, including the one whose packet was lost and retransmitted after NACK"
    );
    let got_audio: Vec<Vec<u8>> = sim
        .rtc_events
        .iter()
        .filter_map(|e| match e {
            Event::MediaData(d) if d.mid == amid => Some(d.data.to_vec()),
            _ => None,
        })
        .collect();
    assert_eq!(got_audio, our_opus_frames);
    // No ICE restart or reconnection happened on str0m's side.
    assert!(
        !sim.rtc_events[events_before..].iter().any(|e| matches!(
            e,
            Event::IceConnectionStateChange(
                IceConnectionState::New
                    | IceConnectionState::Checking
                    | IceConnectionState::Disconnected
            )
        )),
        "str0m's ICE restarted"
    );

    // ---- PLI from str0m on the section we send reaches us as KeyframeRequested.
    {
        let mut w = sim.rtc.writer(vmid).expect("writer for our video mid");
        assert!(w.is_request_keyframe_possible(KeyframeRequestKind::Pli));
        w.request_keyframe(None, KeyframeRequestKind::Pli)
            .expect("request keyframe");
    }
    let ok = sim.run_until(Duration::from_secs(2), |s| {
        s.peer_events
            .iter()
            .any(|e| matches!(e, PeerEvent::KeyframeRequested { mid } if *mid == our_video))
    });
    assert!(ok, "PLI did not reach our peer: {:?}", sim.peer_events);

    // ---- our keyframe request on str0m's video reaches str0m.
    sim.peer.request_keyframe(sim.now, &video.to_string());
    let ok = sim.run_until(Duration::from_secs(2), |s| {
        s.rtc_events
            .iter()
            .any(|e| matches!(e, Event::KeyframeRequest(r) if r.mid == video))
    });
    assert!(ok, "our PLI did not reach str0m");

    // ---- str0m re-offers (adds a second audio track it sends): our answer keeps every
    // m-line, our send sections (sendonly, same SSRCs/msid) and the ICE/DTLS identity.
    let mut api = sim.rtc.sdp_api();
    let extra = api.add_media(
        MediaKind::Audio,
        Direction::SendOnly,
        Some("client".into()),
        Some("mic2".into()),
        None,
    );
    let (reoffer, pending) = api.apply().expect("str0m re-offer");
    let reanswer = sim
        .peer
        .accept_offer(sim.now, &reoffer.to_sdp_string())
        .expect("we answer str0m's re-offer");
    assert_eq!(
        attr(&reanswer, "a=ice-ufrag:")[0],
        attr(&first_answer, "a=ice-ufrag:")[0]
    );
    assert_eq!(
        attr(&reanswer, "a=fingerprint:")[0],
        attr(&first_answer, "a=fingerprint:")[0]
    );
    assert!(
        reanswer.contains(&format!("a=ssrc:{video_ssrc} msid:p1 t1")),
        "{reanswer}"
    );
    let mids: Vec<&str> = attr(&reanswer, "a=mid:");
    assert_eq!(mids.len(), 6, "{reanswer}");
    assert_eq!(&mids[3..5], &[our_video.as_str(), our_audio.as_str()]);
    sim.rtc
        .sdp_api()
        .accept_answer(
            pending,
            SdpAnswer::from_sdp_string(&reanswer).expect("str0m parses our re-answer"),
        )
        .expect("str0m accepts our re-answer");
    let infos: Vec<_> = sim.peer.media().collect();
    assert!(
        infos
            .iter()
            .any(|m| m.mid == our_video && m.sending && !m.receiving)
    );
    assert!(
        infos
            .iter()
            .any(|m| m.mid == extra.to_string() && m.receiving && !m.sending)
    );
    // Media on the new section reaches us; ours still reaches str0m.
    let before = sim.peer_rtp.len();
    let frame: Vec<u8> = (0..90u8).collect();
    let now = sim.now;
    sim.rtc
        .writer(extra)
        .expect("writer")
        .write(opus_pt, now, MediaTime::from_millis(0), frame.clone())
        .expect("write");
    let n = RtpWriter {
        marker: true,
        ..RtpWriter::new(our_opus, aseq, 960 * 50, audio_ssrc, &frame)
    }
    .write(&mut buf)
    .unwrap();
    sim.peer
        .send_rtp(sim.now, &our_audio, &buf[..n])
        .expect("send audio after re-offer");
    sim.run_for(Duration::from_millis(100));
    let extra_mid = extra.to_string();
    assert!(
        sim.peer_rtp[before..]
            .iter()
            .any(|(mid, p)| *mid == extra_mid
                && RtpPacket::parse(p).unwrap().payload() == &frame[..]),
        "RTP on str0m's new section"
    );
    assert_eq!(
        sim.rtc_events
            .iter()
            .filter(|e| matches!(e, Event::MediaData(d) if d.mid == amid))
            .count(),
        our_opus_frames.len() + 1
    );

    // ---- we remove a send track: the section goes inactive, str0m agrees, sending stops.
    sim.peer.remove_send_track(&our_audio);
    assert!(sim.peer.needs_offer());
    let offer = sim.peer.create_offer(sim.now).expect("offer");
    let answer = sim
        .rtc
        .sdp_api()
        .accept_offer(SdpOffer::from_sdp_string(&offer).expect("parse"))
        .expect("str0m accepts");
    sim.peer
        .accept_answer(sim.now, &answer.to_sdp_string())
        .expect("answer");
    assert!(!sim.peer.needs_offer());
    assert!(
        sim.peer
            .media()
            .any(|m| m.mid == our_audio && !m.sending && !m.receiving)
    );
    assert!(sim.peer.send_rtp(sim.now, &our_audio, &buf[..n]).is_err());
    eprintln!(
        "peer_rtp={} str0m_events={} peer_stats={:?} simulated={:?}",
        sim.peer_rtp.len(),
        sim.rtc_events.len(),
        sim.peer.stats(),
        sim.now - sim.start
    );
}

#[test]
fn consent_expires_when_str0m_goes_silent() {
    let (mut sim, _, _, _) = connect();
    sim.deliver_to_peer = false;
    let silent_since = sim.now;
    let ok = sim.run_until(Duration::from_secs(40), |s| {
        s.peer_events.iter().any(|e| {
            matches!(
                e,
                PeerEvent::Disconnected {
                    reason: tympan_rtc_engine::peer::DisconnectReason::ConsentExpired
                }
            )
        })
    });
    assert!(ok, "{:?}", sim.peer_events);
    let after = sim.now - silent_since;
    assert!(
        after <= Duration::from_secs(31),
        "consent expired after {after:?}, later than the 30 s RFC 7675 timeout"
    );
    assert!(
        after >= Duration::from_secs(25),
        "consent expired too early: {after:?}"
    );
}

#[test]
fn close_sends_dtls_close_notify_to_str0m() {
    let (mut sim, _, _, _) = connect();
    sim.peer.close(sim.now);
    assert!(sim.peer.is_closed());
    let ok = sim.run_until(Duration::from_secs(2), |s| {
        s.rtc_events.iter().any(|e| matches!(e, Event::Closed))
    });
    // str0m reports the remote close_notify as Event::Closed.
    assert!(ok, "str0m did not notice our close_notify");
}

#[test]
fn str0m_close_is_reported_as_dtls_closed() {
    let (mut sim, _, _, _) = connect();
    sim.rtc.close().expect("str0m close");
    let ok = sim.run_until(Duration::from_secs(2), |s| {
        s.peer_events.iter().any(|e| {
            matches!(
                e,
                PeerEvent::Disconnected {
                    reason: tympan_rtc_engine::peer::DisconnectReason::DtlsClosed
                }
            )
        })
    });
    assert!(ok, "{:?}", sim.peer_events);
}

#[test]
fn str0m_data_channels_second_channel_empty_and_large_messages_and_close() {
    let (mut sim, _, _, _) = connect();
    let (first, _) = sim.peer_channel_open().expect("first channel");

    // A second channel added through str0m's SDP API (with the application m-line already
    // negotiated, str0m opens it in band; if it makes an offer, we answer it).
    let mut api = sim.rtc.sdp_api();
    let files = api.add_channel("files".into());
    if let Some((offer, pending)) = api.apply() {
        let answer = sim
            .peer
            .accept_offer(sim.now, &offer.to_sdp_string())
            .expect("answer");
        sim.rtc
            .sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
            .expect("str0m accepts");
    }
    // And a third one opened directly (in band DCEP, no SDP).
    let direct = sim
        .rtc
        .direct_api()
        .create_data_channel(str0m::channel::ChannelConfig {
            label: "direct".into(),
            ..Default::default()
        });
    let ok = sim.run_until(Duration::from_secs(2), |s| {
        s.peer_events
            .iter()
            .filter(|e| matches!(e, PeerEvent::DataChannelOpen { .. }))
            .count()
            >= 3
    });
    assert!(ok, "{:?}", sim.peer_events);
    let labels: Vec<(tympan_rtc_engine::peer::ChannelId, String)> = sim
        .peer_events
        .iter()
        .filter_map(|e| match e {
            PeerEvent::DataChannelOpen { channel, label } => Some((*channel, label.clone())),
            _ => None,
        })
        .collect();
    let id_of = |l: &str| labels.iter().find(|(_, x)| x == l).map(|(c, _)| *c);
    let files_id = id_of("files").expect("files channel open on our side");
    let direct_id = id_of("direct").expect("direct channel open on our side");
    assert_ne!(files_id, first);
    assert_ne!(direct_id, files_id);

    // Messages on each channel, including an empty one and a 60 KiB one (many SCTP chunks
    // and DTLS records), arrive on the right channel, in order.
    let large: Vec<u8> = (0..60_000u32).map(|i| (i ^ (i >> 8)) as u8).collect();
    let ok = sim.run_until(Duration::from_secs(1), |s| {
        s.rtc_events
            .iter()
            .filter(|e| matches!(e, Event::ChannelOpen(..)))
            .count()
            >= 3
    });
    assert!(ok, "str0m's channels open");
    {
        let mut ch = sim.rtc.channel(files).expect("files");
        // (No empty message from str0m: str0m 0.24 sends it as a zero-length DATA chunk,
        // not the single 0x00 byte RFC 8831 §6.6 requires, and the stream stalls on our side.
        // Empty messages are checked in the other direction below.)
        assert!(ch.write(true, &[0xFF]).expect("one byte"));
        assert!(ch.write(true, &large).expect("large"));
    }
    {
        let mut ch = sim.rtc.channel(direct).expect("direct");
        ch.write(false, "第二".as_bytes()).expect("utf-8 text");
    }
    let ok = sim.run_until(Duration::from_secs(3), |s| {
        s.peer_events
            .iter()
            .filter(|e| matches!(e, PeerEvent::DataChannelMessage { .. }))
            .count()
            >= 3
    });
    assert!(
        ok,
        "{:?}",
        sim.peer_events
            .iter()
            .map(|e| match e {
                PeerEvent::DataChannelMessage {
                    channel,
                    data,
                    binary,
                } => format!("msg {channel} {} {binary}", data.len()),
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>()
    );
    let on = |id| -> Vec<(Vec<u8>, bool)> {
        sim.peer_events
            .iter()
            .filter_map(|e| match e {
                PeerEvent::DataChannelMessage {
                    channel,
                    data,
                    binary,
                } if *channel == id => Some((data.clone(), *binary)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        on(files_id),
        vec![(vec![0xFF], true), (large.clone(), true)]
    );
    assert_eq!(on(direct_id), vec![("第二".as_bytes().to_vec(), false)]);

    // Our side: large binary and empty binary back on "files".
    sim.peer
        .send_data(sim.now, files_id, &large, true)
        .expect("large back");
    sim.peer
        .send_data(sim.now, files_id, &[], true)
        .expect("empty back");
    let ok = sim.run_until(Duration::from_secs(3), |s| {
        s.rtc_events
            .iter()
            .filter(|e| matches!(e, Event::ChannelData(d) if d.id == files))
            .count()
            >= 2
    });
    assert!(ok, "str0m got our messages");
    let got: Vec<(Vec<u8>, bool)> = sim
        .rtc_events
        .iter()
        .filter_map(|e| match e {
            Event::ChannelData(d) if d.id == files => Some((d.data.clone(), d.binary)),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![(large, true), (Vec::new(), true)]);

    // str0m closes "direct": we see it closed; the others keep working.
    sim.rtc.direct_api().close_data_channel(direct);
    let ok = sim.run_until(Duration::from_secs(2), |s| {
        s.peer_events
            .iter()
            .any(|e| matches!(e, PeerEvent::DataChannelClosed { channel } if *channel == direct_id))
    });
    assert!(ok, "{:?}", sim.peer_events.last());
    assert!(
        sim.peer
            .send_data(sim.now, direct_id, b"after close", false)
            .is_err()
    );
    sim.peer
        .send_data(sim.now, first, b"still open", false)
        .expect("first channel still open");
}

#[test]
fn our_peer_as_dtls_client_when_the_offer_says_passive() {
    // Everything (ICE, DTLS with us as client, SRTP, SCTP with us sending the INIT) comes up.
    let (mut sim, audio, _, _) = connect_with(true);
    let pt = str0m_pt(&sim.rtc, Codec::Opus);
    let now = sim.now;
    sim.rtc
        .writer(audio)
        .expect("writer")
        .write(pt, now, MediaTime::from_millis(0), vec![1, 2, 3, 4])
        .expect("write");
    let ok = sim.run_until(Duration::from_secs(1), |s| {
        s.peer_rtp
            .iter()
            .any(|(_, p)| RtpPacket::parse(p).unwrap().payload() == [1, 2, 3, 4])
    });
    assert!(ok, "SRTP keys agree with us as the DTLS client");
}

#[test]
fn timers_do_not_busy_loop_and_say_why() {
    let (mut sim, audio, _, _) = connect();
    let pt = str0m_pt(&sim.rtc, Codec::Opus);
    for i in 0..10u64 {
        let now = sim.now;
        sim.rtc
            .writer(audio)
            .expect("writer")
            .write(pt, now, MediaTime::from_millis(20 * i), vec![5; 80])
            .expect("write");
        sim.run_for(Duration::from_millis(20));
    }
    // Drive only our peer by its own deadlines for 20 simulated seconds (the remote is
    // silent): every wake-up must move the deadline forward.
    let start = sim.now;
    let mut now = sim.now;
    let mut wakeups = 0;
    let mut reasons = std::collections::BTreeSet::new();
    let mut buf = vec![0u8; 1500];
    while let Some((t, reason)) = sim.peer.poll_timeout() {
        if t > start + Duration::from_secs(20) {
            break;
        }
        reasons.insert(format!("{reason:?}"));
        now = now.max(t);
        sim.peer.handle_timeout(now);
        while sim.peer.poll_transmit(&mut buf).is_some() {}
        while sim.peer.poll_event().is_some() {}
        wakeups += 1;
        if let Some((next, r)) = sim.peer.poll_timeout() {
            assert!(
                next > now,
                "deadline {r:?} did not move after handle_timeout"
            );
        }
        assert!(wakeups < 2000, "too many wake-ups: {reasons:?}");
    }
    assert!(wakeups > 0);
    assert!(reasons.contains("Rtcp"), "{reasons:?}");
}

#[test]
fn glare_with_str0m_is_resolved_as_documented() {
    let (mut sim, _, _, _) = connect();
    let ours = sim
        .peer
        .add_send_track(tympan_sdp::MediaKind::Video, 0x0BAD_CAFE, "p2", "t3");
    let our_offer = sim.peer.create_offer(sim.now).expect("our offer");
    // str0m offers at the same time: we refuse (the server never rolls back).
    let mut api = sim.rtc.sdp_api();
    api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let (their_offer, _their_pending) = api.apply().expect("str0m offer");
    assert_eq!(
        sim.peer.accept_offer(sim.now, &their_offer.to_sdp_string()),
        Err(tympan_rtc_engine::peer::PeerError::Glare)
    );
    assert_eq!(sim.peer.signaling_state(), SignalingState::HaveLocalOffer);
    // str0m drops its pending offer and answers ours ...
    let answer = sim
        .rtc
        .sdp_api()
        .accept_offer(SdpOffer::from_sdp_string(&our_offer).unwrap())
        .expect("str0m answers our offer");
    sim.peer
        .accept_answer(sim.now, &answer.to_sdp_string())
        .expect("we take the answer");
    assert!(sim.peer.media().any(|m| m.mid == ours && m.sending));
    // ... then offers again, and we answer.
    let mut api = sim.rtc.sdp_api();
    let theirs = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let (offer, pending) = api.apply().expect("str0m offers again");
    let answer = sim
        .peer
        .accept_offer(sim.now, &offer.to_sdp_string())
        .expect("we answer now");
    sim.rtc
        .sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .expect("str0m takes our answer");
    let infos: Vec<_> = sim.peer.media().collect();
    assert!(infos.iter().any(|m| m.mid == ours && m.sending));
    assert!(
        infos
            .iter()
            .any(|m| m.mid == theirs.to_string() && m.receiving)
    );
    assert!(sim.run_until(Duration::from_millis(200), |s| s.rtc.is_connected()));
}
