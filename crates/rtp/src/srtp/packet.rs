//! Minimal, private header helpers for the SRTP transforms.
//!
//! SRTP only needs to know where the RTP header ends (12 + 4·CC + extension), the SSRC and the
//! sequence number; SRTCP only needs the sender SSRC of the first packet of a compound. These
//! helpers read exactly that and nothing more, so the `srtp` module does not depend on the
//! crate's full RTP/RTCP parsers (which evolve independently). Every read is bounds-checked and
//! returns [`SrtpError`] on malformed input.

use super::SrtpError;

/// Size of the fixed RTP header.
const RTP_FIXED_HEADER_LEN: usize = 12;
/// Size of the fixed RTCP header up to and including the sender SSRC.
pub(crate) const RTCP_HEADER_LEN: usize = 8;

/// What SRTP needs to know about an RTP packet's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RtpHeaderInfo {
    /// Length of the header: fixed part, CSRCs and header extension (the payload starts here).
    pub(crate) header_len: usize,
    /// Sequence number.
    pub(crate) sequence: u16,
    /// Synchronisation source.
    pub(crate) ssrc: u32,
}

/// Reads the header of an RTP packet of which `packet` holds (at least) the header.
///
/// `packet` must not include an SRTP authentication tag beyond what the caller wants counted as
/// payload; the header length is checked against `packet.len()`.
pub(crate) fn rtp_header(packet: &[u8]) -> Result<RtpHeaderInfo, SrtpError> {
    let fixed: &[u8; RTP_FIXED_HEADER_LEN] = packet.first_chunk().ok_or(SrtpError::TooShort {
        len: packet.len(),
        needed: RTP_FIXED_HEADER_LEN,
    })?;
    let version = fixed[0] >> 6;
    if version != 2 {
        return Err(SrtpError::BadVersion { version });
    }
    let csrc_count = usize::from(fixed[0] & 0x0f);
    let has_extension = fixed[0] & 0x10 != 0;
    let sequence = u16::from_be_bytes([fixed[2], fixed[3]]);
    let ssrc = u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);
    let mut header_len = RTP_FIXED_HEADER_LEN + 4 * csrc_count;
    if has_extension {
        // The extension header: 16-bit profile, 16-bit length in 32-bit words.
        let ext = packet
            .get(header_len..header_len + 4)
            .ok_or(SrtpError::HeaderOverrun {
                field: "RTP header extension",
                offset: header_len,
            })?;
        let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        header_len += 4 + 4 * words;
    }
    if header_len > packet.len() {
        let field = if has_extension {
            "RTP header extension"
        } else {
            "RTP CSRC list"
        };
        return Err(SrtpError::HeaderOverrun {
            field,
            offset: packet.len(),
        });
    }
    Ok(RtpHeaderInfo {
        header_len,
        sequence,
        ssrc,
    })
}

/// Reads the sender SSRC of the first packet of an RTCP compound packet.
pub(crate) fn rtcp_sender_ssrc(packet: &[u8]) -> Result<u32, SrtpError> {
    let fixed: &[u8; RTCP_HEADER_LEN] = packet.first_chunk().ok_or(SrtpError::TooShort {
        len: packet.len(),
        needed: RTCP_HEADER_LEN,
    })?;
    let version = fixed[0] >> 6;
    if version != 2 {
        return Err(SrtpError::BadVersion { version });
    }
    Ok(u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_length_counts_csrcs_and_extension() {
        // V=2, X=1, CC=2; two CSRCs; extension 0xBEDE with one word.
        let mut p = vec![0x92, 0x60, 0x12, 0x34, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        p.extend_from_slice(&[1, 1, 1, 1, 2, 2, 2, 2]);
        p.extend_from_slice(&[0xbe, 0xde, 0x00, 0x01, 0x10, 0xaa, 0, 0]);
        p.extend_from_slice(b"payload");
        let h = rtp_header(&p).unwrap();
        assert_eq!(
            h,
            RtpHeaderInfo {
                header_len: 28,
                sequence: 0x1234,
                ssrc: 0xdeadbeef
            }
        );
        // Truncated extension body.
        assert_eq!(
            rtp_header(&p[..26]),
            Err(SrtpError::HeaderOverrun {
                field: "RTP header extension",
                offset: 26
            })
        );
        // Truncated extension header.
        assert_eq!(
            rtp_header(&p[..22]),
            Err(SrtpError::HeaderOverrun {
                field: "RTP header extension",
                offset: 20
            })
        );
    }

    #[test]
    fn bad_version_and_short_packets_are_typed_errors() {
        assert_eq!(
            rtp_header(&[0x80; 5]),
            Err(SrtpError::TooShort { len: 5, needed: 12 })
        );
        assert_eq!(
            rtp_header(&[0x40; 12]),
            Err(SrtpError::BadVersion { version: 1 })
        );
        assert_eq!(
            rtcp_sender_ssrc(&[0x80; 7]),
            Err(SrtpError::TooShort { len: 7, needed: 8 })
        );
        assert_eq!(
            rtcp_sender_ssrc(&[0x81, 0xc8, 0, 1, 1, 2, 3, 4]),
            Ok(0x01020304)
        );
    }
}
