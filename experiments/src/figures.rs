//! The arithmetic behind the reported figures, one function per kind of
//! figure, so that the compare report, its plots and the load report agree
//! on how a number is made and on what an empty or zero input yields.

/// Spans shorter than this count as this long when dividing by them: a run
/// cut short yields a large figure rather than infinity or NaN in a table.
const TINY: f64 = 1e-9;

/// The `p`th percentile (0 to 100) of `sorted`, ascending; `None` without
/// samples. Nearest rank on the rounded index, not interpolation, so every
/// figure is a latency some change really had.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = ((p / 100.0) * last as f64).round() as usize;
    Some(sorted[rank.min(last)])
}

/// How sure a percentile is: the 95% bootstrap interval of the `p`th
/// percentile of `samples` (any order), from `resamples` draws with
/// replacement, the same percentile rule as [`percentile`]. `None` without
/// samples. The draws are seeded, so a report is reproducible from its CSV.
/// With few samples the interval is wide, which is the point: a p95 of four
/// transitions is the largest of them, and the interval says so.
pub fn bootstrap_interval(
    samples: &[u64],
    p: f64,
    resamples: usize,
    seed: u64,
) -> Option<(u64, u64)> {
    if samples.is_empty() {
        return None;
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut draw = vec![0u64; samples.len()];
    let mut estimates: Vec<u64> = (0..resamples.max(1))
        .map(|_| {
            for slot in draw.iter_mut() {
                *slot = samples[rng.usize(..samples.len())];
            }
            draw.sort_unstable();
            percentile(&draw, p).expect("a non-empty draw")
        })
        .collect();
    estimates.sort_unstable();
    Some((
        percentile(&estimates, 2.5).expect("estimates"),
        percentile(&estimates, 97.5).expect("estimates"),
    ))
}

/// `value` accumulated over `seconds`, as a rate per minute: the unit of the
/// stable-phase and solo columns, whose phases last from 15 s to 2 min.
pub fn per_minute(value: f64, seconds: f64) -> f64 {
    value / (seconds / 60.0).max(TINY)
}

/// The mean answer size in KiB; `None` without requests, so a design that
/// never asked shows `-` rather than zero-sized answers.
pub fn kib_per_request(bytes: u64, requests: u64) -> Option<f64> {
    (requests > 0).then(|| bytes as f64 / 1024.0 / requests as f64)
}

/// CPU milliseconds per request to Prometheus, `None` without requests. For
/// a pull design this is about the cost of one poll and what it sets off;
/// for a push design, of one reconcile's query and its share of the
/// notifications.
pub fn cpu_ms_per_request(cpu_seconds: f64, requests: u64) -> Option<f64> {
    (requests > 0).then(|| cpu_seconds * 1000.0 / requests as f64)
}

/// A mean from a Prometheus `_sum` and `_count`; zero before the first
/// observation instead of NaN.
pub fn mean(sum: f64, count: f64) -> f64 {
    sum / count.max(1.0)
}

/// CPU seconds spent over `seconds` of wall time as a percentage of one core.
pub fn percent_of_core(cpu_seconds: f64, seconds: f64) -> f64 {
    100.0 * cpu_seconds / seconds.max(TINY)
}

/// The empirical CDF of `values`: each value, ascending, with the fraction
/// of values at or below it. Ties keep one point each, so the curve climbs
/// in steps as it would drawn by hand.
pub fn cdf(mut values: Vec<f64>) -> Vec<(f64, f64)> {
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| (v, (i + 1) as f64 / n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_intervals() {
        assert_eq!(bootstrap_interval(&[], 50.0, 100, 1), None);
        // One value, or all equal: no doubt at all.
        assert_eq!(bootstrap_interval(&[7], 95.0, 100, 1), Some((7, 7)));
        assert_eq!(bootstrap_interval(&[5; 30], 50.0, 100, 1), Some((5, 5)));
        // The interval holds the estimate and stays within the samples.
        let samples: Vec<u64> = (1..=40).map(|i| i * 10).collect();
        let (lo, hi) = bootstrap_interval(&samples, 50.0, 2000, 7).unwrap();
        let p50 = percentile(&samples, 50.0).unwrap();
        assert!(
            lo <= p50 && p50 <= hi && lo >= 10 && hi <= 400,
            "{lo} {p50} {hi}"
        );
        assert!(hi - lo < 200, "40 samples pin the median down: {lo}..{hi}");
        // Few samples, wide interval: four values leave the p95 anywhere
        // from the smallest to the largest.
        let (lo, hi) = bootstrap_interval(&[10, 20, 30, 1000], 95.0, 2000, 7).unwrap();
        assert_eq!((lo, hi), (20, 1000));
        // Seeded: the same inputs give the same interval.
        assert_eq!(
            bootstrap_interval(&samples, 95.0, 500, 3),
            bootstrap_interval(&samples, 95.0, 500, 3)
        );
    }

    #[test]
    fn percentiles() {
        let ten: Vec<u64> = (1..=10).collect();
        let twenty: Vec<u64> = (1..=20).collect();
        for (sorted, p, expected) in [
            (&[][..], 50.0, None),
            (&[][..], 0.0, None),
            (&[42][..], 0.0, Some(42)),
            (&[42][..], 50.0, Some(42)),
            (&[42][..], 100.0, Some(42)),
            (&[1, 2][..], 50.0, Some(2)), // index 0.5 rounds up
            (&[1, 2, 3][..], 50.0, Some(2)),
            (&ten[..], 0.0, Some(1)),
            (&ten[..], 50.0, Some(6)), // index 4.5 rounds up
            (&ten[..], 95.0, Some(10)),
            (&ten[..], 100.0, Some(10)),
            (&ten[..], 150.0, Some(10)), // past the end: the largest
            (&twenty[..], 95.0, Some(19)),
            (&twenty[..], 50.0, Some(11)),
        ] {
            assert_eq!(percentile(sorted, p), expected, "p{p} of {sorted:?}");
        }
    }

    #[test]
    fn rates_per_minute() {
        for (value, seconds, expected) in [
            (0.0, 60.0, 0.0),
            (30.0, 60.0, 30.0),
            (30.0, 15.0, 120.0),
            (1.0, 120.0, 0.5),
            (12.0, 0.0, 12.0 / TINY), // a zero span: large, not infinite
            (0.0, 0.0, 0.0),
        ] {
            assert_eq!(
                per_minute(value, seconds),
                expected,
                "{value} in {seconds}s"
            );
        }
    }

    #[test]
    fn cpu_per_request() {
        assert_eq!(cpu_ms_per_request(1.5, 0), None);
        assert_eq!(cpu_ms_per_request(1.5, 300), Some(5.0));
    }

    #[test]
    fn kib_per_requests() {
        for (bytes, requests, expected) in [
            (0, 0, None),
            (4096, 0, None),
            (0, 3, Some(0.0)),
            (1024, 1, Some(1.0)),
            (3 * 1024, 2, Some(1.5)),
        ] {
            assert_eq!(kib_per_request(bytes, requests), expected);
        }
    }

    #[test]
    fn means() {
        for (sum, count, expected) in [
            (0.0, 0.0, 0.0),
            (5.0, 0.0, 5.0), // a sum without a count is taken as one sample
            (0.25, 1.0, 0.25),
            (3.0, 4.0, 0.75),
        ] {
            assert_eq!(mean(sum, count), expected, "{sum}/{count}");
        }
    }

    #[test]
    fn percents_of_a_core() {
        for (cpu, seconds, expected) in [
            (0.0, 600.0, 0.0),
            (6.0, 600.0, 1.0),
            (120.0, 60.0, 200.0), // two cores busy
            (0.0, 0.0, 0.0),
        ] {
            assert_eq!(
                percent_of_core(cpu, seconds),
                expected,
                "{cpu} in {seconds}s"
            );
        }
    }

    #[test]
    fn cdfs() {
        for (values, expected) in [
            (vec![], vec![]),
            (vec![7.0], vec![(7.0, 1.0)]),
            (
                vec![30.0, 10.0, 20.0, 40.0],
                vec![(10.0, 0.25), (20.0, 0.5), (30.0, 0.75), (40.0, 1.0)],
            ),
            (vec![5.0, 5.0], vec![(5.0, 0.5), (5.0, 1.0)]),
        ] {
            assert_eq!(cdf(values.clone()), expected, "{values:?}");
        }
    }
}
