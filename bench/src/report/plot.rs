//! The plots, every broker of the run on the same axes, one colour per broker.
//! `latency.png`: latency (ms, log scale) against percentile, with the tail stretched
//! (x = -log10(1 - p), so 90%, 99%, 99.9% … are evenly spaced); per broker a solid line for
//! e2e and a dashed one for produce→ack. `latency-timeline.png`: the worst e2e latency of each
//! second of each broker's latency run, which shows periodic stalls. Text is drawn with
//! ab_glyph from a TrueType font read at run time (Debian's fonts-dejavu-core), so no
//! fontconfig is needed.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::Report;

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];
/// Rightmost percentile on the x axis: 99.999%.
const X_MAX: f64 = 5.0;
/// One colour per broker, in run order.
const BROKER_COLOURS: [RGBColor; 4] = [RED, BLUE, GREEN, MAGENTA];

fn register_font() -> Result<()> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if REGISTERED.get().is_some() {
        return Ok(());
    }
    for path in FONT_PATHS {
        if let Ok(bytes) = std::fs::read(path) {
            // The registry keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| anyhow!("{path} is not a usable font"))?;
            let _ = REGISTERED.set(true);
            return Ok(());
        }
    }
    bail!("no TrueType font found (install Debian's fonts-dejavu-core); looked in {FONT_PATHS:?}")
}

fn x_of(percentile: f64) -> f64 {
    let rest = (1.0 - percentile / 100.0).max(10f64.powf(-X_MAX));
    (-rest.log10()).min(X_MAX)
}

fn x_label(x: &f64) -> String {
    match x.round() as i32 {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        3 => "99.9%".into(),
        4 => "99.99%".into(),
        _ => "99.999%".into(),
    }
}

/// A line of a plot: its label, its broker's colour, dashed or not, and its points.
struct Curve<'a> {
    label: String,
    colour: RGBColor,
    dashed: bool,
    points: &'a [(f64, f64)],
}

fn curves(report: &Report) -> Vec<Curve<'_>> {
    let mut out = Vec::new();
    for (i, b) in report.brokers.iter().enumerate() {
        for w in &b.workloads {
            let Some(points) = w.curve.as_deref().filter(|c| !c.is_empty()) else {
                continue;
            };
            let e2e = w.latency_kind == Some("e2e");
            out.push(Curve {
                label: format!("{}: {}", b.name, if e2e { "e2e" } else { "produce→ack" }),
                colour: BROKER_COLOURS[i % BROKER_COLOURS.len()],
                dashed: !e2e,
                points,
            });
        }
    }
    out
}

fn tick_ms(v: &f64) -> String {
    format!("{v:.3}")
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

pub fn latency_png(report: &Report, path: &Path) -> Result<()> {
    let curves = curves(report);
    if curves.is_empty() {
        bail!("no latency curves in this run");
    }
    register_font()?;
    let (mut y_min, mut y_max) = (f64::MAX, 0.0f64);
    for c in &curves {
        for &(_, ms) in c.points {
            y_min = y_min.min(ms.max(0.001));
            y_max = y_max.max(ms);
        }
    }
    let y_min = y_min / 1.5;
    let y_max = (y_max * 1.5).max(y_min * 10.0);

    let root = BitMapBackend::new(path, (1200, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Latency by percentile, 1 KB at {} rec/s", report.latency_rate),
            ("sans-serif", 26),
        )
        .margin(20)
        .margin_right(50)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..X_MAX, (y_min..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(6)
        .x_label_formatter(&x_label)
        .y_label_formatter(&tick_ms)
        .x_desc("percentile")
        .y_desc("latency (ms, log scale)")
        .label_style(("sans-serif", 16))
        .draw()?;
    for c in &curves {
        let style = c.colour.stroke_width(if c.dashed { 1 } else { 2 });
        let points = c.points.iter().map(|&(p, ms)| (x_of(p), ms.max(y_min)));
        let legend_style = style;
        let drawn = if c.dashed {
            chart.draw_series(DashedLineSeries::new(points, 6, 4, style))?
        } else {
            chart.draw_series(LineSeries::new(points, style))?
        };
        drawn
            .label(c.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], legend_style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

pub fn timeline_png(report: &Report, path: &Path) -> Result<()> {
    let series: Vec<(String, RGBColor, &Vec<f64>)> = report
        .brokers
        .iter()
        .enumerate()
        .filter_map(|(i, b)| {
            let s = b.workloads.iter().find_map(|w| w.max_ms_by_second.as_ref())?;
            Some((b.name.clone(), BROKER_COLOURS[i % BROKER_COLOURS.len()], s))
        })
        .filter(|(_, _, s)| !s.is_empty())
        .collect();
    if series.is_empty() {
        bail!("no per-second latency series in this run");
    }
    register_font()?;
    let all = || series.iter().flat_map(|(_, _, s)| s.iter().cloned());
    let y_max = all().fold(0.0f64, f64::max).max(1.0) * 1.5;
    let y_min = all().filter(|v| *v > 0.0).fold(f64::MAX, f64::min).min(y_max / 10.0) / 1.5;
    let x_max = series.iter().map(|(_, _, s)| s.len()).max().unwrap_or(1) as f64;
    let root = BitMapBackend::new(path, (1200, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Worst e2e latency in each second, 1 KB at {} rec/s",
                report.latency_rate
            ),
            ("sans-serif", 22),
        )
        .margin(20)
        .margin_right(50)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("seconds after warm-up")
        .y_desc("max e2e latency (ms, log scale)")
        .y_label_formatter(&tick_ms)
        .label_style(("sans-serif", 16))
        .draw()?;
    for (name, colour, s) in &series {
        let colour = *colour;
        chart
            .draw_series(LineSeries::new(
                s.iter().enumerate().map(|(i, &ms)| (i as f64 + 0.5, ms.max(y_min))),
                colour.stroke_width(2),
            ))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
