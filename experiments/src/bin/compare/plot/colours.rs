//! One look per design, the same in every plot. Push designs are warm
//! (orange, vermillion), pull designs cool (blues for the fixed intervals,
//! light to dark as the interval grows; greens for the adaptive ones;
//! purples for the phase-locked ones), and `shipped` (what deploy/ ships) is
//! black. `shipped` and `push-scoped` (telemetry-manager's design) are drawn
//! thicker and on top. The colours are Okabe-Ito's and Paul Tol's, chosen
//! to stay apart under the common colour-vision deficiencies; the closest
//! pairs that also draw on top of each other (the two phase-locked designs
//! polling every evaluation, the two adaptive ones) differ in dashes too.

/// How a design is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Look {
    pub colour: &'static str,
    /// Line width in pixels.
    pub width: f64,
    /// An SVG `stroke-dasharray`, empty for a solid line.
    pub dash: &'static str,
    /// Drawn thicker, on top, and named in bold.
    pub emphasis: bool,
}

const THIN: f64 = 1.8;
const THICK: f64 = 3.6;

/// The designs the comparison runs, in the order legends list them.
const KNOWN: [(&str, &str, &str, bool); 11] = [
    ("shipped", "#000000", "", true),
    ("push-scoped", "#D55E00", "", true),
    ("push-all", "#E69F00", "", false),
    ("pull-fixed-1s", "#56B4E9", "", false),
    ("pull-fixed-5s", "#0072B2", "", false),
    ("pull-fixed-30s", "#332288", "", false),
    ("pull-adaptive", "#009E73", "", false),
    ("pull-locked-adaptive", "#117733", "7 3", false),
    ("pull-locked-every-eval", "#AA3377", "", false),
    ("pull-locked-query", "#CC79A7", "7 3", false),
    // Not a design: Prometheus alone, in the solo runs.
    ("baseline", "#999999", "", false),
];

/// For labels not in [`KNOWN`], picked by the label's hash so that a label
/// keeps its colour from plot to plot.
const FALLBACK: [&str; 6] = [
    "#882255", "#999933", "#44AA99", "#661100", "#6699CC", "#DDAA33",
];

/// The look of `label`.
pub fn look(label: &str) -> Look {
    let (colour, dash, emphasis) = KNOWN
        .iter()
        .find(|k| k.0 == label)
        .map(|k| (k.1, k.2, k.3))
        .unwrap_or_else(|| (FALLBACK[hash(label) % FALLBACK.len()], "", false));
    Look {
        colour,
        width: if emphasis { THICK } else { THIN },
        dash,
        emphasis,
    }
}

/// Where `label` goes in a legend: the known designs in [`KNOWN`]'s order,
/// then the others by name.
pub fn rank(label: &str) -> (usize, String) {
    let known = KNOWN.iter().position(|k| k.0 == label);
    (known.unwrap_or(KNOWN.len()), label.to_string())
}

/// FNV-1a: stable across runs and platforms, unlike the std hasher.
fn hash(label: &str) -> usize {
    let h = label.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (h % 1_000_003) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESIGNS: [&str; 10] = [
        "push-all",
        "push-scoped",
        "pull-fixed-1s",
        "pull-fixed-5s",
        "pull-fixed-30s",
        "pull-adaptive",
        "pull-locked-every-eval",
        "pull-locked-adaptive",
        "pull-locked-query",
        "shipped",
    ];

    #[test]
    fn every_known_design_has_a_colour_of_its_own() {
        let colours: Vec<&str> = DESIGNS.iter().map(|d| look(d).colour).collect();
        for (i, c) in colours.iter().enumerate() {
            assert!(!colours[i + 1..].contains(c), "{} shares {c}", DESIGNS[i]);
            assert!(!FALLBACK.contains(c), "{} looks unknown", DESIGNS[i]);
        }
        assert!(!colours.contains(&look("baseline").colour));
    }

    #[test]
    fn the_shipped_and_telemetry_managers_designs_stand_out() {
        for d in DESIGNS {
            let emphasised = d == "shipped" || d == "push-scoped";
            assert_eq!(look(d).emphasis, emphasised, "{d}");
            assert!(look(d).width > THIN || !emphasised);
        }
    }

    #[test]
    fn unknown_labels_keep_their_colour() {
        assert_eq!(look("pull-new"), look("pull-new"));
        assert!(FALLBACK.contains(&look("pull-new").colour));
        assert!(rank("pull-new") > rank("pull-locked-query"));
        assert!(rank("shipped") < rank("push-all"));
    }
}
