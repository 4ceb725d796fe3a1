//! The `relais-loadtest` command line: runs a scenario against a target and reports.
//!
//! ```text
//! relais-loadtest --scenario hostsharing --target relais --report DIR
//! relais-loadtest --scenario small --target whip --report DIR
//! scripts/janus run -- relais-loadtest --scenario hostsharing --target janus --report DIR
//! ```
//!
//! Without `--colibri`, it starts a relais node of its own on loopback (the `relais` binary
//! next to this one, or `--node-bin`) and observes its CPU, RSS and metrics. With `--target
//! janus` it loads a running Janus (`--janus-url`, `--node-pid`; inside `scripts/janus run`
//! both come from the environment) and observes its CPU and RSS. With `--target whip` it
//! publishes and watches through WHIP/WHEP, on a node of its own or at `--whip-url`
//! (`--node-pid` to observe it). Exit status 0 only when
//! every pass criterion of the scenario holds (one that cannot be measured does not).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};

use relais_loadtest::impair::ImpairmentConfig;
use relais_loadtest::media::{ReplayCapture, ReplayOptions};
use relais_loadtest::report::{read_json, render_table, write_html, write_json, RunReport};
use relais_loadtest::run::node::LocalNode;
use relais_loadtest::run::{floor, run, ImpairmentDirection, RunOptions, TargetOptions};
use relais_loadtest::scenario::Scenario;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TargetKind {
    /// relais through Colibri2 and the bridge channel (as Jitsi Meet drives it).
    Relais,
    /// Janus 1.1's VideoRoom through its HTTP API (as janus.js drives it).
    Janus,
    /// relais (or any WHIP/WHEP server) through WHIP and WHEP (as OBS or a browser page
    /// drives it).
    Whip,
}

/// The environment variable a WHIP/WHEP bearer token may come from (safer than a flag, which
/// every local user sees in the process list).
const WHIP_TOKEN_ENV: &str = "RELAIS_LOADTEST_WHIP_TOKEN";

/// The session rate a node started for a WHIP/WHEP run allows: every receiver opens one WHEP
/// session per watched stream, far more than the default 50 a second during a ramp-up.
const LOCAL_NODE_SESSIONS_PER_SECOND: &str = "5000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Direction {
    /// Both ways.
    Both,
    /// Participants to node.
    Up,
    /// Node to participants.
    Down,
}

impl From<Direction> for ImpairmentDirection {
    fn from(d: Direction) -> Self {
        match d {
            Direction::Both => Self::Both,
            Direction::Up => Self::Up,
            Direction::Down => Self::Down,
        }
    }
}

