//! The typed SDP model.

use core::fmt;
use core::str::FromStr;

use super::{excerpt, SdpError};

/// A whole SDP: session-level fields and the media sections, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionDescription {
    /// The `o=` line.
    pub origin: Origin,
    /// The `s=` line (`-` when absent).
    pub session_name: String,
    /// Mids of the first `a=group:BUNDLE` group, in order (empty: no BUNDLE group).
    pub bundle: Vec<String>,
    /// Session-level `a=ice-ufrag`.
    pub ice_ufrag: Option<String>,
    /// Session-level `a=ice-pwd`.
    pub ice_pwd: Option<String>,
    /// Session-level `a=ice-options` tokens (e.g. `trickle`).
    pub ice_options: Vec<String>,
    /// `a=ice-lite`.
    pub ice_lite: bool,
    /// Session-level `a=fingerprint` lines.
    pub fingerprints: Vec<Fingerprint>,
    /// Session-level `a=setup`.
    pub setup: Option<Setup>,
    /// `a=extmap-allow-mixed` (session level).
    pub extmap_allow_mixed: bool,
    /// Session-level attributes not modelled above, in order.
    pub other_attributes: Vec<Attribute>,
    /// The `m=` sections, in order.
    pub media: Vec<MediaSection>,
}

impl SessionDescription {
    /// The media section with this mid.
    pub fn media_by_mid(&self, mid: &str) -> Option<&MediaSection> {
        self.media.iter().find(|m| m.mid.as_deref() == Some(mid))
    }
}

/// The `o=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// User name (`-` usually).
    pub username: String,
    /// Session id.
    pub session_id: u64,
    /// Session version.
    pub session_version: u64,
    /// Network type (`IN`).
    pub net_type: String,
    /// Address type (`IP4` / `IP6`).
    pub addr_type: String,
    /// Unicast address.
    pub address: String,
}

impl Default for Origin {
    fn default() -> Self {
        Self {
            username: "-".to_owned(),
            session_id: 0,
            session_version: 0,
            net_type: "IN".to_owned(),
            addr_type: "IP4".to_owned(),
            address: "127.0.0.1".to_owned(),
        }
    }
}

/// An attribute kept as written: `a=name` or `a=name:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The name, before the first `:`.
    pub name: String,
    /// The value after the first `:`, if any.
    pub value: Option<String>,
}

/// The media type of an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaKind {
    /// `audio`.
    Audio,
    /// `video`.
    Video,
    /// `application` (data channels).
    Application,
    /// Anything else, as written.
    Other(String),
}

impl MediaKind {
    /// The token as written in SDP.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Application => "application",
            Self::Other(s) => s,
        }
    }
}

/// Media direction attribute (RFC 8866 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// `a=sendrecv` (the default when absent).
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// Parses the attribute name.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "sendrecv" => Some(Self::SendRecv),
            "sendonly" => Some(Self::SendOnly),
            "recvonly" => Some(Self::RecvOnly),
            "inactive" => Some(Self::Inactive),
            _ => None,
        }
    }

    /// The attribute name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// Whether this side sends.
    pub const fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// Whether this side receives.
    pub const fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }

    /// The direction with the given send / receive capabilities.
    pub const fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Self::SendRecv,
            (true, false) => Self::SendOnly,
            (false, true) => Self::RecvOnly,
            (false, false) => Self::Inactive,
        }
    }

    /// The direction seen from the other side (sendonly ↔ recvonly).
    pub const fn reversed(self) -> Self {
        Self::from_flags(self.receives(), self.sends())
    }
}

/// DTLS role (`a=setup`, RFC 4145 / RFC 8842).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// `actpass`: the offerer lets the answerer choose.
    ActPass,
    /// `active`: DTLS client.
    Active,
    /// `passive`: DTLS server.
    Passive,
    /// `holdconn`.
    HoldConn,
}

impl Setup {
    /// Parses the attribute value.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "actpass" => Some(Self::ActPass),
            "active" => Some(Self::Active),
            "passive" => Some(Self::Passive),
            "holdconn" => Some(Self::HoldConn),
            _ => None,
        }
    }

    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ActPass => "actpass",
            Self::Active => "active",
            Self::Passive => "passive",
            Self::HoldConn => "holdconn",
        }
    }
}

/// `a=fingerprint:<algorithm> <value>` (RFC 8122).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash function, lower case (`sha-256`).
    pub algorithm: String,
    /// Colon-separated upper-case hex bytes.
    pub value: String,
}

