//! Codec payload descriptors needed for forwarding: keyframe detection and layer information
//! for VP8 (RFC 7741), VP9 (RFC 9628), H.264 (RFC 6184), AV1 (AV1 RTP spec §4.4) and Opus
//! (RFC 7587, nothing to parse). All parsers borrow the payload and never allocate.

use core::fmt;

/// Why a payload descriptor could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecError {
    /// The codec.
    pub codec: Codec,
    /// Offset in the payload where parsing failed.
    pub offset: usize,
    /// What was wrong.
    pub reason: &'static str,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} payload at offset {}: {}",
            self.codec, self.offset, self.reason
        )
    }
}

impl std::error::Error for CodecError {}

/// Codecs with payload helpers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// VP8.
    Vp8,
    /// VP9.
    Vp9,
    /// H.264.
    H264,
    /// AV1.
    Av1,
    /// Opus.
    Opus,
}

impl Codec {
    /// Whether `payload` starts a keyframe (for Opus: always true, every packet decodes alone).
    pub fn is_keyframe(self, payload: &[u8]) -> Result<bool, CodecError> {
        Ok(match self {
            Codec::Vp8 => Vp8Descriptor::parse(payload)?.is_keyframe,
            Codec::Vp9 => Vp9Descriptor::parse(payload)?.is_keyframe(),
            Codec::H264 => H264Info::parse(payload)?.is_keyframe(),
            Codec::Av1 => Av1Aggregation::parse(payload)?.new_coded_video_sequence,
            Codec::Opus => true,
        })
    }
}

struct Reader<'a> {
    d: &'a [u8],
    pos: usize,
    codec: Codec,
}

impl Reader<'_> {
    fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        let b = *self.d.get(self.pos).ok_or(CodecError {
            codec: self.codec,
            offset: self.pos,
            reason: what,
        })?;
        self.pos += 1;
        Ok(b)
    }
    fn skip(&mut self, n: usize, what: &'static str) -> Result<(), CodecError> {
        if self.pos + n > self.d.len() {
            return Err(CodecError {
                codec: self.codec,
                offset: self.pos,
                reason: what,
            });
        }
        self.pos += n;
        Ok(())
    }
}

/// The VP8 payload descriptor (RFC 7741 §4.2) plus the keyframe bit of the payload header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Descriptor {
    /// N: non-reference frame.
    pub non_reference: bool,
    /// S: start of a VP8 partition.
    pub start_of_partition: bool,
    /// Partition index.
    pub partition_id: u8,
    /// PictureID (7 or 15 bits), if present.
    pub picture_id: Option<u16>,
    /// Whether the picture id used the 15-bit form.
    pub picture_id_15bit: bool,
    /// TL0PICIDX, if present.
    pub tl0_pic_idx: Option<u8>,
    /// Temporal layer index, if present.
    pub temporal_id: Option<u8>,
    /// Y: layer sync.
    pub layer_sync: bool,
    /// KEYIDX, if present.
    pub key_idx: Option<u8>,
    /// Length of the descriptor (offset of the VP8 payload).
    pub header_len: usize,
    /// Start of partition 0 with the P bit clear: the first packet of a keyframe.
    pub is_keyframe: bool,
}

impl Vp8Descriptor {
    /// Parses the descriptor at the start of a VP8 RTP payload.
    pub fn parse(payload: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader {
            d: payload,
            pos: 0,
            codec: Codec::Vp8,
        };
        let b0 = r.u8("empty payload")?;
        let mut d = Vp8Descriptor {
            non_reference: b0 & 0x20 != 0,
            start_of_partition: b0 & 0x10 != 0,
            partition_id: b0 & 0x0F,
            ..Default::default()
        };
        if b0 & 0x80 != 0 {
            let x = r.u8("truncated extension byte")?;
            let (i, l, t, k) = (x & 0x80 != 0, x & 0x40 != 0, x & 0x20 != 0, x & 0x10 != 0);
            if i {
                let p0 = r.u8("truncated picture id")?;
                if p0 & 0x80 != 0 {
                    let p1 = r.u8("truncated 15-bit picture id")?;
                    d.picture_id = Some((u16::from(p0 & 0x7F) << 8) | u16::from(p1));
                    d.picture_id_15bit = true;
                } else {
                    d.picture_id = Some(u16::from(p0));
                }
            }
            if l {
                d.tl0_pic_idx = Some(r.u8("truncated TL0PICIDX")?);
            }
            if t || k {
                let b = r.u8("truncated TID/KEYIDX byte")?;
                if t {
                    d.temporal_id = Some(b >> 6);
                    d.layer_sync = b & 0x20 != 0;
                }
                if k {
                    d.key_idx = Some(b & 0x1F);
                }
            }
        }
        d.header_len = r.pos;
        if d.start_of_partition && d.partition_id == 0 {
            // RFC 7741 §4.3: P bit (bit 0 of the first payload-header byte) is 0 for key frames.
            let h = r.u8("missing VP8 payload header")?;
            d.is_keyframe = h & 0x01 == 0;
        }
        Ok(d)
    }
}

