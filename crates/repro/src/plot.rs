//! The papers' figures as SVG, drawn with plotters' SVG backend (no system fonts needed: text stays
//! `<text>`, sized by plotters' built-in estimate).
//!
//! What a reader expects of a figure in a paper, and what this module guarantees:
//! - ticks at 1-2-5 steps on linear axes and at decades (with 2 and 5 between them when the axis spans
//!   few decades) on log axes, written as plain numbers (`0.1`, `1`, `10`), never as `1e-0.7`;
//! - axis labels with their units as given by the caller, a title that is wrapped, not clipped;
//! - the legend in its own panel beside the plot, so it never covers data;
//! - error bars over seeds, hollow markers for published points, a second y axis where two
//!   quantities share a figure;
//! - point labels placed where they collide with no other label and stay on the canvas; a label with
//!   no free place is left out rather than drawn over another.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::prelude::*;
use std::ops::Range;

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A polyline through the points.
    Line,
    /// Filled markers (measured values).
    Markers,
    /// Hollow markers (published values, overlaid on measured ones).
    Hollow,
}

/// One data series.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// Half-height of each point's error bar, in the units of y (same order as `points`; empty: none).
    pub errors: Vec<f64>,
    /// `#rrggbb`.
    pub color: String,
    pub style: Style,
    /// Drawn against the second y axis.
    pub right_axis: bool,
    /// Text beside each marker (same order as `points`; empty for none).
    pub point_labels: Vec<String>,
}

impl Series {
    fn new(label: &str, points: Vec<(f64, f64)>, color: String, style: Style) -> Self {
        Series {
            label: label.into(),
            points,
            errors: Vec::new(),
            color,
            style,
            right_axis: false,
            point_labels: Vec::new(),
        }
    }

    /// A series drawn as a line.
    pub fn line(label: &str, points: Vec<(f64, f64)>, color: String) -> Self {
        Series::new(label, points, color, Style::Line)
    }

    /// A series drawn as filled markers.
    pub fn markers(label: &str, points: Vec<(f64, f64)>, color: String) -> Self {
        Series::new(label, points, color, Style::Markers)
    }

    /// A series drawn as filled markers, one label per point.
    pub fn labelled_markers(label: &str, points: Vec<((f64, f64), String)>, color: String) -> Self {
        let (points, point_labels) = points.into_iter().unzip();
        Series {
            point_labels,
            ..Series::markers(label, points, color)
        }
    }

    /// Published values: hollow markers.
    pub fn published(label: &str, points: Vec<(f64, f64)>, color: String) -> Self {
        Series::new(label, points, color, Style::Hollow)
    }

    /// Adds error bars (half-heights, one per point).
    pub fn with_errors(self, errors: Vec<f64>) -> Self {
        Series { errors, ..self }
    }

    /// Draws this series against the second y axis.
    pub fn on_right_axis(self) -> Self {
        Series {
            right_axis: true,
            ..self
        }
    }
}

/// One figure: a plot with its axes, and the legend beside it. `Default` is linear axes, no right
/// axis, numeric x, no series: literals name only what differs.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub title: String,
    /// With units, e.g. `latency (ms)`.
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    /// Label of the second y axis; series with `right_axis` use it.
    pub y2_label: Option<String>,
    pub log_y2: bool,
    /// Names of a categorical x axis: category `i` sits at `x = i` (series may offset their points
    /// around it); empty for a numeric axis.
    pub x_categories: Vec<String>,
    pub series: Vec<Series>,
}

/// A palette of distinguishable colours (Tableau 10), cycled by index.
pub fn color(i: usize) -> String {
    const P: [&str; 9] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#17becf",
    ];
    P[i % P.len()].to_string()
}

const WIDTH: u32 = 960;
const HEIGHT: u32 = 560;
const LEGEND_WIDTH: u32 = 250;
const FONT: &str = "sans-serif";
const TITLE_SIZE: u32 = 18;
const LABEL_SIZE: u32 = 14;
const TICK_SIZE: u32 = 12;
const POINT_LABEL_SIZE: u32 = 11;
const MARKER: i32 = 4;

