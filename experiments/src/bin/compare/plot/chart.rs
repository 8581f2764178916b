//! A chart: a frame with its axes, grid, titles and notes, and series drawn
//! in it as lines, as CDF steps, or as labelled points.

use super::axes::Axis;
use super::colours::{Look, look, rank};
use super::labels::{Label, place, text_area};
use super::svg::{Anchor, CHAR_W, HALO, Svg, stroke};

const W: f64 = 760.0;
const LEFT: f64 = 84.0;
const TOP: f64 = 62.0;
const PLOT_H: f64 = 330.0;
const BOTTOM: f64 = 58.0;
const NOTE_H: f64 = 16.0;
/// Room for the legend right of the plot; labelled points need none.
const LEGEND_W: f64 = 200.0;
const MARGIN_R: f64 = 30.0;
/// Data stays this far inside the frame, across (room for the dodge) and
/// up.
const INSET_X: f64 = 18.0;
const INSET_Y: f64 = 8.0;
/// Pixels between neighbouring designs' points at the same x, so their
/// whiskers do not hide each other.
const DODGE: f64 = 3.0;
const GRID: &str = r##"stroke="#e4e4e4""##;
const AXIS: &str = r##"stroke="#444""##;

/// A value with, when known, its 95% interval and (labelled points only)
/// the median drawn beside it.
#[derive(Clone, Debug, Default)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub interval: Option<(f64, f64)>,
    pub p50: Option<f64>,
}

impl Point {
    pub fn at(x: f64, y: f64) -> Point {
        Point {
            x,
            y,
            ..Point::default()
        }
    }
}

/// One design's points, in x order for lines.
pub struct Series {
    pub label: String,
    pub points: Vec<Point>,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    /// Points joined by lines, with a legend.
    Lines,
    /// An empirical CDF drawn as steps, with a legend.
    Steps,
    /// Points each named beside it, no legend.
    Labelled,
}

pub struct Chart {
    pub title: String,
    pub subtitle: String,
    /// Axis titles, with units; the scale's note is added.
    pub x_title: String,
    pub y_title: String,
    pub x: Axis,
    pub y: Axis,
    pub kind: Kind,
    pub series: Vec<Series>,
    /// Lines of small print below the x axis title.
    pub notes: Vec<String>,
}

/// Where the plot area is and how values map into it.
pub struct Frame {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
    x: Axis,
    y: Axis,
}

impl Frame {
    pub fn px(&self, x: f64) -> f64 {
        self.left + INSET_X + self.x.at(x) * (self.width - 2.0 * INSET_X)
    }

    pub fn py(&self, y: f64) -> f64 {
        self.top + self.height - INSET_Y - self.y.at(y) * (self.height - 2.0 * INSET_Y)
    }

    pub fn right(&self) -> f64 {
        self.left + self.width
    }

    pub fn bottom(&self) -> f64 {
        self.top + self.height
    }
}

/// The SVG of `chart`.
pub fn draw(chart: &Chart) -> String {
    let legend = chart.kind != Kind::Labelled;
    let frame = Frame {
        left: LEFT,
        top: TOP,
        width: W - LEFT - if legend { LEGEND_W } else { MARGIN_R },
        height: PLOT_H,
        x: chart.x.clone(),
        y: chart.y.clone(),
    };
    let height = TOP + PLOT_H + BOTTOM + NOTE_H * chart.notes.len() as f64;
    let mut svg = Svg::new(W, height);
    titles(&mut svg, chart, &frame);
    grid(&mut svg, &frame);
    let mut series: Vec<&Series> = chart
        .series
        .iter()
        .filter(|s| !s.points.is_empty())
        .collect();
    // Legend order, then the emphasised designs drawn last, on top.
    series.sort_by_key(|s| rank(&s.label));
    if series.is_empty() {
        let (x, y) = (
            frame.left + frame.width / 2.0,
            frame.top + frame.height / 2.0,
        );
        svg.text(
            x,
            y,
            Anchor::Middle,
            "",
            "no data for this plot in the CSV files",
        );
    }
    let mut order: Vec<usize> = (0..series.len()).collect();
    order.sort_by_key(|i| look(&series[*i].label).emphasis);
    match chart.kind {
        Kind::Lines => order
            .iter()
            .for_each(|i| lines(&mut svg, &frame, series[*i], dodge(*i, series.len()))),
        Kind::Steps => order
            .iter()
            .for_each(|i| steps(&mut svg, &frame, series[*i])),
        Kind::Labelled => labelled(&mut svg, &frame, &series),
    }
    if legend {
        legend_box(&mut svg, &frame, &series);
    }
    svg.finish()
}

