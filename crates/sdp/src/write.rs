//! Serialisation: [`SessionDescription`] → text, CRLF line endings, RFC 8866 order.
//!
//! Everything is written into a `String` by plain `push_str` calls (no formatting machinery,
//! no dynamic dispatch per field); the `Display` impls hand the finished text to the
//! formatter in one `write_str`.

use std::fmt::{self, Display, Formatter};

use crate::attribute::{Attribute, Candidate, FmtpParam, SimulcastRid};
use crate::model::{Bandwidth, Connection, MediaDescription, SessionDescription};

/// Appends the decimal digits of `n`.
pub(crate) fn push_num(out: &mut String, n: u64) {
    if n < 10 {
        out.push((b'0' + n as u8) as char);
        return;
    }
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    while n > 0 {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("0"));
}

fn push_line(out: &mut String, prefix: &str, value: &str) {
    out.push_str(prefix);
    out.push_str(value);
    out.push_str("\r\n");
}

fn push_connection(out: &mut String, c: &Connection) {
    out.push_str(&c.nettype);
    out.push(' ');
    out.push_str(&c.addrtype);
    out.push(' ');
    out.push_str(&c.address);
}

fn push_bandwidth(out: &mut String, b: &Bandwidth) {
    out.push_str(&b.bwtype);
    out.push(':');
    push_num(out, b.bandwidth);
}

/// Appends a candidate value (without `a=candidate:`).
pub(crate) fn push_candidate(out: &mut String, c: &Candidate) {
    out.push_str(&c.foundation);
    out.push(' ');
    push_num(out, c.component.into());
    out.push(' ');
    out.push_str(&c.transport);
    out.push(' ');
    push_num(out, c.priority.into());
    out.push(' ');
    out.push_str(&c.address);
    out.push(' ');
    push_num(out, c.port.into());
    out.push_str(" typ ");
    out.push_str(c.typ.as_str());
    if let Some(a) = &c.related_address {
        out.push_str(" raddr ");
        out.push_str(a);
    }
    if let Some(p) = c.related_port {
        out.push_str(" rport ");
        push_num(out, p.into());
    }
    if let Some(t) = c.tcp_type {
        out.push_str(" tcptype ");
        out.push_str(t.as_str());
    }
    for (k, v) in &c.extensions {
        out.push(' ');
        out.push_str(k);
        out.push(' ');
        out.push_str(v);
    }
}

/// Appends one format parameter.
pub(crate) fn push_fmtp_param(out: &mut String, p: &FmtpParam) {
    if let Some(key) = p.key() {
        out.push_str(key);
        out.push('=');
    }
    match p {
        FmtpParam::MinPtime(v)
        | FmtpParam::MaxPlaybackRate(v)
        | FmtpParam::MaxAverageBitrate(v)
        | FmtpParam::MaxFs(v)
        | FmtpParam::MaxFr(v)
        | FmtpParam::RtxTime(v) => push_num(out, (*v).into()),
        FmtpParam::UseInbandFec(v)
        | FmtpParam::UseDtx(v)
        | FmtpParam::Stereo(v)
        | FmtpParam::SpropStereo(v)
        | FmtpParam::Cbr(v)
        | FmtpParam::LevelAsymmetryAllowed(v) => out.push(if *v { '1' } else { '0' }),
        FmtpParam::ProfileId(v) | FmtpParam::PacketizationMode(v) | FmtpParam::Apt(v) => {
            push_num(out, (*v).into())
        }
        FmtpParam::ProfileLevelId(p) => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for b in [p.profile_idc, p.profile_iop, p.level_idc] {
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
        FmtpParam::Other { value, .. } => out.push_str(value),
        FmtpParam::Value(v) => out.push_str(v),
    }
}

fn push_sc_list(out: &mut String, list: &[Vec<SimulcastRid>]) {
    for (i, alts) in list.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        for (j, rid) in alts.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            if rid.paused {
                out.push('~');
            }
            out.push_str(&rid.id);
        }
    }
}

