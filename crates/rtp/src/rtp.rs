//! Zero-copy RTP packet views (RFC 3550 §5.1) with RFC 8285 header extensions.
//!
//! [`RtpPacket`] borrows a received datagram and exposes every header field without copying;
//! [`RtpPacketMut`] additionally rewrites SSRC, sequence number, timestamp, payload type, marker
//! and individual extension values in place, never moving the payload. [`RtpWriter`] builds a
//! packet into a caller-provided buffer.

use core::fmt;

/// The fixed RTP header length (before CSRCs).
pub const RTP_FIXED_HEADER_LEN: usize = 12;
/// Extension profile of the RFC 8285 one-byte form.
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// Extension profile of the RFC 8285 two-byte form (the low 4 "appbits" are ignored).
pub const TWO_BYTE_PROFILE: u16 = 0x1000;

/// Why an RTP packet could not be parsed or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpError {
    /// The packet ends before `field`, which needs bytes up to offset `needed`.
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Offset one past the last byte the field needs.
        needed: usize,
        /// The packet length.
        len: usize,
    },
    /// The version bits are not 2.
    BadVersion {
        /// The version found.
        version: u8,
    },
    /// The padding count (last byte) is zero or exceeds the payload.
    BadPadding {
        /// The padding count found.
        count: u8,
        /// Bytes available for payload plus padding.
        available: usize,
    },
    /// A header extension element is malformed.
    BadExtension {
        /// Offset of the element in the packet.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The output buffer is too small.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A value does not fit the wire format.
    InvalidValue {
        /// Which value.
        field: &'static str,
    },
}

impl fmt::Display for RtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtpError::Truncated { field, needed, len } => {
                write!(
                    f,
                    "RTP packet truncated in {field}: needs {needed} bytes, has {len}"
                )
            }
            RtpError::BadVersion { version } => write!(f, "RTP version {version}, expected 2"),
            RtpError::BadPadding { count, available } => {
                write!(
                    f,
                    "RTP padding count {count} with {available} bytes after header"
                )
            }
            RtpError::BadExtension { offset, reason } => {
                write!(f, "RTP header extension at offset {offset}: {reason}")
            }
            RtpError::BufferTooSmall { needed, available } => {
                write!(f, "buffer too small: need {needed}, have {available}")
            }
            RtpError::InvalidValue { field } => write!(f, "value out of range for {field}"),
        }
    }
}

impl std::error::Error for RtpError {}

/// The form of an RTP header extension block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionForm {
    /// RFC 8285 one-byte elements (profile 0xBEDE): ids 1–14, 1–16 bytes.
    OneByte,
    /// RFC 8285 two-byte elements (profile 0x100X): ids 1–255, 0–255 bytes.
    TwoByte,
    /// Any other profile: the block is opaque (RFC 3550 §5.3.1).
    Other(u16),
}

impl ExtensionForm {
    fn from_profile(profile: u16) -> Self {
        if profile == ONE_BYTE_PROFILE {
            ExtensionForm::OneByte
        } else if profile & 0xFFF0 == TWO_BYTE_PROFILE {
            ExtensionForm::TwoByte
        } else {
            ExtensionForm::Other(profile)
        }
    }
}

/// Offsets of the parts of an RTP packet; computed once by parsing, then `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpLayout {
    /// Number of CSRCs.
    pub csrc_count: u8,
    /// Extension profile and block bounds (start of elements, end of block), if X is set.
    pub extension: Option<(u16, usize, usize)>,
    /// Offset of the first payload byte.
    pub payload_start: usize,
    /// Offset one past the last payload byte (start of padding).
    pub payload_end: usize,
}

