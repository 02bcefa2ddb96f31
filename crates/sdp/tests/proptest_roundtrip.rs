//! proptest: generated session descriptions serialise to text that parses back to an equal
//! value, and arbitrary text never panics the parser.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use tympan_sdp::*;

fn token() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,7}"
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![
        Just(Direction::SendRecv),
        Just(Direction::SendOnly),
        Just(Direction::RecvOnly),
        Just(Direction::Inactive)
    ]
}

fn connection() -> impl Strategy<Value = Connection> {
    (
        prop_oneof![Just("IP4"), Just("IP6")],
        "[0-9a-f.:]{1,15}(/[0-9]{1,3})?",
    )
        .prop_map(|(t, a)| Connection {
            nettype: "IN".into(),
            addrtype: t.into(),
            address: a,
        })
}

fn bandwidth() -> impl Strategy<Value = Bandwidth> {
    (
        prop_oneof![Just("AS"), Just("CT"), Just("TIAS")],
        any::<u32>(),
    )
        .prop_map(|(t, b)| Bandwidth {
            bwtype: t.into(),
            bandwidth: b.into(),
        })
}

fn fingerprint() -> impl Strategy<Value = Fingerprint> {
    prop_oneof![
        vec(any::<u8>(), 32).prop_map(|b| Fingerprint {
            hash_function: "sha-256".into(),
            bytes: b
        }),
        vec(any::<u8>(), 20).prop_map(|b| Fingerprint {
            hash_function: "sha-1".into(),
            bytes: b
        }),
        vec(any::<u8>(), 1..8).prop_map(|b| Fingerprint {
            hash_function: "x-hash".into(),
            bytes: b
        }),
    ]
}

fn unknown() -> impl Strategy<Value = Attribute> {
    ("x-[a-z]{1,6}", option::of("[ -~]{0,12}"))
        .prop_map(|(name, value)| Attribute::Unknown { name, value })
}

fn extmap() -> impl Strategy<Value = Attribute> {
    (
        1u8..=255,
        option::of(direction()),
        "[a-z]{1,5}:[a-z0-9:.-]{1,12}",
        option::of("[a-z]{1,5}( [a-z0-9]{1,4})?"),
    )
        .prop_map(|(id, direction, uri, attributes)| {
            Attribute::Extmap(Extmap {
                id,
                direction,
                uri: uri.into(),
                attributes,
            })
        })
}

fn session_attribute() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        (token(), vec(token(), 0..4))
            .prop_map(|(s, mids)| Attribute::Group(Group { semantics: s, mids })),
        "[A-Za-z0-9+/_]{4,24}".prop_map(Attribute::IceUfrag),
        "[A-Za-z0-9+/_]{22,32}".prop_map(Attribute::IcePwd),
        vec(token(), 1..3).prop_map(Attribute::IceOptions),
        Just(Attribute::IceLite),
        Just(Attribute::ExtmapAllowMixed),
        fingerprint().prop_map(Attribute::Fingerprint),
        prop_oneof![
            Just(Setup::Active),
            Just(Setup::Passive),
            Just(Setup::ActPass),
            Just(Setup::HoldConn)
        ]
        .prop_map(Attribute::Setup),
        ("[A-Z]{3}", vec("[a-z0-9*]{1,8}", 0..3)).prop_map(|(semantic, ids)| {
            Attribute::MsidSemantic(MsidSemantic { semantic, ids })
        }),
        direction().prop_map(Attribute::Direction),
        extmap(),
        unknown(),
    ]
}

fn candidate() -> impl Strategy<Value = Candidate> {
    (
        "[a-zA-Z0-9+/]{1,10}",
        1u16..=2,
        prop_oneof![Just("udp"), Just("UDP"), Just("tcp")],
        any::<u32>(),
        "[0-9a-f.:]{3,15}",
        any::<u16>(),
        prop_oneof![
            Just(CandidateType::Host),
            Just(CandidateType::ServerReflexive),
            Just(CandidateType::PeerReflexive),
            Just(CandidateType::Relay)
        ],
        option::of("[0-9.]{7,15}"),
        option::of(any::<u16>()),
        option::of(prop_oneof![
            Just(TcpType::Active),
            Just(TcpType::Passive),
            Just(TcpType::SimultaneousOpen)
        ]),
        vec(
            (
                prop_oneof![Just("generation"), Just("network-id"), Just("ufrag")],
                "[a-z0-9]{1,5}",
            ),
            0..3,
        ),
    )
        .prop_map(|(f, c, t, p, a, port, typ, ra, rp, tt, ext)| Candidate {
            foundation: f,
            component: c,
            transport: t.into(),
            priority: p,
            address: a,
            port,
            typ,
            related_address: ra,
            related_port: rp,
            tcp_type: tt,
            extensions: ext.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        })
}