/// Appends an attribute without the `a=` prefix and without a line ending.
pub(crate) fn push_attribute(out: &mut String, a: &Attribute) {
    out.push_str(a.name());
    match a {
        Attribute::BundleOnly
        | Attribute::IceLite
        | Attribute::IceMismatch
        | Attribute::EndOfCandidates
        | Attribute::RtcpMux
        | Attribute::RtcpMuxOnly
        | Attribute::RtcpRsize
        | Attribute::ExtmapAllowMixed
        | Attribute::Direction(_) => {}
        Attribute::Group(g) => {
            out.push(':');
            out.push_str(&g.semantics);
            for m in &g.mids {
                out.push(' ');
                out.push_str(m);
            }
        }
        Attribute::Mid(m) => {
            out.push(':');
            out.push_str(m);
        }
        Attribute::Msid(m) => {
            out.push(':');
            out.push_str(&m.stream_id);
            if let Some(t) = &m.track_id {
                out.push(' ');
                out.push_str(t);
            }
        }
        Attribute::MsidSemantic(m) => {
            out.push_str(": ");
            out.push_str(&m.semantic);
            for id in &m.ids {
                out.push(' ');
                out.push_str(id);
            }
        }
        Attribute::IceUfrag(s) | Attribute::IcePwd(s) => {
            out.push(':');
            out.push_str(s);
        }
        Attribute::IceOptions(o) => {
            out.push(':');
            for (i, o) in o.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(o);
            }
        }
        Attribute::Candidate(c) => {
            out.push(':');
            push_candidate(out, c);
        }
        Attribute::Fingerprint(fp) => {
            out.push(':');
            out.push_str(&fp.hash_function);
            out.push(' ');
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            let mut buf = [0u8; 3 * 64];
            let mut first = true;
            for chunk in fp.bytes.chunks(64) {
                let mut n = 0;
                for b in chunk {
                    buf[n] = b':';
                    buf[n + 1] = HEX[(b >> 4) as usize];
                    buf[n + 2] = HEX[(b & 15) as usize];
                    n += 3;
                }
                // Every byte was written with a leading ':'; the very first one is not.
                let from = usize::from(first);
                first = false;
                out.push_str(std::str::from_utf8(&buf[from..n]).unwrap_or(""));
            }
        }
        Attribute::Setup(s) => {
            out.push(':');
            out.push_str(s.as_str());
        }
        Attribute::Rtcp(r) => {
            out.push(':');
            push_num(out, r.port.into());
            if let Some(c) = &r.address {
                out.push(' ');
                push_connection(out, c);
            }
        }
        Attribute::Rtpmap(r) => {
            out.push(':');
            push_num(out, r.payload_type.into());
            out.push(' ');
            out.push_str(&r.encoding);
            out.push('/');
            push_num(out, r.clock_rate.into());
            if let Some(c) = r.channels {
                out.push('/');
                push_num(out, c.into());
            }
        }
        Attribute::Fmtp(fm) => {
            out.push(':');
            push_num(out, fm.payload_type.into());
            out.push(' ');
            for (i, p) in fm.params.iter().enumerate() {
                if i > 0 {
                    out.push(';');
                }
                push_fmtp_param(out, p);
            }
        }
        Attribute::RtcpFb(fb) => {
            out.push(':');
            match fb.payload_type {
                Some(pt) => push_num(out, pt.into()),
                None => out.push('*'),
            }
            out.push(' ');
            out.push_str(&fb.fb_type);
            if let Some(p) = &fb.param {
                out.push(' ');
                out.push_str(p);
            }
        }
        Attribute::Extmap(e) => {
            out.push(':');
            push_num(out, e.id.into());
            if let Some(d) = e.direction {
                out.push('/');
                out.push_str(d.as_str());
            }
            out.push(' ');
            out.push_str(&e.uri);
            if let Some(a) = &e.attributes {
                out.push(' ');
                out.push_str(a);
            }
        }
        Attribute::Ssrc(s) => {
            out.push(':');
            push_num(out, s.ssrc.into());
            out.push(' ');
            out.push_str(&s.attribute);
            if let Some(v) = &s.value {
                out.push(':');
                out.push_str(v);
            }
        }
        Attribute::SsrcGroup(g) => {
            out.push(':');
            out.push_str(&g.semantics);
            for s in &g.ssrcs {
                out.push(' ');
                push_num(out, (*s).into());
            }
        }
        Attribute::Rid(r) => {
            out.push(':');
            out.push_str(&r.id);
            out.push(' ');
            out.push_str(r.direction.as_str());
            let mut sep = ' ';
            if !r.payload_types.is_empty() {
                out.push(sep);
                sep = ';';
                out.push_str("pt=");
                for (i, pt) in r.payload_types.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_num(out, (*pt).into());
                }
            }
            for (k, v) in &r.restrictions {
                out.push(sep);
                sep = ';';
                out.push_str(k);
                if let Some(v) = v {
                    out.push('=');
                    out.push_str(v);
                }
            }
        }
        Attribute::Simulcast(sc) => {
            out.push(':');
            if !sc.send.is_empty() {
                out.push_str("send ");
                push_sc_list(out, &sc.send);
                if !sc.recv.is_empty() {
                    out.push(' ');
                }
            }
            if !sc.recv.is_empty() {
                out.push_str("recv ");
                push_sc_list(out, &sc.recv);
            }
        }
        Attribute::SctpPort(p) => {
            out.push(':');
            push_num(out, (*p).into());
        }
        Attribute::MaxMessageSize(s) => {
            out.push(':');
            push_num(out, *s);
        }
        Attribute::Sctpmap(s) => {
            out.push(':');
            push_num(out, s.port.into());
            out.push(' ');
            out.push_str(&s.protocol);
            if let Some(n) = s.streams {
                out.push(' ');
                push_num(out, n.into());
            }
        }
        Attribute::ImageAttr(i) => {
            match i.payload_type {
                Some(pt) => {
                    out.push(':');
                    push_num(out, pt.into());
                    out.push(' ');
                }
                None => out.push_str(":* "),
            }
            out.push_str(&i.value);
        }
        Attribute::Unknown { value, .. } => {
            if let Some(v) = value {
                out.push(':');
                out.push_str(v);
            }
        }
    }
}

