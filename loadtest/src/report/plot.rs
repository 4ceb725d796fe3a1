//! The HTML report's plots over time: SVG line charts drawn with plotters, one chart per
//! figure, each overlaying the runs (one line per run, with a legend).
//!
//! Text is written as SVG `<text>` elements (plotters escapes it) and laid out with
//! plotters' built-in size estimate, so no font files or font libraries are needed.

use plotters::prelude::*;

use super::RunReport;

/// Line colours, one per run (in the order of the reports, repeating after the last).
/// None of them is black or grey, which the axes and grid use.
const PALETTE: [(u8, u8, u8); 8] = [
    (0x1F, 0x77, 0xB4),
    (0xFF, 0x7F, 0x0E),
    (0x2C, 0xA0, 0x2C),
    (0xD6, 0x27, 0x28),
    (0x94, 0x67, 0xBD),
    (0x8C, 0x56, 0x4B),
    (0xE3, 0x77, 0xC2),
    (0x17, 0xBE, 0xCF),
];

/// Plot size in pixels (the HTML scales it down on narrow screens).
const SIZE: (u32, u32) = (760, 320);
/// Margin around the chart, pixels.
const MARGIN: u32 = 12;
/// Height of the x axis labels and description, pixels.
const X_LABEL_AREA: u32 = 40;
/// Height of the area the lines are drawn in, pixels.
const PLOT_AREA_HEIGHT: f64 = (SIZE.1 - 2 * MARGIN - X_LABEL_AREA) as f64;

/// The colour of the run at `index` in its lines and legend, as `#RRGGBB`.
pub fn run_colour(index: usize) -> String {
    let (r, g, b) = palette(index);
    format!("#{r:02X}{g:02X}{b:02X}")
}

fn palette(index: usize) -> (u8, u8, u8) {
    PALETTE
        .get(index % PALETTE.len())
        .copied()
        .unwrap_or((0, 0, 0))
}

/// Drawing a plot failed.
#[derive(Debug, thiserror::Error)]
#[error("drawing the plot failed: {0}")]
pub struct PlotError(String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for PlotError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        Self(e.to_string())
    }
}

/// One chart of the report.
#[derive(Debug)]
pub struct Plot {
    /// What it shows, with the unit.
    pub title: &'static str,
    /// The SVG (an `<svg>` element to put inline in HTML), or `None` when no run has data
    /// for it, or why drawing failed.
    pub svg: Result<Option<String>, PlotError>,
}

/// One figure over time: its title and how to take it from a run.
struct Figure {
    title: &'static str,
    unit: &'static str,
    points: fn(&RunReport) -> Vec<(f64, f64)>,
}

const FIGURES: [Figure; 7] = [
    Figure {
        title: "Received packet rate (packets/s)",
        unit: "packets/s",
        points: |r| {
            r.receive_series
                .iter()
                .map(|p| (p.at_s, p.packets_per_s))
                .collect()
        },
    },
    Figure {
        title: "Received bit rate (Mbit/s)",
        unit: "Mbit/s",
        points: |r| {
            r.receive_series
                .iter()
                .map(|p| (p.at_s, p.bits_per_s / 1e6))
                .collect()
        },
    },
    Figure {
        title: "Node CPU (% of one core)",
        unit: "% of one core",
        points: |r| r.node_series.iter().map(|p| (p.at_s, p.cpu_pct)).collect(),
    },
    Figure {
        title: "Node RSS (MiB)",
        unit: "MiB",
        points: |r| r.node_series.iter().map(|p| (p.at_s, p.rss_mib)).collect(),
    },
    Figure {
        title: "Latency p50 (ms)",
        unit: "ms",
        points: |r| {
            r.receive_series
                .iter()
                .map(|p| (p.at_s, p.latency_p50_ms))
                .collect()
        },
    },
    Figure {
        title: "Latency p99 (ms)",
        unit: "ms",
        points: |r| {
            r.receive_series
                .iter()
                .map(|p| (p.at_s, p.latency_p99_ms))
                .collect()
        },
    },
    Figure {
        title: "Loss (%)",
        unit: "%",
        points: |r| {
            r.receive_series
                .iter()
                .map(|p| (p.at_s, p.loss_pct))
                .collect()
        },
    },
];