impl RtpLayout {
    /// Parses and validates the layout of `buf` (header, CSRCs, extensions, padding).
    pub fn parse(buf: &[u8]) -> Result<Self, RtpError> {
        let len = buf.len();
        if len < RTP_FIXED_HEADER_LEN {
            return Err(RtpError::Truncated {
                field: "fixed header",
                needed: 12,
                len,
            });
        }
        let b0 = buf[0];
        if b0 >> 6 != 2 {
            return Err(RtpError::BadVersion { version: b0 >> 6 });
        }
        let csrc_count = b0 & 0x0F;
        let mut pos = RTP_FIXED_HEADER_LEN + 4 * csrc_count as usize;
        if len < pos {
            return Err(RtpError::Truncated {
                field: "CSRC list",
                needed: pos,
                len,
            });
        }
        let mut extension = None;
        if b0 & 0x10 != 0 {
            if len < pos + 4 {
                return Err(RtpError::Truncated {
                    field: "extension header",
                    needed: pos + 4,
                    len,
                });
            }
            let profile = u16::from_be_bytes([buf[pos], buf[pos + 1]]);
            let words = u16::from_be_bytes([buf[pos + 2], buf[pos + 3]]) as usize;
            let start = pos + 4;
            let end = start + 4 * words;
            if len < end {
                return Err(RtpError::Truncated {
                    field: "extension block",
                    needed: end,
                    len,
                });
            }
            validate_elements(buf, ExtensionForm::from_profile(profile), start, end)?;
            extension = Some((profile, start, end));
            pos = end;
        }
        let mut payload_end = len;
        if b0 & 0x20 != 0 {
            let count = buf[len - 1];
            let available = len - pos;
            if count == 0 || count as usize > available {
                return Err(RtpError::BadPadding { count, available });
            }
            payload_end = len - count as usize;
        }
        Ok(RtpLayout {
            csrc_count,
            extension,
            payload_start: pos,
            payload_end,
        })
    }
}

fn validate_elements(
    buf: &[u8],
    form: ExtensionForm,
    start: usize,
    end: usize,
) -> Result<(), RtpError> {
    let mut it = ExtensionIter {
        buf,
        form,
        pos: start,
        end,
    };
    loop {
        match it.next_checked() {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// One header extension element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawExtension<'a> {
    /// The element id (0 for an opaque non-RFC 8285 block).
    pub id: u8,
    /// The element value.
    pub data: &'a [u8],
    /// Offset of `data` in the packet.
    pub offset: usize,
}

/// Iterator over the elements of an extension block. Built only over validated blocks.
#[derive(Debug, Clone)]
pub struct ExtensionIter<'a> {
    buf: &'a [u8],
    form: ExtensionForm,
    pos: usize,
    end: usize,
}

impl<'a> ExtensionIter<'a> {
    fn empty(buf: &'a [u8]) -> Self {
        ExtensionIter {
            buf,
            form: ExtensionForm::OneByte,
            pos: 0,
            end: 0,
        }
    }

    fn next_checked(&mut self) -> Result<Option<RawExtension<'a>>, RtpError> {
        while self.pos < self.end {
            let at = self.pos;
            let b = self.buf[at];
            match self.form {
                ExtensionForm::Other(_) => {
                    self.pos = self.end;
                    return Ok(Some(RawExtension {
                        id: 0,
                        data: &self.buf[at..self.end],
                        offset: at,
                    }));
                }
                ExtensionForm::OneByte => {
                    if b == 0 {
                        self.pos += 1;
                        continue;
                    }
                    let id = b >> 4;
                    if id == 15 {
                        // RFC 8285 §4.2: id 15 terminates processing of the block.
                        self.pos = self.end;
                        return Ok(None);
                    }
                    let l = (b & 0x0F) as usize + 1;
                    let data_start = at + 1;
                    if data_start + l > self.end {
                        return Err(RtpError::BadExtension {
                            offset: at,
                            reason: "one-byte element overruns block",
                        });
                    }
                    self.pos = data_start + l;
                    return Ok(Some(RawExtension {
                        id,
                        data: &self.buf[data_start..data_start + l],
                        offset: data_start,
                    }));
                }
                ExtensionForm::TwoByte => {
                    if b == 0 {
                        self.pos += 1;
                        continue;
                    }
                    if at + 2 > self.end {
                        return Err(RtpError::BadExtension {
                            offset: at,
                            reason: "two-byte element header overruns block",
                        });
                    }
                    let l = self.buf[at + 1] as usize;
                    let data_start = at + 2;
                    if data_start + l > self.end {
                        return Err(RtpError::BadExtension {
                            offset: at,
                            reason: "two-byte element overruns block",
                        });
                    }
                    self.pos = data_start + l;
                    return Ok(Some(RawExtension {
                        id: b,
                        data: &self.buf[data_start..data_start + l],
                        offset: data_start,
                    }));
                }
            }
        }
        Ok(None)
    }
}