fn dodge(i: usize, n: usize) -> f64 {
    (i as f64 - (n as f64 - 1.0) / 2.0) * DODGE
}

fn titles(svg: &mut Svg, chart: &Chart, frame: &Frame) {
    let centre = frame.left + frame.width / 2.0;
    svg.text(
        centre,
        24.0,
        Anchor::Middle,
        r#" font-size="16" font-weight="bold""#,
        &chart.title,
    );
    svg.text(
        centre,
        44.0,
        Anchor::Middle,
        r##" fill="#555""##,
        &chart.subtitle,
    );
    let x_title = format!("{}{}", chart.x_title, chart.x.scale_note());
    svg.text(centre, frame.bottom() + 40.0, Anchor::Middle, "", &x_title);
    let y_title = format!("{}{}", chart.y_title, chart.y.scale_note());
    svg.text_up(20.0, frame.top + frame.height / 2.0, &y_title);
    for (i, note) in chart.notes.iter().enumerate() {
        let y = frame.bottom() + 40.0 + NOTE_H * (i as f64 + 1.0);
        svg.text(
            frame.left,
            y,
            Anchor::Start,
            r##" font-size="11" fill="#555""##,
            note,
        );
    }
}

/// Grid lines and tick labels on both axes, the axes, and break marks where
/// a log axis jumps from its `0` floor to the first decade.
fn grid(svg: &mut Svg, f: &Frame) {
    for (v, label) in &f.y.ticks {
        let y = f.py(*v);
        svg.line((f.left, y), (f.right(), y), GRID);
        svg.text(f.left - 6.0, y + 4.0, Anchor::End, "", label);
    }
    for (v, label) in &f.x.ticks {
        let x = f.px(*v);
        svg.line((x, f.top), (x, f.bottom()), GRID);
        svg.text(x, f.bottom() + 17.0, Anchor::Middle, "", label);
    }
    svg.line((f.left, f.bottom()), (f.right(), f.bottom()), AXIS);
    svg.line((f.left, f.top), (f.left, f.bottom()), AXIS);
    let white = r#"stroke="white" stroke-width="5""#;
    if let Some(g) = f.x.gap() {
        let x = f.left + INSET_X + g * (f.width - 2.0 * INSET_X);
        svg.line((x - 2.0, f.bottom()), (x + 2.0, f.bottom()), white);
        for dx in [-3.0, 3.0] {
            svg.line(
                (x + dx - 3.0, f.bottom() + 5.0),
                (x + dx + 3.0, f.bottom() - 5.0),
                AXIS,
            );
        }
    }
    if let Some(g) = f.y.gap() {
        let y = f.bottom() - INSET_Y - g * (f.height - 2.0 * INSET_Y);
        svg.line((f.left, y - 2.0), (f.left, y + 2.0), white);
        for dy in [-3.0, 3.0] {
            svg.line(
                (f.left - 5.0, y + dy + 3.0),
                (f.left + 5.0, y + dy - 3.0),
                AXIS,
            );
        }
    }
}

