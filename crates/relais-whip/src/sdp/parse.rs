//! SDP text → [`SessionDescription`].

use super::model::{
    Attribute, Candidate, CandidateType, Codec, Direction, Extmap, Fingerprint, Fmtp, MediaKind,
    MediaSection, Msid, Origin, Rid, RidDirection, RtcpFb, SessionDescription, Setup, Simulcast,
    SimulcastRid, Ssrc, SsrcGroup,
};
use super::{excerpt, SdpError, MAX_LINES, MAX_LINE_LENGTH, MAX_MEDIA_SECTIONS, MAX_SDP_BYTES};

/// Parses an SDP (offer or answer).
///
/// Accepts CRLF or LF line endings and ignores blank lines. `v=0` must be the first line and
/// an `o=` line must be present. Unknown line types are ignored; unknown attributes are kept
/// in `other_attributes`. Errors name the 1-based line and what is wrong.
pub fn parse(text: &str) -> Result<SessionDescription, SdpError> {
    if text.len() > MAX_SDP_BYTES {
        return Err(SdpError::TooLarge {
            size: text.len(),
            max: MAX_SDP_BYTES,
        });
    }
    let mut session = SessionDescription {
        session_name: "-".to_owned(),
        ..SessionDescription::default()
    };
    let mut current: Option<SectionBuilder> = None;
    let mut seen_version = false;
    let mut seen_origin = false;

    for (index, raw) in text.split('\n').enumerate() {
        let line_no = index + 1;
        if index >= MAX_LINES {
            return Err(SdpError::TooManyLines { max: MAX_LINES });
        }
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.len() > MAX_LINE_LENGTH {
            return Err(SdpError::LineTooLong {
                line: line_no,
                max: MAX_LINE_LENGTH,
            });
        }
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| SdpError::Syntax {
            line: line_no,
            message,
        };
        let mut chars = line.chars();
        let (Some(kind), Some('=')) = (chars.next(), chars.next()) else {
            return Err(err(format!(
                "expected '<type>=<value>', found '{}'",
                excerpt(line)
            )));
        };
        let value = chars.as_str();
        if !seen_version {
            if kind != 'v' {
                return Err(err("the first line must be v=0".to_owned()));
            }
            if value.trim() != "0" {
                return Err(err(format!("v= must be 0, found '{}'", excerpt(value))));
            }
            seen_version = true;
            continue;
        }
        match kind {
            'v' => return Err(err("second v= line".to_owned())),
            'o' if current.is_none() => {
                session.origin = parse_origin(value).map_err(err)?;
                seen_origin = true;
            }
            's' if current.is_none() => session.session_name = value.to_owned(),
            'm' => {
                if let Some(done) = current.take() {
                    session.media.push(done.finish());
                }
                if session.media.len() >= MAX_MEDIA_SECTIONS {
                    return Err(SdpError::TooManyMediaSections {
                        line: line_no,
                        max: MAX_MEDIA_SECTIONS,
                    });
                }
                current = Some(SectionBuilder::new(parse_m_line(value).map_err(err)?));
            }
            'c' => {
                if let Some(section) = current.as_mut() {
                    section.media.connection = Some(value.to_owned());
                }
            }
            'a' => {
                let (name, val) = match value.split_once(':') {
                    Some((n, v)) => (n, Some(v)),
                    None => (value, None),
                };
                match current.as_mut() {
                    Some(section) => section.attribute(name, val).map_err(err)?,
                    None => session_attribute(&mut session, name, val).map_err(err)?,
                }
            }
            // t=, b=, i=, u=, e=, p=, z=, k=, r= and unknown types: ignored.
            _ => {}
        }
    }
    if !seen_version {
        return Err(SdpError::MissingLine("v="));
    }
    if !seen_origin {
        return Err(SdpError::MissingLine("o="));
    }
    if let Some(done) = current.take() {
        session.media.push(done.finish());
    }
    Ok(session)
}

type LineResult<T> = Result<T, String>;

