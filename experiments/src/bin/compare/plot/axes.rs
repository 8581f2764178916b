//! Axes: where a value lands along an axis and which ticks it gets. Linear
//! ticks step by 1, 2 or 5 times a power of ten; a fraction (a CDF's y) is
//! cut in quarters; a log axis has a tick per decade (and at 2 and 5 within
//! a decade when it spans two decades or fewer). A log axis holding zeros
//! draws them on a floor one decade below the smallest positive value and
//! labels that tick `0`.

/// At most this many intervals between linear ticks.
const MAX_INTERVALS: f64 = 6.0;
/// A range whose largest value is this many times its smallest positive one
/// (one and a half decades) is drawn on a log axis by [`Axis::auto`].
const LOG_RATIO: f64 = 30.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    Linear,
    Log,
}

/// One axis: its scale, its range (in axis units: the value, or its log10)
/// and its ticks as (value, label).
#[derive(Clone, Debug)]
pub struct Axis {
    pub scale: Scale,
    lo: f64,
    hi: f64,
    /// On a log axis: the floor zeros are drawn at, in axis units.
    zero: Option<f64>,
    pub ticks: Vec<(f64, String)>,
}

impl Axis {
    /// A linear axis from `min` (or 0 if larger) to `max`, widened to ticks.
    pub fn linear(min: f64, max: f64) -> Axis {
        let ticks = nice_ticks(min.min(0.0), max);
        let (lo, hi) = (ticks[0].0, ticks[ticks.len() - 1].0);
        Axis {
            scale: Scale::Linear,
            lo,
            hi,
            zero: None,
            ticks,
        }
    }

    /// 0 to 1 in quarters: the y axis of a CDF.
    pub fn fraction() -> Axis {
        Axis {
            scale: Scale::Linear,
            lo: 0.0,
            hi: 1.0,
            zero: None,
            ticks: fraction_ticks(),
        }
    }

    /// A log axis over whole decades holding every value; values at or
    /// below zero sit on a floor labelled `0` when `values` has any.
    pub fn log(values: &[f64]) -> Axis {
        let positive = values.iter().copied().filter(|v| *v > 0.0 && v.is_finite());
        let (min, max) = positive.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
        let (min, max) = if min > max { (1.0, 10.0) } else { (min, max) };
        let lo = (min.log10() + 1e-9).floor();
        let hi = (max.log10() - 1e-9).ceil().max(lo + 1.0);
        let mut ticks = log_ticks(lo, hi);
        let zero = values.iter().any(|v| *v <= 0.0).then_some(lo - 1.0);
        let lo = zero.unwrap_or(lo);
        if zero.is_some() {
            ticks.insert(0, (0.0, "0".to_string()));
        }
        Axis {
            scale: Scale::Log,
            lo,
            hi,
            zero,
            ticks,
        }
    }

    /// Log when the positive values span more than [`LOG_RATIO`], else
    /// linear from zero.
    pub fn auto(values: &[f64]) -> Axis {
        let positive = values.iter().copied().filter(|v| *v > 0.0 && v.is_finite());
        let (min, max) = positive.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
        if min <= max && max / min > LOG_RATIO {
            Axis::log(values)
        } else {
            Axis::linear(0.0, if min <= max { max } else { 1.0 })
        }
    }

    /// Where `v` lands, from 0 (the axis' start) to 1 (its end).
    pub fn at(&self, v: f64) -> f64 {
        let u = match (self.scale, self.zero) {
            (Scale::Linear, _) => v,
            (Scale::Log, Some(floor)) if v <= 0.0 => floor,
            (Scale::Log, _) => v.max(f64::MIN_POSITIVE).log10(),
        };
        (u - self.lo) / (self.hi - self.lo).max(1e-12)
    }

    /// Where a break mark belongs (0 to 1): between the `0` floor and the
    /// first decade of a log axis holding zeros.
    pub fn gap(&self) -> Option<f64> {
        self.zero.map(|_| 0.5 / (self.hi - self.lo).max(1e-12))
    }

    /// The words the axis title adds about the scale.
    pub fn scale_note(&self) -> &'static str {
        match (self.scale, self.zero) {
            (Scale::Linear, _) => "",
            (Scale::Log, None) => ", log scale",
            (Scale::Log, Some(_)) => ", log scale; 0 before the break",
        }
    }
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let base = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * base)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * base)
}

/// Ticks from `min` to `max`, widened to whole steps, at most
/// [`MAX_INTERVALS`] intervals of a [`nice_step`].
pub fn nice_ticks(min: f64, max: f64) -> Vec<(f64, String)> {
    let max = if max > min { max } else { min + 1.0 };
    let span = max - min;
    let step = nice_step(span / MAX_INTERVALS);
    let first = (min / step + 1e-9).floor() as i64;
    let last = ((max / step - 1e-9).ceil() as i64).max(first + 1);
    let decimals = (-(step.log10() + 1e-9).floor()).max(0.0) as usize;
    (first..=last)
        .map(|i| {
            let v = i as f64 * step;
            (v, number(v, decimals))
        })
        .collect()
}

/// 0, 0.25, 0.5, 0.75 and 1.
pub fn fraction_ticks() -> Vec<(f64, String)> {
    (0..=4)
        .map(|i| {
            let v = f64::from(i) / 4.0;
            (v, number(v, 2))
        })
        .collect()
}

