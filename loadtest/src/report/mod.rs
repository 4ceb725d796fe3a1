//! What a run found, in the form it is kept and shown: the [`RunReport`] (written as
//! `DIR/<target>.json`), the final table on the terminal, and the HTML report
//! (`DIR/index.html`) that shows one or more runs side by side.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One pass criterion and how the run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriterionOutcome {
    /// The `[pass]` key (e.g. `max_loss_pct`).
    pub name: String,
    /// `"at most"` or `"at least"`.
    pub bound: String,
    /// The scenario's limit.
    pub limit: f64,
    /// What was measured; NaN (`null` in the JSON) when the run could not measure it, which
    /// the report shows as "not measured" (and which never passes).
    #[serde(deserialize_with = "number_or_null")]
    pub measured: f64,
    /// Whether the limit holds.
    pub passed: bool,
}

impl CriterionOutcome {
    /// Whether the run measured this criterion (false: "not measured").
    pub fn is_measured(&self) -> bool {
        self.measured.is_finite()
    }
}

/// A number, or `null` (how serde_json writes NaN) as NaN.
fn number_or_null<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyMs {
    /// Samples.
    pub samples: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// What the simulated receivers got, summed over all of them (after ramp-up).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReceiveTotals {
    /// RTP packets received.
    pub packets: u64,
    /// Of which retransmissions.
    pub retransmissions: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Packets expected from the sequence numbers.
    pub expected: u64,
    /// Gaps (sequence numbers never received on first transmission).
    pub lost: u64,
    /// Of those, filled later (RTX or late).
    pub recovered: u64,
    /// Loss over all streams, percent.
    pub loss_pct: f64,
    /// Loss left after recovery, percent.
    pub residual_loss_pct: f64,
    /// Worst receiver's loss, percent.
    pub worst_receiver_loss_pct: f64,
    /// Added latency (send to arrival, minus configured impairment delay).
    pub latency: LatencyMs,
    /// Receivers that got every video stream their view asks for, percent.
    pub streams_received_pct: f64,
    /// Longest gap between complete frames of any allocated video stream, ms.
    pub longest_freeze_ms: f64,
    /// Video frames completed.
    pub frames: u64,
    /// Changes of keyframe height (simulcast layer switches) over every received video
    /// stream.
    #[serde(default)]
    pub layer_switches: u64,
    /// Time video streams showed each keyframe height after ramp-up, summed over streams
    /// and receivers, ms (keys: heights in pixels).
    #[serde(default)]
    pub time_at_height_ms: BTreeMap<u32, f64>,
    /// Share of the time with a known view that video streams showed the height the view
    /// asks for (on stage, thumbnails), percent; `None` when not measured.
    #[serde(default)]
    pub at_view_height_pct: Option<f64>,
    /// View changes answered by a keyframe at the asked height (layer switches the view
    /// asked for), all receivers.
    #[serde(default)]
    pub view_switches: u64,
    /// Mean delay from a view change to the first keyframe at the asked height, ms.
    #[serde(default)]
    pub view_switch_ms_mean: Option<f64>,
    /// Longest such delay, ms.
    #[serde(default)]
    pub view_switch_ms_max: Option<f64>,
    /// Receivers whose view heights were measured.
    #[serde(default)]
    pub receivers_with_view_heights: u32,
    /// Of those, receivers whose streams showed the asked heights at least
    /// [`VIEW_HEIGHT_OK_PCT`](crate::measure::VIEW_HEIGHT_OK_PCT) of the time.
    #[serde(default)]
    pub receivers_at_view_heights: u32,
}