/// Real-protocol load generator for relais: simulated WebRTC participants (ICE, DTLS,
/// SRTP) replay a meeting against a node and measure what they receive.
#[derive(Debug, Parser)]
#[command(name = "relais-loadtest", version)]
struct Cli {
    /// A shipped scenario (hostsharing, hostsharing-lossy, small, lecture, churn) or a
    /// scenario file.
    #[arg(long, default_value = "hostsharing")]
    scenario: String,
    /// The SFU to load.
    #[arg(long, value_enum, default_value = "relais")]
    target: TargetKind,
    /// A running relais node's private API (Colibri2, /metrics); without it, a node is
    /// started on loopback for the run.
    #[arg(long)]
    colibri: Option<SocketAddr>,
    /// The node's private API token, if it requires one.
    #[arg(long)]
    token: Option<String>,
    /// The running node's process id (with --colibri or --target janus; for Janus default
    /// $JANUS_PID), to sample its CPU and RSS.
    #[arg(long)]
    node_pid: Option<u32>,
    /// Janus's HTTP API, `http://IP:PORT/janus` (with --target janus; default $JANUS_URL, as
    /// `scripts/janus run` sets it).
    #[arg(long)]
    janus_url: Option<String>,
    /// The base URL of a WHIP/WHEP server's routes, `http://IP:PORT[/PATH]` (with --target
    /// whip; without it a relais node is started on loopback for the run).
    #[arg(long)]
    whip_url: Option<String>,
    /// The bearer token the WHIP/WHEP server requires (default $RELAIS_LOADTEST_WHIP_TOKEN;
    /// prefer the environment: flags are visible in the process list).
    #[arg(long)]
    whip_token: Option<String>,
    /// The relais binary to start (default: `relais` next to this binary).
    #[arg(long)]
    node_bin: Option<PathBuf>,
    /// Override the scenario's participant count (video senders are capped to it).
    #[arg(long)]
    participants: Option<u32>,
    /// Override the scenario's video sender count.
    #[arg(long)]
    video_senders: Option<u32>,
    /// Override the measured window, seconds.
    #[arg(long)]
    duration: Option<u32>,
    /// Override the ramp-up, seconds.
    #[arg(long)]
    ramp_up: Option<u32>,
    /// Write `<target>.json` and `index.html` here (with earlier runs' JSON in the folder
    /// shown side by side).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Also measure the machine's floor with ../shared/tools/udp-ceiling at the node's
    /// packet rate, and give the node's CPU per forwarded packet as a ratio to it.
    #[arg(long)]
    floor: bool,
    /// The udp-ceiling source folder.
    #[arg(long)]
    floor_tool: Option<PathBuf>,
    /// Video senders replay the video streams of this pcap/pcapng (a browser's publish to
    /// relais captured on `lo`: clear headers, sizes and timing; nothing is decrypted).
    #[arg(long)]
    replay: Option<PathBuf>,
    /// Impair every participant's traffic to and from the node, each direction, e.g.
    /// `loss=2%,delay=40ms,jitter=10ms` (also burst=P/R, reorder=, dup=, rate=1mbit,
    /// queue=50ms). Default: the scenario's `[network]` when it applies (hostsharing-lossy).
    #[arg(long)]
    impair: Option<String>,
    /// Which directions the impairment acts on: both, up (participants to node) or down
    /// (node to participants).
    #[arg(long, value_enum, default_value = "both")]
    impair_direction: Direction,
    /// Impair only the first N participants (by join order), e.g. to compare a sender on a
    /// narrow uplink with unimpaired ones in one run.
    #[arg(long, value_name = "N")]
    impair_participants: Option<u32>,
    /// Cameras ignore their own bandwidth estimate (no TWCC/REMB-driven layer changes, no
    /// probes): every camera sends what the node's sender constraints allow, a fixed
    /// offered load.
    #[arg(long)]
    fixed_layers: bool,
    /// The address the participants' sockets bind to (default 127.0.0.1; with --target janus
    /// $JANUS_CLIENT_IP, as `scripts/janus run` sets it).
    #[arg(long)]
    local_ip: Option<IpAddr>,
    /// Allow targets outside loopback (only for networks you control).
    #[arg(long)]
    allow_remote: bool,
    /// No progress lines.
    #[arg(long, short)]
    quiet: bool,
    /// Receivers do not decrypt the first packet of each video frame, so layer switches
    /// and heights go unmeasured: the leanest load generator (see the README's figures).
    #[arg(long)]
    no_layer_measure: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut scenario = Scenario::load(&cli.scenario)?;
    if let Some(n) = cli.participants {
        scenario.participants = n.max(1);
        scenario.video_senders = scenario.video_senders.min(scenario.participants);
        scenario.audio_senders = scenario.audio_senders.map(|a| a.min(scenario.participants));
    }
    if let Some(v) = cli.video_senders {
        scenario.video_senders = v.min(scenario.participants);
    }
    if let Some(d) = cli.duration {
        scenario.duration_s = d.max(1);
    }
    if let Some(r) = cli.ramp_up {
        scenario.ramp_up_s = r;
    }
    // Every run stops by itself: the scenario bounds it, and nothing runs past an hour.
    if scenario.duration_s + scenario.ramp_up_s > 3600 {
        bail!("a run is bounded to one hour (ramp-up + duration)");
    }
    let janus = match cli.target {
        TargetKind::Relais | TargetKind::Whip => None,
        TargetKind::Janus => Some(janus_target(&cli)?),
    };
    let whip = cli.target == TargetKind::Whip;
    if !whip && (cli.whip_url.is_some() || cli.whip_token.is_some()) {
        bail!("--whip-url and --whip-token are for --target whip");
    }
    if whip && cli.colibri.is_some() {
        bail!("--colibri is for --target relais");
    }
    let whip_url_ip = match &cli.whip_url {
        Some(url) => Some(
            relais_loadtest::target::whip::WhipConfig::from_url(url)
                .context("--whip-url")?
                .address
                .ip(),
        ),
        None => None,
    };
    let whip_token = cli
        .whip_token
        .clone()
        .or_else(|| std::env::var(WHIP_TOKEN_ENV).ok().filter(|t| !t.is_empty()));
    let local_ip = match (cli.local_ip, &janus) {
        (Some(ip), _) => ip,
        (None, None) => IpAddr::from([127, 0, 0, 1]),
        (None, Some(_)) => std::env::var("JANUS_CLIENT_IP")
            .ok()
            .and_then(|ip| ip.parse().ok())
            .context("--target janus needs --local-ip (or JANUS_CLIENT_IP from scripts/janus)")?,
    };
    // `scripts/janus run` confines the run to a namespace of its own with no route out, so
    // its addresses need no --allow-remote there.
    let confined = janus.is_some() && std::env::var_os("JANUS_NETNS").is_some();
    let janus_ip = janus.as_ref().map(|j| j.address);
    for address in [
        Some(local_ip),
        cli.colibri.map(|a| a.ip()),
        janus_ip,
        whip_url_ip,
    ]
    .into_iter()
    .flatten()
    {
        if !address.is_loopback() && !cli.allow_remote && !confined {
            bail!(
                "refusing a non-loopback address without --allow-remote (load tests send \
                 traffic only where you are allowed to)"
            );
        }
    }

