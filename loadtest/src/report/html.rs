//! The files a run leaves behind: each [`RunReport`] as `DIR/<target>.json`, and the HTML
//! report `DIR/index.html` that shows one or more runs side by side — the summary table,
//! the pass criteria per run and the plots over time.
//!
//! The page is self-contained: inline CSS and SVG, no scripts, no external URLs. Every piece
//! of text taken from a report is escaped.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::plot::{render_plots, run_colour};
use super::table::{bound_symbol, number, summary_rows, Row, MISSING, NOT_MEASURED};
use super::RunReport;

/// Reading a report written by [`write_json`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a run report.
    #[error("{path} is not a run report: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

/// `text` made safe to put into HTML text or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A file name for `target`: lowercase ASCII letters and digits, other runs of characters
/// as one `-` (`relais (Colibri2)` → `relais-colibri2`); `run` when nothing is left.
pub fn slug(target: &str) -> String {
    let mut out = String::new();
    for c in target.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("run");
    }
    out
}

/// Writes `report` as pretty JSON to `DIR/<slug of its target>.json` (creating `dir`), and
/// returns the file's path.
pub fn write_json(dir: &Path, report: &RunReport) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{}.json", slug(&report.target)));
    let mut json = serde_json::to_string_pretty(report)?;
    json.push('\n');
    std::fs::write(&path, json)?;
    Ok(path)
}

/// Reads a report written by [`write_json`], so a later invocation can combine runs.
pub fn read_json(path: &Path) -> Result<RunReport, ReadError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ReadError::Json {
        path: path.to_owned(),
        source,
    })
}

