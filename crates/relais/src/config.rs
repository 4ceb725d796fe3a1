//! The node's configuration: one TOML schema, layered.
//!
//! Precedence, lowest first: the built-in default ([`DEFAULT_TOML`]) < a configuration file <
//! `RELAIS_*` environment variables < command-line flags. Every layer is a [`Layer`] of raw
//! values; [`load`] applies them in order and refuses a bad value with an error naming the key
//! and where it came from.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The built-in default configuration, compiled into the binary.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// Help text listing the environment variables and the precedence of the sources.
pub const ENV_HELP: &str = "\
Configuration sources, lowest precedence first: the built-in default < the file given with \
--config < RELAIS_* environment variables < command-line flags. Run with --print-config to see \
the effective configuration.

Environment variables (each overrides the key named in brackets; an empty value unsets an \
optional key):
  RELAIS_MEDIA_BIND                          [media.bind]
  RELAIS_MEDIA_ANNOUNCED_ADDRESSES           [media.announced_addresses] comma-separated IPs
  RELAIS_HTTP_PUBLIC_BIND                    [http.public_bind]
  RELAIS_HTTP_PRIVATE_BIND                   [http.private_bind]
  RELAIS_HTTP_PUBLIC_BASE_URL                [http.public_base_url]
  RELAIS_HTTP_WHIP_BEARER_TOKEN              [http.whip_bearer_token]
  RELAIS_HTTP_PRIVATE_API_TOKEN              [http.private_api_token]
  RELAIS_PRIVACY_LOG_CLIENT_ADDRESSES        [privacy.log_client_addresses] true or false
  RELAIS_PRIVACY_ANONYMISE_CLIENT_ADDRESSES  [privacy.anonymise_client_addresses] true or false
  RELAIS_LOG_LEVEL                           [log.level] error, warn, info, debug or trace
  RELAIS_LIMITS_CAPACITY_PPS                 [limits.capacity_pps] packets/s (in + out) at stress 1
  RELAIS_LIMITS_MAX_STRESS                   [limits.max_stress] /about/ready answers 503 at or above it
  RELAIS_LIMITS_DRAIN_TIMEOUT_S
      [limits.drain_timeout_s] seconds a drain waits for calls to end (0-3600)
  RELAIS_LIMITS_MAX_ENDPOINTS_PER_CONFERENCE
      [limits.max_endpoints_per_conference] endpoints one conference (stream) may have
  RELAIS_LIMITS_MAX_CONFERENCES
      [limits.max_conferences] conferences (streams) the node hosts
  RELAIS_LIMITS_MAX_SSRCS_PER_ENDPOINT
      [limits.max_ssrcs_per_endpoint] media sources a publisher may announce and send
  RELAIS_LIMITS_MAX_PACKET_RATE_PER_SOURCE
      [limits.max_packet_rate_per_source] RTP/RTCP packets/s accepted from one endpoint
  RELAIS_LIMITS_MAX_SESSIONS_PER_SECOND
      [limits.max_sessions_per_second] WHIP/WHEP sessions created per second, node-wide
  RELAIS_LIMITS_MAX_DTLS_HANDSHAKES_IN_FLIGHT
      [limits.max_dtls_handshakes_in_flight] endpoints whose DTLS handshake is not done yet

Prefer the environment (or a file readable only by the service) over flags for tokens: flags \
are visible to every local user in the process list.";

/// A configuration error. Its message names the key and the source of the bad value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A value that does not parse or is out of range.
    #[error("{at}: {message}")]
    Invalid {
        /// Where the value came from, e.g. `RELAIS_MEDIA_BIND` or `config file x.toml: media.bind`.
        at: String,
        /// What is wrong with it.
        message: String,
    },
    /// A configuration file that is not valid TOML or does not fit the schema (e.g. an unknown key).
    #[error("config file {path}: {message}")]
    File {
        /// The file's path as given.
        path: String,
        /// The parser's message (it names the offending key).
        message: String,
    },
    /// The private listener is reachable beyond loopback without a token.
    #[error("http.private_api_token is required when http.private_bind is not a loopback address")]
    PrivateTokenRequired,
}

/// One configuration key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// `media.bind`
    MediaBind,
    /// `media.announced_addresses`
    MediaAnnouncedAddresses,
    /// `http.public_bind`
    HttpPublicBind,
    /// `http.private_bind`
    HttpPrivateBind,
    /// `http.public_base_url`
    HttpPublicBaseUrl,
    /// `http.whip_bearer_token`
    HttpWhipBearerToken,
    /// `http.private_api_token`
    HttpPrivateApiToken,
    /// `privacy.log_client_addresses`
    PrivacyLogClientAddresses,
    /// `privacy.anonymise_client_addresses`
    PrivacyAnonymiseClientAddresses,
    /// `log.level`
    LogLevel,
    /// `limits.capacity_pps`
    LimitsCapacityPps,
    /// `limits.max_stress`
    LimitsMaxStress,
    /// `limits.drain_timeout_s`
    LimitsDrainTimeoutS,
    /// `limits.max_endpoints_per_conference`
    LimitsMaxEndpointsPerConference,
    /// `limits.max_conferences`
    LimitsMaxConferences,
    /// `limits.max_ssrcs_per_endpoint`
    LimitsMaxSsrcsPerEndpoint,
    /// `limits.max_packet_rate_per_source`
    LimitsMaxPacketRatePerSource,
    /// `limits.max_sessions_per_second`
    LimitsMaxSessionsPerSecond,
    /// `limits.max_dtls_handshakes_in_flight`
    LimitsMaxDtlsHandshakesInFlight,
}

impl Key {
    /// Every key.
    pub const ALL: [Key; 19] = [
        Key::MediaBind,
        Key::MediaAnnouncedAddresses,
        Key::HttpPublicBind,
        Key::HttpPrivateBind,
        Key::HttpPublicBaseUrl,
        Key::HttpWhipBearerToken,
        Key::HttpPrivateApiToken,
        Key::PrivacyLogClientAddresses,
        Key::PrivacyAnonymiseClientAddresses,
        Key::LogLevel,
        Key::LimitsCapacityPps,
        Key::LimitsMaxStress,
        Key::LimitsDrainTimeoutS,
        Key::LimitsMaxEndpointsPerConference,
        Key::LimitsMaxConferences,
        Key::LimitsMaxSsrcsPerEndpoint,
        Key::LimitsMaxPacketRatePerSource,
        Key::LimitsMaxSessionsPerSecond,
        Key::LimitsMaxDtlsHandshakesInFlight,
    ];