fn fmtp_param() -> impl Strategy<Value = FmtpParam> {
    prop_oneof![
        any::<u32>().prop_map(FmtpParam::MinPtime),
        any::<bool>().prop_map(FmtpParam::UseInbandFec),
        any::<bool>().prop_map(FmtpParam::Stereo),
        any::<u32>().prop_map(FmtpParam::MaxPlaybackRate),
        any::<u8>().prop_map(FmtpParam::ProfileId),
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, c)| {
            FmtpParam::ProfileLevelId(ProfileLevelId {
                profile_idc: a,
                profile_iop: b,
                level_idc: c,
            })
        }),
        (0u8..=2).prop_map(FmtpParam::PacketizationMode),
        any::<bool>().prop_map(FmtpParam::LevelAsymmetryAllowed),
        (0u8..128).prop_map(FmtpParam::Apt),
        any::<u32>().prop_map(FmtpParam::MaxFs),
        ("x-[a-z]{1,6}", "[a-z0-9]{0,6}").prop_map(|(key, value)| FmtpParam::Other { key, value }),
        "[0-9][0-9/,-]{0,6}".prop_map(FmtpParam::Value),
    ]
}

fn simulcast_list() -> impl Strategy<Value = Vec<Vec<SimulcastRid>>> {
    vec(
        vec(
            ("[a-z0-9_-]{1,4}", any::<bool>()).prop_map(|(id, paused)| SimulcastRid { id, paused }),
            1..3,
        ),
        1..4,
    )
}

fn media_attribute() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        "[a-z0-9_{}-]{1,8}".prop_map(Attribute::Mid),
        ("[a-z0-9{}-]{1,8}", option::of("[a-z0-9{}-]{1,8}")).prop_map(|(s, t)| {
            Attribute::Msid(Msid {
                stream_id: s,
                track_id: t,
            })
        }),
        candidate().prop_map(|c| Attribute::Candidate(Box::new(c))),
        Just(Attribute::EndOfCandidates),
        Just(Attribute::RtcpMux),
        Just(Attribute::RtcpMuxOnly),
        Just(Attribute::RtcpRsize),
        Just(Attribute::BundleOnly),
        (any::<u16>(), option::of(connection()))
            .prop_map(|(port, address)| Attribute::Rtcp(Rtcp { port, address })),
        (
            0u8..128,
            prop_oneof![Just("opus"), Just("VP8"), Just("H264"), Just("rtx")],
            1u32..200_000,
            option::of(1u16..8)
        )
            .prop_map(|(pt, e, c, ch)| Attribute::Rtpmap(Rtpmap {
                payload_type: pt,
                encoding: e.into(),
                clock_rate: c,
                channels: ch
            })),
        (0u8..128, vec(fmtp_param(), 1..5)).prop_map(|(pt, params)| Attribute::Fmtp(Fmtp {
            payload_type: pt,
            params
        })),
        (
            option::of(0u8..128),
            prop_oneof![
                Just("nack"),
                Just("ccm"),
                Just("goog-remb"),
                Just("transport-cc")
            ],
            option::of("[a-z]{1,5}( [a-z0-9]{1,5})?")
        )
            .prop_map(|(pt, t, p)| Attribute::RtcpFb(RtcpFb {
                payload_type: pt,
                fb_type: t.into(),
                param: p.map(Into::into)
            })),
        extmap(),
        Just(Attribute::ExtmapAllowMixed),
        (any::<u32>(), "[a-z]{1,6}", option::of("[ -~]{0,10}")).prop_map(|(s, a, v)| {
            Attribute::Ssrc(Ssrc {
                ssrc: s,
                attribute: a.into(),
                value: v,
            })
        }),
        (
            prop_oneof![Just("FID"), Just("SIM"), Just("FEC")],
            vec(any::<u32>(), 0..4)
        )
            .prop_map(|(s, ssrcs)| Attribute::SsrcGroup(SsrcGroup {
                semantics: s.into(),
                ssrcs
            })),
        (
            "[a-z0-9_-]{1,6}",
            prop_oneof![Just(RidDirection::Send), Just(RidDirection::Recv)],
            vec(0u8..128, 0..3),
            vec(("max-[a-z]{1,5}", option::of("[0-9]{1,4}")), 0..3)
        )
            .prop_map(|(id, direction, payload_types, restrictions)| {
                Attribute::Rid(Rid {
                    id,
                    direction,
                    payload_types,
                    restrictions,
                })
            }),
        prop_oneof![
            (simulcast_list(), simulcast_list()).prop_map(|(send, recv)| Simulcast { send, recv }),
            simulcast_list().prop_map(|send| Simulcast {
                send,
                recv: Vec::new()
            }),
            simulcast_list().prop_map(|recv| Simulcast {
                send: Vec::new(),
                recv
            }),
        ]
        .prop_map(Attribute::Simulcast),
        direction().prop_map(Attribute::Direction),
        any::<u16>().prop_map(Attribute::SctpPort),
        any::<u64>().prop_map(Attribute::MaxMessageSize),
        (any::<u16>(), option::of(any::<u32>())).prop_map(|(port, streams)| {
            Attribute::Sctpmap(Sctpmap {
                port,
                protocol: "webrtc-datachannel".into(),
                streams,
            })
        }),
        "[a-zA-Z0-9+/_]{4,24}".prop_map(Attribute::IceUfrag),
        fingerprint().prop_map(Attribute::Fingerprint),
        unknown(),
    ]
}