impl<'a> Iterator for ExtensionIter<'a> {
    type Item = RawExtension<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        // The block was validated when the layout was parsed, so errors cannot occur here;
        // should one anyway, iteration just stops.
        self.next_checked().ok().flatten()
    }
}

macro_rules! header_getters {
    () => {
        /// The version field (always 2 after a successful parse).
        pub fn version(&self) -> u8 {
            self.buf[0] >> 6
        }
        /// The padding flag.
        pub fn has_padding(&self) -> bool {
            self.buf[0] & 0x20 != 0
        }
        /// The extension flag.
        pub fn has_extension(&self) -> bool {
            self.buf[0] & 0x10 != 0
        }
        /// The marker bit.
        pub fn marker(&self) -> bool {
            self.buf[1] & 0x80 != 0
        }
        /// The payload type.
        pub fn payload_type(&self) -> u8 {
            self.buf[1] & 0x7F
        }
        /// The sequence number.
        pub fn sequence_number(&self) -> u16 {
            u16::from_be_bytes([self.buf[2], self.buf[3]])
        }
        /// The RTP timestamp.
        pub fn timestamp(&self) -> u32 {
            u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
        }
        /// The SSRC.
        pub fn ssrc(&self) -> u32 {
            u32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]])
        }
        /// Number of CSRCs.
        pub fn csrc_count(&self) -> usize {
            self.layout.csrc_count as usize
        }
        /// The `i`th CSRC, if present.
        pub fn csrc(&self, i: usize) -> Option<u32> {
            if i >= self.csrc_count() {
                return None;
            }
            let o = RTP_FIXED_HEADER_LEN + 4 * i;
            Some(u32::from_be_bytes([
                self.buf[o],
                self.buf[o + 1],
                self.buf[o + 2],
                self.buf[o + 3],
            ]))
        }
        /// The extension profile (0xBEDE, 0x100X or other), if an extension block is present.
        pub fn extension_profile(&self) -> Option<u16> {
            self.layout.extension.map(|(p, _, _)| p)
        }
        /// The form of the extension block, if present.
        pub fn extension_form(&self) -> Option<ExtensionForm> {
            self.layout
                .extension
                .map(|(p, _, _)| ExtensionForm::from_profile(p))
        }
        /// Iterates the extension elements (padding skipped).
        pub fn extensions(&self) -> ExtensionIter<'_> {
            match self.layout.extension {
                Some((p, start, end)) => ExtensionIter {
                    buf: &self.buf[..],
                    form: ExtensionForm::from_profile(p),
                    pos: start,
                    end,
                },
                None => ExtensionIter::empty(&self.buf[..]),
            }
        }
        /// The value of the extension element with `id`, if present.
        pub fn extension(&self, id: u8) -> Option<&[u8]> {
            self.extensions().find(|e| e.id == id).map(|e| e.data)
        }
        /// Length of the header including CSRCs and extensions (= payload offset).
        pub fn header_len(&self) -> usize {
            self.layout.payload_start
        }
        /// The payload (without padding).
        pub fn payload(&self) -> &[u8] {
            &self.buf[self.layout.payload_start..self.layout.payload_end]
        }
        /// Number of padding bytes (including the count byte).
        pub fn padding_len(&self) -> usize {
            self.buf.len() - self.layout.payload_end
        }
        /// The parsed layout.
        pub fn layout(&self) -> RtpLayout {
            self.layout
        }
    };
}

