//! The report output: the terminal table, the HTML report and the JSON files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;

use relais_loadtest::report::plot::run_colour;
use relais_loadtest::report::{
    read_json, render_html, render_table, write_html, write_json, CriterionOutcome, FloorTotals,
    LatencyMs, LoadGeneratorTotals, NodePoint, NodeTotals, RatePoint, ReceiveTotals, RunReport,
    SenderLayers,
};

fn criterion(name: &str, bound: &str, limit: f64, measured: f64) -> CriterionOutcome {
    let passed = if bound == "at most" {
        measured <= limit
    } else {
        measured >= limit
    };
    CriterionOutcome {
        name: name.to_owned(),
        bound: bound.to_owned(),
        limit,
        measured,
        passed,
    }
}

/// A run on `target`; `scale` makes the figures differ between runs, `lossy` makes it fail.
fn report(target: &str, scale: f64, lossy: bool) -> RunReport {
    let loss = if lossy { 2.5 } else { 0.125 };
    let criteria = vec![
        criterion("max_loss_pct", "at most", 1.0, loss),
        criterion("max_added_latency_p99_ms", "at most", 50.0, 12.5 * scale),
        criterion("min_streams_received_pct", "at least", 99.0, 100.0),
    ];
    let passed = criteria.iter().all(|c| c.passed);
    RunReport {
        tool_version: "0.1.0".to_owned(),
        scenario: "small".to_owned(),
        target: target.to_owned(),
        started_unix_s: 1_700_000_000,
        participants: 20,
        video_senders: 4,
        ramp_up_s: 5.0,
        duration_s: 30.0,
        impairment: if lossy {
            "loss=2%".to_owned()
        } else {
            String::new()
        },
        criteria,
        passed,
        receive: ReceiveTotals {
            packets: 3_000_000,
            retransmissions: 100,
            bytes: 1_500_000_000,
            expected: 3_000_100,
            lost: 100,
            recovered: 90,
            loss_pct: loss,
            residual_loss_pct: loss / 5.0,
            worst_receiver_loss_pct: loss * 2.0,
            latency: LatencyMs {
                samples: 3_000_000,
                p50: 1.25 * scale,
                p90: 4.0,
                p99: 12.5 * scale,
                max: 40.0,
            },
            streams_received_pct: 100.0,
            longest_freeze_ms: 180.0,
            frames: 36_000,
            layer_switches: 40,
            time_at_height_ms: [(180, 500_000.0), (720, 125_500.0)].into_iter().collect(),
            // Janus (the lossy run here) has no view target.
            at_view_height_pct: (!lossy).then_some(99.25),
            view_switches: if lossy { 0 } else { 38 },
            view_switch_ms_mean: (!lossy).then_some(81.4),
            view_switch_ms_max: (!lossy).then_some(460.0),
            receivers_with_view_heights: if lossy { 0 } else { 20 },
            receivers_at_view_heights: if lossy { 0 } else { 19 },
        },
        load_generator: LoadGeneratorTotals {
            joined: 20,
            connected: if lossy { 19 } else { 20 },
            failed: u32::from(lossy),
            datagrams_sent: 1,
            datagrams_received: 2,
            send_dropped: 0,
            srtp_verified: 10,
            srtp_verify_failed: 0,
            frame_starts_decrypted: 33_000,
            cpu_s: 12.0,
            cpu_pct: 40.0,
        },
        node: Some(NodeTotals {
            cpu_s: 6.0 * scale,
            cpu_pct: 20.0 * scale,
            rss_max_mib: 48.5 * scale,
            rss_end_mib: 47.0 * scale,
            forwarded_packets: 3_000_000,
            egress_pps: 100_000.0,
            us_per_forwarded_packet: 2.0 * scale,
            cpu_s_per_million_packets: 2.0 * scale,
            forwarded_source: "receivers".to_owned(),
        }),
        floor: None,
        node_series: (0..35)
            .map(|s| NodePoint {
                at_s: f64::from(s),
                cpu_pct: 20.0 * scale,
                rss_mib: 40.0 + f64::from(s) * 0.2,
                egress_pps: 100_000.0,
            })
            .collect(),
        receive_series: (0..35)
            .map(|s| RatePoint {
                at_s: f64::from(s),
                packets_per_s: 100_000.0,
                bits_per_s: 400e6 * scale,
                loss_pct: loss,
                latency_p50_ms: 1.25 * scale,
                latency_p99_ms: 12.5 * scale,
                participants: 20,
            })
            .collect(),
        senders: vec![SenderLayers {
            sender: 0,
            layers: 3,
            mean_active_layers: if lossy { 1.5 } else { 3.0 },
            active_layers_at_end: 3,
            estimate_layer_drops: u64::from(lossy),
            estimate_layer_raises: 0,
            estimate_updates: 300,
            estimate_min_kbps: if lossy { 550 } else { 2_700 },
            estimate_median_kbps: 2_700,
            estimate_max_kbps: 2_700,
        }],
    }
}