/// The VP9 payload descriptor (RFC 9628 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp9Descriptor {
    /// P: inter-picture predicted.
    pub inter_predicted: bool,
    /// F: flexible mode.
    pub flexible: bool,
    /// B: start of a frame.
    pub start_of_frame: bool,
    /// E: end of a frame.
    pub end_of_frame: bool,
    /// V: scalability structure present.
    pub has_scalability_structure: bool,
    /// Z: not a reference for upper spatial layers.
    pub not_upper_reference: bool,
    /// PictureID, if present.
    pub picture_id: Option<u16>,
    /// Temporal layer id, if layer indices are present.
    pub temporal_id: Option<u8>,
    /// U: switching up point.
    pub switching_up: bool,
    /// Spatial layer id, if layer indices are present.
    pub spatial_id: Option<u8>,
    /// D: inter-layer dependency.
    pub inter_layer_dependency: bool,
    /// TL0PICIDX (non-flexible mode with layer indices).
    pub tl0_pic_idx: Option<u8>,
    /// Number of reference indices (flexible mode, P set).
    pub num_ref_diffs: u8,
    /// Number of spatial layers described by the scalability structure.
    pub ss_spatial_layers: Option<u8>,
    /// Length of the descriptor (offset of the VP9 payload).
    pub header_len: usize,
}

impl Vp9Descriptor {
    /// Parses the descriptor at the start of a VP9 RTP payload.
    pub fn parse(payload: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader {
            d: payload,
            pos: 0,
            codec: Codec::Vp9,
        };
        let b0 = r.u8("empty payload")?;
        let (i, p, l, f) = (
            b0 & 0x80 != 0,
            b0 & 0x40 != 0,
            b0 & 0x20 != 0,
            b0 & 0x10 != 0,
        );
        let mut d = Vp9Descriptor {
            inter_predicted: p,
            flexible: f,
            start_of_frame: b0 & 0x08 != 0,
            end_of_frame: b0 & 0x04 != 0,
            has_scalability_structure: b0 & 0x02 != 0,
            not_upper_reference: b0 & 0x01 != 0,
            ..Default::default()
        };
        if i {
            let p0 = r.u8("truncated picture id")?;
            d.picture_id = Some(if p0 & 0x80 != 0 {
                (u16::from(p0 & 0x7F) << 8) | u16::from(r.u8("truncated 15-bit picture id")?)
            } else {
                u16::from(p0)
            });
        }
        if l {
            let b = r.u8("truncated layer indices")?;
            d.temporal_id = Some(b >> 5);
            d.switching_up = b & 0x10 != 0;
            d.spatial_id = Some((b >> 1) & 0x07);
            d.inter_layer_dependency = b & 0x01 != 0;
            if !f {
                d.tl0_pic_idx = Some(r.u8("truncated TL0PICIDX")?);
            }
        }
        if f && p {
            loop {
                let b = r.u8("truncated reference index")?;
                d.num_ref_diffs += 1;
                if d.num_ref_diffs > 3 {
                    return Err(CodecError {
                        codec: Codec::Vp9,
                        offset: r.pos - 1,
                        reason: "more than 3 reference indices",
                    });
                }
                if b & 0x01 == 0 {
                    break;
                }
            }
        }
        if d.has_scalability_structure {
            let b = r.u8("truncated scalability structure")?;
            let n_s = (b >> 5) + 1;
            d.ss_spatial_layers = Some(n_s);
            if b & 0x10 != 0 {
                r.skip(4 * n_s as usize, "truncated SS resolutions")?;
            }
            if b & 0x08 != 0 {
                let n_g = r.u8("truncated SS N_G")?;
                for _ in 0..n_g {
                    let g = r.u8("truncated SS picture group")?;
                    r.skip(((g >> 2) & 0x03) as usize, "truncated SS P_DIFF")?;
                }
            }
        }
        d.header_len = r.pos;
        Ok(d)
    }

    /// Start of a frame that is not inter-picture predicted, in the base spatial layer: the
    /// first packet of a keyframe.
    pub fn is_keyframe(&self) -> bool {
        self.start_of_frame && !self.inter_predicted && self.spatial_id.unwrap_or(0) == 0
    }
}

/// NAL unit types present in an H.264 RTP payload (RFC 6184).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct H264Info {
    /// Packetization type: 1–23 single NAL, 24 STAP-A, 28 FU-A, …
    pub packet_type: u8,
    /// Bit `n` set when a NAL unit of type `n` (1–23) is present (for FU-A: the fragmented type).
    pub nal_types: u32,
    /// FU-A start bit.
    pub fu_start: bool,
    /// FU-A end bit.
    pub fu_end: bool,
}

