//! Charts as inline SVG, written by hand: bars, stacked bars, a line with a target, horizontal bars against a
//! target. Every text is escaped; every mark has a `<title>` (shown on hover) with its exact figure.

use std::fmt::Write as _;

use super::html::esc;

/// Colours shared with the HTML styles.
pub mod colour {
    /// Main series.
    pub const PRIMARY: &str = "#1f5fa8";
    /// Target met / good.
    pub const OK: &str = "#2e7d32";
    /// Target missed / bad.
    pub const BAD: &str = "#c62828";
    /// Small n / no judgement.
    pub const MUTED: &str = "#9e9e9e";
    /// Warning.
    pub const WARN: &str = "#ef6c00";
    /// Second series.
    pub const SECONDARY: &str = "#7fa7d6";
    /// Axis and grid.
    pub const GRID: &str = "#d0d7de";
    /// Text.
    pub const TEXT: &str = "#333333";
}

const W: f64 = 680.0;
const FONT: &str = "font-family=\"inherit\" font-size=\"11\"";

/// A nice axis step (1, 2 or 5 × 10ⁿ) giving about `ticks` intervals up to `max`.
fn nice_step(max: f64, ticks: f64, integer: bool) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let raw = max / ticks;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    } * mag;
    if integer { step.max(1.0) } else { step }
}

fn fmt_num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 { format!("{v:.0}") } else { format!("{v:.1}") }
}

fn open(out: &mut String, h: f64, title: &str) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {W} {h}\" width=\"100%\" \
         role=\"img\" aria-label=\"{t}\"><title>{t}</title>",
        t = esc(title)
    );
}

/// Y axis with grid lines from 0 (or `min`) to `max`, returns the value → y mapping parameters.
struct YAxis {
    min: f64,
    max: f64,
    top: f64,
    bottom: f64,
}

impl YAxis {
    fn y(&self, v: f64) -> f64 {
        let span = (self.max - self.min).max(f64::EPSILON);
        self.bottom - (v.clamp(self.min, self.max) - self.min) / span * (self.bottom - self.top)
    }

    fn draw(&self, out: &mut String, left: f64, right: f64, step: f64, suffix: &str) {
        let mut v = self.min;
        while v <= self.max + 1e-9 {
            let y = self.y(v);
            let _ = write!(
                out,
                "<line x1=\"{left}\" x2=\"{right}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{g}\" stroke-width=\"0.6\"/>\
                 <text x=\"{tx}\" y=\"{ty:.1}\" text-anchor=\"end\" {FONT} fill=\"{c}\">{n}{s}</text>",
                g = colour::GRID,
                tx = left - 4.0,
                ty = y + 3.5,
                c = colour::TEXT,
                n = fmt_num(v),
                s = esc(suffix),
            );
            v += step;
        }
    }
}

/// One bar.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Category label under the bar.
    pub label: String,
    /// Value.
    pub value: f64,
    /// Fill colour.
    pub colour: &'static str,
    /// Hover text.
    pub title: String,
}

/// A vertical bar chart; value labels are printed on the bars when there are few enough.
pub fn bar_chart(title: &str, bars: &[Bar], unit: &str) -> String {
    let h = 230.0;
    let (left, right, top, bottom) = (44.0, W - 10.0, 26.0, h - 30.0);
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let step = nice_step(max, 5.0, true);
    let axis = YAxis { min: 0.0, max: (max / step).ceil().max(1.0) * step, top, bottom };
    let mut out = String::new();
    open(&mut out, h, title);
    heading(&mut out, title);
    axis.draw(&mut out, left, right, step, "");
    let n = bars.len().max(1) as f64;
    let slot = (right - left) / n;
    let bw = (slot * 0.72).max(1.0);
    let label_every = bars.len().div_ceil(12).max(1);
    for (i, b) in bars.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bw) / 2.0;
        let y = axis.y(b.value);
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{hh:.1}\" fill=\"{c}\"><title>{t}</title></rect>",
            hh = (bottom - y).max(0.0),
            c = b.colour,
            t = esc(&b.title),
        );
        if bars.len() <= 24 && b.value > 0.0 {
            let _ = write!(
                out,
                "<text x=\"{cx:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" font-family=\"inherit\" font-size=\"9\" \
                 fill=\"{c}\">{v}{u}</text>",
                cx = x + bw / 2.0,
                ty = y - 3.0,
                c = colour::TEXT,
                v = fmt_num(b.value),
                u = esc(unit),
            );
        }
        if i % label_every == 0 {
            let _ = write!(
                out,
                "<text x=\"{cx:.1}\" y=\"{ly:.1}\" text-anchor=\"middle\" {FONT} fill=\"{c}\">{l}</text>",
                cx = x + bw / 2.0,
                ly = bottom + 14.0,
                c = colour::TEXT,
                l = esc(&b.label),
            );
        }
    }
    axis_line(&mut out, left, right, bottom);
    out.push_str("</svg>");
    out
}

