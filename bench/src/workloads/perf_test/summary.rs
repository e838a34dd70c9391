//! The summary lines of Kafka's perf tools, parsed: the producer tool's last line and the
//! consumer tool's header and value lines. Text in, figures out; nothing runs here.

use anyhow::{anyhow, bail, Result};

/// The producer tool's last line: "N records sent, R records/sec (M MB/sec), A ms avg latency,
/// X ms max latency, P ms 50th, Q ms 95th, S ms 99th, T ms 99.9th."
#[derive(Debug, PartialEq)]
pub struct ProducerSummary {
    pub records: u64,
    pub records_per_sec: f64,
    pub mb_per_sec: f64,
    pub avg_ms: f64,
    pub max_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
}

impl ProducerSummary {
    pub fn find(stdout: &str) -> Option<ProducerSummary> {
        stdout
            .lines()
            .rev()
            .filter(|l| l.contains("records sent") && l.contains("th."))
            .find_map(Self::parse)
    }

    fn parse(line: &str) -> Option<ProducerSummary> {
        let parts: Vec<&str> = line.trim().trim_end_matches('.').split(", ").collect();
        let first = |suffix: &str| -> Option<f64> {
            let part = parts.iter().find(|p| p.ends_with(suffix))?;
            part.split_whitespace().next()?.parse().ok()
        };
        let rate_part = parts.iter().find(|p| p.contains("records/sec"))?;
        let mb_per_sec = rate_part.split('(').nth(1)?.split_whitespace().next()?.parse().ok()?;
        Some(ProducerSummary {
            records: first(" records sent")? as u64,
            records_per_sec: rate_part.split_whitespace().next()?.parse().ok()?,
            mb_per_sec,
            avg_ms: first(" avg latency")?,
            max_ms: first(" max latency")?,
            p50_ms: first(" 50th")?,
            p99_ms: first(" 99th")?,
            p999_ms: first(" 99.9th")?,
        })
    }
}

/// The consumer tool's header and value lines ("start.time, end.time, data.consumed.in.MB, …").
#[derive(Debug, PartialEq)]
pub struct ConsumerSummary {
    pub records: u64,
    pub overall_records_per_sec: f64,
    pub rebalance_ms: u64,
    pub fetch_ms: u64,
    pub fetch_mb_per_sec: f64,
    pub fetch_records_per_sec: f64,
}

impl ConsumerSummary {
    pub fn find(stdout: &str) -> Option<ConsumerSummary> {
        let lines: Vec<&str> = stdout.lines().collect();
        let header = lines.iter().rposition(|l| l.starts_with("start.time"))?;
        let names: Vec<&str> = lines[header].split(',').map(str::trim).collect();
        let values: Vec<&str> = lines.get(header + 1)?.split(',').map(str::trim).collect();
        let get = |name: &str| -> Result<f64> {
            let i = names
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| anyhow!("no {name}"))?;
            match values.get(i).map(|v| v.parse::<f64>()) {
                Some(Ok(v)) => Ok(v),
                _ => bail!("no value for {name}"),
            }
        };
        let parsed = || -> Result<ConsumerSummary> {
            Ok(ConsumerSummary {
                records: get("data.consumed.in.nMsg")? as u64,
                overall_records_per_sec: get("nMsg.sec")?,
                rebalance_ms: get("rebalance.time.ms")? as u64,
                fetch_ms: get("fetch.time.ms")? as u64,
                fetch_mb_per_sec: get("fetch.MB.sec")?,
                fetch_records_per_sec: get("fetch.nMsg.sec")?,
            })
        };
        parsed().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_producer_summary_not_a_progress_line() {
        let out = "71031 records sent, 14186.3 records/sec (13.85 MB/sec), 1642.5 ms avg latency, 2815.0 ms max latency.\n\
            300000 records sent, 28656.032095 records/sec (27.98 MB/sec), 960.21 ms avg latency, 2815.00 ms max latency, \
            768 ms 50th, 2464 ms 95th, 2669 ms 99th, 2746 ms 99.9th.\n";
        let s = ProducerSummary::find(out).unwrap();
        assert_eq!(s.records, 300_000);
        assert!((s.records_per_sec - 28_656.032_095).abs() < 1e-6);
        assert_eq!((s.mb_per_sec, s.avg_ms, s.max_ms), (27.98, 960.21, 2815.0));
        assert_eq!((s.p50_ms, s.p99_ms, s.p999_ms), (768.0, 2669.0, 2746.0));
    }

    #[test]
    fn parses_the_consumer_summary_by_column_name() {
        let out = "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n\
            2026-12-05 08:56:30:898, 2026-12-05 08:56:39:300, 292.9688, 34.8689, 300000, 35705.7843, 4550, 3852, 76.0563, 77881.6199\n";
        let s = ConsumerSummary::find(out).unwrap();
        assert_eq!((s.records, s.rebalance_ms, s.fetch_ms), (300_000, 4550, 3852));
        assert_eq!((s.fetch_mb_per_sec, s.fetch_records_per_sec), (76.0563, 77_881.619_9));
        assert!(ConsumerSummary::find("start.time, end.time\n").is_none());
    }
}
