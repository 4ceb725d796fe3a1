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
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};

use relais_loadtest::media::{ReplayCapture, ReplayOptions};
use relais_loadtest::report::{read_json, render_table, write_html, write_json, RunReport};
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
    /// Video senders replay the video streams of this pcap/pcapng (a browser's publish to
    /// relais captured on `lo`: clear headers, sizes and timing; nothing is decrypted).
    #[arg(long)]
    replay: Option<PathBuf>,
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
                    replay: replay.clone(),
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
                    replay: replay.clone(),
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