impl FromStr for Fingerprint {
    type Err = SdpError;

    /// Parses `"sha-256 AB:CD:…"`: an algorithm token and colon-separated hex bytes.
    fn from_str(s: &str) -> Result<Self, SdpError> {
        let invalid = || SdpError::InvalidValue {
            what: "fingerprint",
            value: excerpt(s),
        };
        let mut parts = s.split_whitespace();
        let (Some(algorithm), Some(value), None) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let hex_ok = value
            .split(':')
            .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
        if !hex_ok {
            return Err(invalid());
        }
        Ok(Self {
            algorithm: algorithm.to_ascii_lowercase(),
            value: value.to_ascii_uppercase(),
        })
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.algorithm, self.value)
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    /// Media type.
    pub kind: MediaKind,
    /// Port (0: rejected, unless `a=bundle-only`).
    pub port: u16,
    /// Transport protocol, e.g. `UDP/TLS/RTP/SAVPF`.
    pub protocol: String,
    /// The formats of the `m=` line as written (payload type numbers for RTP).
    pub formats: Vec<String>,
    /// The `c=` line value (e.g. `IN IP4 0.0.0.0`), if any.
    pub connection: Option<String>,
    /// `a=mid`.
    pub mid: Option<String>,
    /// Direction attribute (sendrecv when absent).
    pub direction: Direction,
    /// `a=ice-ufrag` (overrides the session-level one).
    pub ice_ufrag: Option<String>,
    /// `a=ice-pwd` (overrides the session-level one).
    pub ice_pwd: Option<String>,
    /// `a=ice-options` tokens.
    pub ice_options: Vec<String>,
    /// Media-level `a=fingerprint` lines.
    pub fingerprints: Vec<Fingerprint>,
    /// Media-level `a=setup`.
    pub setup: Option<Setup>,
    /// `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// `a=rtcp-rsize`.
    pub rtcp_rsize: bool,
    /// The codecs, in `m=` line order, with their `rtpmap`, `fmtp` and `rtcp-fb`.
    pub codecs: Vec<Codec>,
    /// `a=extmap` lines.
    pub extmaps: Vec<Extmap>,
    /// `a=ssrc` lines, grouped by SSRC in order of first appearance.
    pub ssrcs: Vec<Ssrc>,
    /// `a=ssrc-group` lines.
    pub ssrc_groups: Vec<SsrcGroup>,
    /// `a=msid` lines.
    pub msids: Vec<Msid>,
    /// `a=rid` lines.
    pub rids: Vec<Rid>,
    /// `a=simulcast`.
    pub simulcast: Option<Simulcast>,
    /// `a=candidate` lines.
    pub candidates: Vec<Candidate>,
    /// `a=end-of-candidates`.
    pub end_of_candidates: bool,
    /// Attributes not modelled above, in order.
    pub other_attributes: Vec<Attribute>,
}

impl MediaSection {
    /// An empty section of this kind.
    pub fn new(kind: MediaKind, port: u16, protocol: impl Into<String>) -> Self {
        Self {
            kind,
            port,
            protocol: protocol.into(),
            formats: Vec::new(),
            connection: None,
            mid: None,
            direction: Direction::SendRecv,
            ice_ufrag: None,
            ice_pwd: None,
            ice_options: Vec::new(),
            fingerprints: Vec::new(),
            setup: None,
            rtcp_mux: false,
            rtcp_rsize: false,
            codecs: Vec::new(),
            extmaps: Vec::new(),
            ssrcs: Vec::new(),
            ssrc_groups: Vec::new(),
            msids: Vec::new(),
            rids: Vec::new(),
            simulcast: None,
            candidates: Vec::new(),
            end_of_candidates: false,
            other_attributes: Vec::new(),
        }
    }

    /// Whether an attribute not modelled by a field (e.g. `bundle-only`) is present.
    pub fn has_attribute(&self, name: &str) -> bool {
        self.other_attributes.iter().any(|a| a.name == name)
    }

    /// The codec with this payload type.
    pub fn codec(&self, payload_type: u8) -> Option<&Codec> {
        self.codecs.iter().find(|c| c.payload_type == payload_type)
    }

    /// The payload type of the RTX codec whose `apt` is `payload_type`.
    pub fn rtx_payload_type(&self, payload_type: u8) -> Option<u8> {
        self.codecs
            .iter()
            .find(|c| c.is_rtx() && c.apt() == Some(payload_type))
            .map(|c| c.payload_type)
    }

