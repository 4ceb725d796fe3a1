//! The relais node binary.
//!
//! Loads and validates its configuration (`--print-config` prints it; a bad value exits with
//! status 2), then serves: the media UDP port, WHIP/WHEP and the demo page on the public HTTP
//! listener, health and version on the private one. SIGTERM drains (a second SIGTERM stops at
//! once), Ctrl-C/SIGINT stops at once; both exit 0.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use relais::config::{self, Key, Layer, Origin};
use relais::node::Signal;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// relais: a media relay (SFU) for self-hosted video conferencing.
#[derive(Debug, Parser)]
#[command(name = "relais", version, after_help = config::ENV_HELP)]
struct Cli {
    /// Configuration file (TOML, the schema of --print-config). Without it the built-in
    /// defaults apply. Unknown keys are refused.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Print the effective configuration as TOML (tokens shown as "<set>") and exit.
    #[arg(long)]
    print_config: bool,

    /// [media.bind] UDP socket for media. Default [::]:10000: every interface, IPv4 and IPv6
    /// (dual-stack); 0.0.0.0:10000 for IPv4 only.
    #[arg(long, value_name = "ADDR")]
    media_bind: Option<String>,

    /// [media.announced_addresses] Comma-separated IPs written into ICE candidates. Default
    /// none: the bind address, or the host's addresses when bound to all interfaces.
    #[arg(long, value_name = "IP,...")]
    media_announced_addresses: Option<String>,

    /// [http.public_bind] Public HTTP listener (WHIP/WHEP, demo page). Default
    /// 127.0.0.1:9090; put it behind a TLS reverse proxy.
    #[arg(long, value_name = "ADDR")]
    http_public_bind: Option<String>,

    /// [http.private_bind] Private HTTP listener (metrics, health, stats). Default
    /// 127.0.0.1:8080; beyond loopback it requires --http-private-api-token.
    #[arg(long, value_name = "ADDR")]
    http_private_bind: Option<String>,

    /// [http.public_base_url] http:// or https:// URL the node writes into the URLs it hands
    /// out (e.g. https://relais.example.org). Empty unsets.
    #[arg(long, value_name = "URL")]
    http_public_base_url: Option<String>,

    /// [http.whip_bearer_token] Bearer token WHIP publishers and WHEP viewers must present. Prefer the
    /// environment variable: flags are visible in the process list.
    #[arg(long, value_name = "TOKEN")]
    http_whip_bearer_token: Option<String>,

    /// [http.private_api_token] Bearer token of the private listener. Prefer the environment
    /// variable: flags are visible in the process list.
    #[arg(long, value_name = "TOKEN")]
    http_private_api_token: Option<String>,

    /// [privacy.log_client_addresses] Whether client addresses appear in logs at all. Default
    /// false.
    #[arg(long, value_name = "BOOL")]
    privacy_log_client_addresses: Option<String>,

    /// [privacy.anonymise_client_addresses] When client addresses are logged, truncate them
    /// (IPv4 /24, IPv6 /48). Default true.
    #[arg(long, value_name = "BOOL")]
    privacy_anonymise_client_addresses: Option<String>,

    /// [log.level] One of error, warn, info, debug, trace. Default info.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,

    /// [limits.capacity_pps] Packets per second (in + out on the media port) that count as
    /// stress 1.0. Default 50000.
    #[arg(long, value_name = "PPS")]
    limits_capacity_pps: Option<String>,

    /// [limits.max_stress] /about/ready answers 503 at or above this stress. Default 0.9.
    #[arg(long, value_name = "STRESS")]
    limits_max_stress: Option<String>,

    /// [limits.drain_timeout_s] Seconds a drain (SIGTERM, POST /colibri/shutdown) waits
    /// for calls to end before closing them and exiting 0; 0 to 3600. Default 300.
    #[arg(long, value_name = "SECONDS")]
    limits_drain_timeout_s: Option<String>,

    /// [limits.max_endpoints_per_conference] Endpoints one conference (stream) may have.
    /// Default 500.
    #[arg(long, value_name = "N")]
    limits_max_endpoints_per_conference: Option<String>,

    /// [limits.max_conferences] Conferences (streams) the node hosts at once. Default 1000.
    #[arg(long, value_name = "N")]
    limits_max_conferences: Option<String>,