fn lines(svg: &mut Svg, f: &Frame, s: &Series, dx: f64) {
    let look = look(&s.label);
    let at: Vec<(f64, f64)> = s
        .points
        .iter()
        .map(|p| (f.px(p.x) + dx, f.py(p.y)))
        .collect();
    for (p, (x, _)) in s.points.iter().zip(&at) {
        if let Some((lo, hi)) = p.interval {
            svg.whisker(*x, (f.py(hi), f.py(lo)), look.colour);
        }
    }
    svg.polyline(&at, &look);
    for xy in at.iter().filter(|_| s.points.len() < 12) {
        svg.circle(*xy, marker(&look), look.colour, false);
    }
}

fn marker(look: &Look) -> f64 {
    if look.emphasis { 4.5 } else { 3.2 }
}

/// An empirical CDF: flat to each value, then up to its fraction, starting
/// from zero at the smallest value.
fn steps(svg: &mut Svg, f: &Frame, s: &Series) {
    let mut at = Vec::with_capacity(2 * s.points.len() + 1);
    let mut last = 0.0;
    for p in &s.points {
        at.push((f.px(p.x), f.py(last)));
        at.push((f.px(p.x), f.py(p.y)));
        last = p.y;
    }
    svg.polyline(&at, &look(&s.label));
}

/// Each design's point: p95 filled with its interval, p50 as a ring, and
/// the design's name placed where it hides nothing.
fn labelled(svg: &mut Svg, f: &Frame, series: &[&Series]) {
    let (mut labels, mut names, mut obstacles) = (Vec::new(), Vec::new(), Vec::new());
    for s in series {
        let look = look(&s.label);
        for p in &s.points {
            let (x, y) = (f.px(p.x), f.py(p.y));
            if let Some((lo, hi)) = p.interval {
                svg.whisker(x, (f.py(hi), f.py(lo)), look.colour);
                obstacles.push((x - 4.0, f.py(hi), x + 4.0, f.py(lo)));
            }
            if let Some(p50) = p.p50 {
                let dotted = format!(r#"stroke="{}" stroke-dasharray="1 2""#, look.colour);
                svg.line((x, f.py(p50)), (x, y), &dotted);
                svg.circle((x, f.py(p50)), 3.0, look.colour, true);
                obstacles.push((x - 4.0, f.py(p50) - 4.0, x + 4.0, f.py(p50) + 4.0));
            }
            svg.circle((x, y), marker(&look) + 1.0, look.colour, false);
            obstacles.push((x - 6.0, y - 6.0, x + 6.0, y + 6.0));
            let chars = s.label.chars().count() as f64;
            let w = chars * CHAR_W * if look.emphasis { 1.1 } else { 1.0 };
            labels.push(Label { x, y, w });
            names.push((s.label.as_str(), look));
        }
    }
    let bounds = (
        f.left + 2.0,
        f.top + 2.0,
        f.right() + MARGIN_R - 4.0,
        f.bottom() - 2.0,
    );
    let placed = place(&labels, &obstacles, bounds);
    for ((spot, label), (name, look)) in placed.iter().zip(&labels).zip(&names) {
        if spot.leader {
            // To the nearest point of the name's box.
            let (l, t, r, b) = text_area(spot, label.w);
            let end = (label.x.clamp(l, r), label.y.clamp(t, b));
            let style = format!(r#"stroke="{}" stroke-width="0.8""#, look.colour);
            svg.line((label.x, label.y), end, &style);
        }
        let attributes = format!("{}{HALO}", bold(look));
        svg.text(spot.x, spot.y, spot.anchor, &attributes, name);
    }
}

/// The designs, one line sample each, in legend order.
fn legend_box(svg: &mut Svg, f: &Frame, series: &[&Series]) {
    let x = f.right() + 16.0;
    for (i, s) in series.iter().enumerate() {
        let look = look(&s.label);
        let y = f.top + 8.0 + 19.0 * i as f64;
        svg.line((x, y), (x + 26.0, y), &stroke(&look, look.width.max(2.5)));
        svg.text(x + 32.0, y + 4.0, Anchor::Start, bold(&look), &s.label);
    }
}

/// Emphasised designs are named in bold.
pub fn bold(look: &Look) -> &'static str {
    if look.emphasis {
        r#" font-weight="bold""#
    } else {
        ""
    }
}
