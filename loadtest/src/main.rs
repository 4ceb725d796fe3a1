//! The `relais-loadtest` command line: runs a scenario against a target and reports.
//!
//! ```text
//! relais-loadtest --scenario hostsharing --target relais --report DIR
//! ```
//!
//! Without `--colibri`, it starts a relais node of its own on loopback (the `relais` binary
//! next to this one, or `--node-bin`) and observes its CPU, RSS and metrics. Exit status 0
//! only when every pass criterion of the scenario holds.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};

use relais_loadtest::report::RunReport;
use relais_loadtest::run::node::LocalNode;
use relais_loadtest::run::{floor, run, RunOptions, TargetOptions};
use relais_loadtest::scenario::Scenario;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TargetKind {
    /// relais through Colibri2 and the bridge channel (as Jitsi Meet drives it).
    Relais,
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
    /// The running node's process id (with --colibri), to sample its CPU and RSS.
    #[arg(long)]
    node_pid: Option<u32>,
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
    /// The address the participants' sockets bind to.
    #[arg(long, default_value = "127.0.0.1")]
    local_ip: IpAddr,
    /// Allow targets outside loopback (only for networks you control).
    #[arg(long)]
    allow_remote: bool,
    /// No progress lines.
    #[arg(long, short)]
    quiet: bool,
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
    for address in [Some(cli.local_ip), cli.colibri.map(|a| a.ip())]
        .into_iter()
        .flatten()
    {
        if !address.is_loopback() && !cli.allow_remote {
            bail!(
                "refusing a non-loopback address without --allow-remote (load tests send \
                 traffic only where you are allowed to)"
            );
        }
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let log_dir = cli
        .report
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let mut report = local.block_on(&runtime, async {
        let (node, options) = match cli.colibri {
            Some(private_api) => (
                None,
                RunOptions {
                    scenario: scenario.clone(),
                    target: TargetOptions::RelaisColibri {
                        private_api,
                        token: cli.token.clone(),
                    },
                    local_ip: cli.local_ip,
                    node_pid: cli.node_pid,
                    node_metrics: Some(private_api),
                    progress: (!cli.quiet).then_some(Duration::from_secs(5)),
                },
            ),
            None => {
                let binary = match &cli.node_bin {
                    Some(b) => b.clone(),
                    None => std::env::current_exe()?
                        .parent()
                        .context("the binary's folder")?
                        .join("relais"),
                };
                let node = LocalNode::start(&binary, &log_dir, &[])
                    .await
                    .with_context(|| format!("starting {}", binary.display()))?;
                let options = RunOptions {
                    scenario: scenario.clone(),
                    target: TargetOptions::RelaisColibri {
                        private_api: node.private,
                        token: None,
                    },
                    local_ip: cli.local_ip,
                    node_pid: Some(node.pid()),
                    node_metrics: Some(node.private),
                    progress: (!cli.quiet).then_some(Duration::from_secs(5)),
                };
                (Some(node), options)
            }
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
    print_summary(&report);
    if let Some(dir) = &cli.report {
        let path = dir.join(format!("{}.json", slug(&report.target)));
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("relais-loadtest: report in {}", path.display());
    }
    if !report.passed {
        std::process::exit(1);
    }
    Ok(())
}

fn add_floor(cli: &Cli, report: &mut RunReport) -> anyhow::Result<()> {
    let Some(node) = &report.node else {
        bail!("--floor needs the node's CPU (start the node here or give --node-pid)");
    };
    // The same packet rate, of the average received packet size, fanned out as a receiver
    // of the scenario sees it (last-N streams plus audio).
    let size = if report.receive.packets > 0 {
        (report.receive.bytes / report.receive.packets) as u32 + 40
    } else {
        1200
    };
    let fanout = report.participants.saturating_sub(1).clamp(1, 25);
    let tool = cli.floor_tool.clone().unwrap_or_else(floor::default_tool_dir);
    let (command, us) = floor::measure(&tool, size, fanout, node.egress_pps as u64, 5)?;
    report.floor = Some(floor::totals(command, us, node.us_per_forwarded_packet));
    Ok(())
}

fn slug(target: &str) -> String {
    let mut out = String::new();
    for c in target.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

fn print_summary(report: &RunReport) {
    println!(
        "scenario {} on {}: {} participants ({} connected), measured {:.0} s",
        report.scenario,
        report.target,
        report.participants,
        report.load_generator.connected,
        report.duration_s
    );
    for c in &report.criteria {
        println!(
            "  {} {:<28} {} {:>10.3}  measured {:>10.3}",
            if c.passed { "PASS" } else { "FAIL" },
            c.name,
            c.bound,
            c.limit,
            c.measured
        );
    }
    let r = &report.receive;
    println!(
        "  received {} packets ({} retransmitted), loss {:.4} %, residual {:.4} %, latency p50 {:.2} ms p99 {:.2} ms",
        r.packets, r.retransmissions, r.loss_pct, r.residual_loss_pct, r.latency.p50, r.latency.p99
    );
    if let Some(n) = &report.node {
        println!(
            "  node: CPU {:.1} % ({:.1} s), RSS max {:.1} MiB, egress {:.0} pkt/s, {:.2} µs per forwarded packet ({} s per million)",
            n.cpu_pct, n.cpu_s, n.rss_max_mib, n.egress_pps, n.us_per_forwarded_packet, n.cpu_s_per_million_packets
        );
    }
    if let Some(f) = &report.floor {
        println!(
            "  floor: {:.2} µs per sent packet; node / floor = {:.2}",
            f.us_per_sent_packet, f.ratio
        );
    }
    println!(
        "  load generator: CPU {:.1} %, {} datagrams sent, {} dropped at its sockets",
        report.load_generator.cpu_pct,
        report.load_generator.datagrams_sent,
        report.load_generator.send_dropped
    );
    println!("{}", if report.passed { "PASS" } else { "FAIL" });
}
