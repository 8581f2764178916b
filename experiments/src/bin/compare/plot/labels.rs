//! Where to write each point's name: beside it if that hides nothing, else
//! a little further off with a leader line (any name not level with its
//! point has one, so that it cannot be read as a neighbour's), trying spots in turn and
//! keeping the first that overlaps no marker, whisker or earlier label (or,
//! when none is free, the one that overlaps least).

use super::svg::Anchor;

/// A point to name, in pixels, and how wide its name is.
#[derive(Clone, Copy)]
pub struct Label {
    pub x: f64,
    pub y: f64,
    pub w: f64,
}

/// Where a name goes: its text anchor point, and whether a line must lead
/// from the point to it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spot {
    pub x: f64,
    pub y: f64,
    pub anchor: Anchor,
    pub leader: bool,
}

/// A box: left, top, right, bottom.
pub type Area = (f64, f64, f64, f64);

/// A spot for every label, in order; `obstacles` are what the names must not
/// cover, `bounds` where they must stay.
pub fn place(labels: &[Label], obstacles: &[Area], bounds: Area) -> Vec<Spot> {
    let mut taken: Vec<Area> = obstacles.to_vec();
    labels
        .iter()
        .map(|l| {
            let scored = candidates(l).into_iter().map(|spot| {
                let area = text_area(&spot, l.w);
                let outside = !inside(area, bounds);
                let overlap: f64 = taken.iter().map(|t| overlap(area, *t)).sum();
                (spot, area, outside, overlap)
            });
            let inside_only: Vec<_> = scored.filter(|c| !c.2).collect();
            let best = inside_only
                .iter()
                .find(|c| c.3 == 0.0)
                .or_else(|| inside_only.iter().min_by(|a, b| a.3.total_cmp(&b.3)))
                .copied();
            let (spot, area) = match best {
                Some((spot, area, _, _)) => (spot, area),
                None => {
                    let spot = candidates(l)[0];
                    (spot, text_area(&spot, l.w))
                }
            };
            taken.push(area);
            spot
        })
        .collect()
}

/// Level with the point right and left first; then off the diagonals, further
/// up and down, and further right and left, with a leader.
fn candidates(l: &Label) -> Vec<Spot> {
    let near = |dx: f64, dy: f64, anchor| Spot {
        x: l.x + dx,
        y: l.y + dy,
        anchor,
        leader: true,
    };
    let beside = |dx: f64, anchor| Spot {
        leader: false,
        ..near(dx, 4.0, anchor)
    };
    let mut out = vec![
        beside(10.0, Anchor::Start),
        beside(-10.0, Anchor::End),
        near(14.0, -14.0, Anchor::Start),
        near(14.0, 24.0, Anchor::Start),
        near(-14.0, -14.0, Anchor::End),
        near(-14.0, 24.0, Anchor::End),
    ];
    for k in 1..=8 {
        let d = 14.0 * f64::from(k);
        for (dx, dy, anchor) in [
            (14.0, 4.0 - d - 6.0, Anchor::Start),
            (14.0, 4.0 + d + 6.0, Anchor::Start),
            (-14.0, 4.0 - d - 6.0, Anchor::End),
            (-14.0, 4.0 + d + 6.0, Anchor::End),
            (10.0 + 3.0 * d, 4.0, Anchor::Start),
            (-10.0 - 3.0 * d, 4.0, Anchor::End),
        ] {
            out.push(near(dx, dy, anchor));
        }
    }
    out
}

/// The box a name of width `w` covers when written at `spot`.
pub fn text_area(spot: &Spot, w: f64) -> Area {
    let left = match spot.anchor {
        Anchor::Start => spot.x,
        Anchor::Middle => spot.x - w / 2.0,
        Anchor::End => spot.x - w,
    };
    (left - 1.0, spot.y - 11.0, left + w + 1.0, spot.y + 3.0)
}

fn inside(a: Area, b: Area) -> bool {
    a.0 >= b.0 && a.1 >= b.1 && a.2 <= b.2 && a.3 <= b.3
}

fn overlap(a: Area, b: Area) -> f64 {
    let w = (a.2.min(b.2) - a.0.max(b.0)).max(0.0);
    let h = (a.3.min(b.3) - a.1.max(b.1)).max(0.0);
    w * h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_go_beside_their_point_unless_taken() {
        let bounds = (0.0, 0.0, 400.0, 300.0);
        let one = Label {
            x: 100.0,
            y: 100.0,
            w: 60.0,
        };
        let two = Label { y: 102.0, ..one };
        let spots = place(&[one, two], &[], bounds);
        assert_eq!((spots[0].x, spots[0].anchor), (110.0, Anchor::Start));
        let (a, b) = (text_area(&spots[0], 60.0), text_area(&spots[1], 60.0));
        assert_eq!(overlap(a, b), 0.0, "{spots:?}");
        // At the right edge the name goes left.
        let edge = Label {
            x: 380.0,
            y: 100.0,
            w: 60.0,
        };
        assert_eq!(place(&[edge], &[], bounds)[0].anchor, Anchor::End);
    }
}
