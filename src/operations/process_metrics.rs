//! The figures every exporter is expected to have, whatever it does:
//! `alert_poller_build_info` (which code runs) and the `process_*` family
//! (CPU, memory, file descriptors, start time) that dashboards and alerts
//! written for any Go or Rust service already query under these names.
//!
//! The process figures are read from `/proc/self` at scrape time, so they
//! cost nothing between scrapes. Off Linux they are absent.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

/// The commit the binary was built from (see build.rs).
pub const COMMIT: &str = env!("ALERT_POLLER_COMMIT");

/// `/proc` reports CPU times and the start time in USER_HZ ticks, which
/// Linux fixes at 100 for user space on every architecture.
const TICKS_PER_SECOND: f64 = 100.0;

/// Registers the build information and the process collector in `root`
/// (unprefixed: `process_*` names are shared by convention).
pub fn register(root: &mut Registry) {
    let build: Family<Vec<(String, String)>, Gauge> = Family::default();
    build
        .get_or_create(&vec![
            ("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
            ("commit".to_owned(), COMMIT.to_owned()),
        ])
        .set(1);
    root.register(
        "alert_poller_build_info",
        "Always 1; its labels name the version and commit that run",
        build,
    );
    root.register_collector(Box::new(ProcessCollector));
}

/// What one read of `/proc/self` gives.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessFigures {
    pub cpu_seconds: f64,
    pub start_time_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
}

#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = read_proc_self() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(p.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges = [
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch",
                p.start_time_seconds,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size",
                p.resident_bytes as f64,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size",
                p.virtual_bytes as f64,
            ),
            (
                "process_open_fds",
                "Open file descriptors",
                p.open_fds as f64,
            ),
        ];
        let max = p.max_fds.map(|m| {
            (
                "process_max_fds",
                "Limit of open file descriptors",
                m as f64,
            )
        });
        for (name, help, value) in gauges.into_iter().chain(max) {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

/// Reads the figures; `None` where `/proc` is missing or unreadable.
fn read_proc_self() -> Option<ProcessFigures> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let (cpu_ticks, start_ticks) = parse_stat(&stat)?;
    let boot_time = parse_boot_time(&boot)?;
    Some(ProcessFigures {
        cpu_seconds: cpu_ticks as f64 / TICKS_PER_SECOND,
        start_time_seconds: boot_time as f64 + start_ticks as f64 / TICKS_PER_SECOND,
        resident_bytes: parse_status_kib(&status, "VmRSS:")? * 1024,
        virtual_bytes: parse_status_kib(&status, "VmSize:")? * 1024,
        // read_dir's own descriptor is open while it counts.
        open_fds: open_fds.saturating_sub(1),
        max_fds: parse_max_open_files(&limits),
    })
}

/// User plus system CPU ticks, and the start time in ticks since boot, from
/// `/proc/self/stat`. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: field 3 (state) is index 0, so field N is index N - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some((field(14)? + field(15)?, field(22)?))
}

/// The boot time (Unix seconds) from `/proc/stat`.
fn parse_boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// A `kB` figure of `/proc/self/status`, such as `VmRSS:`.
fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The soft limit of open files from `/proc/self/limits`.
fn parse_max_open_files(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A name with a space and a parenthesis, as a process may set it.
        let stat = "4242 (tokio (rt) w) S 1 4242 4242 0 -1 4194560 1062 0 0 0 \
                    250 75 0 0 20 0 3 0 123456 123456789 2048 18446744073709551615";
        assert_eq!(parse_stat(stat), Some((325, 123456)));
        assert_eq!(parse_stat("4242 (short) S 1"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn status_limits_and_boot_time_parse() {
        let status = "Name:\talert-poller\nVmSize:\t  123456 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(2048));
        assert_eq!(parse_status_kib(status, "VmSize:"), Some(123456));
        assert_eq!(parse_status_kib(status, "VmSwap:"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_open_files(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_max_open_files(unlimited), None);
        assert_eq!(
            parse_boot_time("cpu 1 2 3\nbtime 1700000000\n"),
            Some(1700000000)
        );
        assert_eq!(parse_boot_time("cpu 1 2 3\n"), None);
    }

    #[test]
    fn this_process_reads_plausible_figures() {
        let p = read_proc_self().expect("tests run on Linux");
        assert!(p.resident_bytes > 1 << 20, "{p:?}");
        assert!(p.virtual_bytes >= p.resident_bytes, "{p:?}");
        assert!(p.open_fds >= 3, "{p:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            p.start_time_seconds <= now + 1.0 && p.start_time_seconds > now - 3600.0,
            "{p:?}"
        );
    }
}
