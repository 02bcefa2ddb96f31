//! Typed RTP header extensions and the id → kind table negotiated in SDP (`a=extmap`).
//!
//! The caller fills an [`ExtensionMap`] from SDP, then [`ExtensionMap::typed`] turns each
//! [`RawExtension`] of a packet into a [`KnownExtension`]. Unknown ids are passed through as
//! [`KnownExtension::Unknown`].

use crate::rtp::{RawExtension, RtpPacket};

/// URI of the `mid` extension (RFC 8843).
pub const URI_MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// URI of the `rid` extension (RFC 8852).
pub const URI_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/// URI of the `repaired-rid` extension (RFC 8852).
pub const URI_REPAIRED_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";
/// URI of abs-send-time.
pub const URI_ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
/// URI of the transport-wide congestion control sequence number.
pub const URI_TRANSPORT_CC: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// URI of the client-to-mixer audio level (RFC 6464).
pub const URI_AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// URI of the 3GPP video orientation (CVO).
pub const URI_VIDEO_ORIENTATION: &str = "urn:3gpp:video-orientation";
/// URI of the playout-delay extension.
pub const URI_PLAYOUT_DELAY: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

/// The kinds of extension this crate understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtensionKind {
    /// SDES mid.
    Mid,
    /// SDES rtp-stream-id.
    Rid,
    /// SDES repaired-rtp-stream-id.
    RepairedRid,
    /// abs-send-time (24-bit 6.18 fixed-point seconds).
    AbsSendTime,
    /// Transport-wide sequence number.
    TransportCc,
    /// RFC 6464 audio level.
    AudioLevel,
    /// 3GPP coordination of video orientation.
    VideoOrientation,
    /// Playout delay limits.
    PlayoutDelay,
}

impl ExtensionKind {
    /// All kinds.
    pub const ALL: [ExtensionKind; 8] = [
        ExtensionKind::Mid,
        ExtensionKind::Rid,
        ExtensionKind::RepairedRid,
        ExtensionKind::AbsSendTime,
        ExtensionKind::TransportCc,
        ExtensionKind::AudioLevel,
        ExtensionKind::VideoOrientation,
        ExtensionKind::PlayoutDelay,
    ];

    /// The kind named by an `a=extmap` URI, if known.
    pub fn from_uri(uri: &str) -> Option<Self> {
        Some(match uri {
            URI_MID => ExtensionKind::Mid,
            URI_RID => ExtensionKind::Rid,
            URI_REPAIRED_RID => ExtensionKind::RepairedRid,
            URI_ABS_SEND_TIME => ExtensionKind::AbsSendTime,
            URI_TRANSPORT_CC => ExtensionKind::TransportCc,
            URI_AUDIO_LEVEL => ExtensionKind::AudioLevel,
            URI_VIDEO_ORIENTATION => ExtensionKind::VideoOrientation,
            URI_PLAYOUT_DELAY => ExtensionKind::PlayoutDelay,
            _ => return None,
        })
    }

