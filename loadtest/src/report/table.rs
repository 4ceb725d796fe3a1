//! The summary of one or more runs side by side: which rows there are, how each figure is
//! formatted, and the plain-text table printed on the terminal at the end of a run.
//!
//! The HTML report ([`super::html`]) shows the same rows, so the two never disagree about
//! what a run found. Missing values (no node observed, no floor measured, nothing received)
//! are shown as "—".

use super::RunReport;

/// Shown for a value the run does not have.
pub(crate) const MISSING: &str = "—";
/// Shown for a pass criterion the run could not measure (it does not pass).
pub(crate) const NOT_MEASURED: &str = "not measured";

/// One cell of the summary.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cell {
    /// The formatted value.
    pub(crate) text: String,
    /// For pass/fail cells, whether it passed.
    pub(crate) verdict: Option<bool>,
}

impl Cell {
    fn value(text: String) -> Self {
        Self {
            text,
            verdict: None,
        }
    }

    fn missing() -> Self {
        Self::value(MISSING.to_owned())
    }

    fn verdict(text: String, passed: bool) -> Self {
        Self {
            text,
            verdict: Some(passed),
        }
    }
}

/// One row of the summary: a section heading (no cells) or a figure with one cell per run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Row {
    /// A heading that groups the rows after it.
    Section(&'static str),
    /// A figure, one cell per run.
    Figure {
        /// What the row shows, with its unit.
        label: String,
        /// One per run, in the order of the reports.
        cells: Vec<Cell>,
    },
}