    /// The key's name in the file, `section.key`.
    pub fn dotted(self) -> &'static str {
        match self {
            Key::MediaBind => "media.bind",
            Key::MediaAnnouncedAddresses => "media.announced_addresses",
            Key::HttpPublicBind => "http.public_bind",
            Key::HttpPrivateBind => "http.private_bind",
            Key::HttpPublicBaseUrl => "http.public_base_url",
            Key::HttpWhipBearerToken => "http.whip_bearer_token",
            Key::HttpPrivateApiToken => "http.private_api_token",
            Key::PrivacyLogClientAddresses => "privacy.log_client_addresses",
            Key::PrivacyAnonymiseClientAddresses => "privacy.anonymise_client_addresses",
            Key::LogLevel => "log.level",
            Key::LimitsCapacityPps => "limits.capacity_pps",
            Key::LimitsMaxStress => "limits.max_stress",
            Key::LimitsDrainTimeoutS => "limits.drain_timeout_s",
            Key::LimitsMaxEndpointsPerConference => "limits.max_endpoints_per_conference",
            Key::LimitsMaxConferences => "limits.max_conferences",
            Key::LimitsMaxSsrcsPerEndpoint => "limits.max_ssrcs_per_endpoint",
            Key::LimitsMaxPacketRatePerSource => "limits.max_packet_rate_per_source",
            Key::LimitsMaxSessionsPerSecond => "limits.max_sessions_per_second",
            Key::LimitsMaxDtlsHandshakesInFlight => "limits.max_dtls_handshakes_in_flight",
        }
    }

    /// The environment variable overriding the key.
    pub fn env(self) -> &'static str {
        match self {
            Key::MediaBind => "RELAIS_MEDIA_BIND",
            Key::MediaAnnouncedAddresses => "RELAIS_MEDIA_ANNOUNCED_ADDRESSES",
            Key::HttpPublicBind => "RELAIS_HTTP_PUBLIC_BIND",
            Key::HttpPrivateBind => "RELAIS_HTTP_PRIVATE_BIND",
            Key::HttpPublicBaseUrl => "RELAIS_HTTP_PUBLIC_BASE_URL",
            Key::HttpWhipBearerToken => "RELAIS_HTTP_WHIP_BEARER_TOKEN",
            Key::HttpPrivateApiToken => "RELAIS_HTTP_PRIVATE_API_TOKEN",
            Key::PrivacyLogClientAddresses => "RELAIS_PRIVACY_LOG_CLIENT_ADDRESSES",
            Key::PrivacyAnonymiseClientAddresses => "RELAIS_PRIVACY_ANONYMISE_CLIENT_ADDRESSES",
            Key::LogLevel => "RELAIS_LOG_LEVEL",
            Key::LimitsCapacityPps => "RELAIS_LIMITS_CAPACITY_PPS",
            Key::LimitsMaxStress => "RELAIS_LIMITS_MAX_STRESS",
            Key::LimitsDrainTimeoutS => "RELAIS_LIMITS_DRAIN_TIMEOUT_S",
            Key::LimitsMaxEndpointsPerConference => "RELAIS_LIMITS_MAX_ENDPOINTS_PER_CONFERENCE",
            Key::LimitsMaxConferences => "RELAIS_LIMITS_MAX_CONFERENCES",
            Key::LimitsMaxSsrcsPerEndpoint => "RELAIS_LIMITS_MAX_SSRCS_PER_ENDPOINT",
            Key::LimitsMaxPacketRatePerSource => "RELAIS_LIMITS_MAX_PACKET_RATE_PER_SOURCE",
            Key::LimitsMaxSessionsPerSecond => "RELAIS_LIMITS_MAX_SESSIONS_PER_SECOND",
            Key::LimitsMaxDtlsHandshakesInFlight => "RELAIS_LIMITS_MAX_DTLS_HANDSHAKES_IN_FLIGHT",
        }
    }

    /// The command-line flag overriding the key.
    pub fn flag(self) -> &'static str {
        match self {
            Key::MediaBind => "--media-bind",
            Key::MediaAnnouncedAddresses => "--media-announced-addresses",
            Key::HttpPublicBind => "--http-public-bind",
            Key::HttpPrivateBind => "--http-private-bind",
            Key::HttpPublicBaseUrl => "--http-public-base-url",
            Key::HttpWhipBearerToken => "--http-whip-bearer-token",
            Key::HttpPrivateApiToken => "--http-private-api-token",
            Key::PrivacyLogClientAddresses => "--privacy-log-client-addresses",
            Key::PrivacyAnonymiseClientAddresses => "--privacy-anonymise-client-addresses",
            Key::LogLevel => "--log-level",
            Key::LimitsCapacityPps => "--limits-capacity-pps",
            Key::LimitsMaxStress => "--limits-max-stress",
            Key::LimitsDrainTimeoutS => "--limits-drain-timeout-s",
            Key::LimitsMaxEndpointsPerConference => "--limits-max-endpoints-per-conference",
            Key::LimitsMaxConferences => "--limits-max-conferences",
            Key::LimitsMaxSsrcsPerEndpoint => "--limits-max-ssrcs-per-endpoint",
            Key::LimitsMaxPacketRatePerSource => "--limits-max-packet-rate-per-source",
            Key::LimitsMaxSessionsPerSecond => "--limits-max-sessions-per-second",
            Key::LimitsMaxDtlsHandshakesInFlight => "--limits-max-dtls-handshakes-in-flight",
        }
    }
}

/// Where a layer's values come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// A configuration file, by its path as given.
    File(String),
    /// `RELAIS_*` environment variables.
    Env,
    /// Command-line flags.
    Cli,
}

impl Origin {
    fn name(&self, key: Key) -> String {
        match self {
            Origin::Default => format!("built-in default: {}", key.dotted()),
            Origin::File(path) => format!("config file {path}: {}", key.dotted()),
            Origin::Env => key.env().to_owned(),
            Origin::Cli => key.flag().to_owned(),
        }
    }
}