fn parse_origin(value: &str) -> LineResult<Origin> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    let [username, id, version, net_type, addr_type, address] = fields.as_slice() else {
        return Err(format!(
            "o= needs 6 fields, found {} in '{}'",
            fields.len(),
            excerpt(value)
        ));
    };
    Ok(Origin {
        username: (*username).to_owned(),
        session_id: number(id, "o=", "session id")?,
        session_version: number(version, "o=", "session version")?,
        net_type: (*net_type).to_owned(),
        addr_type: (*addr_type).to_owned(),
        address: (*address).to_owned(),
    })
}

fn number<T: core::str::FromStr>(s: &str, attribute: &str, what: &str) -> LineResult<T> {
    s.parse()
        .map_err(|_| format!("{attribute}: {what} '{}' is not a number", excerpt(s)))
}

fn payload_type(s: &str, attribute: &str) -> LineResult<u8> {
    let pt: u8 = number(s, attribute, "payload type")?;
    if pt > 127 {
        return Err(format!("{attribute}: payload type {pt} is above 127"));
    }
    Ok(pt)
}

fn parse_m_line(value: &str) -> LineResult<MediaSection> {
    let mut fields = value.split_whitespace();
    let (Some(kind), Some(port), Some(protocol)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(format!(
            "m= needs '<media> <port> <proto> <fmt>...', found '{}'",
            excerpt(value)
        ));
    };
    let formats: Vec<String> = fields.map(str::to_owned).collect();
    if formats.is_empty() {
        return Err(format!("m= line has no format: '{}'", excerpt(value)));
    }
    let port_only = port.split_once('/').map_or(port, |(p, _)| p);
    let port: u16 = number(port_only, "m=", "port")?;
    let kind = match kind {
        "audio" => MediaKind::Audio,
        "video" => MediaKind::Video,
        "application" => MediaKind::Application,
        other => MediaKind::Other(other.to_owned()),
    };
    if protocol.contains("RTP/") {
        for f in &formats {
            payload_type(f, "m=")?;
        }
    }
    let mut media = MediaSection::new(kind, port, protocol);
    media.formats = formats;
    Ok(media)
}

fn required<'a>(val: Option<&'a str>, name: &str) -> LineResult<&'a str> {
    match val.map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("a={name}: value missing")),
    }
}

fn parse_fingerprint(val: Option<&str>) -> LineResult<Fingerprint> {
    let v = required(val, "fingerprint")?;
    v.parse().map_err(|_| {
        format!(
            "a=fingerprint: expected '<hash> <hex:hex:..>', found '{}'",
            excerpt(v)
        )
    })
}

fn parse_setup(val: Option<&str>) -> LineResult<Setup> {
    let v = required(val, "setup")?;
    Setup::from_name(v).ok_or_else(|| format!("a=setup: unknown role '{}'", excerpt(v)))
}

fn session_attribute(
    session: &mut SessionDescription,
    name: &str,
    val: Option<&str>,
) -> LineResult<()> {
    match name {
        "group" => {
            let v = required(val, "group")?;
            let mut tokens = v.split_whitespace();
            let is_bundle = tokens
                .next()
                .is_some_and(|s| s.eq_ignore_ascii_case("BUNDLE"));
            if is_bundle && session.bundle.is_empty() {
                session.bundle = tokens.map(str::to_owned).collect();
            } else {
                session.other_attributes.push(raw(name, val));
            }
        }
        "ice-ufrag" => session.ice_ufrag = Some(required(val, name)?.to_owned()),
        "ice-pwd" => session.ice_pwd = Some(required(val, name)?.to_owned()),
        "ice-options" => {
            session.ice_options = val
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        }
        "ice-lite" => session.ice_lite = true,
        "fingerprint" => session.fingerprints.push(parse_fingerprint(val)?),
        "setup" => session.setup = Some(parse_setup(val)?),
        "extmap-allow-mixed" => session.extmap_allow_mixed = true,
        _ => session.other_attributes.push(raw(name, val)),
    }
    Ok(())
}

fn raw(name: &str, val: Option<&str>) -> Attribute {
    Attribute {
        name: name.to_owned(),
        value: val.map(str::to_owned),
    }
}