fn two_runs() -> Vec<RunReport> {
    let mut relais = report("relais (Colibri2)", 1.0, false);
    relais.floor = Some(FloorTotals {
        command: "udp-ceiling".to_owned(),
        us_per_sent_packet: 0.5,
        ratio: 4.0,
    });
    let janus = report("janus (videoroom)", 3.0, true);
    vec![relais, janus]
}

/// A fresh directory under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "relais-loadtest-report-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The table's line whose label is `label`, split into its cells after the label.
fn table_row(table: &str, label: &str) -> Vec<String> {
    let line = table
        .lines()
        .find(|l| {
            l.trim_start().starts_with(label) && {
                let rest = &l.trim_start()[label.len()..];
                rest.starts_with("  ") || rest.is_empty()
            }
        })
        .unwrap_or_else(|| panic!("no row {label:?} in\n{table}"));
    line.trim_start()[label.len()..]
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn table_shows_each_run_in_a_column() {
    let runs = two_runs();
    let table = render_table(&runs);
    println!("{table}");

    let header = table.lines().next().unwrap();
    assert!(header.contains("relais (Colibri2)"));
    assert!(header.contains("janus (videoroom)"));
    assert!(header.find("relais").unwrap() < header.find("janus").unwrap());

    assert_eq!(table_row(&table, "result"), ["✓ pass", "✗ fail"]);
    assert_eq!(
        table_row(&table, "max_loss_pct"),
        ["✓ 0.125 (≤ 1)", "✗ 2.50 (≤ 1)"]
    );
    assert_eq!(
        table_row(&table, "max_added_latency_p99_ms"),
        ["✓ 12.50 (≤ 50)", "✓ 37.50 (≤ 50)"]
    );
    assert_eq!(
        table_row(&table, "min_streams_received_pct"),
        ["✓ 100 (≥ 99)", "✓ 100 (≥ 99)"]
    );
    assert_eq!(table_row(&table, "participants"), ["20", "20"]);
    assert_eq!(table_row(&table, "connected"), ["20", "19"]);
    assert_eq!(table_row(&table, "failed"), ["0", "1"]);
    // 3 M packets, 1.5 GB over 30 s.
    assert_eq!(table_row(&table, "received pps"), ["100000", "100000"]);
    assert_eq!(table_row(&table, "received Mbit/s"), ["400.00", "400.00"]);
    assert_eq!(table_row(&table, "loss %"), ["0.125", "2.500"]);
    assert_eq!(table_row(&table, "residual loss %"), ["0.025", "0.500"]);
    assert_eq!(table_row(&table, "latency p50 ms"), ["1.25", "3.75"]);
    assert_eq!(table_row(&table, "latency p99 ms"), ["12.50", "37.50"]);
    assert_eq!(table_row(&table, "streams received %"), ["100.0", "100.0"]);
    assert_eq!(table_row(&table, "longest freeze ms"), ["180", "180"]);
    assert_eq!(table_row(&table, "layer switches"), ["40", "40"]);
    assert_eq!(
        table_row(&table, "stream s at height"),
        ["180p 500, 720p 126", "180p 500, 720p 126"]
    );
    assert_eq!(table_row(&table, "at view height %"), ["99.2", "—"]);
    assert_eq!(
        table_row(&table, "view switch ms mean / max"),
        ["81 / 460", "—"]
    );
    assert_eq!(
        table_row(&table, "receivers at view heights"),
        ["19/20", "—"]
    );
    assert_eq!(
        table_row(&table, "frame starts decrypted"),
        ["33000", "33000"]
    );
    assert_eq!(table_row(&table, "node CPU %"), ["20.0", "60.0"]);
    assert_eq!(table_row(&table, "node CPU s"), ["6.00", "18.00"]);
    assert_eq!(table_row(&table, "node RSS max MiB"), ["48.5", "145.5"]);
    assert_eq!(table_row(&table, "node RSS end MiB"), ["47.0", "141.0"]);
    assert_eq!(table_row(&table, "egress pps"), ["100000", "100000"]);
    assert_eq!(
        table_row(&table, "µs per forwarded packet"),
        ["2.000", "6.000"]
    );
    assert_eq!(
        table_row(&table, "CPU s per million forwarded packets"),
        ["2.000", "6.000"]
    );
    // The floor was measured on the relais run only.
    assert_eq!(
        table_row(&table, "floor µs per sent packet"),
        ["0.500", "—"]
    );
    assert_eq!(table_row(&table, "node / floor ratio"), ["4.00", "—"]);
    assert_eq!(table_row(&table, "load generator CPU %"), ["40.0", "40.0"]);
    assert_eq!(
        table_row(&table, "layers sent, mean (lowest camera)"),
        ["3.00 (3.00)", "1.50 (1.50)"]
    );
    assert_eq!(table_row(&table, "estimate-driven layer drops"), ["0", "1"]);
    assert_eq!(
        table_row(&table, "estimate kbit/s, lowest min / median"),
        ["2700 / 2700", "550 / 2700"]
    );

    // Columns line up: every row is as wide as the header's rule.
    let rule = table.lines().nth(1).unwrap().chars().count();
    for line in table.lines() {
        assert!(
            line.chars().count() <= rule,
            "{line:?} wider than the table"
        );
    }
}

#[test]
fn table_shows_missing_values_as_a_dash() {
    let mut run = report("relais", 1.0, false);
    run.node = None;
    run.receive.latency.samples = 0;
    run.duration_s = 0.0;
    let table = render_table(&[run]);
    assert_eq!(table_row(&table, "node CPU %"), ["—"]);
    assert_eq!(
        table_row(&table, "CPU s per million forwarded packets"),
        ["—"]
    );
    assert_eq!(table_row(&table, "latency p99 ms"), ["—"]);
    assert_eq!(table_row(&table, "received pps"), ["—"]);
    // Without a floor in any run, there are no floor rows.
    assert!(!table.contains("floor"));
}

#[test]
fn html_report_shows_the_runs_side_by_side() {
    let dir = TempDir::new("html");
    let runs = two_runs();
    let path = write_html(&dir.0, &runs).unwrap();
    assert_eq!(path, dir.0.join("index.html"));
    let html = std::fs::read_to_string(&path).unwrap();

    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<title>relais-loadtest: small</title>"));
    assert!(html.trim_end().ends_with("</html>"));
    // Self-contained: no scripts, no links, no URLs.
    assert!(!html.contains("<script"));
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(!html.contains("<link"));

    // The summary, with the cost per forwarded packet of each run, and the criteria.
    assert!(html.contains("CPU s per million forwarded packets"));
    assert!(html.contains("<td class=\"num\">2.000</td><td class=\"num\">6.000</td>"));
    assert!(html.contains("<td class=\"fail\">✗ 2.50 (≤ 1)</td>"));
    assert!(html.contains("<h2>Pass criteria</h2>"));
    assert_eq!(html.matches("<th>max_loss_pct</th>").count(), 3);

    // Seven plots, each with one line per run in the run's colour, and a legend.
    assert_eq!(html.matches("<svg").count(), 7);
    assert_eq!(html.matches("</svg>").count(), 7);
    for (index, _) in runs.iter().enumerate() {
        let line = format!(
            "<polyline fill=\"none\" opacity=\"1\" stroke=\"{}\"",
            run_colour(index)
        );
        assert_eq!(html.matches(&line).count(), 7, "lines of run {index}");
    }
    for title in [
        "Received packet rate",
        "Received bit rate",
        "Node CPU",
        "Node RSS",
        "Latency p50",
        "Latency p99",
        "Loss",
    ] {
        assert!(html.contains(&format!("<figcaption>{title}")), "{title}");
    }
    for target in ["relais (Colibri2)", "janus (videoroom)"] {
        // Legend entries in the SVG.
        assert!(
            html.matches(&format!("{target}\n</text>")).count() >= 7,
            "{target}"
        );
    }
}

#[test]
fn html_report_escapes_what_it_shows() {
    let dir = TempDir::new("escape");
    let mut evil = report("<script>alert('x')</script> & co", 1.0, false);
    evil.scenario = "<b>small</b>".to_owned();
    evil.impairment = "loss=\"1%\"".to_owned();
    evil.criteria[0].name = "<img src=x>".to_owned();
    let html = std::fs::read_to_string(write_html(&dir.0, &[evil]).unwrap()).unwrap();
    assert!(!html.contains("<script"));
    assert!(!html.contains("<b>small"));
    assert!(!html.contains("<img"));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"));
    assert!(html.contains("<title>relais-loadtest: &lt;b&gt;small&lt;/b&gt;</title>"));
    assert!(html.contains("loss=&quot;1%&quot;"));
    // The SVG legend is escaped as well.
    assert!(html.contains("&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt; &amp; co\n</text>"));
}

#[test]
fn html_report_without_series_says_so() {
    let mut run = report("relais", 1.0, false);
    run.node_series.clear();
    run.receive_series.clear();
    let html = render_html(&[run]);
    assert_eq!(html.matches("<svg").count(), 0);
    assert_eq!(html.matches("No data.").count(), 7);
}

#[test]
fn json_round_trips() {
    let dir = TempDir::new("json");
    let runs = two_runs();
    let mut paths = Vec::new();
    for run in &runs {
        paths.push(write_json(&dir.0, run).unwrap());
    }
    assert_eq!(paths[0], dir.0.join("relais-colibri2.json"));
    assert_eq!(paths[1], dir.0.join("janus-videoroom.json"));
    let read: Vec<RunReport> = paths.iter().map(|p| read_json(p).unwrap()).collect();
    assert_eq!(read, runs);

    // A later invocation combines them into one report.
    let html = std::fs::read_to_string(write_html(&dir.0, &read).unwrap()).unwrap();
    assert!(html.contains("relais (Colibri2)") && html.contains("janus (videoroom)"));

    // Errors name the file.
    let missing = dir.0.join("missing.json");
    let err = read_json(&missing).unwrap_err().to_string();
    assert!(err.contains("missing.json"), "{err}");
    let bad = dir.0.join("bad.json");
    std::fs::write(&bad, "{\"target\": 1}").unwrap();
    let err = read_json(&bad).unwrap_err().to_string();
    assert!(
        err.contains("bad.json") && err.contains("not a run report"),
        "{err}"
    );
}

#[test]
fn slugs_are_file_names() {
    use relais_loadtest::report::html::slug;
    assert_eq!(slug("relais (Colibri2)"), "relais-colibri2");
    assert_eq!(slug("janus (videoroom)"), "janus-videoroom");
    assert_eq!(slug("../../etc/passwd"), "etc-passwd");
    assert_eq!(slug("(((("), "run");
}