/// A raw, not yet validated value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Text (from the environment or a flag, or a string in the file).
    Text(String),
    /// A list from the file.
    List(Vec<String>),
    /// A boolean from the file.
    Bool(bool),
}

/// One source's raw values, in the order they are applied.
#[derive(Clone, Debug)]
pub struct Layer {
    origin: Origin,
    values: Vec<(Key, Value)>,
}

impl Layer {
    /// An empty layer from `origin`.
    pub fn new(origin: Origin) -> Self {
        Layer {
            origin,
            values: Vec::new(),
        }
    }

    /// Sets `key` to a text value (later values win).
    pub fn set(&mut self, key: Key, value: impl Into<String>) {
        self.values.push((key, Value::Text(value.into())));
    }

    /// The layer of the `RELAIS_*` variables that `lookup` finds.
    pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut layer = Layer::new(Origin::Env);
        for key in Key::ALL {
            if let Some(value) = lookup(key.env()) {
                layer.set(key, value);
            }
        }
        layer
    }

    /// The layer of a TOML file's contents; `path` names it in errors.
    pub fn from_toml(path: &str, text: &str) -> Result<Self, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let mut layer = Layer::new(Origin::File(path.to_owned()));
        let mut push = |key, value: Option<Value>| {
            if let Some(value) = value {
                layer.values.push((key, value));
            }
        };
        push(Key::MediaBind, file.media.bind.map(Value::Text));
        push(
            Key::MediaAnnouncedAddresses,
            file.media.announced_addresses.map(Value::List),
        );
        push(Key::HttpPublicBind, file.http.public_bind.map(Value::Text));
        push(
            Key::HttpPrivateBind,
            file.http.private_bind.map(Value::Text),
        );
        push(
            Key::HttpPublicBaseUrl,
            file.http.public_base_url.map(Value::Text),
        );
        push(
            Key::HttpWhipBearerToken,
            file.http.whip_bearer_token.map(Value::Text),
        );
        push(
            Key::HttpPrivateApiToken,
            file.http.private_api_token.map(Value::Text),
        );
        push(
            Key::PrivacyLogClientAddresses,
            file.privacy.log_client_addresses.map(Value::Bool),
        );
        push(
            Key::PrivacyAnonymiseClientAddresses,
            file.privacy.anonymise_client_addresses.map(Value::Bool),
        );
        push(Key::LogLevel, file.log.level.map(Value::Text));
        // Numbers are typed by the file schema; they travel as text like env and flag values.
        push(
            Key::LimitsCapacityPps,
            file.limits.capacity_pps.map(|n| Value::Text(n.to_string())),
        );
        push(
            Key::LimitsMaxStress,
            file.limits.max_stress.map(|n| Value::Text(n.to_string())),
        );
        push(
            Key::LimitsDrainTimeoutS,
            file.limits
                .drain_timeout_s
                .map(|n| Value::Text(n.to_string())),
        );
        push(
            Key::LimitsMaxEndpointsPerConference,
            file.limits
                .max_endpoints_per_conference
                .map(|n| Value::Text(n.to_string())),
        );
        push(
            Key::LimitsMaxConferences,
            file.limits
                .max_conferences
                .map(|n| Value::Text(n.to_string())),
        );
        push(
            Key::LimitsMaxSsrcsPerEndpoint,
            file.limits
                .max_ssrcs_per_endpoint
                .map(|n| Value::Text(n.to_string())),
        );
        push(
            Key::LimitsMaxPacketRatePerSource,
            file.limits
                .max_packet_rate_per_source
                .map(|n| Value::Text(n.to_string())),
        );
        push(
            Key::LimitsMaxSessionsPerSecond,
            file.limits
                .max_sessions_per_second
                .map(|n| Value::Text(n.to_string())),
        );
        push(
            Key::LimitsMaxDtlsHandshakesInFlight,
            file.limits
                .max_dtls_handshakes_in_flight
                .map(|n| Value::Text(n.to_string())),
        );
        Ok(layer)
    }
}

/// The file schema: every key optional, unknown keys refused.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    media: FileMedia,
    #[serde(default)]
    http: FileHttp,
    #[serde(default)]
    privacy: FilePrivacy,
    #[serde(default)]
    log: FileLog,
    #[serde(default)]
    limits: FileLimits,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMedia {
    #[serde(skip_serializing_if = "Option::is_none")]
    bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    announced_addresses: Option<Vec<String>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHttp {
    #[serde(skip_serializing_if = "Option::is_none")]
    public_bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    whip_bearer_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_api_token: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePrivacy {
    #[serde(skip_serializing_if = "Option::is_none")]
    log_client_addresses: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anonymise_client_addresses: Option<bool>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLog {
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity_pps: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_stress: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drain_timeout_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_endpoints_per_conference: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_conferences: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_ssrcs_per_endpoint: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_packet_rate_per_source: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_sessions_per_second: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_dtls_handshakes_in_flight: Option<u64>,
}

/// A secret (a bearer token). Its `Debug` form does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for comparing against what a client presents.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<set>")
    }
}

/// The log level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// The default.
    Info,
    /// Debugging detail.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The level's name as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "error" => Ok(LogLevel::Error),
            "warn" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            "trace" => Ok(LogLevel::Trace),
            _ => Err(format!(
                "'{s}' is not a log level (expected one of error, warn, info, debug, trace)"
            )),
        }
    }
}

/// `[media]`: the UDP media listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaConfig {
    /// The UDP socket address; `[::]` is every interface, IPv4 and IPv6 (dual-stack).
    pub bind: SocketAddr,
    /// Addresses written into ICE candidates; empty means [`Self::effective_announced_addresses`]'s rule.
    pub announced_addresses: Vec<IpAddr>,
}

impl MediaConfig {
    /// The addresses to announce in ICE candidates: the configured ones if any; otherwise the
    /// bind address, or `host_addresses` when bound to all interfaces (only the IPv4 ones when
    /// bound to `0.0.0.0`; all of them for the dual-stack `[::]`).
    pub fn effective_announced_addresses(&self, host_addresses: &[IpAddr]) -> Vec<IpAddr> {
        if !self.announced_addresses.is_empty() {
            return self.announced_addresses.clone();
        }
        match self.bind.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => host_addresses
                .iter()
                .copied()
                .filter(IpAddr::is_ipv4)
                .collect(),
            IpAddr::V6(ip) if ip.is_unspecified() => host_addresses.to_vec(),
            ip => vec![ip],
        }
    }
}

