//! [`SessionDescription`] → SDP text (CRLF line endings).

use core::fmt::{self, Display, Formatter, Write};

use super::model::{Attribute, MediaSection, SessionDescription, Simulcast, SimulcastRid};

/// Writes `<prefix><value>\r\n`.
fn line(f: &mut Formatter<'_>, prefix: &str, value: impl Display) -> fmt::Result {
    write!(f, "{prefix}{value}\r\n")
}

fn flag(f: &mut Formatter<'_>, name: &str) -> fmt::Result {
    write!(f, "a={name}\r\n")
}

fn raw_attribute(f: &mut Formatter<'_>, a: &Attribute) -> fmt::Result {
    match &a.value {
        Some(v) => write!(f, "a={}:{v}\r\n", a.name),
        None => write!(f, "a={}\r\n", a.name),
    }
}

impl Display for SessionDescription {
    /// The SDP text, CRLF line endings, attributes in a fixed (JSEP-like) order.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        f.write_str("v=0\r\n")?;
        write!(
            f,
            "o={} {} {} {} {} {}\r\n",
            o.username, o.session_id, o.session_version, o.net_type, o.addr_type, o.address
        )?;
        line(f, "s=", &self.session_name)?;
        f.write_str("t=0 0\r\n")?;
        if self.ice_lite {
            flag(f, "ice-lite")?;
        }
        if !self.bundle.is_empty() {
            line(f, "a=group:BUNDLE ", self.bundle.join(" "))?;
        }
        if self.extmap_allow_mixed {
            flag(f, "extmap-allow-mixed")?;
        }
        if let Some(u) = &self.ice_ufrag {
            line(f, "a=ice-ufrag:", u)?;
        }
        if let Some(p) = &self.ice_pwd {
            line(f, "a=ice-pwd:", p)?;
        }
        if !self.ice_options.is_empty() {
            line(f, "a=ice-options:", self.ice_options.join(" "))?;
        }
        for fp in &self.fingerprints {
            line(f, "a=fingerprint:", fp)?;
        }
        if let Some(s) = self.setup {
            line(f, "a=setup:", s.as_str())?;
        }
        for a in &self.other_attributes {
            raw_attribute(f, a)?;
        }
        for m in &self.media {
            m.fmt(f)?;
        }
        Ok(())
    }
}

impl Display for MediaSection {
    /// The section's lines, from `m=` on.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "m={} {} {} {}\r\n",
            self.kind.as_str(),
            self.port,
            self.protocol,
            self.formats.join(" ")
        )?;
        if let Some(c) = &self.connection {
            line(f, "c=", c)?;
        }
        if let Some(u) = &self.ice_ufrag {
            line(f, "a=ice-ufrag:", u)?;
        }
        if let Some(p) = &self.ice_pwd {
            line(f, "a=ice-pwd:", p)?;
        }
        if !self.ice_options.is_empty() {
            line(f, "a=ice-options:", self.ice_options.join(" "))?;
        }
        for fp in &self.fingerprints {
            line(f, "a=fingerprint:", fp)?;
        }
        if let Some(s) = self.setup {
            line(f, "a=setup:", s.as_str())?;
        }
        if let Some(mid) = &self.mid {
            line(f, "a=mid:", mid)?;
        }
        for e in &self.extmaps {
            write!(f, "a=extmap:{}", e.id)?;
            if let Some(d) = e.direction {
                write!(f, "/{}", d.as_str())?;
            }
            write!(f, " {}", e.uri)?;
            if let Some(a) = &e.attributes {
                write!(f, " {a}")?;
            }
            f.write_str("\r\n")?;
        }
        flag(f, self.direction.as_str())?;
        for msid in &self.msids {
            line(f, "a=msid:", msid)?;
        }
        if self.rtcp_mux {
            flag(f, "rtcp-mux")?;
        }
        if self.rtcp_rsize {
            flag(f, "rtcp-rsize")?;
        }
        for c in &self.codecs {
            write!(f, "a=rtpmap:{} {}/{}", c.payload_type, c.name, c.clock_rate)?;
            if let Some(ch) = c.channels {
                write!(f, "/{ch}")?;
            }
            f.write_str("\r\n")?;
            for fb in &c.rtcp_fb {
                write!(f, "a=rtcp-fb:{} {}", c.payload_type, fb.kind)?;
                if let Some(p) = &fb.param {
                    write!(f, " {p}")?;
                }
                f.write_str("\r\n")?;
            }
            if let Some(fmtp) = c.fmtp.as_ref().filter(|p| !p.params.is_empty()) {
                write!(f, "a=fmtp:{} {fmtp}\r\n", c.payload_type)?;
            }
        }
        for g in &self.ssrc_groups {
            write!(f, "a=ssrc-group:{}", g.semantics)?;
            for s in &g.ssrcs {
                write!(f, " {s}")?;
            }
            f.write_str("\r\n")?;
        }
        for s in &self.ssrcs {
            if s.attributes.is_empty() {
                write!(f, "a=ssrc:{}\r\n", s.ssrc)?;
            }
            for a in &s.attributes {
                match &a.value {
                    Some(v) => write!(f, "a=ssrc:{} {}:{v}\r\n", s.ssrc, a.name)?,
                    None => write!(f, "a=ssrc:{} {}\r\n", s.ssrc, a.name)?,
                }
            }
        }
        for r in &self.rids {
            write!(f, "a=rid:{} {}", r.id, r.direction.as_str())?;
            for (i, p) in r.params.iter().enumerate() {
                f.write_char(if i == 0 { ' ' } else { ';' })?;
                f.write_str(&p.key)?;
                if let Some(v) = &p.value {
                    write!(f, "={v}")?;
                }
            }
            f.write_str("\r\n")?;
        }
        if let Some(s) = &self.simulcast {
            write_simulcast(f, s)?;
        }
        for c in &self.candidates {
            line(f, "a=candidate:", c)?;
        }
        if self.end_of_candidates {
            flag(f, "end-of-candidates")?;
        }
        for a in &self.other_attributes {
            raw_attribute(f, a)?;
        }
        Ok(())
    }
}

fn write_streams(f: &mut Formatter<'_>, streams: &[Vec<SimulcastRid>]) -> fmt::Result {
    for (i, stream) in streams.iter().enumerate() {
        if i > 0 {
            f.write_char(';')?;
        }
        for (j, alt) in stream.iter().enumerate() {
            if j > 0 {
                f.write_char(',')?;
            }
            if alt.paused {
                f.write_char('~')?;
            }
            f.write_str(&alt.id)?;
        }
    }
    Ok(())
}

fn write_simulcast(f: &mut Formatter<'_>, s: &Simulcast) -> fmt::Result {
    if s.send.is_empty() && s.recv.is_empty() {
        return Ok(());
    }
    f.write_str("a=simulcast:")?;
    let mut first = true;
    for (dir, streams) in [("send", &s.send), ("recv", &s.recv)] {
        if streams.is_empty() {
            continue;
        }
        if !first {
            f.write_char(' ')?;
        }
        first = false;
        write!(f, "{dir} ")?;
        write_streams(f, streams)?;
    }
    f.write_str("\r\n")
}
