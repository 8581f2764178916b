//! Horizontal bars, one per design in legend order, each in its design's
//! colour with its value written beside it, and a dashed line at the
//! `baseline` row's value (Prometheus with no design) when there is one.

use super::axes::Axis;
use super::chart::bold;
use super::colours::{look, rank};
use super::svg::{Anchor, HALO, Svg};

const W: f64 = 760.0;
const LEFT: f64 = 180.0;
const RIGHT: f64 = 60.0;
const TOP: f64 = 72.0;
const BOTTOM: f64 = 58.0;
const ROW: f64 = 26.0;

/// The SVG of bars (label, value) under `title`, the x axis titled `x_title`.
pub fn draw(title: &str, subtitle: &str, x_title: &str, bars: &[(String, f64)]) -> String {
    let mut bars = bars.to_vec();
    // Prometheus alone first: the reference the others add to.
    bars.sort_by_key(|b| (b.0 != "baseline", rank(&b.0)));
    let plot_h = ROW * bars.len().max(1) as f64;
    let height = TOP + plot_h + BOTTOM;
    let max = bars.iter().map(|b| b.1).fold(0.0f64, f64::max);
    let axis = Axis::linear(0.0, max);
    let px = |v: f64| LEFT + axis.at(v.max(0.0)) * (W - LEFT - RIGHT);
    let bottom = TOP + plot_h;
    let mut svg = Svg::new(W, height);
    let centre = (LEFT + W - RIGHT) / 2.0;
    let heading = r#" font-size="16" font-weight="bold""#;
    svg.text(centre, 24.0, Anchor::Middle, heading, title);
    svg.text(centre, 44.0, Anchor::Middle, r##" fill="#555""##, subtitle);
    for (v, label) in &axis.ticks {
        svg.line((px(*v), TOP), (px(*v), bottom), r##"stroke="#e4e4e4""##);
        svg.text(px(*v), bottom + 17.0, Anchor::Middle, "", label);
    }
    svg.text(centre, bottom + 40.0, Anchor::Middle, "", x_title);
    for (i, (name, v)) in bars.iter().enumerate() {
        let look = look(name);
        let y = TOP + ROW * i as f64;
        svg.text(
            LEFT - 8.0,
            y + ROW / 2.0 + 4.0,
            Anchor::End,
            bold(&look),
            name,
        );
        svg.rect((LEFT, y + 4.0), (px(*v) - LEFT, ROW - 8.0), look.colour);
        let value = format!("{v:.2}");
        svg.text(
            px(*v) + 5.0,
            y + ROW / 2.0 + 4.0,
            Anchor::Start,
            HALO,
            &value,
        );
    }
    svg.line((LEFT, TOP), (LEFT, bottom), r##"stroke="#444""##);
    svg.line((LEFT, bottom), (W - RIGHT, bottom), r##"stroke="#444""##);
    if let Some((_, base)) = bars.iter().find(|b| b.0 == "baseline") {
        let x = px(*base);
        let dashed = r##"stroke="#444" stroke-width="1.2" stroke-dasharray="5 4""##;
        svg.line((x, TOP - 6.0), (x, bottom), dashed);
        let note = r##" font-size="11" fill="#444""##;
        svg.text(x, TOP - 9.0, Anchor::Middle, note, "Prometheus alone");
    }
    svg.finish()
}