/// Writes the HTML report for `reports` (runs side by side, in the given order) to
/// `DIR/index.html` (creating `dir`), and returns the file's path.
pub fn write_html(dir: &Path, reports: &[RunReport]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("index.html");
    std::fs::write(&path, render_html(reports))?;
    Ok(path)
}

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { padding: 0.2em 0.8em; border-bottom: 1px solid #eee; }
td { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { text-align: left; }
thead th { text-align: right; border-bottom: 2px solid #ccc; }
thead th:first-child { text-align: left; }
tr.section th { padding-top: 0.8em; color: #555; font-weight: 600; border-bottom: 1px solid #ccc; }
.pass { color: #1a7f37; }
.fail { color: #c62828; font-weight: 600; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.35em; vertical-align: -0.1em; border-radius: 2px; }
figure { margin: 1.5em 0; }
figcaption { font-weight: 600; margin-bottom: 0.3em; }
svg { max-width: 100%; height: auto; }
.note { color: #666; }
";

/// The HTML report for `reports` as a string (what [`write_html`] writes).
pub fn render_html(reports: &[RunReport]) -> String {
    let mut scenarios: Vec<&str> = Vec::new();
    for r in reports {
        if !scenarios.contains(&r.scenario.as_str()) {
            scenarios.push(&r.scenario);
        }
    }
    let scenario = escape(&scenarios.join(", "));

    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(h, "<title>relais-loadtest: {scenario}</title>");
    let _ = writeln!(h, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(h, "<h1>Load test: {scenario}</h1>");

    runs_section(&mut h, reports);
    summary_section(&mut h, reports);
    criteria_section(&mut h, reports);
    plots_section(&mut h, reports);

    let mut versions: Vec<&str> = Vec::new();
    for r in reports {
        if !versions.contains(&r.tool_version.as_str()) {
            versions.push(&r.tool_version);
        }
    }
    let _ = writeln!(
        h,
        "<p class=\"note\">Written by relais-loadtest {}.</p>\n</body>\n</html>",
        escape(&versions.join(", "))
    );
    h
}

/// The runs: target, when, meeting size, window, impairment.
fn runs_section(h: &mut String, reports: &[RunReport]) {
    h.push_str("<h2>Runs</h2>\n<table>\n<thead><tr><th>target</th><th>started (UTC)</th>");
    h.push_str("<th>participants</th><th>video senders</th><th>ramp-up s</th>");
    h.push_str("<th>measured s</th><th>impairment</th><th>result</th></tr></thead>\n<tbody>\n");
    for (index, r) in reports.iter().enumerate() {
        let _ = writeln!(
            h,
            "<tr><th>{}</th><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td>{}</tr>",
            target_label(index, &r.target),
            escape(&utc(r.started_unix_s)),
            r.participants,
            r.video_senders,
            escape(&number(r.ramp_up_s)),
            escape(&number(r.duration_s)),
            if r.impairment.is_empty() {
                "none".to_owned()
            } else {
                escape(&r.impairment)
            },
            verdict_cell(r.passed, if r.passed { "✓ pass" } else { "✗ fail" }),
        );
    }
    h.push_str("</tbody>\n</table>\n");
}

/// The summary: the terminal's table, runs side by side.
fn summary_section(h: &mut String, reports: &[RunReport]) {
    h.push_str("<h2>Summary</h2>\n<table>\n<thead><tr><th></th>");
    for (index, r) in reports.iter().enumerate() {
        let _ = write!(h, "<th>{}</th>", target_label(index, &r.target));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for row in summary_rows(reports) {
        match row {
            Row::Section(title) => {
                let _ = writeln!(
                    h,
                    "<tr class=\"section\"><th colspan=\"{}\">{}</th></tr>",
                    reports.len() + 1,
                    escape(title)
                );
            }
            Row::Figure { label, cells } => {
                let _ = write!(h, "<tr><th>{}</th>", escape(&label));
                for cell in cells {
                    match cell.verdict {
                        Some(passed) => h.push_str(&verdict_cell(passed, &cell.text)),
                        None => {
                            let _ = write!(h, "<td class=\"num\">{}</td>", escape(&cell.text));
                        }
                    }
                }
                h.push_str("</tr>\n");
            }
        }
    }
    h.push_str("</tbody>\n</table>\n");
}

/// The pass criteria, one table per run.
fn criteria_section(h: &mut String, reports: &[RunReport]) {
    h.push_str("<h2>Pass criteria</h2>\n");
    for (index, r) in reports.iter().enumerate() {
        let _ = writeln!(h, "<h3>{}</h3>", target_label(index, &r.target));
        if r.criteria.is_empty() {
            h.push_str("<p class=\"note\">No criteria.</p>\n");
            continue;
        }
        h.push_str("<table>\n<thead><tr><th>criterion</th><th>bound</th><th>limit</th>");
        h.push_str("<th>measured</th><th>result</th></tr></thead>\n<tbody>\n");
        for c in &r.criteria {
            let _ = writeln!(
                h,
                "<tr><th>{}</th><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>{}</tr>",
                escape(&c.name),
                escape(&format!("{} ({})", c.bound, bound_symbol(&c.bound))),
                escape(&number(c.limit)),
                escape(&if c.is_measured() {
                    number(c.measured)
                } else {
                    NOT_MEASURED.to_owned()
                }),
                verdict_cell(
                    c.passed,
                    match (c.passed, c.is_measured()) {
                        (true, _) => "✓",
                        (false, true) => "✗",
                        (false, false) => "✗ not measured",
                    }
                ),
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }
}

/// The plots over time.
fn plots_section(h: &mut String, reports: &[RunReport]) {
    h.push_str("<h2>Over time</h2>\n<p>");
    for (index, r) in reports.iter().enumerate() {
        let _ = write!(h, "{} ", target_label(index, &r.target));
    }
    h.push_str("</p>\n");
    for plot in render_plots(reports) {
        let _ = writeln!(
            h,
            "<figure>\n<figcaption>{}</figcaption>",
            escape(plot.title)
        );
        match plot.svg {
            Ok(Some(svg)) => h.push_str(&svg),
            Ok(None) => h.push_str("<p class=\"note\">No data.</p>\n"),
            Err(e) => {
                let _ = writeln!(h, "<p class=\"note\">{}</p>", escape(&e.to_string()));
            }
        }
        h.push_str("</figure>\n");
    }
}

/// A run's name with its colour swatch.
fn target_label(index: usize, target: &str) -> String {
    format!(
        "<span class=\"swatch\" style=\"background:{}\"></span>{}",
        run_colour(index),
        escape(target)
    )
}

fn verdict_cell(passed: bool, text: &str) -> String {
    format!(
        "<td class=\"{}\">{}</td>",
        if passed { "pass" } else { "fail" },
        escape(text)
    )
}

/// `unix_s` as `YYYY-MM-DD HH:MM:SS` in UTC (missing for 0).
fn utc(unix_s: u64) -> String {
    if unix_s == 0 {
        return MISSING.to_owned();
    }
    let days = unix_s / 86_400;
    let secs = unix_s % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Year, month, day of the day `days` after 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}