/// Width plotters' font estimate gives a text (the same estimate it lays axes out with), in pixels.
fn text_width(text: &str, size: u32) -> i32 {
    let em = f64::from(size) / 1.24 / 1.24;
    (em * 0.7 * text.chars().count() as f64).round() as i32
}

/// The value shown at a tick: plain decimals without trailing zeros; scientific only far from 1.
pub fn tick_label(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-4..1e6).contains(&a) {
        let e = a.log10().floor();
        let m = v / 10f64.powf(e);
        let m = format!("{m:.2}");
        let m = m.trim_end_matches('0').trim_end_matches('.');
        return format!("{m}e{e}");
    }
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Ticks at 1-2-5 multiples of a power of ten covering `[lo, hi]`: at most 8 of them.
pub fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let base = 10f64.powf((span / 10.0).log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0]
        .iter()
        .map(|m| m * base)
        .find(|s| span / s <= 7.0)
        .unwrap_or(base * 100.0);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    // Multiply, not accumulate, so 0.1 * 3 prints as 0.3 after rounding to the step's decimals.
    (first..=last)
        .map(|k| {
            let v = k as f64 * step;
            let decimals = (-step.log10().floor()).max(0.0) as i32 + 1;
            let scale = 10f64.powi(decimals);
            (v * scale).round() / scale
        })
        .collect()
}

/// Ticks of a log axis spanning `[lo, hi]` in log10 units: decades, plus 2 and 5 when there are few
/// decades, plus 1-2-5 ticks of the values themselves when the span is under a decade.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let decades: Vec<f64> = (lo.ceil() as i64..=hi.floor() as i64)
        .map(|d| d as f64)
        .collect();
    if decades.len() >= 4 {
        return decades;
    }
    let fine: Vec<f64> = (lo.floor() as i64..=hi.ceil() as i64)
        .flat_map(|d| [1.0, 2.0, 5.0].map(|m: f64| d as f64 + m.log10()))
        .filter(|t| (lo..=hi).contains(t))
        .collect();
    if fine.len() >= 3 {
        return fine;
    }
    nice_ticks(10f64.powf(lo), 10f64.powf(hi))
        .into_iter()
        .filter(|v| *v > 0.0)
        .map(f64::log10)
        .collect()
}

/// One axis: its transform (log10 or none) and the range of the transformed data, padded.
#[derive(Debug, Clone, Copy)]
struct Axis {
    log: bool,
    lo: f64,
    hi: f64,
    /// A categorical axis: ticks at 0, 1, ... n - 1 (the chart names them).
    categories: usize,
}

impl Axis {
    /// The axis over the values drawn on it (error-bar ends included). Values a log axis cannot show
    /// (zero, negative, non-finite) are left out of the range and of the drawing.
    fn fit(log: bool, values: impl Iterator<Item = f64>) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter_map(|v| transform(log, v)) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo < 1e-12 {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.05 };
            (lo, hi) = (lo - pad, hi + pad);
        }
        let pad = (hi - lo) * 0.05;
        Axis {
            log,
            lo: lo - pad,
            hi: hi + pad,
            categories: 0,
        }
    }

    /// A categorical axis of `n` categories at 0 .. n - 1, half a step of room on either side.
    fn categorical(n: usize) -> Self {
        Axis {
            log: false,
            lo: -0.5,
            hi: n as f64 - 0.5,
            categories: n,
        }
    }

    fn ticks(&self) -> Vec<f64> {
        if self.categories > 0 {
            (0..self.categories).map(|i| i as f64).collect()
        } else if self.log {
            log_ticks(self.lo, self.hi)
        } else {
            nice_ticks(self.lo, self.hi)
        }
    }

    fn label(&self, t: f64) -> String {
        tick_label(if self.log { 10f64.powf(t) } else { t })
    }
}

/// An axis as a plotters coordinate: linear in the transformed value, ticks where [`Axis::ticks`] puts
/// them, labels as [`Axis::label`] writes them.
#[derive(Debug, Clone)]
struct AxisCoord {
    axis: Axis,
    ticks: Vec<f64>,
}

impl From<Axis> for AxisCoord {
    fn from(axis: Axis) -> Self {
        AxisCoord {
            ticks: axis.ticks(),
            axis,
        }
    }
}

impl Ranged for AxisCoord {
    type ValueType = f64;
    type FormatOption = NoDefaultFormatting;