/// What the load generator itself sent and used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadGeneratorTotals {
    /// Participants that joined.
    pub joined: u32,
    /// Participants whose ICE and DTLS came up.
    pub connected: u32,
    /// Joins that failed (signalling, ICE or DTLS).
    pub failed: u32,
    /// Datagrams sent (media, RTCP, STUN, DTLS).
    pub datagrams_sent: u64,
    /// Datagrams received.
    pub datagrams_received: u64,
    /// Datagrams the sockets refused (dropped by the load generator itself).
    pub send_dropped: u64,
    /// Received packets whose SRTP tag was checked, and how many failed.
    pub srtp_verified: u64,
    /// Sampled packets whose SRTP tag did not verify.
    pub srtp_verify_failed: u64,
    /// Of the verified packets, those decrypted because they start a video frame (read for
    /// keyframes and their resolution).
    #[serde(default)]
    pub frame_starts_decrypted: u64,
    /// CPU seconds the load generator used during the measured window.
    pub cpu_s: f64,
    /// Its share of one core over the measured window, percent.
    pub cpu_pct: f64,
}

/// One observation of the node over time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct NodePoint {
    /// Seconds since the run started.
    pub at_s: f64,
    /// CPU use over the last interval, percent of one core.
    pub cpu_pct: f64,
    /// Resident set size, MiB.
    pub rss_mib: f64,
    /// Packets the node sent per second over the last interval (its metrics, or what the
    /// receivers got when it has none).
    pub egress_pps: f64,
}

/// The node under test over the measured window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeTotals {
    /// CPU seconds used in the window.
    pub cpu_s: f64,
    /// Average CPU, percent of one core.
    pub cpu_pct: f64,
    /// Largest RSS seen, MiB.
    pub rss_max_mib: f64,
    /// RSS at the end, MiB.
    pub rss_end_mib: f64,
    /// Packets it forwarded (sent) in the window.
    pub forwarded_packets: u64,
    /// Forwarded packets per second.
    pub egress_pps: f64,
    /// CPU µs per forwarded packet.
    pub us_per_forwarded_packet: f64,
    /// CPU seconds per million forwarded packets.
    pub cpu_s_per_million_packets: f64,
    /// Where the forwarded count came from: `"metrics"` or `"receivers"`.
    pub forwarded_source: String,
}

/// The machine's floor, measured in the same run with `udp-ceiling`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FloorTotals {
    /// The command that measured it.
    pub command: String,
    /// The floor's CPU µs per sent packet.
    pub us_per_sent_packet: f64,
    /// The node's µs per forwarded packet divided by the floor's.
    pub ratio: f64,
}

/// Receive-side figures over time, one point per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RatePoint {
    /// Seconds since the run started.
    pub at_s: f64,
    /// Packets received per second, all receivers.
    pub packets_per_s: f64,
    /// Bits received per second, all receivers.
    pub bits_per_s: f64,
    /// Sequence gaps seen in this second, percent of packets.
    pub loss_pct: f64,
    /// Latency median in this second, ms.
    pub latency_p50_ms: f64,
    /// Latency 99th percentile in this second, ms.
    pub latency_p99_ms: f64,
    /// Participants in the meeting.
    pub participants: u32,
}

/// How one camera followed its sender's own bandwidth estimate (TWCC feedback and REMB from
/// the node), as a browser's simulcast encoder does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SenderLayers {
    /// The sender's place in the scenario (0 joins first).
    pub sender: u32,
    /// Simulcast layers it has.
    pub layers: u32,
    /// Layers it sent, averaged over the time it sent (sender constraints included).
    pub mean_active_layers: f64,
    /// Layers it sent at the end of the run.
    pub active_layers_at_end: u32,
    /// Times the estimate took layers off what the camera sent.
    pub estimate_layer_drops: u64,
    /// Times the estimate put layers back on.
    pub estimate_layer_raises: u64,
    /// Estimate updates read (transport-cc feedback and REMB).
    pub estimate_updates: u64,
    /// Smallest effective estimate (min of TWCC and REMB), kbit/s; 0 without any.
    pub estimate_min_kbps: u64,
    /// Median of the estimate updates, kbit/s.
    pub estimate_median_kbps: u64,
    /// Largest, kbit/s.
    pub estimate_max_kbps: u64,
}