fn media() -> impl Strategy<Value = MediaDescription> {
    (
        prop_oneof![
            (
                prop_oneof![Just(MediaKind::Audio), Just(MediaKind::Video)],
                Just("UDP/TLS/RTP/SAVPF".to_string()),
                vec((0u8..128).prop_map(|p| p.to_string()), 1..6)
            ),
            (
                Just(MediaKind::Application),
                Just("UDP/DTLS/SCTP".to_string()),
                Just(vec!["webrtc-datachannel".to_string()])
            ),
        ],
        any::<u16>(),
        option::of(1u16..4),
        option::of("[ -~]{0,10}"),
        vec(connection(), 0..2),
        vec(bandwidth(), 0..2),
        vec(media_attribute(), 0..12),
    )
        .prop_map(
            |((kind, protocol, formats), port, port_count, title, connections, bw, attrs)| {
                MediaDescription {
                    kind,
                    port,
                    port_count,
                    protocol,
                    formats: formats.into_iter().map(Into::into).collect(),
                    title,
                    connections,
                    bandwidths: bw,
                    key: None,
                    attributes: attrs,
                }
            },
        )
}

fn session() -> impl Strategy<Value = SessionDescription> {
    (
        (token(), any::<u64>(), any::<u64>(), "[0-9.]{7,15}"),
        "[ -~]{0,12}",
        option::of("[ -~]{0,12}"),
        option::of(connection()),
        vec(bandwidth(), 0..2),
        vec(
            (
                any::<u32>(),
                any::<u32>(),
                vec("[0-9]{1,5}[dhms]? [0-9]{1,4}", 0..2),
            ),
            1..3,
        ),
        option::of("[0-9]{1,10} -?[0-9]{1,3}h"),
        vec(session_attribute(), 0..8),
        vec(media(), 0..4),
    )
        .prop_map(
            |((user, id, ver, addr), name, info, conn, bw, times, z, attrs, media)| {
                SessionDescription {
                    version: 0,
                    origin: Origin {
                        username: user,
                        session_id: id,
                        session_version: ver,
                        nettype: "IN".into(),
                        addrtype: "IP4".into(),
                        address: addr,
                    },
                    session_name: name,
                    information: info,
                    uri: None,
                    emails: Vec::new(),
                    phones: Vec::new(),
                    connection: conn,
                    bandwidths: bw,
                    times: times
                        .into_iter()
                        .map(|(s, e, r)| Timing {
                            start: s.into(),
                            stop: e.into(),
                            repeats: r,
                        })
                        .collect(),
                    time_zones: z,
                    key: None,
                    attributes: attrs,
                    media,
                }
            },
        )
}

proptest! {
    #[test]
    fn generated_sessions_round_trip(sdp in session()) {
        let text = sdp.to_string();
        let parsed = parse(&text);
        prop_assert_eq!(parsed.as_ref(), Ok(&sdp), "text:\n{}", text);
    }

    #[test]
    fn arbitrary_text_never_panics(lines in vec("[a-z]=[ -~]{0,40}", 0..12)) {
        let text = format!("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n{}", lines.join("\r\n"));
        tympan_sdp::fuzz_parse(text.as_bytes());
    }
}