/// The report's charts over time (x: seconds since the run started): received packet rate,
/// received bit rate, node CPU %, node RSS, latency p50 and p99, loss %. Each overlays the
/// runs that have data for it, in the colours of [`run_colour`].
pub fn render_plots(reports: &[RunReport]) -> Vec<Plot> {
    FIGURES
        .iter()
        .map(|figure| {
            let series: Vec<Series<'_>> = reports
                .iter()
                .enumerate()
                .map(|(index, report)| Series {
                    name: &report.target,
                    colour: palette(index),
                    points: (figure.points)(report)
                        .into_iter()
                        .filter(|(x, y)| x.is_finite() && y.is_finite())
                        .collect(),
                })
                .filter(|s| !s.points.is_empty())
                .collect();
            let svg = if series.is_empty() {
                Ok(None)
            } else {
                line_chart(figure.title, figure.unit, &series).map(Some)
            };
            Plot {
                title: figure.title,
                svg,
            }
        })
        .collect()
}

/// One run's line in a chart.
struct Series<'a> {
    name: &'a str,
    colour: (u8, u8, u8),
    points: Vec<(f64, f64)>,
}

/// A line chart of `series` (at least one point in all), as an inline `<svg>` element.
fn line_chart(title: &str, unit: &str, series: &[Series<'_>]) -> Result<String, PlotError> {
    let all = || series.iter().flat_map(|s| s.points.iter().copied());
    let (x_min, x_max) = span(all().map(|(x, _)| x));
    let (y_min, y_max) = span(all().map(|(_, y)| y));
    let x_range = if x_max > x_min {
        x_min..x_max
    } else {
        x_min..x_min + 1.0
    };
    let y_low = y_min.min(0.0);
    let y_max = if y_max > y_low { y_max } else { y_low + 1.0 };
    // Room above the lines for the legend, so it does not hide them.
    let legend_px = 22.0 * series.len() as f64 + 20.0;
    let free = (legend_px / PLOT_AREA_HEIGHT).min(0.5);
    let y_high = y_low + (y_max - y_low) / (1.0 - free);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(MARGIN)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(64)
            .build_cartesian_2d(x_range, y_low..y_high)?;
        chart
            .configure_mesh()
            .x_desc("seconds since start")
            .y_desc(unit)
            .label_style((FontFamily::SansSerif, 14))
            .axis_desc_style((FontFamily::SansSerif, 15))
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .axis_style(BLACK)
            .bold_line_style(RGBColor(0xE0, 0xE0, 0xE0))
            .light_line_style(TRANSPARENT)
            .draw()?;
        for s in series {
            let (r, g, b) = s.colour;
            let colour = RGBColor(r, g, b);
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    colour.stroke_width(2),
                ))?
                .label(s.name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(0xA0, 0xA0, 0xA0))
            .label_font((FontFamily::SansSerif, 14))
            .draw()?;
        root.present()?;
    }
    // Inline SVG in HTML needs no namespace; leaving it out keeps the page free of URLs.
    let svg = svg.replacen(r#" xmlns="http://www.w3.org/2000/svg""#, "", 1);
    Ok(svg.replacen(
        "<svg ",
        &format!(
            r#"<svg role="img" aria-label="{}" "#,
            super::html::escape(title)
        ),
        1,
    ))
}

/// Smallest and largest of `values` (`(0, 0)` when empty).
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .fold(None, |acc: Option<(f64, f64)>, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
        .unwrap_or((0.0, 0.0))
}

/// An axis label: short, with k/M for large values, no trailing zeros.
fn tick(v: f64) -> String {
    let magnitude = v.abs();
    let (scaled, suffix) = if magnitude >= 1e6 {
        (v / 1e6, "M")
    } else if magnitude >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let decimals = if scaled.abs() >= 100.0 {
        0
    } else if scaled.abs() >= 10.0 {
        1
    } else {
        2
    };
    let mut text = format!("{scaled:.decimals$}");
    if text.contains('.') {
        let trimmed = text.trim_end_matches('0').trim_end_matches('.').len();
        text.truncate(trimmed);
    }
    if text == "-0" {
        text = "0".to_owned();
    }
    text.push_str(suffix);
    text
}
