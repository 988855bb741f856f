//! A minimal hand-written SVG chart (log or linear axes, polylines, markers with optional labels):
//! enough to redraw the papers' figures (error curves, accuracy against latency) without a plotting
//! dependency. Every suite draws through this one chart.

use std::fmt::Write as _;

/// One data series.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: String,
    /// Draw markers instead of a line.
    pub markers: bool,
    /// Text beside each marker (same order as `points`; empty for none).
    pub point_labels: Vec<String>,
}

impl Series {
    /// A series drawn as a line.
    pub fn line(label: &str, points: Vec<(f64, f64)>, color: String) -> Self {
        Series {
            label: label.into(),
            points,
            color,
            markers: false,
            point_labels: Vec::new(),
        }
    }

    /// A series drawn as labelled markers, one label per point.
    pub fn labelled_markers(label: &str, points: Vec<((f64, f64), String)>, color: String) -> Self {
        let (points, point_labels) = points.into_iter().unzip();
        Series {
            label: label.into(),
            points,
            color,
            markers: true,
            point_labels,
        }
    }
}

/// One panel with its axes.
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
}

const W: f64 = 640.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 50.0;

/// A palette of distinguishable colours, cycled by index.
pub fn color(i: usize) -> String {
    const P: [&str; 9] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#17becf",
    ];
    P[i % P.len()].to_string()
}

impl Chart {
    /// Renders the chart as a standalone SVG document. Non-finite points (and non-positive ones on a
    /// log axis) are skipped.
    pub fn render(&self) -> String {
        let tx = |v: f64| if self.log_x { v.log10() } else { v };
        let ty = |v: f64| if self.log_y { v.log10() } else { v };
        let ok = |(x, y): (f64, f64)| {
            x.is_finite() && y.is_finite() && (!self.log_x || x > 0.0) && (!self.log_y || y > 0.0)
        };
        let pts: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|&p| ok(p))
            .map(|(x, y)| (tx(x), ty(y)))
            .collect();
        let (mut x0, mut x1, mut y0, mut y1) = pts.iter().fold(
            (
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ),
            |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
        );
        if pts.is_empty() {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        if y1 <= y0 {
            y1 = y0 + 1.0;
        }
        let pw = W - LEFT - RIGHT;
        let ph = H - TOP - BOTTOM;
        let px = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
        let py = |y: f64| TOP + ph - (y - y0) / (y1 - y0) * ph;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="20" text-anchor="middle" font-size="13">{}</text>"#,
            LEFT + pw / 2.0,
            escape(&self.title)
        );
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
        );
        for i in 0..=5 {
            let f = f64::from(i) / 5.0;
            let (vx, vy) = (x0 + f * (x1 - x0), y0 + f * (y1 - y0));
            let lx = if self.log_x {
                format!("1e{vx:.1}")
            } else {
                format!("{vx:.3}")
            };
            let ly = if self.log_y {
                format!("1e{vy:.1}")
            } else {
                format!("{vy:.3}")
            };
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{lx}</text>"#,
                px(vx),
                TOP + ph + 16.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{ly}</text>"#,
                LEFT - 4.0,
                py(vy) + 4.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + pw / 2.0,
            H - 12.0,
            escape(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text transform="translate(16,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            TOP + ph / 2.0,
            escape(&self.y_label)
        );
        for (i, series) in self.series.iter().enumerate() {
            let p: Vec<(f64, f64, &str)> = series
                .points
                .iter()
                .enumerate()
                .filter(|&(_, &p)| ok(p))
                .map(|(j, &(x, y))| {
                    let label = series.point_labels.get(j).map_or("", String::as_str);
                    (px(tx(x)), py(ty(y)), label)
                })
                .collect();
            if series.markers {
                for (x, y, label) in &p {
                    let _ = writeln!(
                        s,
                        r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{}"/>"#,
                        series.color
                    );
                    if !label.is_empty() {
                        let _ = writeln!(
                            s,
                            r#"<text x="{:.1}" y="{:.1}" fill="{}">{}</text>"#,
                            x + 5.0,
                            y - 5.0,
                            series.color,
                            escape(label)
                        );
                    }
                }
            } else if !p.is_empty() {
                let d: Vec<String> = p.iter().map(|(x, y, _)| format!("{x:.1},{y:.1}")).collect();
                let _ = writeln!(
                    s,
                    r#"<polyline fill="none" stroke="{}" stroke-width="1.3" points="{}"/>"#,
                    series.color,
                    d.join(" ")
                );
            }
            let ly = TOP + 10.0 + 15.0 * i as f64;
            let _ = writeln!(
                s,
                r#"<rect x="{:.1}" y="{:.1}" width="12" height="3" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                W - RIGHT + 10.0,
                ly - 3.0,
                series.color,
                W - RIGHT + 26.0,
                ly + 1.0,
                escape(&series.label)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_series_and_skips_bad_points() {
        let c = Chart {
            title: "a < b".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_x: true,
            log_y: false,
            series: vec![
                Series::line(
                    "s",
                    vec![(1.0, 1.0), (10.0, 2.0), (0.0, 3.0), (100.0, f64::NAN)],
                    color(0),
                ),
                Series::labelled_markers("m", vec![((5.0, 1.5), "p & q".into())], color(1)),
            ],
        };
        let svg = c.render();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("a &lt; b"));
        let line = svg.lines().find(|l| l.starts_with("<polyline")).unwrap();
        assert_eq!(line.matches(',').count(), 2, "two valid points: {line}");
        assert!(
            svg.contains(">p &amp; q</text>"),
            "marker label drawn and escaped"
        );
    }
}
