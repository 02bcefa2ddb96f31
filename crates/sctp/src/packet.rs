//! The little SCTP packet handling the glue needs on top of `sctp-proto`: keeping packets within
//! the DTLS record size, and the CRC32c checksum (RFC 9260 appendix A).

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// SCTP common header: ports, verification tag, checksum.
pub(crate) const COMMON_HEADER_LEN: usize = 12;
const CHUNK_HEADER_LEN: usize = 4;

/// Queues `packet`, split into several packets of at most `max` bytes if it is larger.
///
/// `sctp-proto` 0.10 bundles DATA chunks without counting the 16-byte DATA chunk header of the
/// chunk being added nor the padding of earlier chunks, so a bundle can exceed its MTU (by up to
/// a few hundred bytes for bursts of tiny messages). Bundling is optional in SCTP (RFC 9260
/// section 6.10): the chunks are moved, in order, into as many packets as needed, each with the
/// same common header and a fresh checksum. Packets that do not parse as a chunk list are
/// passed on unchanged. Only oversized packets are copied.
pub(crate) fn push_within_mtu(packet: Bytes, max: usize, out: &mut VecDeque<Bytes>) {
    if packet.len() <= max || packet.len() < COMMON_HEADER_LEN {
        out.push_back(packet);
        return;
    }
    let mut chunks = Vec::new();
    let mut at = COMMON_HEADER_LEN;
    while at < packet.len() {
        let Some(&[_, _, hi, lo]) = packet.get(at..at + CHUNK_HEADER_LEN) else {
            out.push_back(packet);
            return;
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len < CHUNK_HEADER_LEN || at + len > packet.len() {
            out.push_back(packet);
            return;
        }
        let padded = ((len + 3) & !3).min(packet.len() - at);
        chunks.push(at..at + padded);
        at += padded;
    }
    let header = packet.slice(..COMMON_HEADER_LEN);
    let mut current = BytesMut::with_capacity(max);
    current.extend_from_slice(&header);
    for range in chunks {
        if current.len() + range.len() > max && current.len() > COMMON_HEADER_LEN {
            out.push_back(finish(current));
            current = BytesMut::with_capacity(max);
            current.extend_from_slice(&header);
        }
        current.extend_from_slice(&packet[range]);
    }
    out.push_back(finish(current));
}

fn finish(mut packet: BytesMut) -> Bytes {
    set_checksum(&mut packet);
    packet.freeze()
}

/// Writes the CRC32c of `packet` into its checksum field (bytes 8..12, little endian on the
/// wire as RFC 9260 appendix A computes it). Does nothing to packets shorter than the header.
pub(crate) fn set_checksum(packet: &mut [u8]) {
    if packet.len() < COMMON_HEADER_LEN {
        return;
    }
    packet[8..12].fill(0);
    let crc = crc32c(packet);
    packet[8..12].copy_from_slice(&crc.to_le_bytes());
}

const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC32c (Castagnoli), the SCTP checksum.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc = CRC32C_TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The standard CRC-32C check value (RFC 3720 appendix B.4 lists CRC32c examples; the
        // "123456789" check value 0xE3069283 is from the Rocksoft/Williams catalogue).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        // RFC 3720 B.4: 32 bytes of 0xff.
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
    }

    fn packet(chunks: &[usize]) -> Bytes {
        let mut p = vec![0x13, 0x88, 0x13, 0x88, 1, 2, 3, 4, 0, 0, 0, 0];
        for (i, &len) in chunks.iter().enumerate() {
            p.extend_from_slice(&[0, 3]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
            p.extend(std::iter::repeat_n(i as u8, len - 4));
            while p.len() % 4 != 0 {
                p.push(0);
            }
        }
        set_checksum(&mut p);
        Bytes::from(p)
    }

    #[test]
    fn oversized_bundles_are_split_in_order() {
        let original = packet(&[18, 1129, 21, 400, 700]);
        let mut out = VecDeque::new();
        push_within_mtu(original.clone(), 1160, &mut out);
        assert!(out.len() >= 2);
        let mut rejoined = original[..12].to_vec();
        for p in &out {
            assert!(p.len() <= 1160);
            assert_eq!(p[..8], original[..8]);
            let mut check = p.to_vec();
            set_checksum(&mut check);
            assert_eq!(&check[..], &p[..], "checksum");
            rejoined.extend_from_slice(&p[12..]);
        }
        assert_eq!(rejoined[12..], original[12..]);
    }

    #[test]
    fn small_or_unparsable_packets_pass_unchanged() {
        let mut out = VecDeque::new();
        let small = packet(&[100]);
        push_within_mtu(small.clone(), 1160, &mut out);
        let mut garbage = vec![0u8; 2000];
        garbage[14] = 0xff;
        garbage[15] = 0xff;
        push_within_mtu(Bytes::from(garbage.clone()), 1160, &mut out);
        assert_eq!(out.pop_front().unwrap(), small);
        assert_eq!(&out.pop_front().unwrap()[..], &garbage[..]);
    }
}