/// One section being parsed: `rtpmap` / `fmtp` / `rtcp-fb` lines may come in any order and
/// are joined into [`Codec`]s at the end.
struct SectionBuilder {
    media: MediaSection,
    rtpmaps: Vec<(u8, String, u32, Option<u16>)>,
    fmtps: Vec<(u8, Fmtp)>,
    /// `None`: wildcard `*`.
    feedback: Vec<(Option<u8>, RtcpFb)>,
}

impl SectionBuilder {
    fn new(media: MediaSection) -> Self {
        Self {
            media,
            rtpmaps: Vec::new(),
            fmtps: Vec::new(),
            feedback: Vec::new(),
        }
    }

    fn attribute(&mut self, name: &str, val: Option<&str>) -> LineResult<()> {
        let m = &mut self.media;
        if let Some(d) = Direction::from_name(name) {
            m.direction = d;
            return Ok(());
        }
        match name {
            "mid" => m.mid = Some(required(val, name)?.to_owned()),
            "ice-ufrag" => m.ice_ufrag = Some(required(val, name)?.to_owned()),
            "ice-pwd" => m.ice_pwd = Some(required(val, name)?.to_owned()),
            "ice-options" => {
                m.ice_options = val
                    .unwrap_or("")
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect();
            }
            "fingerprint" => m.fingerprints.push(parse_fingerprint(val)?),
            "setup" => m.setup = Some(parse_setup(val)?),
            "rtcp-mux" => m.rtcp_mux = true,
            "rtcp-rsize" => m.rtcp_rsize = true,
            "rtpmap" => self.rtpmaps.push(parse_rtpmap(required(val, name)?)?),
            "fmtp" => {
                let v = required(val, name)?;
                let (pt, params) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
                let pt = payload_type(pt, "a=fmtp")?;
                let fmtp = Fmtp::parse(params);
                if !fmtp.params.is_empty() {
                    self.fmtps.push((pt, fmtp));
                }
            }
            "rtcp-fb" => self.feedback.push(parse_rtcp_fb(required(val, name)?)?),
            "extmap" => m.extmaps.push(parse_extmap(required(val, name)?)?),
            "ssrc" => {
                let v = required(val, name)?;
                let (ssrc, attr) = v.split_once(' ').unwrap_or((v, ""));
                let ssrc: u32 = number(ssrc, "a=ssrc", "SSRC")?;
                let attr = attr.trim();
                let entry = match m.ssrcs.iter_mut().position(|s| s.ssrc == ssrc) {
                    Some(i) => m.ssrcs.get_mut(i),
                    None => {
                        m.ssrcs.push(Ssrc {
                            ssrc,
                            attributes: Vec::new(),
                        });
                        m.ssrcs.last_mut()
                    }
                };
                if let (Some(entry), false) = (entry, attr.is_empty()) {
                    let (n, v) = match attr.split_once(':') {
                        Some((n, v)) => (n, Some(v)),
                        None => (attr, None),
                    };
                    entry.attributes.push(raw(n, v));
                }
            }
            "ssrc-group" => {
                let v = required(val, name)?;
                let mut tokens = v.split_whitespace();
                let semantics = tokens.next().unwrap_or_default().to_owned();
                let ssrcs = tokens
                    .map(|s| number(s, "a=ssrc-group", "SSRC"))
                    .collect::<LineResult<Vec<u32>>>()?;
                m.ssrc_groups.push(SsrcGroup { semantics, ssrcs });
            }
            "msid" => {
                let v = required(val, name)?;
                let mut tokens = v.split_whitespace();
                let stream_id = tokens.next().unwrap_or_default().to_owned();
                let track_id = tokens.next().map(str::to_owned);
                m.msids.push(Msid {
                    stream_id,
                    track_id,
                });
            }
            "rid" => m.rids.push(parse_rid(required(val, name)?)?),
            "simulcast" => m.simulcast = Some(parse_simulcast(required(val, name)?)?),
            "candidate" => m.candidates.push(parse_candidate(required(val, name)?)?),
            "end-of-candidates" => m.end_of_candidates = true,
            _ => m.other_attributes.push(raw(name, val)),
        }
        Ok(())
    }