/// A read-only, zero-copy view of an RTP packet.
#[derive(Debug, Clone, Copy)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    layout: RtpLayout,
}

impl<'a> RtpPacket<'a> {
    /// Parses and validates `buf` as an RTP packet.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        Ok(RtpPacket {
            layout: RtpLayout::parse(buf)?,
            buf,
        })
    }

    header_getters!();

    /// The whole packet.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// The payload, with the lifetime of the underlying buffer.
    pub fn payload_bytes(&self) -> &'a [u8] {
        &self.buf[self.layout.payload_start..self.layout.payload_end]
    }
}

/// A mutable, zero-copy view of an RTP packet for in-place rewriting.
#[derive(Debug)]
pub struct RtpPacketMut<'a> {
    buf: &'a mut [u8],
    layout: RtpLayout,
}

impl<'a> RtpPacketMut<'a> {
    /// Parses and validates `buf` as an RTP packet.
    pub fn parse(buf: &'a mut [u8]) -> Result<Self, RtpError> {
        Ok(RtpPacketMut {
            layout: RtpLayout::parse(buf)?,
            buf,
        })
    }

    header_getters!();

    /// A read-only view of the same packet.
    pub fn as_packet(&self) -> RtpPacket<'_> {
        RtpPacket {
            buf: self.buf,
            layout: self.layout,
        }
    }

    /// Sets the marker bit.
    pub fn set_marker(&mut self, marker: bool) {
        self.buf[1] = (self.buf[1] & 0x7F) | if marker { 0x80 } else { 0 };
    }
    /// Sets the payload type (7 bits; the high bit is ignored).
    pub fn set_payload_type(&mut self, pt: u8) {
        self.buf[1] = (self.buf[1] & 0x80) | (pt & 0x7F);
    }
    /// Sets the sequence number.
    pub fn set_sequence_number(&mut self, seq: u16) {
        self.buf[2..4].copy_from_slice(&seq.to_be_bytes());
    }
    /// Sets the timestamp.
    pub fn set_timestamp(&mut self, ts: u32) {
        self.buf[4..8].copy_from_slice(&ts.to_be_bytes());
    }
    /// Sets the SSRC.
    pub fn set_ssrc(&mut self, ssrc: u32) {
        self.buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    }

    /// Mutable access to the value of extension element `id`, if present.
    pub fn extension_mut(&mut self, id: u8) -> Option<&mut [u8]> {
        let (offset, len) = self
            .extensions()
            .find(|e| e.id == id)
            .map(|e| (e.offset, e.data.len()))?;
        Some(&mut self.buf[offset..offset + len])
    }

    /// Overwrites the value of extension element `id` in place. The new value must have the same
    /// length as the old one (the payload is never moved).
    pub fn set_extension(&mut self, id: u8, value: &[u8]) -> Result<(), RtpError> {
        let slot = self.extension_mut(id).ok_or(RtpError::InvalidValue {
            field: "extension id not present",
        })?;
        if slot.len() != value.len() {
            return Err(RtpError::InvalidValue {
                field: "extension value length differs",
            });
        }
        slot.copy_from_slice(value);
        Ok(())
    }

    /// Mutable payload (without padding).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.layout.payload_start..self.layout.payload_end]
    }

    /// The whole packet.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf
    }
}