fn push_attribute_lines(out: &mut String, attributes: &[Attribute]) {
    for a in attributes {
        out.push_str("a=");
        push_attribute(out, a);
        out.push_str("\r\n");
    }
}

fn push_media(out: &mut String, m: &MediaDescription) {
    out.push_str("m=");
    out.push_str(m.kind.as_str());
    out.push(' ');
    push_num(out, m.port.into());
    if let Some(n) = m.port_count {
        out.push('/');
        push_num(out, n.into());
    }
    out.push(' ');
    out.push_str(&m.protocol);
    for fmt in &m.formats {
        out.push(' ');
        out.push_str(fmt);
    }
    out.push_str("\r\n");
    if let Some(i) = &m.title {
        push_line(out, "i=", i);
    }
    for c in &m.connections {
        out.push_str("c=");
        push_connection(out, c);
        out.push_str("\r\n");
    }
    for b in &m.bandwidths {
        out.push_str("b=");
        push_bandwidth(out, b);
        out.push_str("\r\n");
    }
    if let Some(k) = &m.key {
        push_line(out, "k=", k);
    }
    push_attribute_lines(out, &m.attributes);
}

fn push_session(out: &mut String, s: &SessionDescription) {
    let o = &s.origin;
    out.push_str("v=");
    push_num(out, s.version.into());
    out.push_str("\r\no=");
    out.push_str(&o.username);
    out.push(' ');
    push_num(out, o.session_id);
    out.push(' ');
    push_num(out, o.session_version);
    out.push(' ');
    out.push_str(&o.nettype);
    out.push(' ');
    out.push_str(&o.addrtype);
    out.push(' ');
    out.push_str(&o.address);
    out.push_str("\r\n");
    push_line(out, "s=", &s.session_name);
    if let Some(i) = &s.information {
        push_line(out, "i=", i);
    }
    if let Some(u) = &s.uri {
        push_line(out, "u=", u);
    }
    for e in &s.emails {
        push_line(out, "e=", e);
    }
    for p in &s.phones {
        push_line(out, "p=", p);
    }
    if let Some(c) = &s.connection {
        out.push_str("c=");
        push_connection(out, c);
        out.push_str("\r\n");
    }
    for b in &s.bandwidths {
        out.push_str("b=");
        push_bandwidth(out, b);
        out.push_str("\r\n");
    }
    for t in &s.times {
        out.push_str("t=");
        push_num(out, t.start);
        out.push(' ');
        push_num(out, t.stop);
        out.push_str("\r\n");
        for r in &t.repeats {
            push_line(out, "r=", r);
        }
    }
    if let Some(z) = &s.time_zones {
        push_line(out, "z=", z);
    }
    if let Some(k) = &s.key {
        push_line(out, "k=", k);
    }
    push_attribute_lines(out, &s.attributes);
    for m in &s.media {
        push_media(out, m);
    }
}

/// A first guess at the text size, so that the buffer rarely grows.
fn size_hint(attributes: usize) -> usize {
    256 + 48 * attributes
}

impl Display for Connection {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(32);
        push_connection(&mut out, self);
        f.write_str(&out)
    }
}

impl Display for Bandwidth {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(24);
        push_bandwidth(&mut out, self);
        f.write_str(&out)
    }
}

impl Display for MediaDescription {
    /// Writes the `m=` line and everything in the section, each line ending in CRLF.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(size_hint(self.attributes.len()));
        push_media(&mut out, self);
        f.write_str(&out)
    }
}

impl Display for SessionDescription {
    /// Writes the whole description in RFC 8866 order, each line ending in CRLF.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let attributes = self.attributes.len()
            + self
                .media
                .iter()
                .map(|m| m.attributes.len() + 2)
                .sum::<usize>();
        let mut out = String::with_capacity(size_hint(attributes));
        push_session(&mut out, self);
        f.write_str(&out)
    }
}
