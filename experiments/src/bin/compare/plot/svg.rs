//! SVG primitives: a document and the few shapes the plots draw.

use std::fmt::Write as _;

use super::colours::Look;

/// Roughly how wide a character of the 12 px sans-serif font is, for
/// placing labels without measuring them.
pub const CHAR_W: f64 = 6.8;

/// Text attributes for a white outline, so that text stays legible over
/// grid lines and whiskers.
pub const HALO: &str =
    r#" stroke="white" stroke-width="3" stroke-linejoin="round" paint-order="stroke""#;

/// An SVG document being written.
pub struct Svg {
    body: String,
    width: f64,
    height: f64,
}

/// Text alignment about its anchor point.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn name(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

impl Svg {
    pub fn new(width: f64, height: f64) -> Svg {
        Svg {
            body: String::new(),
            width,
            height,
        }
    }

    pub fn text(&mut self, x: f64, y: f64, anchor: Anchor, extra: &str, text: &str) {
        let _ = writeln!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{}"{extra}>{}</text>"#,
            anchor.name(),
            escape(text)
        );
    }

    /// Text turned a quarter anticlockwise about its anchor (a y axis title).
    pub fn text_up(&mut self, x: f64, y: f64, text: &str) {
        self.text(
            x,
            y,
            Anchor::Middle,
            &format!(r#" transform="rotate(-90 {x:.1} {y:.1})""#),
            text,
        );
    }

    pub fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), style: &str) {
        let _ = writeln!(
            self.body,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" {style}/>"#
        );
    }

    pub fn polyline(&mut self, points: &[(f64, f64)], look: &Look) {
        let points: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            self.body,
            r#"<polyline fill="none" {} stroke-linejoin="round" points="{}"/>"#,
            stroke(look, look.width),
            points.join(" ")
        );
    }

    /// A marker: filled, or a ring when `hollow`.
    pub fn circle(&mut self, (x, y): (f64, f64), r: f64, colour: &str, hollow: bool) {
        let fill = if hollow { "white" } else { colour };
        let _ = writeln!(
            self.body,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r}" fill="{fill}" stroke="{colour}" stroke-width="1.5"/>"#
        );
    }

    pub fn rect(&mut self, (x, y): (f64, f64), (w, h): (f64, f64), colour: &str) {
        let _ = writeln!(
            self.body,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" fill="{colour}"/>"#,
            w.max(0.0)
        );
    }

    /// A vertical interval from `top` to `bottom` at `x`, with caps.
    pub fn whisker(&mut self, x: f64, (top, bottom): (f64, f64), colour: &str) {
        let style = format!(r#"stroke="{colour}" stroke-width="1.3""#);
        self.line((x, top), (x, bottom), &style);
        for y in [top, bottom] {
            self.line((x - 3.5, y), (x + 3.5, y), &style);
        }
    }

    /// The document, on a white background, in the common sans-serif.
    pub fn finish(self) -> String {
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
{}</svg>
"#,
            self.body,
            w = self.width,
            h = self.height,
        )
    }
}

/// The stroke attributes of `look` at `width`.
pub fn stroke(look: &Look, width: f64) -> String {
    let dash = if look.dash.is_empty() {
        String::new()
    } else {
        format!(r#" stroke-dasharray="{}""#, look.dash)
    };
    format!(r#"stroke="{}" stroke-width="{width}"{dash}"#, look.colour)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