/// Everything one run found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// `relais-loadtest` version.
    pub tool_version: String,
    /// The scenario's name.
    pub scenario: String,
    /// The target, e.g. `relais (Colibri2)` or `janus (videoroom)`.
    pub target: String,
    /// Unix time the run started.
    pub started_unix_s: u64,
    /// Participants in the scenario (after overrides).
    pub participants: u32,
    /// Of those, video senders.
    pub video_senders: u32,
    /// Ramp-up, seconds.
    pub ramp_up_s: f64,
    /// Measured window after ramp-up, seconds.
    pub duration_s: f64,
    /// The impairment applied, in flag syntax (empty: none).
    pub impairment: String,
    /// The pass criteria.
    pub criteria: Vec<CriterionOutcome>,
    /// Whether every criterion holds.
    pub passed: bool,
    /// What the receivers got.
    pub receive: ReceiveTotals,
    /// What the load generator did.
    pub load_generator: LoadGeneratorTotals,
    /// The node, when its process could be observed.
    pub node: Option<NodeTotals>,
    /// The floor, with `--floor`.
    pub floor: Option<FloorTotals>,
    /// The node over time.
    pub node_series: Vec<NodePoint>,
    /// The receivers over time.
    pub receive_series: Vec<RatePoint>,
    /// Each camera present at the end and how it followed its sender's estimate (absent
    /// from reports of earlier versions).
    #[serde(default)]
    pub senders: Vec<SenderLayers>,
}

pub mod html;
pub mod plot;
pub mod table;

pub use html::{read_json, render_html, write_html, write_json, ReadError};
pub use table::render_table;

impl RunReport {
    /// Replaces figures that are not finite (a ratio over nothing) by 0, so the JSON reads
    /// back (serde_json writes NaN as `null`). A criterion's measurement is the exception:
    /// NaN there means "not measured", kept as `null` (which reads back as NaN).
    pub fn make_finite(&mut self) {
        fn fix(x: &mut f64) {
            if !x.is_finite() {
                *x = 0.0;
            }
        }
        for c in &mut self.criteria {
            fix(&mut c.limit);
            if c.measured.is_infinite() {
                c.measured = f64::NAN;
            }
        }
        let r = &mut self.receive;
        for x in [
            &mut r.loss_pct,
            &mut r.residual_loss_pct,
            &mut r.worst_receiver_loss_pct,
            &mut r.streams_received_pct,
            &mut r.longest_freeze_ms,
            &mut r.latency.p50,
            &mut r.latency.p90,
            &mut r.latency.p99,
            &mut r.latency.max,
        ] {
            fix(x);
        }
        fix(&mut self.load_generator.cpu_s);
        fix(&mut self.load_generator.cpu_pct);
        if let Some(n) = &mut self.node {
            for x in [
                &mut n.cpu_s,
                &mut n.cpu_pct,
                &mut n.rss_max_mib,
                &mut n.rss_end_mib,
                &mut n.egress_pps,
                &mut n.us_per_forwarded_packet,
                &mut n.cpu_s_per_million_packets,
            ] {
                fix(x);
            }
        }
        if let Some(f) = &mut self.floor {
            fix(&mut f.us_per_sent_packet);
            fix(&mut f.ratio);
        }
        for p in &mut self.node_series {
            for x in [
                &mut p.at_s,
                &mut p.cpu_pct,
                &mut p.rss_mib,
                &mut p.egress_pps,
            ] {
                fix(x);
            }
        }
        for sender in &mut self.senders {
            fix(&mut sender.mean_active_layers);
        }
        for p in &mut self.receive_series {
            for x in [
                &mut p.at_s,
                &mut p.packets_per_s,
                &mut p.bits_per_s,
                &mut p.loss_pct,
                &mut p.latency_p50_ms,
                &mut p.latency_p99_ms,
            ] {
                fix(x);
            }
        }
    }
}