impl H264Info {
    /// Parses the NAL structure of an H.264 RTP payload.
    pub fn parse(payload: &[u8]) -> Result<Self, CodecError> {
        let err = |offset, reason| CodecError {
            codec: Codec::H264,
            offset,
            reason,
        };
        let b0 = *payload.first().ok_or(err(0, "empty payload"))?;
        if b0 & 0x80 != 0 {
            return Err(err(0, "forbidden zero bit set"));
        }
        let t = b0 & 0x1F;
        let mut info = H264Info {
            packet_type: t,
            ..Default::default()
        };
        match t {
            1..=23 => info.nal_types |= 1 << t,
            24 => {
                let mut pos = 1;
                while pos < payload.len() {
                    if pos + 2 > payload.len() {
                        return Err(err(pos, "truncated STAP-A NAL size"));
                    }
                    let size = usize::from(u16::from_be_bytes([payload[pos], payload[pos + 1]]));
                    pos += 2;
                    if size == 0 || pos + size > payload.len() {
                        return Err(err(pos - 2, "STAP-A NAL size overruns payload"));
                    }
                    info.nal_types |= 1 << (payload[pos] & 0x1F);
                    pos += size;
                }
            }
            28 => {
                let h = *payload.get(1).ok_or(err(1, "truncated FU header"))?;
                info.fu_start = h & 0x80 != 0;
                info.fu_end = h & 0x40 != 0;
                info.nal_types |= 1 << (h & 0x1F);
            }
            _ => {}
        }
        Ok(info)
    }

    /// Whether a NAL unit of `nal_type` is present.
    pub fn has(&self, nal_type: u8) -> bool {
        nal_type < 32 && self.nal_types & (1 << nal_type) != 0
    }

    /// Contains an IDR slice (type 5) as a whole NAL or as the start of an FU-A.
    pub fn is_keyframe(&self) -> bool {
        self.has(5) && (self.packet_type != 28 || self.fu_start)
    }
}

/// The AV1 aggregation header (AV1 RTP payload format §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Av1Aggregation {
    /// Z: the first OBU element continues an OBU fragment of the previous packet.
    pub continues_fragment: bool,
    /// Y: the last OBU element will continue in the next packet.
    pub fragment_continues: bool,
    /// W: number of OBU elements (0 = each element carries a length).
    pub obu_count: u8,
    /// N: first packet of a coded video sequence (a keyframe with a sequence header).
    pub new_coded_video_sequence: bool,
}

impl Av1Aggregation {
    /// Parses the aggregation header of an AV1 RTP payload.
    pub fn parse(payload: &[u8]) -> Result<Self, CodecError> {
        let b = *payload.first().ok_or(CodecError {
            codec: Codec::Av1,
            offset: 0,
            reason: "empty payload",
        })?;
        if b & 0x08 != 0 && b & 0x80 != 0 {
            return Err(CodecError {
                codec: Codec::Av1,
                offset: 0,
                reason: "N set on a continued fragment",
            });
        }
        Ok(Av1Aggregation {
            continues_fragment: b & 0x80 != 0,
            fragment_continues: b & 0x40 != 0,
            obu_count: (b >> 4) & 0x03,
            new_coded_video_sequence: b & 0x08 != 0,
        })
    }
}

/// Fuzzing entry point: runs every codec parser over `data`. Never panics.
#[doc(hidden)]
pub fn fuzz_codec_descriptors(data: &[u8]) -> usize {
    let mut n = 0;
    for c in [Codec::Vp8, Codec::Vp9, Codec::H264, Codec::Av1, Codec::Opus] {
        if c.is_keyframe(data).unwrap_or(false) {
            n += 1;
        }
    }
    if let Ok(d) = Vp8Descriptor::parse(data) {
        assert!(d.header_len <= data.len());
    }
    if let Ok(d) = Vp9Descriptor::parse(data) {
        assert!(d.header_len <= data.len());
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_descriptor_fields() {
        // X=1 S=1 PID=0; I L T K; 15-bit picture id 0x1234; TL0PICIDX 7; TID=2 Y=1 KEYIDX=3;
        // payload header with P=0.
        let p = [0x90, 0xF0, 0x92, 0x34, 0x07, 0xA3, 0x10, 0x00];
        let d = Vp8Descriptor::parse(&p).unwrap();
        assert_eq!(d.picture_id, Some(0x1234));
        assert_eq!(d.tl0_pic_idx, Some(7));
        assert_eq!(
            (d.temporal_id, d.layer_sync, d.key_idx),
            (Some(2), true, Some(3))
        );
        assert_eq!(d.header_len, 6);
        assert!(d.is_keyframe);
        assert!(Vp8Descriptor::parse(&p[..3]).is_err());
    }

    #[test]
    fn h264_stap_a_and_fu_a() {
        let stap = [24, 0, 2, 0x67, 0, 0, 2, 0x68, 0, 0, 2, 0x65, 0];
        let i = H264Info::parse(&stap).unwrap();
        assert!(i.has(7) && i.has(8) && i.is_keyframe());
        assert!(H264Info::parse(&stap[..12]).is_err());
        assert!(H264Info::parse(&[0x7C, 0x85]).unwrap().is_keyframe());
        assert!(!H264Info::parse(&[0x7C, 0x45]).unwrap().is_keyframe());
    }
}