    fn range(&self) -> Range<f64> {
        self.axis.lo..self.axis.hi
    }

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let f = (value - self.axis.lo) / (self.axis.hi - self.axis.lo);
        limit.0 + (f * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }
}

impl ValueFormatter<f64> for AxisCoord {
    fn format_ext(&self, value: &f64) -> String {
        self.axis.label(*value)
    }
}

/// Where a value sits on an axis (log10 on log axes); `None` where it cannot be drawn.
fn transform(log: bool, v: f64) -> Option<f64> {
    match (log, v.is_finite()) {
        (_, false) => None,
        (true, _) if v <= 0.0 => None,
        (true, _) => Some(v.log10()),
        (false, _) => Some(v),
    }
}

type Fail = Box<dyn std::error::Error>;

/// A standalone SVG document of the canvas size, drawn by `draw`.
fn render_svg(
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), Fail>,
) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        if let Err(e) = draw(&root) {
            // plotters only fails on backend errors, which a string backend does not have; keep
            // the message visible in the figure rather than panic.
            let _ = root.draw(&Text::new(
                format!("figure failed: {e}"),
                (10, 20),
                (FONT, LABEL_SIZE),
            ));
        }
        let _ = root.present();
    }
    svg
}

impl Chart {
    /// Renders the figure as a standalone SVG document.
    pub fn render(&self) -> String {
        render_svg(|root| self.draw(root))
    }

    fn axis_of(&self, right: bool) -> Axis {
        let log = if right { self.log_y2 } else { self.log_y };
        let values = self
            .series
            .iter()
            .filter(|s| s.right_axis == right)
            .flat_map(|s| {
                s.points.iter().enumerate().flat_map(|(i, &(_, y))| {
                    let e = s.errors.get(i).copied().unwrap_or(0.0);
                    [y - e, y, y + e]
                })
            });
        Axis::fit(log, values)
    }

    fn draw(&self, root: &DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), Fail> {
        root.fill(&WHITE)?;
        let has_legend = self.series.iter().any(|s| !s.label.is_empty());
        let (plot_area, legend_area) = if has_legend {
            root.split_horizontally(WIDTH - LEGEND_WIDTH)
        } else {
            root.split_horizontally(WIDTH)
        };
        let plot_area = draw_title(&plot_area, &self.title)?;
        let x = if self.x_categories.is_empty() {
            Axis::fit(
                self.log_x,
                self.series
                    .iter()
                    .flat_map(|s| s.points.iter().map(|p| p.0)),
            )
        } else {
            Axis::categorical(self.x_categories.len())
        };
        let y = self.axis_of(false);
        let y2 = self.y2_label.as_ref().map(|_| self.axis_of(true));
        let chart = ChartBuilder::on(&plot_area)
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .right_y_label_area_size(if y2.is_some() { 72 } else { 0 })
            .build_cartesian_2d(AxisCoord::from(x), AxisCoord::from(y))?;
        match (&self.y2_label, y2) {
            (Some(label), Some(y2)) => {
                // The second axis takes over the right label area; it must exist before the mesh
                // is drawn, or the left axis' labels are mirrored onto the right.
                let mut dual = chart.set_secondary_coord(AxisCoord::from(x), AxisCoord::from(y2));
                self.draw_primary(&mut dual, x, y)?;
                let fmt_y2 = |v: &f64| y2.label(*v);
                dual.configure_secondary_axes()
                    .y_desc(label.as_str())
                    .y_label_formatter(&fmt_y2)
                    .axis_desc_style((FONT, LABEL_SIZE))
                    .label_style((FONT, TICK_SIZE))
                    .draw()?;
                for s in self.series.iter().filter(|s| s.right_axis) {
                    let points = visible(s, x, y2);
                    let color = rgb(&s.color);
                    match s.style {
                        Style::Line => {
                            dual.draw_secondary_series(LineSeries::new(
                                points.iter().map(|p| p.0),
                                color.stroke_width(2),
                            ))?;
                        }
                        Style::Markers | Style::Hollow => {
                            let filled = s.style == Style::Markers;
                            dual.draw_secondary_series(
                                points.iter().map(|p| marker(p.0, color, filled)),
                            )?;
                        }
                    }
                }
            }
            _ => {
                let mut chart = chart;
                self.draw_primary(&mut chart, x, y)?;
            }
        }
        if has_legend {
            draw_legend(&legend_area, &self.series, self.y2_label.is_some())?;
        }
        Ok(())
    }