/// The summary rows for `reports`, runs in the given order.
pub(crate) fn summary_rows(reports: &[RunReport]) -> Vec<Row> {
    let mut rows = Vec::new();
    let figure = |label: &str, cell: &dyn Fn(&RunReport) -> Cell| Row::Figure {
        label: label.to_owned(),
        cells: reports.iter().map(cell).collect(),
    };

    rows.push(figure("result", &|r| {
        if r.passed {
            Cell::verdict("✓ pass".to_owned(), true)
        } else {
            Cell::verdict("✗ fail".to_owned(), false)
        }
    }));

    rows.push(Row::Section("pass criteria (measured, limit)"));
    for name in criterion_names(reports) {
        rows.push(figure(&name, &|r| {
            r.criteria
                .iter()
                .find(|c| c.name == name)
                .map_or_else(Cell::missing, |c| {
                    if !c.is_measured() {
                        return Cell::verdict(
                            format!(
                                "{NOT_MEASURED} ({} {})",
                                bound_symbol(&c.bound),
                                number(c.limit)
                            ),
                            false,
                        );
                    }
                    let mark = if c.passed { '✓' } else { '✗' };
                    Cell::verdict(
                        format!(
                            "{mark} {} ({} {})",
                            number(c.measured),
                            bound_symbol(&c.bound),
                            number(c.limit)
                        ),
                        c.passed,
                    )
                })
        }));
    }

    rows.push(Row::Section("meeting"));
    rows.push(figure("participants", &|r| {
        Cell::value(r.participants.to_string())
    }));
    rows.push(figure("video senders", &|r| {
        Cell::value(r.video_senders.to_string())
    }));
    rows.push(figure("connected", &|r| {
        Cell::value(r.load_generator.connected.to_string())
    }));
    rows.push(figure("failed", &|r| {
        Cell::value(r.load_generator.failed.to_string())
    }));
    rows.push(figure("measured window s", &|r| fixed(r.duration_s, 0)));
    rows.push(figure("impairment", &|r| {
        if r.impairment.is_empty() {
            Cell::value("none".to_owned())
        } else {
            Cell::value(r.impairment.clone())
        }
    }));

    rows.push(Row::Section("receivers"));
    rows.push(figure("received pps", &|r| {
        per_second(r.receive.packets as f64, r.duration_s)
            .map_or_else(Cell::missing, |v| fixed(v, 0))
    }));
    rows.push(figure("received Mbit/s", &|r| {
        per_second(r.receive.bytes as f64 * 8.0 / 1e6, r.duration_s)
            .map_or_else(Cell::missing, |v| fixed(v, 2))
    }));
    rows.push(figure("loss %", &|r| {
        when(r.receive.expected > 0, r.receive.loss_pct, 3)
    }));
    rows.push(figure("residual loss %", &|r| {
        when(r.receive.expected > 0, r.receive.residual_loss_pct, 3)
    }));
    rows.push(figure("latency p50 ms", &|r| {
        when(r.receive.latency.samples > 0, r.receive.latency.p50, 2)
    }));
    rows.push(figure("latency p99 ms", &|r| {
        when(r.receive.latency.samples > 0, r.receive.latency.p99, 2)
    }));
    rows.push(figure("streams received %", &|r| {
        fixed(r.receive.streams_received_pct, 1)
    }));
    rows.push(figure("longest freeze ms", &|r| {
        fixed(r.receive.longest_freeze_ms, 0)
    }));
    rows.push(figure("layer switches", &|r| {
        Cell::value(r.receive.layer_switches.to_string())
    }));
    rows.push(figure("stream s at height", &|r| {
        if r.receive.time_at_height_ms.is_empty() {
            return Cell::missing();
        }
        let parts: Vec<String> = r
            .receive
            .time_at_height_ms
            .iter()
            .map(|(height, ms)| format!("{height}p {:.0}", ms / 1000.0))
            .collect();
        Cell::value(parts.join(", "))
    }));
    rows.push(figure("at view height %", &|r| {
        r.receive
            .at_view_height_pct
            .map_or_else(Cell::missing, |pct| fixed(pct, 1))
    }));
    rows.push(figure("view switch ms mean / max", &|r| match (
        r.receive.view_switch_ms_mean,
        r.receive.view_switch_ms_max,
    ) {
        (Some(mean), Some(max)) => Cell::value(format!("{mean:.0} / {max:.0}")),
        _ => Cell::missing(),
    }));
    rows.push(figure("receivers at view heights", &|r| {
        if r.receive.receivers_with_view_heights == 0 {
            return Cell::missing();
        }
        Cell::value(format!(
            "{}/{}",
            r.receive.receivers_at_view_heights, r.receive.receivers_with_view_heights
        ))
    }));

    rows.push(Row::Section("node"));
    let node = |label: &str, cell: &dyn Fn(&super::NodeTotals) -> Cell| {
        figure(label, &|r| r.node.as_ref().map_or_else(Cell::missing, cell))
    };
    rows.push(node("node CPU %", &|n| fixed(n.cpu_pct, 1)));
    rows.push(node("node CPU s", &|n| fixed(n.cpu_s, 2)));
    rows.push(node("node RSS max MiB", &|n| fixed(n.rss_max_mib, 1)));
    rows.push(node("node RSS end MiB", &|n| fixed(n.rss_end_mib, 1)));
    rows.push(node("egress pps", &|n| fixed(n.egress_pps, 0)));
    rows.push(node("µs per forwarded packet", &|n| {
        when(n.forwarded_packets > 0, n.us_per_forwarded_packet, 3)
    }));
    rows.push(node("CPU s per million forwarded packets", &|n| {
        when(n.forwarded_packets > 0, n.cpu_s_per_million_packets, 3)
    }));
    rows.push(node("forwarded count from", &|n| {
        if n.forwarded_source.is_empty() {
            Cell::missing()
        } else {
            Cell::value(n.forwarded_source.clone())
        }
    }));

    if reports.iter().any(|r| r.floor.is_some()) {
        rows.push(Row::Section("machine floor (udp-ceiling)"));
        rows.push(figure("floor µs per sent packet", &|r| {
            r.floor
                .as_ref()
                .map_or_else(Cell::missing, |f| fixed(f.us_per_sent_packet, 3))
        }));
        rows.push(figure("node / floor ratio", &|r| {
            r.floor
                .as_ref()
                .map_or_else(Cell::missing, |f| fixed(f.ratio, 2))
        }));
    }

    if reports.iter().any(|r| !r.senders.is_empty()) {
        rows.push(Row::Section("cameras under their own estimate"));
        let senders = |label: &str, cell: &dyn Fn(&[super::SenderLayers]) -> Cell| {
            figure(label, &|r| {
                if r.senders.is_empty() {
                    Cell::missing()
                } else {
                    cell(&r.senders)
                }
            })
        };
        rows.push(senders("layers sent, mean (lowest camera)", &|s| {
            let mean = s.iter().map(|x| x.mean_active_layers).sum::<f64>() / s.len() as f64;
            let lowest = s
                .iter()
                .map(|x| x.mean_active_layers)
                .fold(f64::INFINITY, f64::min);
            Cell::value(format!("{mean:.2} ({lowest:.2})"))
        }));
        rows.push(senders("estimate-driven layer drops", &|s| {
            Cell::value(
                s.iter()
                    .map(|x| x.estimate_layer_drops)
                    .sum::<u64>()
                    .to_string(),
            )
        }));
        rows.push(senders("estimate kbit/s, lowest min / median", &|s| {
            let min = s.iter().map(|x| x.estimate_min_kbps).min().unwrap_or(0);
            let mut medians: Vec<u64> = s.iter().map(|x| x.estimate_median_kbps).collect();
            medians.sort_unstable();
            let median = medians.get(medians.len() / 2).copied().unwrap_or(0);
            Cell::value(format!("{min} / {median}"))
        }));
    }

    rows.push(Row::Section("load generator"));
    rows.push(figure("load generator CPU %", &|r| {
        fixed(r.load_generator.cpu_pct, 1)
    }));
    rows.push(figure("load generator CPU s", &|r| {
        fixed(r.load_generator.cpu_s, 2)
    }));
    rows.push(figure("frame starts decrypted", &|r| {
        Cell::value(r.load_generator.frame_starts_decrypted.to_string())
    }));
    rows.push(figure("send dropped", &|r| {
        Cell::value(r.load_generator.send_dropped.to_string())
    }));

    rows
}