    /// The `a=extmap` URI of this kind.
    pub fn uri(self) -> &'static str {
        match self {
            ExtensionKind::Mid => URI_MID,
            ExtensionKind::Rid => URI_RID,
            ExtensionKind::RepairedRid => URI_REPAIRED_RID,
            ExtensionKind::AbsSendTime => URI_ABS_SEND_TIME,
            ExtensionKind::TransportCc => URI_TRANSPORT_CC,
            ExtensionKind::AudioLevel => URI_AUDIO_LEVEL,
            ExtensionKind::VideoOrientation => URI_VIDEO_ORIENTATION,
            ExtensionKind::PlayoutDelay => URI_PLAYOUT_DELAY,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The id → kind table negotiated in SDP. Fixed size, no allocation, `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionMap {
    by_id: [Option<ExtensionKind>; 256],
    by_kind: [u8; 8],
}

impl Default for ExtensionMap {
    fn default() -> Self {
        Self::new()
    }
}

impl ExtensionMap {
    /// An empty map.
    pub const fn new() -> Self {
        ExtensionMap {
            by_id: [None; 256],
            by_kind: [0; 8],
        }
    }

    /// Maps `id` (1–255) to `kind`, replacing any previous mapping of either.
    pub fn insert(&mut self, id: u8, kind: ExtensionKind) {
        if id == 0 {
            return;
        }
        let old = self.by_kind[kind.index()];
        if old != 0 {
            self.by_id[old as usize] = None;
        }
        if let Some(prev) = self.by_id[id as usize] {
            self.by_kind[prev.index()] = 0;
        }
        self.by_id[id as usize] = Some(kind);
        self.by_kind[kind.index()] = id;
    }

    /// Maps `id` to the kind named by `uri`; returns false (and maps nothing) for unknown URIs.
    pub fn insert_uri(&mut self, id: u8, uri: &str) -> bool {
        match ExtensionKind::from_uri(uri) {
            Some(k) => {
                self.insert(id, k);
                true
            }
            None => false,
        }
    }

    /// The kind mapped to `id`.
    pub fn kind(&self, id: u8) -> Option<ExtensionKind> {
        self.by_id[id as usize]
    }

    /// The id mapped to `kind`.
    pub fn id(&self, kind: ExtensionKind) -> Option<u8> {
        match self.by_kind[kind.index()] {
            0 => None,
            id => Some(id),
        }
    }

    /// Interprets one raw element according to the map.
    pub fn typed<'a>(&self, ext: RawExtension<'a>) -> Result<KnownExtension<'a>, ExtensionError> {
        match self.kind(ext.id) {
            Some(kind) => KnownExtension::parse(kind, ext.data).map_err(|reason| ExtensionError {
                id: ext.id,
                kind,
                reason,
            }),
            None => Ok(KnownExtension::Unknown {
                id: ext.id,
                data: ext.data,
            }),
        }
    }

    /// The typed value of `kind` in `packet`, if the kind is mapped and present.
    pub fn get<'a>(
        &self,
        packet: &RtpPacket<'a>,
        kind: ExtensionKind,
    ) -> Option<Result<KnownExtension<'a>, ExtensionError>> {
        let id = self.id(kind)?;
        let bytes = packet.as_bytes();
        let ext = packet.extensions().find(|e| e.id == id)?;
        let data = &bytes[ext.offset..ext.offset + ext.data.len()];
        Some(self.typed(RawExtension {
            id,
            data,
            offset: ext.offset,
        }))
    }

    /// The transport-wide sequence number of `packet`, if mapped and present.
    pub fn transport_cc(&self, packet: &RtpPacket<'_>) -> Option<u16> {
        match self.get(packet, ExtensionKind::TransportCc)? {
            Ok(KnownExtension::TransportCc(s)) => Some(s),
            _ => None,
        }
    }
}

/// A known extension whose value is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionError {
    /// The element id.
    pub id: u8,
    /// The kind the id is mapped to.
    pub kind: ExtensionKind,
    /// What is wrong.
    pub reason: &'static str,
}

impl core::fmt::Display for ExtensionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "extension id {} ({:?}): {}",
            self.id, self.kind, self.reason
        )
    }
}

impl std::error::Error for ExtensionError {}

/// A typed extension value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownExtension<'a> {
    /// Media id.
    Mid(&'a [u8]),
    /// RTP stream id.
    Rid(&'a [u8]),
    /// Repaired RTP stream id.
    RepairedRid(&'a [u8]),
    /// abs-send-time, 24 bits of 6.18 fixed-point seconds.
    AbsSendTime(u32),
    /// Transport-wide sequence number.
    TransportCc(u16),
    /// RFC 6464: voice activity flag and level in -dBov (0–127).
    AudioLevel {
        /// Voice activity (V bit).
        voice: bool,
        /// Level in -dBov.
        level: u8,
    },
    /// CVO: camera, flip and rotation (0, 90, 180, 270 degrees as 0–3).
    VideoOrientation {
        /// Camera (C bit): false = front, true = back.
        back_camera: bool,
        /// Horizontal flip (F bit).
        flip: bool,
        /// Rotation in units of 90 degrees clockwise (0–3).
        rotation: u8,
    },
    /// Playout delay limits in 10 ms units (12 bits each).
    PlayoutDelay {
        /// Minimum delay.
        min: u16,
        /// Maximum delay.
        max: u16,
    },
    /// An id the map does not know; passed through.
    Unknown {
        /// The id.
        id: u8,
        /// The value.
        data: &'a [u8],
    },
}

impl<'a> KnownExtension<'a> {
    /// Parses the value of an extension of `kind`.
    pub fn parse(kind: ExtensionKind, d: &'a [u8]) -> Result<Self, &'static str> {
        Ok(match kind {
            ExtensionKind::Mid => KnownExtension::Mid(nonempty(d)?),
            ExtensionKind::Rid => KnownExtension::Rid(nonempty(d)?),
            ExtensionKind::RepairedRid => KnownExtension::RepairedRid(nonempty(d)?),
            ExtensionKind::AbsSendTime => match d {
                [a, b, c] => KnownExtension::AbsSendTime(u32::from_be_bytes([0, *a, *b, *c])),
                _ => return Err("abs-send-time must be 3 bytes"),
            },
            ExtensionKind::TransportCc => match d {
                [a, b] => KnownExtension::TransportCc(u16::from_be_bytes([*a, *b])),
                _ => return Err("transport-cc sequence must be 2 bytes"),
            },
            ExtensionKind::AudioLevel => match d {
                [b] | [b, ..] => KnownExtension::AudioLevel {
                    voice: b & 0x80 != 0,
                    level: b & 0x7F,
                },
                [] => return Err("audio level must be at least 1 byte"),
            },
            ExtensionKind::VideoOrientation => match d {
                [b] | [b, ..] => KnownExtension::VideoOrientation {
                    back_camera: b & 0x08 != 0,
                    flip: b & 0x04 != 0,
                    rotation: b & 0x03,
                },
                [] => return Err("video orientation must be at least 1 byte"),
            },
            ExtensionKind::PlayoutDelay => match d {
                [a, b, c] => KnownExtension::PlayoutDelay {
                    min: (u16::from(*a) << 4) | u16::from(*b >> 4),
                    max: (u16::from(*b & 0x0F) << 8) | u16::from(*c),
                },
                _ => return Err("playout delay must be 3 bytes"),
            },
        })
    }

    /// Encodes the value into `out`; returns the length (None if `out` is too small or the
    /// value is `Unknown`-sized beyond `out`).
    pub fn write(&self, out: &mut [u8]) -> Option<usize> {
        let bytes: &[u8];
        let mut tmp = [0u8; 3];
        match *self {
            KnownExtension::Mid(v)
            | KnownExtension::Rid(v)
            | KnownExtension::RepairedRid(v)
            | KnownExtension::Unknown { data: v, .. } => bytes = v,
            KnownExtension::AbsSendTime(t) => {
                tmp.copy_from_slice(&t.to_be_bytes()[1..]);
                bytes = &tmp[..3];
            }
            KnownExtension::TransportCc(s) => {
                tmp[..2].copy_from_slice(&s.to_be_bytes());
                bytes = &tmp[..2];
            }
            KnownExtension::AudioLevel { voice, level } => {
                tmp[0] = (if voice { 0x80 } else { 0 }) | (level & 0x7F);
                bytes = &tmp[..1];
            }
            KnownExtension::VideoOrientation {
                back_camera,
                flip,
                rotation,
            } => {
                tmp[0] = (if back_camera { 0x08 } else { 0 })
                    | (if flip { 0x04 } else { 0 })
                    | (rotation & 3);
                bytes = &tmp[..1];
            }
            KnownExtension::PlayoutDelay { min, max } => {
                tmp = [
                    (min >> 4) as u8,
                    (((min & 0x0F) << 4) as u8) | ((max >> 8) & 0x0F) as u8,
                    max as u8,
                ];
                bytes = &tmp[..3];
            }
        }
        let dst = out.get_mut(..bytes.len())?;
        dst.copy_from_slice(bytes);
        Some(bytes.len())
    }
}

fn nonempty(d: &[u8]) -> Result<&[u8], &'static str> {
    if d.is_empty() {
        Err("SDES item must not be empty")
    } else {
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpWriter;

    #[test]
    fn map_and_typed_values() {
        let mut map = ExtensionMap::new();
        assert!(map.insert_uri(3, URI_TRANSPORT_CC));
        assert!(map.insert_uri(1, URI_AUDIO_LEVEL));
        assert!(!map.insert_uri(2, "urn:example:nothing"));
        map.insert(4, ExtensionKind::PlayoutDelay);
        let exts: [(u8, &[u8]); 4] = [
            (3, &[0x01, 0x02]),
            (1, &[0x85]),
            (4, &[0x01, 0x20, 0x30]),
            (9, &[7]),
        ];
        let w = RtpWriter {
            extensions: &exts,
            ..RtpWriter::new(111, 1, 2, 3, &[0; 4])
        };
        let mut buf = [0u8; 64];
        let n = w.write(&mut buf).unwrap();
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(map.transport_cc(&p), Some(0x0102));
        let typed: Vec<_> = p.extensions().map(|e| map.typed(e).unwrap()).collect();
        assert_eq!(
            typed[1],
            KnownExtension::AudioLevel {
                voice: true,
                level: 5
            }
        );
        assert_eq!(
            typed[2],
            KnownExtension::PlayoutDelay {
                min: 0x12,
                max: 0x30
            }
        );
        assert_eq!(typed[3], KnownExtension::Unknown { id: 9, data: &[7] });
        let mut out = [0u8; 3];
        assert_eq!(typed[2].write(&mut out), Some(3));
        assert_eq!(out, [0x01, 0x20, 0x30]);
        // Remapping an id drops the old kind.
        map.insert(3, ExtensionKind::Mid);
        assert_eq!(map.id(ExtensionKind::TransportCc), None);
    }
}