    let (impairment, impairment_label) = match &cli.impair {
        Some(spec) => {
            let config = ImpairmentConfig::parse_flags(spec)
                .with_context(|| format!("--impair {spec:?}"))?;
            (Some(config), spec.clone())
        }
        None if scenario.network.apply => {
            let n = &scenario.network;
            (
                Some(ImpairmentConfig::from_network(n)),
                format!(
                    "loss={}%,delay={}ms,jitter={}ms",
                    n.lossy_loss_pct, n.lossy_delay_ms, n.lossy_jitter_ms
                ),
            )
        }
        None => (None, String::new()),
    };
    let replay = match &cli.replay {
        Some(path) => {
            let capture = ReplayCapture::read(path, &ReplayOptions::default())
                .with_context(|| format!("reading {}", path.display()))?;
            if !cli.quiet {
                eprintln!(
                    "relais-loadtest: replaying {} video stream(s) of {} ({:.1} s, looped)",
                    capture.video.len(),
                    path.display(),
                    capture.duration().as_secs_f64()
                );
            }
            Some(Arc::new(capture))
        }
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let log_dir = cli.report.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let mut report = local.block_on(&runtime, async {
        let progress = (!cli.quiet).then_some(Duration::from_secs(5));
        // Per target: the node this run started (kept alive until the end), how to reach
        // the target, and where its process and metrics are.
        let (node, target, node_pid, node_metrics) = match (cli.colibri, &janus) {
            (_, None) if whip => {
                let (node, url, pid, metrics) = match &cli.whip_url {
                    Some(url) => (None, url.clone(), cli.node_pid, None),
                    None => {
                        let node = start_local_node(
                            &cli,
                            &log_dir,
                            &[
                                "--limits-max-sessions-per-second".to_owned(),
                                LOCAL_NODE_SESSIONS_PER_SECOND.to_owned(),
                            ],
                        )
                        .await?;
                        let url = format!("http://{}", node.public);
                        let (pid, metrics) = (Some(node.pid()), Some(node.private));
                        (Some(node), url, pid, metrics)
                    }
                };
                let target = TargetOptions::Whip {
                    url,
                    token: whip_token.clone(),
                };
                (node, target, pid, metrics)
            }
            (_, Some(janus)) => (
                None,
                TargetOptions::Janus {
                    url: janus.url.clone(),
                },
                janus.pid,
                None,
            ),
            (Some(private_api), None) => (
                None,
                TargetOptions::RelaisColibri {
                    private_api,
                    token: cli.token.clone(),
                },
                cli.node_pid,
                Some(private_api),
            ),
            (None, None) => {
                let node = start_local_node(&cli, &log_dir, &[]).await?;
                let target = TargetOptions::RelaisColibri {
                    private_api: node.private,
                    token: None,
                };
                let (pid, metrics) = (Some(node.pid()), Some(node.private));
                (Some(node), target, pid, metrics)
            }
        };
        let options = RunOptions {
            scenario: scenario.clone(),
            target,
            local_ip,
            node_pid,
            node_metrics,
            progress,
            replay: replay.clone(),
            impairment,
            impairment_label: impairment_label.clone(),
            impairment_direction: cli.impair_direction.into(),
            impaired_participants: cli.impair_participants,
            sender_estimate: !cli.fixed_layers,
            measure_layers: !cli.no_layer_measure,
        };
        if !cli.quiet {
            eprintln!(
                "relais-loadtest: scenario {} ({} participants, {} with video), ramp-up {} s, measured {} s",
                scenario.name,
                scenario.participants,
                scenario.video_senders,
                scenario.ramp_up_s,
                scenario.duration_s
            );
        }
        let report = run(options).await?;
        drop(node);
        anyhow::Ok(report)
    })?;

    if cli.floor {
        add_floor(&cli, &mut report)?;
    }
    report.make_finite();
    print!("{}", render_table(std::slice::from_ref(&report)));
    println!("{}", if report.passed { "PASS" } else { "FAIL" });
    if let Some(dir) = &cli.report {
        let json =
            write_json(dir, &report).with_context(|| format!("writing into {}", dir.display()))?;
        // Earlier runs in the folder (e.g. the same scenario against Janus) are shown side by
        // side with this one.
        let mut runs = vec![report.clone()];
        for entry in std::fs::read_dir(dir)?.flatten() {
            let path = entry.path();
            if path != json && path.extension().is_some_and(|e| e == "json") {
                match read_json(&path) {
                    Ok(run) if run.scenario == report.scenario => runs.push(run),
                    Ok(_) => {}
                    Err(e) => eprintln!("relais-loadtest: skipping {}: {e}", path.display()),
                }
            }
        }
        let html = write_html(dir, &runs)?;
        eprintln!(
            "relais-loadtest: report in {} and {}",
            json.display(),
            html.display()
        );
    }
    if !report.passed {
        std::process::exit(1);
    }
    Ok(())
}

/// Starts the relais node of the run on loopback (`--node-bin`, or `relais` next to this
/// binary) with `extra` arguments.
async fn start_local_node(
    cli: &Cli,
    log_dir: &std::path::Path,
    extra: &[String],
) -> anyhow::Result<LocalNode> {
    let binary = match &cli.node_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the binary's folder")?
            .join("relais"),
    };
    LocalNode::start(&binary, log_dir, extra)
        .await
        .with_context(|| format!("starting {}", binary.display()))
}