    fn finish(self) -> MediaSection {
        let Self {
            mut media,
            rtpmaps,
            fmtps,
            feedback,
        } = self;
        let mut codecs = Vec::new();
        for format in &media.formats {
            let Ok(pt) = format.parse::<u8>() else {
                continue;
            };
            let (name, clock_rate, channels) = match rtpmaps.iter().find(|(p, ..)| *p == pt) {
                Some((_, n, r, c)) => (n.clone(), *r, *c),
                None => match static_payload_type(pt) {
                    Some((n, r)) => (n.to_owned(), r, None),
                    None => continue,
                },
            };
            if codecs.iter().any(|c: &Codec| c.payload_type == pt) {
                continue;
            }
            codecs.push(Codec {
                payload_type: pt,
                name,
                clock_rate,
                channels,
                fmtp: fmtps.iter().find(|(p, _)| *p == pt).map(|(_, f)| f.clone()),
                rtcp_fb: feedback
                    .iter()
                    .filter(|(p, _)| p.is_none_or(|p| p == pt))
                    .map(|(_, fb)| fb.clone())
                    .collect(),
            });
        }
        media.codecs = codecs;
        media
    }
}

/// RFC 3551 static payload types that may appear without `a=rtpmap`.
fn static_payload_type(pt: u8) -> Option<(&'static str, u32)> {
    match pt {
        0 => Some(("PCMU", 8000)),
        8 => Some(("PCMA", 8000)),
        9 => Some(("G722", 8000)),
        _ => None,
    }
}

fn parse_rtpmap(v: &str) -> LineResult<(u8, String, u32, Option<u16>)> {
    let Some((pt, encoding)) = v.split_once(char::is_whitespace) else {
        return Err(format!(
            "a=rtpmap: expected '<pt> <name>/<rate>', found '{}'",
            excerpt(v)
        ));
    };
    let pt = payload_type(pt, "a=rtpmap")?;
    let mut parts = encoding.trim().split('/');
    let name = parts.next().unwrap_or_default();
    if name.is_empty() {
        return Err("a=rtpmap: encoding name missing".to_owned());
    }
    let Some(rate) = parts.next() else {
        return Err(format!(
            "a=rtpmap: clock rate missing for '{}'",
            excerpt(name)
        ));
    };
    let rate: u32 = number(rate, "a=rtpmap", "clock rate")?;
    let channels = parts
        .next()
        .map(|c| number::<u16>(c, "a=rtpmap", "channel count"))
        .transpose()?;
    Ok((pt, name.to_owned(), rate, channels))
}

fn parse_rtcp_fb(v: &str) -> LineResult<(Option<u8>, RtcpFb)> {
    let mut tokens = v.split_whitespace();
    let pt = match tokens.next() {
        Some("*") => None,
        Some(pt) => Some(payload_type(pt, "a=rtcp-fb")?),
        None => return Err("a=rtcp-fb: value missing".to_owned()),
    };
    let Some(kind) = tokens.next() else {
        return Err("a=rtcp-fb: feedback type missing".to_owned());
    };
    let rest: Vec<&str> = tokens.collect();
    let param = (!rest.is_empty()).then(|| rest.join(" "));
    Ok((
        pt,
        RtcpFb {
            kind: kind.to_owned(),
            param,
        },
    ))
}

fn parse_extmap(v: &str) -> LineResult<Extmap> {
    let mut tokens = v.split_whitespace();
    let id_dir = tokens.next().unwrap_or_default();
    let (id, direction) = match id_dir.split_once('/') {
        Some((id, d)) => (
            id,
            Some(
                Direction::from_name(d)
                    .ok_or_else(|| format!("a=extmap: unknown direction '{}'", excerpt(d)))?,
            ),
        ),
        None => (id_dir, None),
    };
    let id: u16 = number(id, "a=extmap", "id")?;
    if id == 0 {
        return Err("a=extmap: id 0 is reserved".to_owned());
    }
    let Some(uri) = tokens.next() else {
        return Err(format!("a=extmap: URI missing after id {id}"));
    };
    let rest: Vec<&str> = tokens.collect();
    Ok(Extmap {
        id,
        direction,
        uri: uri.to_owned(),
        attributes: (!rest.is_empty()).then(|| rest.join(" ")),
    })
}