fn heading(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<text x=\"4\" y=\"15\" font-family=\"inherit\" font-size=\"13\" font-weight=\"bold\" fill=\"{c}\">{t}</text>",
        c = colour::TEXT,
        t = esc(title)
    );
}

fn axis_line(out: &mut String, left: f64, right: f64, y: f64) {
    let _ = write!(
        out,
        "<line x1=\"{left}\" x2=\"{right}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{c}\"/>",
        c = colour::TEXT
    );
}

/// One series of a stacked bar chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Fill colour.
    pub colour: &'static str,
    /// One value per category.
    pub values: Vec<f64>,
}

/// Stacked vertical bars with a legend.
pub fn stacked_bar_chart(title: &str, categories: &[String], series: &[Series]) -> String {
    let h = 250.0;
    let (left, right, top, bottom) = (44.0, W - 10.0, 44.0, h - 30.0);
    let totals: Vec<f64> =
        (0..categories.len()).map(|i| series.iter().map(|s| s.values.get(i).copied().unwrap_or(0.0)).sum()).collect();
    let max = totals.iter().copied().fold(0.0, f64::max);
    let step = nice_step(max, 5.0, true);
    let axis = YAxis { min: 0.0, max: (max / step).ceil().max(1.0) * step, top, bottom };
    let mut out = String::new();
    open(&mut out, h, title);
    heading(&mut out, title);
    legend(&mut out, series.iter().map(|s| (s.label.as_str(), s.colour)), 33.0);
    axis.draw(&mut out, left, right, step, "");
    let slot = (right - left) / categories.len().max(1) as f64;
    let bw = (slot * 0.6).max(1.0);
    for (i, cat) in categories.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bw) / 2.0;
        let mut acc = 0.0;
        for s in series {
            let v = s.values.get(i).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let (y0, y1) = (axis.y(acc), axis.y(acc + v));
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y1:.1}\" width=\"{bw:.1}\" height=\"{hh:.1}\" fill=\"{c}\">\
                 <title>{t}</title></rect>",
                hh = (y0 - y1).max(0.0),
                c = s.colour,
                t = esc(&format!("{cat} · {}: {}", s.label, fmt_num(v))),
            );
            acc += v;
        }
        let _ = write!(
            out,
            "<text x=\"{cx:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" font-family=\"inherit\" font-size=\"10\" \
             fill=\"{c}\">{v}</text><text x=\"{cx:.1}\" y=\"{ly:.1}\" text-anchor=\"middle\" {FONT} fill=\"{c}\">{l}</text>",
            cx = x + bw / 2.0,
            ty = axis.y(acc) - 3.0,
            ly = bottom + 14.0,
            c = colour::TEXT,
            v = fmt_num(acc),
            l = esc(cat),
        );
    }
    axis_line(&mut out, left, right, bottom);
    out.push_str("</svg>");
    out
}

fn legend<'a>(out: &mut String, items: impl Iterator<Item = (&'a str, &'a str)>, y: f64) {
    let mut x = 44.0;
    for (label, c) in items {
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{ry:.1}\" width=\"10\" height=\"10\" fill=\"{c}\"/>\
             <text x=\"{tx:.1}\" y=\"{ty:.1}\" {FONT} fill=\"{t}\">{l}</text>",
            ry = y - 9.0,
            tx = x + 14.0,
            ty = y,
            t = colour::TEXT,
            l = esc(label),
        );
        x += 26.0 + label.chars().map(|ch| if ch.is_ascii() { 6.0 } else { 11.0 }).sum::<f64>();
    }
}