    /// The mesh with both axis descriptions, then every left-axis series with its labels.
    fn draw_primary(&self, chart: &mut Plot<'_, '_>, x: Axis, y: Axis) -> Result<(), Fail> {
        let fmt_x = |v: &f64| match self.x_categories.get(v.round().max(0.0) as usize) {
            Some(name) if x.categories > 0 => name.clone(),
            _ => x.label(*v),
        };
        let fmt_y = |v: &f64| y.label(*v);
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .x_label_formatter(&fmt_x)
            .y_label_formatter(&fmt_y)
            .axis_desc_style((FONT, LABEL_SIZE))
            .label_style((FONT, TICK_SIZE))
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()?;
        let mut placed: Vec<(i32, i32, i32, i32)> = Vec::new();
        for s in self.series.iter().filter(|s| !s.right_axis) {
            draw_series(chart, s, x, y, &mut placed)?;
        }
        Ok(())
    }
}

/// Draws the title (wrapped onto a second line when it is wider than the area) and returns the area
/// below it.
fn draw_title<'a>(
    area: &DrawingArea<SVGBackend<'a>, Shift>,
    title: &str,
) -> Result<DrawingArea<SVGBackend<'a>, Shift>, Fail> {
    let width = area.dim_in_pixel().0 as i32 - 20;
    let mut lines: Vec<String> = vec![String::new()];
    for word in title.split_whitespace() {
        let last = lines.last_mut().expect("one line");
        let candidate = if last.is_empty() {
            word.to_string()
        } else {
            format!("{last} {word}")
        };
        if text_width(&candidate, TITLE_SIZE) > width && !last.is_empty() {
            lines.push(word.to_string());
        } else {
            *last = candidate;
        }
    }
    let line_height = TITLE_SIZE as i32 + 6;
    for (i, line) in lines.iter().enumerate() {
        let x = (area.dim_in_pixel().0 as i32 - text_width(line, TITLE_SIZE)) / 2;
        area.draw(&Text::new(
            line.clone(),
            (x.max(4), 8 + i as i32 * line_height),
            (FONT, TITLE_SIZE).into_font().color(&BLACK),
        ))?;
    }
    let height = 14 + lines.len() as i32 * line_height;
    Ok(area.split_vertically(height).1)
}

fn rgb(hex: &str) -> RGBColor {
    let c = |i: usize| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
    RGBColor(c(1), c(3), c(5))
}

fn marker(at: (f64, f64), color: RGBColor, filled: bool) -> Circle<(f64, f64), i32> {
    let style = if filled {
        color.filled()
    } else {
        color.stroke_width(2)
    };
    Circle::new(at, MARKER, style)
}

/// The series' points in axis coordinates, with their index, where both coordinates can be drawn.
fn visible(s: &Series, x: Axis, y: Axis) -> Vec<((f64, f64), usize)> {
    s.points
        .iter()
        .enumerate()
        .filter_map(|(i, &(px, py))| Some(((transform(x.log, px)?, transform(y.log, py)?), i)))
        .collect()
}

type Plot<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<AxisCoord, AxisCoord>>;