fn parse_rid(v: &str) -> LineResult<Rid> {
    let mut tokens = v.split_whitespace();
    let id = tokens.next().unwrap_or_default();
    let direction = match tokens.next() {
        Some("send") => RidDirection::Send,
        Some("recv") => RidDirection::Recv,
        Some(other) => {
            return Err(format!(
                "a=rid: direction must be send or recv, found '{}'",
                excerpt(other)
            ))
        }
        None => {
            return Err(format!(
                "a=rid: direction missing for rid '{}'",
                excerpt(id)
            ))
        }
    };
    let params = tokens
        .next()
        .map(|p| Fmtp::parse(p).params)
        .unwrap_or_default();
    Ok(Rid {
        id: id.to_owned(),
        direction,
        params,
    })
}

fn parse_simulcast(v: &str) -> LineResult<Simulcast> {
    let mut simulcast = Simulcast::default();
    let mut tokens = v.split_whitespace();
    while let Some(dir) = tokens.next() {
        let Some(list) = tokens.next() else {
            return Err(format!(
                "a=simulcast: rid list missing after '{}'",
                excerpt(dir)
            ));
        };
        // Old drafts (Firefox < 71) wrote `rid=q;h;f`.
        let list = list.strip_prefix("rid=").unwrap_or(list);
        let streams = list
            .split(';')
            .filter(|s| !s.is_empty())
            .map(|stream| {
                stream
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|alt| match alt.strip_prefix('~') {
                        Some(id) => SimulcastRid {
                            id: id.to_owned(),
                            paused: true,
                        },
                        None => SimulcastRid {
                            id: alt.to_owned(),
                            paused: false,
                        },
                    })
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>();
        if streams.is_empty() {
            return Err(format!(
                "a=simulcast: empty rid list after '{}'",
                excerpt(dir)
            ));
        }
        match dir {
            "send" => simulcast.send = streams,
            "recv" => simulcast.recv = streams,
            other => {
                return Err(format!(
                    "a=simulcast: direction must be send or recv, found '{}'",
                    excerpt(other)
                ))
            }
        }
    }
    Ok(simulcast)
}

fn parse_candidate(v: &str) -> LineResult<Candidate> {
    let fields: Vec<&str> = v.split_whitespace().collect();
    let [foundation, component, transport, priority, address, port, typ_kw, typ, rest @ ..] =
        fields.as_slice()
    else {
        return Err(format!(
            "a=candidate: expected '<foundation> <component> <transport> <priority> <address> <port> typ <type>', found '{}'",
            excerpt(v)
        ));
    };
    if *typ_kw != "typ" {
        return Err(format!(
            "a=candidate: expected 'typ', found '{}'",
            excerpt(typ_kw)
        ));
    }
    let typ = CandidateType::from_name(typ)
        .ok_or_else(|| format!("a=candidate: unknown candidate type '{}'", excerpt(typ)))?;
    let mut candidate = Candidate {
        foundation: (*foundation).to_owned(),
        component: number(component, "a=candidate", "component")?,
        transport: (*transport).to_owned(),
        priority: number(priority, "a=candidate", "priority")?,
        address: (*address).to_owned(),
        port: number(port, "a=candidate", "port")?,
        typ,
        raddr: None,
        rport: None,
        extensions: Vec::new(),
    };
    let mut rest = rest.iter();
    while let Some(key) = rest.next() {
        let Some(value) = rest.next() else {
            return Err(format!(
                "a=candidate: value missing after '{}'",
                excerpt(key)
            ));
        };
        match *key {
            "raddr" => candidate.raddr = Some((*value).to_owned()),
            "rport" => candidate.rport = Some(number(value, "a=candidate", "rport")?),
            _ => candidate
                .extensions
                .push(((*key).to_owned(), (*value).to_owned())),
        }
    }
    Ok(candidate)
}