/// Builds an RTP packet into a caller-provided buffer.
#[derive(Debug, Clone, Copy)]
pub struct RtpWriter<'a> {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (0–127).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence_number: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// SSRC.
    pub ssrc: u32,
    /// CSRCs (at most 15).
    pub csrcs: &'a [u32],
    /// Extension elements `(id, value)`. Written in the one-byte form when every id is 1–14 and
    /// every value is 1–16 bytes (and `force_two_byte` is false), otherwise in the two-byte form
    /// (which `extmap-allow-mixed` permits).
    pub extensions: &'a [(u8, &'a [u8])],
    /// Use the two-byte form even if the one-byte form would do.
    pub force_two_byte: bool,
    /// Payload.
    pub payload: &'a [u8],
    /// Padding bytes to append (0 for none; the count byte is included).
    pub padding: u8,
}

impl<'a> RtpWriter<'a> {
    /// A writer with the given header fields and no CSRCs, extensions or padding.
    pub fn new(
        payload_type: u8,
        sequence_number: u16,
        timestamp: u32,
        ssrc: u32,
        payload: &'a [u8],
    ) -> Self {
        RtpWriter {
            marker: false,
            payload_type,
            sequence_number,
            timestamp,
            ssrc,
            csrcs: &[],
            extensions: &[],
            force_two_byte: false,
            payload,
            padding: 0,
        }
    }

    fn one_byte(&self) -> bool {
        !self.force_two_byte
            && self
                .extensions
                .iter()
                .all(|(id, v)| (1..=14).contains(id) && (1..=16).contains(&v.len()))
    }

    fn extension_block_len(&self) -> usize {
        if self.extensions.is_empty() {
            return 0;
        }
        let per = if self.one_byte() { 1 } else { 2 };
        let raw: usize = self.extensions.iter().map(|(_, v)| per + v.len()).sum();
        4 + raw.div_ceil(4) * 4
    }

    /// The total encoded length.
    pub fn encoded_len(&self) -> usize {
        RTP_FIXED_HEADER_LEN
            + 4 * self.csrcs.len()
            + self.extension_block_len()
            + self.payload.len()
            + self.padding as usize
    }

    /// Writes the packet to the start of `out`; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtpError> {
        if self.csrcs.len() > 15 {
            return Err(RtpError::InvalidValue {
                field: "csrc count",
            });
        }
        if self.payload_type > 127 {
            return Err(RtpError::InvalidValue {
                field: "payload type",
            });
        }
        let one = self.one_byte();
        for (id, v) in self.extensions {
            if *id == 0 || (one && *id == 15) || v.len() > 255 {
                return Err(RtpError::InvalidValue {
                    field: "extension id/length",
                });
            }
        }
        let total = self.encoded_len();
        if out.len() < total {
            return Err(RtpError::BufferTooSmall {
                needed: total,
                available: out.len(),
            });
        }
        let ext_len = self.extension_block_len();
        out[0] = 0x80
            | if self.padding > 0 { 0x20 } else { 0 }
            | if ext_len > 0 { 0x10 } else { 0 }
            | self.csrcs.len() as u8;
        out[1] = (self.payload_type & 0x7F) | if self.marker { 0x80 } else { 0 };
        out[2..4].copy_from_slice(&self.sequence_number.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let mut pos = RTP_FIXED_HEADER_LEN;
        for c in self.csrcs {
            out[pos..pos + 4].copy_from_slice(&c.to_be_bytes());
            pos += 4;
        }
        if ext_len > 0 {
            let profile = if one {
                ONE_BYTE_PROFILE
            } else {
                TWO_BYTE_PROFILE
            };
            out[pos..pos + 2].copy_from_slice(&profile.to_be_bytes());
            out[pos + 2..pos + 4].copy_from_slice(&(((ext_len - 4) / 4) as u16).to_be_bytes());
            let end = pos + ext_len;
            pos += 4;
            for (id, v) in self.extensions {
                if one {
                    out[pos] = (id << 4) | (v.len() as u8 - 1);
                    pos += 1;
                } else {
                    out[pos] = *id;
                    out[pos + 1] = v.len() as u8;
                    pos += 2;
                }
                out[pos..pos + v.len()].copy_from_slice(v);
                pos += v.len();
            }
            out[pos..end].fill(0);
            pos = end;
        }
        out[pos..pos + self.payload.len()].copy_from_slice(self.payload);
        pos += self.payload.len();
        if self.padding > 0 {
            let p = self.padding as usize;
            out[pos..pos + p - 1].fill(0);
            out[pos + p - 1] = self.padding;
            pos += p;
        }
        Ok(pos)
    }
}