fn draw_series(
    chart: &mut Plot<'_, '_>,
    s: &Series,
    x: Axis,
    y: Axis,
    placed: &mut Vec<(i32, i32, i32, i32)>,
) -> Result<(), Fail> {
    let color = rgb(&s.color);
    let points = visible(s, x, y);
    for &((px, _), i) in &points {
        let (Some(&e), Some(&v)) = (s.errors.get(i), s.points.get(i).map(|p| &p.1)) else {
            continue;
        };
        let (Some(lo), Some(hi)) = (transform(y.log, v - e), transform(y.log, v + e)) else {
            continue;
        };
        let cap = (x.hi - x.lo) * 0.006;
        let style = color.stroke_width(1);
        for path in [
            vec![(px, lo), (px, hi)],
            vec![(px - cap, lo), (px + cap, lo)],
            vec![(px - cap, hi), (px + cap, hi)],
        ] {
            chart.draw_series(std::iter::once(PathElement::new(path, style)))?;
        }
    }
    match s.style {
        Style::Line => {
            chart.draw_series(LineSeries::new(
                points.iter().map(|p| p.0),
                color.stroke_width(2),
            ))?;
        }
        Style::Markers | Style::Hollow => {
            let filled = s.style == Style::Markers;
            chart.draw_series(points.iter().map(|p| marker(p.0, color, filled)))?;
        }
    }
    for &(p, i) in &points {
        let Some(text) = s.point_labels.get(i).filter(|t| !t.is_empty()) else {
            continue;
        };
        let (cx, cy) = chart.backend_coord(&p);
        let (w, h) = (text_width(text, POINT_LABEL_SIZE), POINT_LABEL_SIZE as i32);
        let (plot_x, plot_y) = chart.plotting_area().get_pixel_range();
        // Right, left, above, below the marker, then the four diagonals: the first spot that
        // overlaps no placed label and stays inside the plot.
        let (gap, far) = (MARKER + 3, MARKER + 3 + h);
        let spots = [
            (cx + gap, cy - h / 2),
            (cx - gap - w, cy - h / 2),
            (cx - w / 2, cy - gap - h),
            (cx - w / 2, cy + gap),
            (cx + gap, cy - far),
            (cx + gap, cy + far - h),
            (cx - gap - w, cy - far),
            (cx - gap - w, cy + far - h),
        ];
        let free = spots.into_iter().find(|&(lx, ly)| {
            let inside = lx >= plot_x.start
                && lx + w <= plot_x.end
                && ly >= plot_y.start
                && ly + h <= plot_y.end;
            inside
                && placed
                    .iter()
                    .all(|&(ax, ay, bx, by)| lx + w < ax || lx > bx || ly + h < ay || ly > by)
        });
        if let Some((lx, ly)) = free {
            placed.push((lx, ly, lx + w, ly + h));
            chart.plotting_area().strip_coord_spec().draw(&Text::new(
                text.clone(),
                (lx - plot_x.start, ly - plot_y.start),
                (FONT, POINT_LABEL_SIZE).into_font().color(&color),
            ))?;
        }
    }
    Ok(())
}

/// The legend, one entry per labelled series, in a panel of its own.
fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    series: &[Series],
    two_axes: bool,
) -> Result<(), Fail> {
    let mut y = 60;
    for s in series.iter().filter(|s| !s.label.is_empty()) {
        let color = rgb(&s.color);
        match s.style {
            Style::Line => {
                area.draw(&PathElement::new(
                    vec![(8, y + 6), (34, y + 6)],
                    color.stroke_width(2),
                ))?;
            }
            Style::Markers | Style::Hollow => {
                let style = if s.style == Style::Markers {
                    color.filled()
                } else {
                    color.stroke_width(2)
                };
                area.draw(&Circle::new((21, y + 6), MARKER, style))?;
            }
        }
        let axis = if two_axes && s.right_axis {
            " (right axis)"
        } else {
            ""
        };
        // Long labels wrap inside the panel.
        let mut line = String::new();
        let mut lines = Vec::new();
        for word in format!("{}{axis}", s.label).split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if text_width(&candidate, TICK_SIZE) > LEGEND_WIDTH as i32 - 50 && !line.is_empty() {
                lines.push(std::mem::replace(&mut line, word.to_string()));
            } else {
                line = candidate;
            }
        }
        lines.push(line);
        for l in lines {
            area.draw(&Text::new(l, (42, y), (FONT, TICK_SIZE).into_font()))?;
            y += TICK_SIZE as i32 + 4;
        }
        y += 6;
    }
    Ok(())
}

/// A grid of values over two discrete settings (say weight bits by activation bits), one panel per
/// source (ours, the paper's) side by side, each cell coloured on one diverging scale shared by all
/// panels (red below zero, blue above) and labelled with its value.
#[derive(Debug, Clone)]
pub struct HeatMap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_values: Vec<String>,
    pub y_values: Vec<String>,
    /// `(panel title, cells[y][x])`; a missing cell stays grey.
    pub panels: Vec<(String, Vec<Vec<Option<f64>>>)>,
    /// What the numbers are, with units.
    pub value_label: String,
}

