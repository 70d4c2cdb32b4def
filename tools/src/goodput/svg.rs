//! Goodput as an SVG line chart, written by hand: one step line per series (or points joined by
//! straight lines: a step of no length is a point), vertical marks for events (a cut, a restore),
//! dashed horizontal reference lines, labelled axes.

use std::fmt::Write;

/// Colours given to the series in order (a mark or reference line takes its series' colour).
const PALETTE: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 480.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

/// How a series is drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// Index into the palette; None: the series' place in the chart.
    pub colour: Option<usize>,
    /// 0: a solid line; 1: dashed; 2 or more: dotted.
    pub dashes: u8,
    /// A dot on the end of every step (for points: on every point).
    pub dots: bool,
}

/// A series: its goodput as steps, one `(start, end, Mbit/s)` per interval.
#[derive(Debug, Clone)]
pub struct Line {
    /// Shown in the legend.
    pub name: String,
    /// The intervals, in x order; one with `start == end` is a point, joined to its neighbours.
    pub steps: Vec<(f64, f64, f64)>,
    /// Instants marked by a vertical line, with their label (e.g. "cut").
    pub marks: Vec<(String, f64)>,
    /// Goodput levels drawn dashed across the chart, with their label.
    pub levels: Vec<(String, f64)>,
    /// Colour, dashes and dots.
    pub style: Style,
}

/// The chart: a title and its series; the axes fit them.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Printed above the plot.
    pub title: String,
    /// The x axis' label, e.g. "time (s)".
    pub x_label: String,
    /// Drawn in order, each in the next colour.
    pub lines: Vec<Line>,
}