    /// The ICE ufrag in effect: this section's, else the session's.
    pub fn effective_ice_ufrag<'a>(&'a self, session: &'a SessionDescription) -> Option<&'a str> {
        self.ice_ufrag.as_deref().or(session.ice_ufrag.as_deref())
    }

    /// The ICE password in effect: this section's, else the session's.
    pub fn effective_ice_pwd<'a>(&'a self, session: &'a SessionDescription) -> Option<&'a str> {
        self.ice_pwd.as_deref().or(session.ice_pwd.as_deref())
    }

    /// The fingerprints in effect: this section's, else the session's.
    pub fn effective_fingerprints<'a>(
        &'a self,
        session: &'a SessionDescription,
    ) -> &'a [Fingerprint] {
        if self.fingerprints.is_empty() {
            &session.fingerprints
        } else {
            &self.fingerprints
        }
    }

    /// The setup role in effect: this section's, else the session's.
    pub fn effective_setup(&self, session: &SessionDescription) -> Option<Setup> {
        self.setup.or(session.setup)
    }
}

/// One codec: `a=rtpmap` with its `a=fmtp` and `a=rtcp-fb` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// Payload type (0..=127).
    pub payload_type: u8,
    /// Encoding name as written (`opus`, `VP8`, `H264`, `rtx`…).
    pub name: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count (audio), if written.
    pub channels: Option<u16>,
    /// `a=fmtp` parameters, if any.
    pub fmtp: Option<Fmtp>,
    /// `a=rtcp-fb` lines for this payload type (wildcard `*` lines included).
    pub rtcp_fb: Vec<RtcpFb>,
}

impl Codec {
    /// Whether this is an RTX (RFC 4588) codec.
    pub fn is_rtx(&self) -> bool {
        self.name.eq_ignore_ascii_case("rtx")
    }

    /// For RTX, the associated payload type (`apt=`).
    pub fn apt(&self) -> Option<u8> {
        self.fmtp_param("apt").and_then(|v| v.parse().ok())
    }

    /// An fmtp parameter's value.
    pub fn fmtp_param(&self, key: &str) -> Option<&str> {
        self.fmtp.as_ref().and_then(|f| f.get(key))
    }
}

/// `a=fmtp` parameters: `key=value` pairs separated by `;` (a bare token has no value).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fmtp {
    /// The parameters, in order.
    pub params: Vec<FmtpParam>,
}

/// One fmtp parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FmtpParam {
    /// Key (or the whole token when there is no `=`).
    pub key: String,
    /// Value after `=`.
    pub value: Option<String>,
}

impl Fmtp {
    /// Parses a parameter string (`minptime=10;useinbandfec=1`, `0-15`, `111/111`).
    pub fn parse(s: &str) -> Self {
        let params = s
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => FmtpParam {
                    key: k.trim().to_owned(),
                    value: Some(v.trim().to_owned()),
                },
                None => FmtpParam {
                    key: p.to_owned(),
                    value: None,
                },
            })
            .collect();
        Self { params }
    }

    /// Builds from `key=value` pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            params: pairs
                .into_iter()
                .map(|(k, v)| FmtpParam {
                    key: k.to_owned(),
                    value: Some(v.to_owned()),
                })
                .collect(),
        }
    }

    /// The value of `key` (keys compare case-insensitively, RFC 8866 §6.15 media types).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.key.eq_ignore_ascii_case(key))
            .and_then(|p| p.value.as_deref())
    }
}

impl fmt::Display for Fmtp {
    /// The parameter string, `;`-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.params.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            f.write_str(&p.key)?;
            if let Some(v) = &p.value {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}

/// One `a=rtcp-fb` feedback type: `nack`, `nack pli`, `ccm fir`, `goog-remb`, `transport-cc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpFb {
    /// Feedback type (`nack`, `ccm`, `goog-remb`, `transport-cc`…).
    pub kind: String,
    /// Subtype (`pli`, `fir`…), if any.
    pub param: Option<String>,
}

impl RtcpFb {
    /// Builds a feedback entry.
    pub fn new(kind: &str, param: Option<&str>) -> Self {
        Self {
            kind: kind.to_owned(),
            param: param.map(str::to_owned),
        }
    }
}