/// `[http]`: the public and private HTTP listeners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// The public listener (WHIP/WHEP, the demo page; later the bridge channel).
    pub public_bind: SocketAddr,
    /// The private listener (metrics, health, readiness, stats; later allocation and drain).
    pub private_bind: SocketAddr,
    /// The URL the node writes into the URLs it hands out (`http://` or `https://`).
    pub public_base_url: Option<String>,
    /// The bearer token WHIP publishers and WHEP viewers must present, if any.
    pub whip_bearer_token: Option<Secret>,
    /// The bearer token of the private listener; required beyond loopback.
    pub private_api_token: Option<Secret>,
}

/// `[privacy]`: what of clients' addresses may reach the logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivacyConfig {
    /// Whether client addresses appear in logs at all.
    pub log_client_addresses: bool,
    /// When they do: truncated (IPv4 /24, IPv6 /48) rather than in full.
    pub anonymise_client_addresses: bool,
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// The log level.
    pub level: LogLevel,
}

/// `[limits]`: the load the node reports as stress and refuses readiness above.
#[derive(Clone, Debug, PartialEq)]
pub struct LimitsConfig {
    /// Packets per second (received + sent on the media port) that count as stress 1.0
    /// (JVB's packet-rate mode threshold: 50 000).
    pub capacity_pps: u64,
    /// `/about/ready` answers 503 while stress is at or above this.
    pub max_stress: f64,
    /// Seconds a drain (SIGTERM, `POST /colibri/shutdown`) waits for the last endpoint to
    /// leave before closing the rest and exiting.
    pub drain_timeout_s: u64,
    /// Endpoints one conference (WHIP/WHEP stream) may have; more are refused (503).
    pub max_endpoints_per_conference: u64,
    /// Conferences (streams with endpoints) the node hosts; a new one beyond is refused (503).
    pub max_conferences: u64,
    /// Media sources (SSRCs without RTX, or simulcast rids) a publisher's offer may
    /// announce (more: 422); also the SRTP receiver's SSRC cap (more distinct SSRCs dropped).
    pub max_ssrcs_per_endpoint: u64,
    /// RTP/RTCP packets per second accepted from one endpoint (token bucket, burst one
    /// second's worth); excess dropped before SRTP.
    pub max_packet_rate_per_source: u64,
    /// WHIP/WHEP sessions created per second, node-wide (token bucket, burst one
    /// second's worth); more are refused (503).
    pub max_sessions_per_second: u64,
    /// Endpoints whose DTLS handshake is not complete; a new session beyond is
    /// refused (503).
    pub max_dtls_handshakes_in_flight: u64,
}

/// The node's effective configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `[media]`
    pub media: MediaConfig,
    /// `[http]`
    pub http: HttpConfig,
    /// `[privacy]`
    pub privacy: PrivacyConfig,
    /// `[log]`
    pub log: LogConfig,
    /// `[limits]`
    pub limits: LimitsConfig,
}

/// Loads the configuration: the built-in default, then `file` (its path and contents), then the
/// environment as `env` finds it, then `cli`; and validates the result.
pub fn load(
    file: Option<(&str, &str)>,
    env: &dyn Fn(&str) -> Option<String>,
    cli: &Layer,
) -> Result<Config, ConfigError> {
    let mut config = Config::builtin()?;
    if let Some((path, text)) = file {
        config.apply(&Layer::from_toml(path, text)?)?;
    }
    config.apply(&Layer::from_env(env))?;
    config.apply(cli)?;
    config.validate()?;
    Ok(config)
}

impl Config {
    /// The built-in default configuration ([`DEFAULT_TOML`]).
    pub fn builtin() -> Result<Config, ConfigError> {
        let unset = SocketAddr::from(([0, 0, 0, 0], 0));
        let mut config = Config {
            media: MediaConfig {
                bind: unset,
                announced_addresses: Vec::new(),
            },
            http: HttpConfig {
                public_bind: unset,
                private_bind: unset,
                public_base_url: None,
                whip_bearer_token: None,
                private_api_token: None,
            },
            privacy: PrivacyConfig {
                log_client_addresses: false,
                anonymise_client_addresses: true,
            },
            log: LogConfig {
                level: LogLevel::Info,
            },
            limits: LimitsConfig {
                capacity_pps: 50_000,
                max_stress: 0.9,
                drain_timeout_s: 300,
                max_endpoints_per_conference: 500,
                max_conferences: 1000,
                max_ssrcs_per_endpoint: 20,
                max_packet_rate_per_source: 5000,
                max_sessions_per_second: 50,
                max_dtls_handshakes_in_flight: 200,
            },
        };
        let mut layer = Layer::from_toml("(built-in)", DEFAULT_TOML)?;
        layer.origin = Origin::Default;
        config.apply(&layer)?;
        Ok(config)
    }