/// Where Janus is and which process it is.
struct JanusTarget {
    url: String,
    /// The HTTP API's address (for the loopback check).
    address: IpAddr,
    pid: Option<u32>,
}

fn janus_target(cli: &Cli) -> anyhow::Result<JanusTarget> {
    if cli.colibri.is_some() || cli.token.is_some() || cli.node_bin.is_some() {
        bail!("--colibri, --token and --node-bin are for --target relais");
    }
    let url = match &cli.janus_url {
        Some(url) => url.clone(),
        None => std::env::var("JANUS_URL")
            .context("--target janus needs --janus-url (or JANUS_URL from scripts/janus)")?,
    };
    let config = relais_loadtest::target::janus::JanusConfig::from_url(&url, &mut rand::rng())
        .context("--janus-url")?;
    let pid = match cli.node_pid {
        Some(pid) => Some(pid),
        None => match std::env::var("JANUS_PID") {
            Ok(pid) => Some(pid.parse().context("JANUS_PID")?),
            Err(_) => None,
        },
    };
    if pid.is_none() {
        eprintln!(
            "relais-loadtest: no --node-pid (or JANUS_PID): Janus's CPU and RSS are not measured"
        );
    }
    Ok(JanusTarget {
        url,
        address: config.address.ip(),
        pid,
    })
}

fn add_floor(cli: &Cli, report: &mut RunReport) -> anyhow::Result<()> {
    let Some(node) = &report.node else {
        bail!("--floor needs the node's CPU (start the node here or give --node-pid)");
    };
    // The same packet rate, of the average received packet size, fanned out as a receiver
    // of the scenario sees it (last-N streams plus audio).
    let size = report
        .receive
        .bytes
        .checked_div(report.receive.packets)
        .map_or(1200, |payload| payload as u32 + 40);
    let fanout = report.participants.saturating_sub(1).clamp(1, 25);
    let tool = cli
        .floor_tool
        .clone()
        .unwrap_or_else(floor::default_tool_dir);
    let (command, us) = floor::measure(&tool, size, fanout, node.egress_pps as u64, 5)?;
    report.floor = Some(floor::totals(command, us, node.us_per_forwarded_packet));
    Ok(())
}