impl HeatMap {
    /// Renders the panels as a standalone SVG document.
    pub fn render(&self) -> String {
        render_svg(|root| self.draw(root))
    }

    fn draw(&self, root: &DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), Fail> {
        root.fill(&WHITE)?;
        let area = draw_title(root, &self.title)?;
        let area = area.split_vertically(area.dim_in_pixel().1 as i32 - 40).0;
        let scale = self
            .panels
            .iter()
            .flat_map(|(_, rows)| rows.iter().flatten().flatten())
            .fold(0.0_f64, |m, v| m.max(v.abs()))
            .max(f64::MIN_POSITIVE);
        let n = self.panels.len().max(1);
        let (nx, ny) = (
            self.x_values.len().max(1) as i32,
            self.y_values.len().max(1) as i32,
        );
        for (panel, (name, rows)) in area.split_evenly((1, n)).iter().zip(&self.panels) {
            let (w, h) = panel.dim_in_pixel();
            let (left, top, right, bottom) = (70, 30, 20, 50);
            let cell_w = (w as i32 - left - right) / nx;
            let cell_h = (h as i32 - top - bottom) / ny;
            let centered = |text: &str, size: u32, x: i32, y: i32| {
                Text::new(
                    text.to_string(),
                    (x - text_width(text, size) / 2, y - size as i32 / 2),
                    (FONT, size).into_font(),
                )
            };
            panel.draw(&centered(name, LABEL_SIZE, left + nx * cell_w / 2, 12))?;
            for (yi, row) in rows.iter().enumerate() {
                for (xi, value) in row.iter().enumerate() {
                    let (x0, y0) = (left + xi as i32 * cell_w, top + yi as i32 * cell_h);
                    let fill = match value {
                        None => RGBColor(220, 220, 220),
                        Some(v) => {
                            let t = (v.abs() / scale).min(1.0);
                            let fade = |c: u8| (255.0 - t * (255.0 - f64::from(c))).round() as u8;
                            if *v < 0.0 {
                                RGBColor(fade(214), fade(39), fade(40))
                            } else {
                                RGBColor(fade(31), fade(119), fade(180))
                            }
                        }
                    };
                    panel.draw(&Rectangle::new(
                        [(x0, y0), (x0 + cell_w - 2, y0 + cell_h - 2)],
                        fill.filled(),
                    ))?;
                    let text = value.map_or_else(|| "–".to_string(), |v| format!("{v:.1}"));
                    panel.draw(&centered(
                        &text,
                        TICK_SIZE,
                        x0 + cell_w / 2,
                        y0 + cell_h / 2,
                    ))?;
                }
            }
            for (xi, label) in self.x_values.iter().enumerate() {
                let x = left + xi as i32 * cell_w + cell_w / 2;
                panel.draw(&centered(label, TICK_SIZE, x, top + ny * cell_h + 12))?;
            }
            for (yi, label) in self.y_values.iter().enumerate() {
                let y = top + yi as i32 * cell_h + cell_h / 2;
                panel.draw(&centered(label, TICK_SIZE, left - 16, y))?;
            }
            let x_label = &self.x_label;
            panel.draw(&centered(
                x_label,
                LABEL_SIZE,
                left + nx * cell_w / 2,
                top + ny * cell_h + 34,
            ))?;
            panel.draw(&Text::new(
                self.y_label.clone(),
                (
                    6,
                    top + ny * cell_h / 2 + text_width(&self.y_label, LABEL_SIZE) / 2,
                ),
                (FONT, LABEL_SIZE)
                    .into_font()
                    .transform(FontTransform::Rotate270),
            ))?;
        }
        let note = format!(
            "cells: {}; colour: red below 0, blue above, full at |value| = {scale:.1}",
            self.value_label,
        );
        root.draw(&Text::new(
            note,
            (16, HEIGHT as i32 - 24),
            (FONT, TICK_SIZE).into_font(),
        ))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_one_two_five_steps_and_plain_numbers() {
        assert_eq!(nice_ticks(0.0, 10.0), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = nice_ticks(70.1, 76.4);
        assert!(t.len() >= 4 && t.len() <= 10, "{t:?}");
        let step = t[1] - t[0];
        assert!(
            [0.5, 1.0, 2.0].iter().any(|s| (step - s).abs() < 1e-9),
            "{t:?}"
        );
        assert_eq!(tick_label(0.1 + 0.2), "0.3");
        assert_eq!(tick_label(10f64.powf(-1.0)), "0.1");
        assert_eq!(tick_label(1000.0), "1000");
        assert_eq!(tick_label(2.5e-7), "2.5e-7");
    }

    #[test]
    fn log_axes_tick_at_decades_or_at_one_two_five() {
        assert_eq!(log_ticks(-3.1, 3.1), [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]);
        let few: Vec<String> = log_ticks(-0.9, 0.6)
            .iter()
            .map(|t| tick_label(10f64.powf(*t)))
            .collect();
        assert_eq!(few, ["0.2", "0.5", "1", "2"]);
        let narrow: Vec<String> = log_ticks(0.2f64.log10(), 0.28f64.log10())
            .iter()
            .map(|t| tick_label(10f64.powf(*t)))
            .collect();
        assert!(narrow.len() >= 3, "{narrow:?}");
    }

    #[test]
    fn renders_every_part_and_skips_points_a_log_axis_cannot_show() {
        let chart = Chart {
            title: "A title long enough that it has to wrap onto a second line of the figure instead of running off the canvas".into(),
            x_label: "latency (ms)".into(),
            y_label: "top-1 (%)".into(),
            log_x: true,
            y2_label: Some("FL".into()),
            series: vec![
                Series::labelled_markers(
                    "measured",
                    vec![((0.2, 70.0), "a".into()), ((0.0, 71.0), "skipped".into()), ((2.0, 75.0), "b".into())],
                    color(0),
                )
                .with_errors(vec![0.5, 0.5, 0.5]),
                Series::published("published", vec![(0.3, 71.0)], color(1)),
                Series::line("FL", vec![(0.2, 1.0), (2.0, 3.0)], color(2)).on_right_axis(),
            ],
            ..Default::default()
        };
        let svg = chart.render();
        assert!(svg.starts_with("<svg"), "{svg}");
        // Every text element's content, trimmed.
        let texts: Vec<&str> = svg
            .split("<text")
            .skip(1)
            .filter_map(|t| {
                t.split_once('>')
                    .and_then(|(_, rest)| rest.split_once("</text>"))
            })
            .map(|(content, _)| content.trim())
            .collect();
        assert!(
            !texts.iter().any(|t| t.starts_with("figure failed")),
            "{texts:?}"
        );
        for want in [
            "measured",
            "published",
            "FL (right axis)",
            "b",
            "latency (ms)",
            "FL",
        ] {
            assert!(texts.contains(&want), "{want} missing from {texts:?}");
        }
        assert!(
            !texts.contains(&"skipped"),
            "a point at x = 0 cannot sit on a log axis"
        );
        assert!(
            texts.contains(&"1") && texts.contains(&"0.2"),
            "plain tick numbers: {texts:?}"
        );
        assert!(
            texts.iter().all(|t| !t.contains("e-0.")),
            "no fractional exponents"
        );
        assert!(
            texts.iter().any(|t| t.starts_with("running off")),
            "the title wraps"
        );
    }

    #[test]
    fn heat_map_labels_every_cell_of_every_panel() {
        let map = HeatMap {
            title: "bits".into(),
            x_label: "activation bits".into(),
            y_label: "weight bits".into(),
            x_values: vec!["8".into(), "4".into()],
            y_values: vec!["8".into(), "4".into()],
            panels: vec![
                (
                    "ours".into(),
                    vec![vec![Some(0.5), Some(-2.0)], vec![Some(-6.25), None]],
                ),
                (
                    "paper".into(),
                    vec![vec![Some(0.0), Some(-1.0)], vec![Some(-3.0), Some(-9.0)]],
                ),
            ],
            value_label: "relative change (%)".into(),
        };
        let svg = map.render();
        assert!(!svg.contains("figure failed"), "{svg}");
        for want in [
            "ours",
            "paper",
            "0.5",
            "-6.2",
            "-9.0",
            "–",
            "weight bits",
            "activation bits",
        ] {
            assert!(svg.contains(want), "{want} missing");
        }
    }
}