    /// Applies one layer's values over this configuration.
    pub fn apply(&mut self, layer: &Layer) -> Result<(), ConfigError> {
        for (key, value) in &layer.values {
            let at = || layer.origin.name(*key);
            let invalid = |message: String| ConfigError::Invalid { at: at(), message };
            match key {
                Key::MediaBind => self.media.bind = socket(value).map_err(invalid)?,
                Key::MediaAnnouncedAddresses => {
                    self.media.announced_addresses = ips(value).map_err(invalid)?
                }
                Key::HttpPublicBind => self.http.public_bind = socket(value).map_err(invalid)?,
                Key::HttpPrivateBind => self.http.private_bind = socket(value).map_err(invalid)?,
                Key::HttpPublicBaseUrl => {
                    self.http.public_base_url = base_url(value).map_err(invalid)?
                }
                Key::HttpWhipBearerToken => {
                    self.http.whip_bearer_token = text(value).map_err(invalid)?.map(Secret)
                }
                Key::HttpPrivateApiToken => {
                    self.http.private_api_token = text(value).map_err(invalid)?.map(Secret)
                }
                Key::PrivacyLogClientAddresses => {
                    self.privacy.log_client_addresses = boolean(value).map_err(invalid)?
                }
                Key::PrivacyAnonymiseClientAddresses => {
                    self.privacy.anonymise_client_addresses = boolean(value).map_err(invalid)?
                }
                Key::LogLevel => {
                    self.log.level = text(value)
                        .map_err(invalid)?
                        .unwrap_or_default()
                        .parse()
                        .map_err(invalid)?;
                }
                Key::LimitsCapacityPps => {
                    self.limits.capacity_pps = capacity(value).map_err(invalid)?
                }
                Key::LimitsMaxStress => self.limits.max_stress = stress(value).map_err(invalid)?,
                Key::LimitsDrainTimeoutS => {
                    self.limits.drain_timeout_s =
                        whole(value, 0, MAX_DRAIN_TIMEOUT_S, "300").map_err(invalid)?
                }
                Key::LimitsMaxEndpointsPerConference => {
                    self.limits.max_endpoints_per_conference =
                        whole(value, 1, u64::from(u32::MAX), "500").map_err(invalid)?
                }
                Key::LimitsMaxConferences => {
                    self.limits.max_conferences =
                        whole(value, 1, u64::from(u32::MAX), "1000").map_err(invalid)?
                }
                Key::LimitsMaxSsrcsPerEndpoint => {
                    self.limits.max_ssrcs_per_endpoint =
                        whole(value, 1, u64::from(u32::MAX), "20").map_err(invalid)?
                }
                Key::LimitsMaxPacketRatePerSource => {
                    self.limits.max_packet_rate_per_source =
                        whole(value, 1, u64::from(u32::MAX), "5000").map_err(invalid)?
                }
                Key::LimitsMaxSessionsPerSecond => {
                    self.limits.max_sessions_per_second =
                        whole(value, 1, u64::from(u32::MAX), "50").map_err(invalid)?
                }
                Key::LimitsMaxDtlsHandshakesInFlight => {
                    self.limits.max_dtls_handshakes_in_flight =
                        whole(value, 1, u64::from(u32::MAX), "200").map_err(invalid)?
                }
            }
        }
        Ok(())
    }

    /// Checks the rules that span keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let private = self.http.private_bind.ip().to_canonical();
        if !private.is_loopback() && self.http.private_api_token.is_none() {
            return Err(ConfigError::PrivateTokenRequired);
        }
        Ok(())
    }

    /// The configuration as TOML, in the file schema. Tokens are shown as `"<set>"` when
    /// `hide_tokens`.
    pub fn to_toml(&self, hide_tokens: bool) -> Result<String, toml::ser::Error> {
        let token = |t: &Option<Secret>| {
            t.as_ref().map(|s| {
                if hide_tokens {
                    "<set>".to_owned()
                } else {
                    s.0.clone()
                }
            })
        };
        let file = FileConfig {
            media: FileMedia {
                bind: Some(self.media.bind.to_string()),
                announced_addresses: Some(
                    self.media
                        .announced_addresses
                        .iter()
                        .map(IpAddr::to_string)
                        .collect(),
                ),
            },
            http: FileHttp {
                public_bind: Some(self.http.public_bind.to_string()),
                private_bind: Some(self.http.private_bind.to_string()),
                public_base_url: self.http.public_base_url.clone(),
                whip_bearer_token: token(&self.http.whip_bearer_token),
                private_api_token: token(&self.http.private_api_token),
            },
            privacy: FilePrivacy {
                log_client_addresses: Some(self.privacy.log_client_addresses),
                anonymise_client_addresses: Some(self.privacy.anonymise_client_addresses),
            },
            log: FileLog {
                level: Some(self.log.level.as_str().to_owned()),
            },
            limits: FileLimits {
                capacity_pps: Some(self.limits.capacity_pps),
                max_stress: Some(self.limits.max_stress),
                drain_timeout_s: Some(self.limits.drain_timeout_s),
                max_endpoints_per_conference: Some(self.limits.max_endpoints_per_conference),
                max_conferences: Some(self.limits.max_conferences),
                max_ssrcs_per_endpoint: Some(self.limits.max_ssrcs_per_endpoint),
                max_packet_rate_per_source: Some(self.limits.max_packet_rate_per_source),
                max_sessions_per_second: Some(self.limits.max_sessions_per_second),
                max_dtls_handshakes_in_flight: Some(self.limits.max_dtls_handshakes_in_flight),
            },
        };
        toml::to_string(&file)
    }

    /// A one-line summary for the start-up log: the node's own listeners, never a client address.
    pub fn summary(&self) -> String {
        format!(
            "media on udp {}, public http on {}, private http on {}{}, log level {}, \
             client addresses in logs: {}",
            self.media.bind,
            self.http.public_bind,
            self.http.private_bind,
            if self.http.private_api_token.is_some() {
                " (token required)"
            } else {
                ""
            },
            self.log.level.as_str(),
            match (
                self.privacy.log_client_addresses,
                self.privacy.anonymise_client_addresses
            ) {
                (false, _) => "no",
                (true, true) => "truncated",
                (true, false) => "in full",
            }
        )
    }
}

fn text(value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::Text(s) if s.trim().is_empty() => Ok(None),
        Value::Text(s) => Ok(Some(s.trim().to_owned())),
        Value::List(_) | Value::Bool(_) => Err("expected a string".to_owned()),
    }
}

fn socket(value: &Value) -> Result<SocketAddr, String> {
    let s = text(value)?.unwrap_or_default();
    s.parse()
        .map_err(|_| format!("'{s}' is not a socket address (expected e.g. [::]:10000)"))
}

fn ip(s: &str) -> Result<IpAddr, String> {
    s.trim().parse().map_err(|_| {
        format!(
            "'{}' is not an IP address (expected e.g. 203.0.113.7 or 2001:db8::7)",
            s.trim()
        )
    })
}

fn ips(value: &Value) -> Result<Vec<IpAddr>, String> {
    match value {
        Value::List(list) => list.iter().map(|s| ip(s)).collect(),
        Value::Text(s) => s
            .split(',')
            .filter(|part| !part.trim().is_empty())
            .map(ip)
            .collect(),
        Value::Bool(_) => Err("expected a list of IP addresses".to_owned()),
    }
}