    /// [limits.max_ssrcs_per_endpoint] Media sources a publisher may announce (offer)
    /// and SSRCs the SRTP receiver accepts per endpoint. Default 20.
    #[arg(long, value_name = "N")]
    limits_max_ssrcs_per_endpoint: Option<String>,

    /// [limits.max_packet_rate_per_source] RTP/RTCP packets per second accepted from one
    /// endpoint. Default 5000.
    #[arg(long, value_name = "PPS")]
    limits_max_packet_rate_per_source: Option<String>,

    /// [limits.max_sessions_per_second] WHIP/WHEP sessions created per second, node-wide.
    /// Default 50.
    #[arg(long, value_name = "N")]
    limits_max_sessions_per_second: Option<String>,

    /// [limits.max_dtls_handshakes_in_flight] Endpoints with a DTLS handshake not yet
    /// complete. Default 200.
    #[arg(long, value_name = "N")]
    limits_max_dtls_handshakes_in_flight: Option<String>,
}

impl Cli {
    fn layer(&self) -> Layer {
        let mut layer = Layer::new(Origin::Cli);
        let flags = [
            (Key::MediaBind, &self.media_bind),
            (
                Key::MediaAnnouncedAddresses,
                &self.media_announced_addresses,
            ),
            (Key::HttpPublicBind, &self.http_public_bind),
            (Key::HttpPrivateBind, &self.http_private_bind),
            (Key::HttpPublicBaseUrl, &self.http_public_base_url),
            (Key::HttpWhipBearerToken, &self.http_whip_bearer_token),
            (Key::HttpPrivateApiToken, &self.http_private_api_token),
            (
                Key::PrivacyLogClientAddresses,
                &self.privacy_log_client_addresses,
            ),
            (
                Key::PrivacyAnonymiseClientAddresses,
                &self.privacy_anonymise_client_addresses,
            ),
            (Key::LogLevel, &self.log_level),
            (Key::LimitsCapacityPps, &self.limits_capacity_pps),
            (Key::LimitsMaxStress, &self.limits_max_stress),
            (Key::LimitsDrainTimeoutS, &self.limits_drain_timeout_s),
            (
                Key::LimitsMaxEndpointsPerConference,
                &self.limits_max_endpoints_per_conference,
            ),
            (Key::LimitsMaxConferences, &self.limits_max_conferences),
            (
                Key::LimitsMaxSsrcsPerEndpoint,
                &self.limits_max_ssrcs_per_endpoint,
            ),
            (
                Key::LimitsMaxPacketRatePerSource,
                &self.limits_max_packet_rate_per_source,
            ),
            (
                Key::LimitsMaxSessionsPerSecond,
                &self.limits_max_sessions_per_second,
            ),
            (
                Key::LimitsMaxDtlsHandshakesInFlight,
                &self.limits_max_dtls_handshakes_in_flight,
            ),
        ];
        for (key, value) in flags {
            if let Some(value) = value {
                layer.set(key, value.clone());
            }
        }
        layer
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let file = match &cli.config {
        Some(path) => {
            let label = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("config file {label}: cannot be read"))?;
            Some((label, text))
        }
        None => None,
    };
    let config = config::load(
        file.as_ref().map(|(l, t)| (l.as_str(), t.as_str())),
        &|name| std::env::var(name).ok(),
        &cli.layer(),
    )?;
    if cli.print_config {
        print!("{}", config.to_toml(true)?);
        return Ok(());
    }
    eprintln!("relais: {}", config.summary());
    relais::logging::init(config.log.level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(forward_signals(tx));
        relais::node::run(config, rx).await
    })?;
    Ok(())
}

/// Forwards SIGTERM (drain; a second one stops) and Ctrl-C/SIGINT (stop at once) to the node.
async fn forward_signals(tx: tokio::sync::mpsc::Sender<Signal>) {
    #[cfg(unix)]
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        let ctrl_c = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let term = async {
            match terminate.as_mut() {
                Some(signal) => {
                    if signal.recv().await.is_none() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        let signal = tokio::select! {
            () = ctrl_c => Signal::Interrupt,
            () = term => Signal::Terminate,
        };
        if tx.send(signal).await.is_err() {
            return;
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relais: {e:#}");
            ExitCode::from(2)
        }
    }
}