/// Fuzzing entry point: parses `data` as RTP, interprets every extension with a map of all known
/// kinds (ids 1–8) and rewrites a copy in place. Never panics.
#[doc(hidden)]
pub fn fuzz_rtp_header(data: &[u8]) -> usize {
    use crate::extensions::{ExtensionKind, ExtensionMap};
    let Ok(p) = RtpPacket::parse(data) else {
        return 0;
    };
    let mut map = ExtensionMap::new();
    for (i, k) in ExtensionKind::ALL.iter().enumerate() {
        map.insert(i as u8 + 1, *k);
    }
    let mut n = 0;
    for e in p.extensions() {
        assert!(e.offset + e.data.len() <= p.header_len());
        n += usize::from(map.typed(e).is_ok());
    }
    assert!(
        p.header_len() <= data.len()
            && p.payload().len() + p.padding_len() + p.header_len() == data.len()
    );
    let mut copy = [0u8; 2048];
    if let Some(buf) = copy.get_mut(..data.len()) {
        buf.copy_from_slice(data);
        if let Ok(mut m) = RtpPacketMut::parse(buf) {
            m.set_ssrc(1);
            m.set_sequence_number(2);
            m.set_timestamp(3);
            if let Some(v) = m.extension_mut(3) {
                v.fill(0);
            }
            assert_eq!(m.payload(), p.payload());
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_rewrite_in_place() {
        let exts: [(u8, &[u8]); 2] = [(3, &[0x12, 0x34]), (5, &[1, 2, 3])];
        let w = RtpWriter {
            extensions: &exts,
            marker: true,
            padding: 3,
            ..RtpWriter::new(96, 65535, 7, 0xAABBCCDD, b"hello")
        };
        let mut buf = [0u8; 64];
        let n = w.write(&mut buf).unwrap();
        let mut p = RtpPacketMut::parse(&mut buf[..n]).unwrap();
        assert_eq!(p.extension(3), Some(&[0x12, 0x34][..]));
        assert_eq!(p.payload(), b"hello");
        assert_eq!(p.padding_len(), 3);
        p.set_ssrc(1);
        p.set_sequence_number(2);
        p.set_timestamp(3);
        p.set_payload_type(100);
        p.set_extension(3, &[9, 9]).unwrap();
        assert!(p.set_extension(3, &[9]).is_err());
        let q = p.as_packet();
        assert_eq!(
            (
                q.ssrc(),
                q.sequence_number(),
                q.timestamp(),
                q.payload_type(),
                q.marker()
            ),
            (1, 2, 3, 100, true)
        );
        assert_eq!(q.extension(3), Some(&[9, 9][..]));
        assert_eq!(q.payload(), b"hello");
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(
            RtpPacket::parse(&[0x80; 5]).unwrap_err(),
            RtpError::Truncated {
                field: "fixed header",
                needed: 12,
                len: 5
            }
        );
        let mut b = [0u8; 12];
        b[0] = 0x40;
        assert_eq!(
            RtpPacket::parse(&b).unwrap_err(),
            RtpError::BadVersion { version: 1 }
        );
        // One-byte element claiming 16 bytes in a 4-byte block.
        let b = [
            0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE, 0xDE, 0, 1, 0x1F, 0, 0, 0,
        ];
        assert!(matches!(
            RtpPacket::parse(&b).unwrap_err(),
            RtpError::BadExtension { offset: 16, .. }
        ));
    }
}