fn base_url(value: &Value) -> Result<Option<String>, String> {
    let Some(url) = text(value)? else {
        return Ok(None);
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') && !url.contains(' ') => {
            Ok(Some(url))
        }
        _ => Err(format!(
            "'{url}' is not an http:// or https:// URL (expected e.g. https://relais.example.org)"
        )),
    }
}

fn capacity(value: &Value) -> Result<u64, String> {
    let s = text(value)?.unwrap_or_default();
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "'{s}' is not a packet rate (expected a whole number above 0, e.g. 50000)"
        )),
    }
}

/// The longest `limits.drain_timeout_s` (an hour).
pub const MAX_DRAIN_TIMEOUT_S: u64 = 3600;

fn whole(value: &Value, min: u64, max: u64, example: &str) -> Result<u64, String> {
    let s = text(value)?.unwrap_or_default();
    match s.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{s}' is not a whole number from {min} to {max} (e.g. {example})"
        )),
    }
}

fn stress(value: &Value) -> Result<f64, String> {
    let s = text(value)?.unwrap_or_default();
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "'{s}' is not a stress level (expected a number above 0, e.g. 0.9)"
        )),
    }
}

fn boolean(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Text(s) => match s.trim() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(format!(
                "'{other}' is not a boolean (expected true or false)"
            )),
        },
        Value::List(_) => Err("expected true or false".to_owned()),
    }
}

/// How [`redact`] shows an address.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Hidden,
    Truncated,
    Full,
}

/// A client address as the privacy settings allow it to be logged; see [`redact`].
#[derive(Clone, Copy, Debug)]
pub struct Redacted {
    addr: SocketAddr,
    mode: Mode,
}