/// Decades from 10^lo to 10^hi, and 2 and 5 within them when the axis spans
/// two decades or fewer.
fn log_ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let fine = hi - lo <= 2.0;
    let mut ticks = Vec::new();
    for e in lo as i32..=hi as i32 {
        let decade = 10f64.powi(e);
        let decimals = (-e).max(0) as usize;
        for m in [1.0, 2.0, 5.0] {
            let v = m * decade;
            if (m == 1.0 || fine) && v.log10() <= hi + 1e-9 {
                ticks.push((v, number(v, decimals)));
            }
        }
    }
    ticks
}

/// `v` with at most `decimals` decimals, trailing zeros dropped, thousands
/// set apart by a space (10 000).
pub fn number(v: f64, decimals: usize) -> String {
    let mut s = format!("{:.*}", decimals, v);
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    if s == "-0" {
        s = "0".into();
    }
    let (sign, rest) = s.split_at(usize::from(s.starts_with('-')));
    let (int, frac) = rest.split_at(rest.find('.').unwrap_or(rest.len()));
    if int.len() <= 4 {
        return s;
    }
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(' ');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(ticks: &[(f64, String)]) -> Vec<&str> {
        ticks.iter().map(|t| t.1.as_str()).collect()
    }

    #[test]
    fn nice_steps() {
        for (raw, step) in [
            (0.175, 0.2),
            (0.21, 0.5),
            (1.0, 1.0),
            (1.3, 2.0),
            (2.0, 2.0),
            (3.3, 5.0),
            (7.0, 10.0),
            (4693.0, 5000.0),
            (0.0, 1.0),
        ] {
            assert!((nice_step(raw) - step).abs() < 1e-12, "{raw}: {step}");
        }
    }

    #[test]
    fn linear_ticks_are_nice() {
        // The CDF's old axis ran to 1.05 in quarters of it: 0.26, 0.53, ...
        assert_eq!(
            labels(&nice_ticks(0.0, 1.05)),
            ["0", "0.2", "0.4", "0.6", "0.8", "1", "1.2"]
        );
        assert_eq!(
            labels(&nice_ticks(0.0, 28157.0)),
            [
                "0", "5000", "10 000", "15 000", "20 000", "25 000", "30 000"
            ]
        );
        assert_eq!(
            labels(&nice_ticks(0.0, 8.13)),
            ["0", "2", "4", "6", "8", "10"]
        );
        assert_eq!(
            labels(&nice_ticks(0.0, 0.0)),
            ["0", "0.2", "0.4", "0.6", "0.8", "1"]
        );
        // Every step, whatever the range, is 1, 2 or 5 times a power of ten,
        // the ticks hold the range, and there are 3 to 7 of them.
        for max in (1..400).map(|i| f64::from(i) * 0.37 * 1.7f64.powi(i % 23 - 8)) {
            let ticks = nice_ticks(0.0, max);
            let step = ticks[1].0 - ticks[0].0;
            let mantissa = step / 10f64.powf(step.log10().floor());
            assert!(
                [1.0, 2.0, 5.0, 10.0]
                    .iter()
                    .any(|m| (m - mantissa).abs() < 1e-6),
                "{max}: step {step}"
            );
            assert!(ticks[0].0 <= 0.0 && ticks[ticks.len() - 1].0 >= max - 1e-9);
            assert!((3..=7).contains(&ticks.len()), "{max}: {ticks:?}");
        }
    }

    #[test]
    fn cdf_ticks_are_quarters() {
        let axis = Axis::fraction();
        assert_eq!(labels(&axis.ticks), ["0", "0.25", "0.5", "0.75", "1"]);
        assert_eq!((axis.at(0.0), axis.at(0.5), axis.at(1.0)), (0.0, 0.5, 1.0));
    }

    #[test]
    fn log_ticks_are_decades() {
        let axis = Axis::log(&[23.0, 28157.0]);
        assert_eq!(
            labels(&axis.ticks),
            ["10", "100", "1000", "10 000", "100 000"]
        );
        assert!((axis.at(1000.0) - 0.5).abs() < 1e-9);
        // Two decades or fewer: 2 and 5 as well.
        let axis = Axis::log(&[0.5, 8.0]);
        assert_eq!(
            labels(&axis.ticks),
            ["0.1", "0.2", "0.5", "1", "2", "5", "10"]
        );
        // Zeros on a floor a decade below the smallest positive value.
        let axis = Axis::log(&[0.0, 10.0, 10000.0]);
        assert_eq!(labels(&axis.ticks), ["0", "10", "100", "1000", "10 000"]);
        assert_eq!(axis.at(0.0), 0.0);
        assert!((axis.at(10.0) - 0.25).abs() < 1e-9);
        assert!(axis.gap().is_some());
    }

    #[test]
    fn auto_picks_log_for_wide_ranges() {
        assert_eq!(Axis::auto(&[10.0, 200.0]).scale, Scale::Linear);
        assert_eq!(Axis::auto(&[10.0, 40000.0]).scale, Scale::Log);
        assert_eq!(Axis::auto(&[]).scale, Scale::Linear);
    }

    #[test]
    fn numbers() {
        for (v, d, s) in [
            (0.0, 2, "0"),
            (-0.0001, 2, "0"),
            (0.25, 2, "0.25"),
            (0.5, 2, "0.5"),
            (1500.0, 0, "1500"),
            (12345.0, 0, "12 345"),
            (1234567.5, 1, "1 234 567.5"),
            (-20000.0, 0, "-20 000"),
        ] {
            assert_eq!(number(v, d), s);
        }
    }
}