/// The criterion names over all runs, in the order they first appear.
fn criterion_names(reports: &[RunReport]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for criterion in reports.iter().flat_map(|r| &r.criteria) {
        if !names.contains(&criterion.name) {
            names.push(criterion.name.clone());
        }
    }
    names
}

/// `"at most"` → `≤`, `"at least"` → `≥`, anything else as given.
pub(crate) fn bound_symbol(bound: &str) -> &str {
    match bound {
        "at most" => "≤",
        "at least" => "≥",
        other => other,
    }
}

/// `total` per second over `duration_s`, when there is a window.
fn per_second(total: f64, duration_s: f64) -> Option<f64> {
    (duration_s > 0.0 && duration_s.is_finite()).then(|| total / duration_s)
}

/// `value` with `decimals`, or missing when not `present`.
fn when(present: bool, value: f64, decimals: usize) -> Cell {
    if present {
        fixed(value, decimals)
    } else {
        Cell::missing()
    }
}

/// `value` with `decimals`; missing when it is not a number.
fn fixed(value: f64, decimals: usize) -> Cell {
    if value.is_finite() {
        Cell::value(format!("{value:.decimals$}"))
    } else {
        Cell::missing()
    }
}

/// A value of unknown scale: whole numbers without decimals, others with a precision that
/// suits their size.
pub(crate) fn number(value: f64) -> String {
    if !value.is_finite() {
        return MISSING.to_owned();
    }
    let magnitude = value.abs();
    if value.fract() == 0.0 && magnitude < 1e15 {
        format!("{value:.0}")
    } else if magnitude >= 100.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// The final table: one column per run (headed by its target), one row per figure, plain
/// aligned text. Pass criteria show the measured value, the limit and ✓ or ✗; node and
/// load-generator CPU are both shown so a reader sees which side was the limit.
pub fn render_table(reports: &[RunReport]) -> String {
    let rows = summary_rows(reports);
    let headers: Vec<&str> = reports.iter().map(|r| r.target.as_str()).collect();

    let label_width = rows
        .iter()
        .map(|row| match row {
            Row::Section(title) => width(title),
            Row::Figure { label, .. } => width(label) + 2,
        })
        .max()
        .unwrap_or(0);
    let mut column_widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for row in &rows {
        if let Row::Figure { cells, .. } = row {
            for (w, cell) in column_widths.iter_mut().zip(cells) {
                *w = (*w).max(width(&cell.text));
            }
        }
    }

    let mut out = String::new();
    let mut line = pad_right("", label_width);
    for (header, w) in headers.iter().zip(&column_widths) {
        line.push_str("  ");
        line.push_str(&pad_left(header, *w));
    }
    push_line(&mut out, &line);
    let total = label_width + column_widths.iter().map(|w| w + 2).sum::<usize>();
    push_line(&mut out, &"─".repeat(total));

    for row in &rows {
        match row {
            Row::Section(title) => push_line(&mut out, title),
            Row::Figure { label, cells } => {
                let mut line = pad_right(&format!("  {label}"), label_width);
                for (cell, w) in cells.iter().zip(&column_widths) {
                    line.push_str("  ");
                    line.push_str(&pad_left(&cell.text, *w));
                }
                push_line(&mut out, &line);
            }
        }
    }
    out
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line.trim_end());
    out.push('\n');
}

/// Width on a terminal, counting each character as one column.
fn width(text: &str) -> usize {
    text.chars().count()
}

fn pad_right(text: &str, to: usize) -> String {
    let mut s = text.to_owned();
    s.extend(std::iter::repeat_n(' ', to.saturating_sub(width(text))));
    s
}

fn pad_left(text: &str, to: usize) -> String {
    let mut s: String = std::iter::repeat_n(' ', to.saturating_sub(width(text))).collect();
    s.push_str(text);
    s
}