/// A client address for logs: `[redacted]` unless `privacy.log_client_addresses`; then the
/// network only (IPv4 /24, IPv6 /48, no port) if `privacy.anonymise_client_addresses`, and the
/// full address and port otherwise.
pub fn redact(addr: SocketAddr, privacy: &PrivacyConfig) -> Redacted {
    let mode = match (
        privacy.log_client_addresses,
        privacy.anonymise_client_addresses,
    ) {
        (false, _) => Mode::Hidden,
        (true, true) => Mode::Truncated,
        (true, false) => Mode::Full,
    };
    Redacted { addr, mode }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mode {
            Mode::Hidden => f.write_str("[redacted]"),
            Mode::Full => write!(f, "{}", self.addr),
            Mode::Truncated => match self.addr.ip().to_canonical() {
                IpAddr::V4(v4) => {
                    let [a, b, c, _] = v4.octets();
                    write!(f, "{a}.{b}.{c}.0/24")
                }
                IpAddr::V6(v6) => {
                    let [s0, s1, s2, ..] = v6.segments();
                    write!(f, "{}/48", Ipv6Addr::new(s0, s1, s2, 0, 0, 0, 0, 0))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn cli() -> Layer {
        Layer::new(Origin::Cli)
    }

    fn err(file: Option<(&str, &str)>, env: &[(&str, &str)], cli_layer: &Layer) -> ConfigError {
        let map: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        load(file, &|k| map.get(k).cloned(), cli_layer).unwrap_err()
    }

    #[test]
    fn defaults_load_with_no_file() {
        let c = load(None, &no_env, &cli()).unwrap();
        assert_eq!(c.media.bind, "[::]:10000".parse::<SocketAddr>().unwrap());
        assert!(c.media.announced_addresses.is_empty());
        assert_eq!(
            c.http.public_bind,
            "127.0.0.1:9090".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            c.http.private_bind,
            "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(c.http.public_base_url, None);
        assert_eq!(c.http.whip_bearer_token, None);
        assert_eq!(c.http.private_api_token, None);
        assert!(!c.privacy.log_client_addresses);
        assert!(c.privacy.anonymise_client_addresses);
        assert_eq!(c.log.level, LogLevel::Info);
        assert_eq!(c.limits.capacity_pps, 50_000);
        assert_eq!(c.limits.max_stress, 0.9);
        assert_eq!(c.limits.drain_timeout_s, 300);
        assert_eq!(c.limits.max_endpoints_per_conference, 500);
        assert_eq!(c.limits.max_conferences, 1000);
        assert_eq!(c.limits.max_ssrcs_per_endpoint, 20);
        assert_eq!(c.limits.max_packet_rate_per_source, 5000);
        assert_eq!(c.limits.max_sessions_per_second, 50);
        assert_eq!(c.limits.max_dtls_handshakes_in_flight, 200);
    }

    #[test]
    fn abuse_limits_and_drain_timeout_from_every_source() {
        let file = "[limits]\ndrain_timeout_s = 60\nmax_conferences = 7\n\
                    max_ssrcs_per_endpoint = 4\n";
        let c = load(Some(("f.toml", file)), &no_env, &cli()).unwrap();
        assert_eq!(c.limits.drain_timeout_s, 60);
        assert_eq!(c.limits.max_conferences, 7);
        assert_eq!(c.limits.max_ssrcs_per_endpoint, 4);
        let env = |k: &str| match k {
            "RELAIS_LIMITS_DRAIN_TIMEOUT_S" => Some("0".to_owned()),
            "RELAIS_LIMITS_MAX_PACKET_RATE_PER_SOURCE" => Some("100".to_owned()),
            _ => None,
        };
        let mut flags = cli();
        flags.set(Key::LimitsMaxSessionsPerSecond, "3");
        flags.set(Key::LimitsMaxEndpointsPerConference, "2");
        flags.set(Key::LimitsMaxDtlsHandshakesInFlight, "9");
        let c = load(Some(("f.toml", file)), &env, &flags).unwrap();
        assert_eq!(c.limits.drain_timeout_s, 0);
        assert_eq!(c.limits.max_packet_rate_per_source, 100);
        assert_eq!(c.limits.max_sessions_per_second, 3);
        assert_eq!(c.limits.max_endpoints_per_conference, 2);
        assert_eq!(c.limits.max_dtls_handshakes_in_flight, 9);
        assert_eq!(c.limits.max_conferences, 7);

        let e = err(None, &[("RELAIS_LIMITS_DRAIN_TIMEOUT_S", "3601")], &cli());
        assert_eq!(
            e.to_string(),
            "RELAIS_LIMITS_DRAIN_TIMEOUT_S: '3601' is not a whole number from 0 to 3600 (e.g. 300)"
        );
        let mut flags = cli();
        flags.set(Key::LimitsMaxConferences, "0");
        let e = err(None, &[], &flags);
        assert!(e
            .to_string()
            .starts_with("--limits-max-conferences: '0' is not a whole number from 1 to"));
        let e = err(
            Some(("relais.toml", "[limits]\nmax_ssrcs_per_endpoint = -1\n")),
            &[],
            &cli(),
        );
        assert!(e.to_string().contains("max_ssrcs_per_endpoint"), "{e}");
    }

    #[test]
    fn limits_from_file_env_and_flags() {
        let file = "[limits]\ncapacity_pps = 20000\nmax_stress = 0.75\n";
        let c = load(Some(("f.toml", file)), &no_env, &cli()).unwrap();
        assert_eq!(c.limits.capacity_pps, 20_000);
        assert_eq!(c.limits.max_stress, 0.75);
        let env = |k: &str| match k {
            "RELAIS_LIMITS_CAPACITY_PPS" => Some("30000".to_owned()),
            "RELAIS_LIMITS_MAX_STRESS" => Some("1.2".to_owned()),
            _ => None,
        };
        let c = load(Some(("f.toml", file)), &env, &cli()).unwrap();
        assert_eq!(c.limits.capacity_pps, 30_000);
        assert_eq!(c.limits.max_stress, 1.2);
        let mut flags = cli();
        flags.set(Key::LimitsMaxStress, "0.5");
        let c = load(None, &env, &flags).unwrap();
        assert_eq!(c.limits.max_stress, 0.5);

        let e = err(None, &[("RELAIS_LIMITS_CAPACITY_PPS", "0")], &cli());
        assert_eq!(
            e.to_string(),
            "RELAIS_LIMITS_CAPACITY_PPS: '0' is not a packet rate \
             (expected a whole number above 0, e.g. 50000)"
        );
        let e = err(None, &[("RELAIS_LIMITS_MAX_STRESS", "-1")], &cli());
        assert!(e
            .to_string()
            .starts_with("RELAIS_LIMITS_MAX_STRESS: '-1' is not a stress level"));
        let e = err(
            Some(("relais.toml", "[limits]\ncapacity_pps = \"many\"\n")),
            &[],
            &cli(),
        );
        assert!(e.to_string().contains("capacity_pps"), "{e}");
    }

    #[test]
    fn default_toml_sets_every_required_key() {
        let layer = Layer::from_toml("default", DEFAULT_TOML).unwrap();
        let optional = [
            Key::HttpPublicBaseUrl,
            Key::HttpWhipBearerToken,
            Key::HttpPrivateApiToken,
        ];
        for key in Key::ALL {
            let set = layer.values.iter().any(|(k, _)| *k == key);
            assert_eq!(set, !optional.contains(&key), "{}", key.dotted());
        }
    }

    #[test]
    fn precedence_default_file_env_cli() {
        let file = "[media]\nbind = \"0.0.0.0:1000\"\n[log]\nlevel = \"debug\"\n\
                    [http]\npublic_bind = \"127.0.0.1:1\"\n";
        let c = load(Some(("f.toml", file)), &no_env, &cli()).unwrap();
        assert_eq!(c.media.bind, "0.0.0.0:1000".parse::<SocketAddr>().unwrap());
        assert_eq!(c.log.level, LogLevel::Debug);
        assert_eq!(
            c.http.private_bind,
            "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
        );

        let env = |k: &str| match k {
            "RELAIS_MEDIA_BIND" => Some("0.0.0.0:2000".to_owned()),
            "RELAIS_LOG_LEVEL" => Some("warn".to_owned()),
            _ => None,
        };
        let c = load(Some(("f.toml", file)), &env, &cli()).unwrap();
        assert_eq!(c.media.bind, "0.0.0.0:2000".parse::<SocketAddr>().unwrap());
        assert_eq!(c.log.level, LogLevel::Warn);
        assert_eq!(
            c.http.public_bind,
            "127.0.0.1:1".parse::<SocketAddr>().unwrap()
        );

        let mut flags = cli();
        flags.set(Key::MediaBind, "0.0.0.0:3000");
        let c = load(Some(("f.toml", file)), &env, &flags).unwrap();
        assert_eq!(c.media.bind, "0.0.0.0:3000".parse::<SocketAddr>().unwrap());
        assert_eq!(c.log.level, LogLevel::Warn);
    }

    #[test]
    fn env_lists_booleans_and_tokens() {
        let env = |k: &str| match k {
            "RELAIS_MEDIA_ANNOUNCED_ADDRESSES" => Some("203.0.113.7, 2001:db8::7".to_owned()),
            "RELAIS_PRIVACY_LOG_CLIENT_ADDRESSES" => Some("true".to_owned()),
            "RELAIS_PRIVACY_ANONYMISE_CLIENT_ADDRESSES" => Some("false".to_owned()),
            "RELAIS_HTTP_PRIVATE_API_TOKEN" => Some("s3cret".to_owned()),
            "RELAIS_HTTP_PRIVATE_BIND" => Some("0.0.0.0:8080".to_owned()),
            "RELAIS_HTTP_PUBLIC_BASE_URL" => Some("https://relais.example.org".to_owned()),
            _ => None,
        };
        let c = load(None, &env, &cli()).unwrap();
        assert_eq!(
            c.media.announced_addresses,
            vec![
                "203.0.113.7".parse::<IpAddr>().unwrap(),
                "2001:db8::7".parse().unwrap()
            ]
        );
        assert!(c.privacy.log_client_addresses);
        assert!(!c.privacy.anonymise_client_addresses);
        assert_eq!(
            c.http.private_api_token.as_ref().map(Secret::expose),
            Some("s3cret")
        );
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn bad_values_name_key_and_source() {
        let e = err(None, &[("RELAIS_MEDIA_BIND", "abc")], &cli());
        assert_eq!(
            e.to_string(),
            "RELAIS_MEDIA_BIND: 'abc' is not a socket address (expected e.g. [::]:10000)"
        );
        let e = err(
            Some(("relais.toml", "[media]\nbind = \"abc\"\n")),
            &[],
            &cli(),
        );
        assert!(e
            .to_string()
            .starts_with("config file relais.toml: media.bind: 'abc' is not a socket address"));
        let e = err(
            Some((
                "relais.toml",
                "[media]\nannounced_addresses = [\"1.2.3.4\", \"nope\"]\n",
            )),
            &[],
            &cli(),
        );
        assert!(e.to_string().starts_with(
            "config file relais.toml: media.announced_addresses: 'nope' is not an IP address"
        ));
        let e = err(
            None,
            &[("RELAIS_MEDIA_ANNOUNCED_ADDRESSES", "1.2.3.4,x")],
            &cli(),
        );
        assert!(e
            .to_string()
            .starts_with("RELAIS_MEDIA_ANNOUNCED_ADDRESSES: 'x' is not an IP address"));
        let e = err(None, &[("RELAIS_HTTP_PUBLIC_BASE_URL", "ftp://x")], &cli());
        assert!(e
            .to_string()
            .starts_with("RELAIS_HTTP_PUBLIC_BASE_URL: 'ftp://x' is not an http:// or https://"));
        let mut flags = cli();
        flags.set(Key::LogLevel, "verbose");
        let e = err(None, &[], &flags);
        assert_eq!(
            e.to_string(),
            "--log-level: 'verbose' is not a log level \
             (expected one of error, warn, info, debug, trace)"
        );
        let e = err(
            None,
            &[("RELAIS_PRIVACY_LOG_CLIENT_ADDRESSES", "maybe")],
            &cli(),
        );
        assert_eq!(
            e.to_string(),
            "RELAIS_PRIVACY_LOG_CLIENT_ADDRESSES: 'maybe' is not a boolean \
             (expected true or false)"
        );
        let e = err(
            Some(("relais.toml", "[privacy]\nlog_client_addresses = \"yes\"\n")),
            &[],
            &cli(),
        );
        let s = e.to_string();
        assert!(s.starts_with("config file relais.toml: "), "{s}");
        assert!(s.contains("log_client_addresses"), "{s}");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let e = err(
            Some(("relais.toml", "[media]\nbinds = \"x\"\n")),
            &[],
            &cli(),
        );
        let s = e.to_string();
        assert!(s.starts_with("config file relais.toml: "), "{s}");
        assert!(s.contains("unknown field `binds`"), "{s}");
        let e = err(Some(("relais.toml", "[medium]\n")), &[], &cli());
        assert!(e.to_string().contains("unknown field `medium`"), "{e}");
    }

    #[test]
    fn private_bind_beyond_loopback_needs_a_token() {
        let e = err(
            None,
            &[("RELAIS_HTTP_PRIVATE_BIND", "0.0.0.0:8080")],
            &cli(),
        );
        assert_eq!(
            e.to_string(),
            "http.private_api_token is required when http.private_bind is not a loopback address"
        );
        assert_eq!(e, ConfigError::PrivateTokenRequired);
        let ok = load(
            None,
            &|k| (k == "RELAIS_HTTP_PRIVATE_BIND").then(|| "[::1]:8080".to_owned()),
            &cli(),
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn print_config_round_trips() {
        let mut flags = cli();
        flags.set(Key::MediaAnnouncedAddresses, "203.0.113.7,2001:db8::1");
        flags.set(Key::HttpPublicBaseUrl, "https://relais.example.org/");
        flags.set(Key::PrivacyLogClientAddresses, "true");
        flags.set(Key::LogLevel, "trace");
        flags.set(Key::HttpWhipBearerToken, "abc");
        flags.set(Key::LimitsCapacityPps, "12345");
        flags.set(Key::LimitsMaxStress, "0.8");
        flags.set(Key::LimitsDrainTimeoutS, "42");
        flags.set(Key::LimitsMaxSsrcsPerEndpoint, "3");
        let c = load(None, &no_env, &flags).unwrap();
        let text = c.to_toml(false).unwrap();
        let back = load(Some(("printed", &text)), &no_env, &cli()).unwrap();
        assert_eq!(back, c);
        let hidden = c.to_toml(true).unwrap();
        assert!(hidden.contains("whip_bearer_token = \"<set>\""), "{hidden}");
        assert!(!hidden.contains("abc"));
    }

    #[test]
    fn env_help_lists_every_variable() {
        for key in Key::ALL {
            assert!(ENV_HELP.contains(key.env()), "{}", key.env());
        }
    }

    #[test]
    fn effective_announced_addresses_rule() {
        let host: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        let mut m = load(None, &no_env, &cli()).unwrap().media;
        assert_eq!(m.effective_announced_addresses(&host), host);
        m.bind = "0.0.0.0:10000".parse().unwrap();
        assert_eq!(
            m.effective_announced_addresses(&host),
            vec!["192.0.2.1".parse::<IpAddr>().unwrap()]
        );
        m.bind = "198.51.100.4:10000".parse().unwrap();
        assert_eq!(
            m.effective_announced_addresses(&host),
            vec!["198.51.100.4".parse::<IpAddr>().unwrap()]
        );
        m.announced_addresses = vec!["203.0.113.9".parse().unwrap()];
        assert_eq!(
            m.effective_announced_addresses(&host),
            vec!["203.0.113.9".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn redact_three_modes() {
        let v4: SocketAddr = "192.0.2.77:5000".parse().unwrap();
        let v6: SocketAddr = "[2001:db8:aa:bb::1]:5000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:192.0.2.77]:5000".parse().unwrap();
        let mut p = PrivacyConfig {
            log_client_addresses: false,
            anonymise_client_addresses: true,
        };
        assert_eq!(redact(v4, &p).to_string(), "[redacted]");
        assert_eq!(redact(v6, &p).to_string(), "[redacted]");
        p.log_client_addresses = true;
        assert_eq!(redact(v4, &p).to_string(), "192.0.2.0/24");
        assert_eq!(redact(mapped, &p).to_string(), "192.0.2.0/24");
        assert_eq!(redact(v6, &p).to_string(), "2001:db8:aa::/48");
        p.anonymise_client_addresses = false;
        assert_eq!(redact(v4, &p).to_string(), "192.0.2.77:5000");
        assert_eq!(redact(v6, &p).to_string(), "[2001:db8:aa:bb::1]:5000");
    }
}