/// A round step for axis ticks: 1, 2 or 5 times a power of ten, giving at most about `ticks`
/// ticks up to `max`.
pub fn tick_step(max: f64, ticks: u32) -> f64 {
    if max.is_nan() || max <= 0.0 {
        return 1.0;
    }
    let raw = max / f64::from(ticks.max(1));
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&s| s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A tick label: no decimals unless the step has them.
fn tick_label(v: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The chart as an SVG document.
pub fn render(chart: &Chart) -> String {
    let all_x = chart.lines.iter().flat_map(|l| {
        l.steps
            .iter()
            .map(|s| s.1)
            .chain(l.marks.iter().map(|m| m.1))
    });
    let x_max = all_x.fold(1.0, f64::max).ceil();
    let all_y = chart.lines.iter().flat_map(|l| {
        l.steps
            .iter()
            .map(|s| s.2)
            .chain(l.levels.iter().map(|v| v.1))
    });
    let y_top = all_y.fold(1.0, f64::max) * 1.05;
    let (x_step, y_step) = (tick_step(x_max, 12), tick_step(y_top, 8));
    let y_max = (y_top / y_step).ceil() * y_step;
    let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let px = |x: f64| LEFT + x.clamp(0.0, x_max) / x_max * pw;
    let py = |y: f64| TOP + ph - y.clamp(0.0, y_max) / y_max * ph;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" font-size="15" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        escape(&chart.title)
    );
    // Grid, ticks and axis labels.
    for k in 0..=(x_max / x_step + 1e-9) as u32 {
        let x = f64::from(k) * x_step;
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="#e4e4e4"/><text x="{0:.1}" y="{3}" text-anchor="middle">{4}</text>"##,
            px(x),
            TOP,
            TOP + ph,
            TOP + ph + 18.0,
            tick_label(x, x_step)
        );
    }
    for k in 0..=(y_max / y_step + 1e-9) as u32 {
        let y = f64::from(k) * y_step;
        let _ = writeln!(
            s,
            r##"<line x1="{0}" y1="{1:.1}" x2="{2}" y2="{1:.1}" stroke="#e4e4e4"/><text x="{3}" y="{4:.1}" text-anchor="end">{5}</text>"##,
            LEFT,
            py(y),
            LEFT + pw,
            LEFT - 6.0,
            py(y) + 4.0,
            tick_label(y, y_step)
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        HEIGHT - 16.0,
        escape(&chart.x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{0}" text-anchor="middle" transform="rotate(-90 18 {0})">goodput (Mbit/s)</text>"#,
        TOP + ph / 2.0
    );

    let mut labelled = Vec::new();
    let mut level_label_ys: Vec<f64> = Vec::new();
    for (i, line) in chart.lines.iter().enumerate() {
        let colour = PALETTE[line.style.colour.unwrap_or(i) % PALETTE.len()];
        let dashes = match line.style.dashes {
            0 => "",
            1 => r#" stroke-dasharray="6 4""#,
            _ => r#" stroke-dasharray="2 3""#,
        };
        for (label, at) in &line.marks {
            let _ = writeln!(
                s,
                r#"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="{3}" stroke-dasharray="2 3"/>"#,
                px(*at),
                TOP,
                TOP + ph,
                colour
            );
            // One label per kind of mark: the series' marks of one kind lie close together.
            if !labelled.contains(label) {
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                    px(*at),
                    TOP - 6.0,
                    escape(label)
                );
                labelled.push(label.clone());
            }
        }
        for (label, level) in &line.levels {
            // Labels of close levels go one under the other.
            let mut label_y = py(*level) + 4.0;
            while level_label_ys.iter().any(|y| (y - label_y).abs() < 13.0) {
                label_y += 13.0;
            }
            level_label_ys.push(label_y);
            let _ = writeln!(
                s,
                r#"<line x1="{LEFT}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="{2}" stroke-dasharray="8 4" stroke-opacity="0.7"/><text x="{3}" y="{4:.1}" fill="{2}">{5}</text>"#,
                py(*level),
                LEFT + pw,
                colour,
                LEFT + pw + 6.0,
                label_y,
                escape(label)
            );
        }
        let points: Vec<String> = line
            .steps
            .iter()
            .flat_map(|&(a, b, v)| [(a, v), (b, v)])
            .map(|(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.6"{} points="{}"><title>{}</title></polyline>"#,
            colour,
            dashes,
            points.join(" "),
            escape(&line.name)
        );
        if line.style.dots {
            for &(_, b, v) in &line.steps {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                    px(b),
                    py(v),
                    colour
                );
            }
        }
        let ly = TOP + 14.0 + 20.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="{3}" stroke-width="3"{4}/><text x="{5}" y="{6}">{7}</text>"#,
            LEFT + pw + 10.0,
            ly,
            LEFT + pw + 34.0,
            colour,
            dashes,
            LEFT + pw + 40.0,
            ly + 4.0,
            escape(&line.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_steps_are_round() {
        assert_eq!(tick_step(9.0, 12), 1.0);
        assert_eq!(tick_step(330.0, 8), 50.0);
        assert_eq!(tick_step(100.0, 8), 20.0);
        assert_eq!(tick_step(1.0, 10), 0.1);
        assert_eq!(tick_step(0.0, 8), 1.0);
    }

    fn chart() -> Chart {
        Chart {
            title: "braid & kernel <failover>".into(),
            x_label: "time (s)".into(),
            lines: vec![
                Line {
                    name: "braid".into(),
                    steps: vec![(0.0, 1.0, 100.0), (1.0, 2.0, 200.0)],
                    marks: vec![("cut".into(), 1.0), ("restore".into(), 1.5)],
                    levels: vec![("90% of isp2 alone".into(), 150.0)],
                    style: Style::default(),
                },
                Line {
                    name: "kernel".into(),
                    steps: vec![(0.0, 2.0, 50.0)],
                    marks: vec![("cut".into(), 1.01)],
                    levels: vec![("90% (kernel)".into(), 151.0)],
                    style: Style::default(),
                },
            ],
        }
    }

    #[test]
    fn svg_has_the_series_marks_levels_and_axes() {
        let svg = render(&chart());
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(svg.ends_with("</svg>\n"));
        // x: 0..2 s over 700 px from 70; y: 0..250 (210 * 1.05 rounded up to a step of 50 is 250,
        // with the highest value 200) over 370 px from 50.
        assert!(
            svg.contains(
                r#"points="70.0,272.0 420.0,272.0 420.0,124.0 770.0,124.0"><title>braid</title>"#
            ),
            "{svg}"
        );
        assert!(
            svg.contains(r#"points="70.0,346.0 770.0,346.0"><title>kernel</title>"#),
            "{svg}"
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        // Three marks, their labels once per kind.
        assert_eq!(svg.matches("stroke-dasharray=\"2 3\"").count(), 3);
        assert_eq!(svg.matches(">cut</text>").count(), 1);
        assert_eq!(svg.matches(">restore</text>").count(), 1);
        assert!(
            svg.contains(r##"y="202.0" fill="#1f77b4">90% of isp2 alone</text>"##),
            "{svg}"
        );
        // A level close to another one has its label moved down until 13 px apart.
        assert!(
            svg.contains(r##"y="226.5" fill="#d62728">90% (kernel)</text>"##),
            "{svg}"
        );
        assert!(
            svg.contains(">time (s)</text>") && svg.contains(">goodput (Mbit/s)</text>"),
            "{svg}"
        );
        assert!(svg.contains(">braid &amp; kernel &lt;failover&gt;</text>"));
        assert!(
            svg.contains(">250</text>") && svg.contains(">2.0</text>"),
            "{svg}"
        );
    }
}