/// `a=extmap:<id>[/<direction>] <uri> [<attributes>]` (RFC 8285).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extmap {
    /// Id (1..=14 one-byte, up to 255 two-byte).
    pub id: u16,
    /// Optional direction.
    pub direction: Option<Direction>,
    /// Extension URI.
    pub uri: String,
    /// Extension attributes after the URI, if any.
    pub attributes: Option<String>,
}

/// The `a=ssrc:<ssrc> <attr>[:<value>]` lines of one SSRC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssrc {
    /// The SSRC.
    pub ssrc: u32,
    /// Its attributes (`cname`, `msid`, …), in order.
    pub attributes: Vec<Attribute>,
}

impl Ssrc {
    /// The value of an attribute (`cname`, `msid`).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.value.as_deref())
    }

    /// The `cname` attribute.
    pub fn cname(&self) -> Option<&str> {
        self.attribute("cname")
    }

    /// The `msid` attribute.
    pub fn msid(&self) -> Option<&str> {
        self.attribute("msid")
    }
}

/// `a=ssrc-group:<semantics> <ssrc>...` (`FID` for RTX, `SIM` for simulcast).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrcGroup {
    /// Semantics token.
    pub semantics: String,
    /// The SSRCs.
    pub ssrcs: Vec<u32>,
}

/// `a=msid:<stream id> [<track id>]` (RFC 8830).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msid {
    /// Stream id (`-` for none).
    pub stream_id: String,
    /// Track id.
    pub track_id: Option<String>,
}

impl fmt::Display for Msid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.stream_id)?;
        if let Some(t) = &self.track_id {
            write!(f, " {t}")?;
        }
        Ok(())
    }
}

/// Direction of an `a=rid` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RidDirection {
    /// `send`.
    Send,
    /// `recv`.
    Recv,
}

impl RidDirection {
    /// The token.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::Recv => "recv",
        }
    }
}

/// `a=rid:<id> <send|recv> [<params>]` (RFC 8851).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rid {
    /// The RTP stream id.
    pub id: String,
    /// Direction.
    pub direction: RidDirection,
    /// Restrictions (`pt=96,97`, `max-width=1280`…), as `key[=value]` in order.
    pub params: Vec<FmtpParam>,
}

/// One rid in an `a=simulcast` stream list; `paused` is the `~` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulcastRid {
    /// The rid.
    pub id: String,
    /// Whether it is paused (`~`).
    pub paused: bool,
}

/// `a=simulcast` (RFC 8853): per direction, a `;`-separated list of streams, each a
/// `,`-separated list of alternative rids.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Simulcast {
    /// Streams the SDP's author sends.
    pub send: Vec<Vec<SimulcastRid>>,
    /// Streams the SDP's author receives.
    pub recv: Vec<Vec<SimulcastRid>>,
}

/// ICE candidate type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateType {
    /// `host`.
    Host,
    /// `srflx`.
    Srflx,
    /// `prflx`.
    Prflx,
    /// `relay`.
    Relay,
}

impl CandidateType {
    /// The token.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Srflx => "srflx",
            Self::Prflx => "prflx",
            Self::Relay => "relay",
        }
    }

    /// Parses the token.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "host" => Some(Self::Host),
            "srflx" => Some(Self::Srflx),
            "prflx" => Some(Self::Prflx),
            "relay" => Some(Self::Relay),
            _ => None,
        }
    }
}

/// `a=candidate` (RFC 8839 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Foundation.
    pub foundation: String,
    /// Component id (1 = RTP).
    pub component: u16,
    /// Transport (`udp`, `tcp`), as written.
    pub transport: String,
    /// Priority.
    pub priority: u32,
    /// Connection address (IP or mDNS name).
    pub address: String,
    /// Port.
    pub port: u16,
    /// Candidate type.
    pub typ: CandidateType,
    /// Related address (`raddr`).
    pub raddr: Option<String>,
    /// Related port (`rport`).
    pub rport: Option<u16>,
    /// Further `name value` pairs (`tcptype`, `generation`, `network-id`…), in order.
    pub extensions: Vec<(String, String)>,
}

impl fmt::Display for Candidate {
    /// The attribute value (without `a=candidate:`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {} typ {}",
            self.foundation,
            self.component,
            self.transport,
            self.priority,
            self.address,
            self.port,
            self.typ.as_str()
        )?;
        if let Some(a) = &self.raddr {
            write!(f, " raddr {a}")?;
        }
        if let Some(p) = self.rport {
            write!(f, " rport {p}")?;
        }
        for (k, v) in &self.extensions {
            write!(f, " {k} {v}")?;
        }
        Ok(())
    }
}