/// One point of a line chart (`None`: no data that day).
#[derive(Debug, Clone)]
pub struct Point {
    /// Category label.
    pub label: String,
    /// Value, percent.
    pub value: Option<f64>,
    /// Drawn hollow: too few observations to trust.
    pub small_n: bool,
    /// Hover text.
    pub title: String,
}

/// A percentage line with an optional dashed target line. The y axis starts below the lowest value (or target)
/// so differences of a few points stay visible; it always ends at 100%.
pub fn line_chart(title: &str, points: &[Point], target: Option<(f64, &str)>) -> String {
    let h = 230.0;
    let (left, right, top, bottom) = (44.0, W - 14.0, 26.0, h - 30.0);
    let low = points.iter().filter_map(|p| p.value).chain(target.map(|t| t.0)).fold(100.0, f64::min);
    let min = ((low - 5.0) / 5.0).floor().max(0.0) * 5.0;
    let step = nice_step(100.0 - min, 5.0, false);
    let axis = YAxis { min, max: 100.0, top, bottom };
    let mut out = String::new();
    open(&mut out, h, title);
    heading(&mut out, title);
    axis.draw(&mut out, left, right, step, "%");
    let n = points.len().max(1) as f64;
    let slot = (right - left) / n;
    let x = |i: usize| left + slot * (i as f64 + 0.5);
    if let Some((t, label)) = target {
        let y = axis.y(t);
        let _ = write!(
            out,
            "<line x1=\"{left}\" x2=\"{right}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{c}\" stroke-dasharray=\"5 4\" \
             stroke-width=\"1.2\"/><text x=\"{right}\" y=\"{ty:.1}\" text-anchor=\"end\" {FONT} fill=\"{c}\">{l}</text>",
            c = colour::WARN,
            ty = y - 4.0,
            l = esc(label),
        );
    }
    let mut path = String::new();
    let mut pen_down = false;
    for (i, p) in points.iter().enumerate() {
        match p.value {
            Some(v) => {
                let _ = write!(path, "{}{:.1},{:.1} ", if pen_down { 'L' } else { 'M' }, x(i), axis.y(v));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    if !path.is_empty() {
        let _ = write!(
            out,
            "<path d=\"{}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"2\"/>",
            path.trim_end(),
            c = colour::PRIMARY
        );
    }
    let label_every = points.len().div_ceil(12).max(1);
    for (i, p) in points.iter().enumerate() {
        if let Some(v) = p.value {
            let fill = if p.small_n { "#ffffff" } else { colour::PRIMARY };
            let _ = write!(
                out,
                "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"3.2\" fill=\"{fill}\" stroke=\"{c}\" stroke-width=\"1.5\">\
                 <title>{t}</title></circle>",
                cx = x(i),
                cy = axis.y(v),
                c = colour::PRIMARY,
                t = esc(&p.title),
            );
        }
        if i % label_every == 0 {
            let _ = write!(
                out,
                "<text x=\"{cx:.1}\" y=\"{ly:.1}\" text-anchor=\"middle\" {FONT} fill=\"{c}\">{l}</text>",
                cx = x(i),
                ly = bottom + 14.0,
                c = colour::TEXT,
                l = esc(&p.label),
            );
        }
    }
    axis_line(&mut out, left, right, bottom);
    out.push_str("</svg>");
    out
}

/// One horizontal bar against a target.
#[derive(Debug, Clone)]
pub struct RateBar {
    /// Label at the left.
    pub label: String,
    /// Value, percent (`None`: no data).
    pub value: Option<f64>,
    /// Meets the target (`None`: no judgement).
    pub meets: Option<bool>,
    /// Too few observations to trust (drawn grey).
    pub small_n: bool,
    /// Text at the right of the bar (`12/15`).
    pub note: String,
    /// Hover text.
    pub title: String,
}

/// Horizontal percentage bars (0–100%) with a dashed target line; green where the target is met, red where not,
/// grey for small n.
pub fn rate_bars(title: &str, bars: &[RateBar], target: Option<(f64, &str)>) -> String {
    let row = 20.0;
    let (left, right, top) = (175.0, W - 90.0, 40.0);
    let h = top + row * bars.len().max(1) as f64 + 26.0;
    let bottom = h - 22.0;
    let xs = |v: f64| left + v.clamp(0.0, 100.0) / 100.0 * (right - left);
    let mut out = String::new();
    open(&mut out, h, title);
    heading(&mut out, title);
    for v in [0.0, 20.0, 40.0, 60.0, 80.0, 100.0] {
        let x = xs(v);
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{bottom:.1}\" stroke=\"{g}\" stroke-width=\"0.6\"/>\
             <text x=\"{x:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" {FONT} fill=\"{c}\">{n}%</text>",
            g = colour::GRID,
            ty = bottom + 14.0,
            c = colour::TEXT,
            n = fmt_num(v),
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let y = top + row * i as f64;
        let fill = match (b.meets, b.small_n) {
            (_, true) | (None, _) => colour::MUTED,
            (Some(true), false) => colour::OK,
            (Some(false), false) => colour::BAD,
        };
        let _ = write!(
            out,
            "<text x=\"{lx:.1}\" y=\"{ty:.1}\" text-anchor=\"end\" {FONT} fill=\"{c}\">{l}</text>",
            lx = left - 6.0,
            ty = y + 13.0,
            c = colour::TEXT,
            l = esc(&b.label),
        );
        if let Some(v) = b.value {
            let _ = write!(
                out,
                "<rect x=\"{left}\" y=\"{ry:.1}\" width=\"{w:.1}\" height=\"{bh:.1}\" fill=\"{fill}\"><title>{t}</title></rect>",
                ry = y + 3.0,
                w = (xs(v) - left).max(0.5),
                bh = row - 6.0,
                t = esc(&b.title),
            );
        }
        let value = b.value.map_or_else(|| "—".to_string(), |v| format!("{v:.1}%"));
        let _ = write!(
            out,
            "<text x=\"{nx:.1}\" y=\"{ty:.1}\" {FONT} fill=\"{c}\">{v} {n}</text>",
            nx = right + 6.0,
            ty = y + 13.0,
            c = colour::TEXT,
            v = esc(&value),
            n = esc(&b.note),
        );
    }
    if let Some((t, label)) = target {
        let x = xs(t);
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{y1:.1}\" y2=\"{bottom:.1}\" stroke=\"{c}\" stroke-dasharray=\"5 4\" \
             stroke-width=\"1.5\"/><text x=\"{x:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" {FONT} fill=\"{c}\">{l}</text>",
            y1 = top - 4.0,
            ty = top - 7.0,
            c = colour::WARN,
            l = esc(label),
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert!((nice_step(100.0, 5.0, true) - 20.0).abs() < 1e-9);
        assert!((nice_step(7.0, 5.0, true) - 2.0).abs() < 1e-9);
        assert!((nice_step(0.0, 5.0, true) - 1.0).abs() < 1e-9);
        assert!((nice_step(3.0, 5.0, true) - 1.0).abs() < 1e-9);
        assert!((nice_step(15.0, 5.0, false) - 5.0).abs() < 1e-9);
    }

    #[test]
    fn charts_escape_text_and_are_well_formed() {
        let bars = vec![Bar { label: "<a&b>".into(), value: 3.0, colour: colour::PRIMARY, title: "\"x\"".into() }];
        let s = bar_chart("t<1>", &bars, "");
        assert!(s.contains("&lt;a&amp;b&gt;") && s.contains("&quot;x&quot;") && s.contains("t&lt;1&gt;"));
        assert!(!s.contains("<a&b>"));
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        let empty = line_chart("empty", &[], Some((95.0, "95%")));
        assert!(empty.ends_with("</svg>"));
        let rb = rate_bars("r", &[], None);
        assert!(rb.ends_with("</svg>"));
        let st = stacked_bar_chart("s", &["a".into()], &[Series { label: "x".into(), colour: "#000", values: vec![] }]);
        assert!(st.ends_with("</svg>"));
    }
}
