//! The plain table: Markdown, readable as is in a terminal, written to results.md.

use std::fmt::Write;

use super::{Report, WorkloadResult};

/// Kafka 3.7.1's broker RSS after the reference runs (from the issue).
const REFERENCE_RSS_MB: f64 = 811.0;

pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Sluice benchmark results\n");
    let _ = writeln!(
        s,
        "Broker: {} at {}. Machine: {} × {}, {} MB RAM, Linux {}. Generator (librdkafka, same machine) and broker share the CPUs.",
        r.broker, r.bootstrap, r.machine.cpus, r.machine.cpu_model, r.machine.mem_total_mb, r.machine.kernel
    );
    let _ = writeln!(
        s,
        "Run time per timed workload: {:.0} s{}. Whole run: {:.0} s. MB = 2^20 bytes of record keys + values. Latency in ms.\n",
        r.run_secs_per_workload,
        if r.quick { " (--quick)" } else { "" },
        r.wall_secs
    );

    if !r.ceilings.is_empty() {
        let _ = writeln!(s, "## Ceilings of this machine\n");
        let _ = writeln!(s, "| ceiling | MB/s | how |");
        let _ = writeln!(s, "|---|---:|---|");
        for c in &r.ceilings {
            let how = match &c.note {
                Some(n) => format!("{} ({n})", c.how),
                None => c.how.clone(),
            };
            let _ = writeln!(s, "| {} | {} | {} |", c.name, opt(c.mb_per_sec, 0), how);
        }
        let _ = writeln!(s);
    }

    let _ = writeln!(s, "## Workloads\n");
    let _ = writeln!(
        s,
        "| workload | records/s | MB/s | lat | p50 | p99 | p99.9 | max | s | broker CPU s | broker µs/rec | broker RSS peak MB (anon) | gen CPU s | Kafka 3.7.1 ref | ×ref |"
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"
    );
    for w in &r.workloads {
        let _ = writeln!(s, "{}", row(w));
    }
    let _ = writeln!(
        s,
        "| broker RSS after all runs | | | | | | | | | | | {} ({} anon) | | {} MB | {} |",
        opt(r.broker_rss_end_mb, 0),
        opt(r.broker_rss_anon_end_mb, 0),
        REFERENCE_RSS_MB,
        r.broker_rss_end_mb
            .map_or("n/a".to_string(), |m| format!("{:.2}", m / REFERENCE_RSS_MB))
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Broker RSS after all runs (topics deleted, clients gone): {} MB = {} MB own memory (RssAnon) + {} MB mapped file pages (RssFile, e.g. segments and indexes; the kernel drops those under memory pressure). Peak RSS over the whole run (VmHWM): {} MB; broker CPU over the whole run: {} s; clean shutdown on SIGTERM (s): {}.\n",
        opt(r.broker_rss_end_mb, 0),
        opt(r.broker_rss_anon_end_mb, 0),
        opt(r.broker_rss_file_end_mb, 0),
        opt(r.broker_rss_hwm_mb, 0),
        opt(r.broker_cpu_total_secs, 1),
        r.broker_shutdown_secs
            .map_or("n/a (not started by the harness)".to_string(), |s| format!("{s:.2}"))
    );
    let _ = writeln!(
        s,
        "`lat`: `e2e` = produce call → consumer poll and `ack` = produce call → delivery report, both at the paced rate; `ack@max` = produce call → delivery report while producers send as fast as they can, which is mostly time spent in librdkafka's own queue (up to 100 000 records), not in the broker. `×ref` = records/s ÷ the reference records/s (RSS: ÷ 811 MB). `s`: the measured time the rates are over. `broker µs/rec`: broker CPU per record, comparable between runs even where the generator is the limit. `gen CPU s`: CPU the load generator used; where broker + generator CPU comes near 2 × `s`, both cores were busy and the figure is a bound of this machine, not of the broker alone."
    );
    let notes: Vec<String> = r
        .workloads
        .iter()
        .filter(|w| !w.notes.is_empty() || w.errors > 0)
        .map(|w| {
            let mut n = w.notes.clone();
            if w.errors > 0 {
                n.insert(0, format!("{} errors", w.errors));
            }
            format!("- {}: {}", w.name, n.join("; "))
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(s, "\n## Notes\n");
        for n in notes {
            let _ = writeln!(s, "{n}");
        }
    }
    s
}

fn row(w: &WorkloadResult) -> String {
    let lat = w.latency.as_ref();
    let ms = |f: fn(&super::Percentiles) -> f64| lat.map_or(String::new(), |p| format!("{:.2}", f(p)));
    let (reference, ratio) = match &w.reference {
        Some(rf) => {
            let mut text = String::new();
            if let Some(rps) = rf.records_per_sec {
                text += &format!("{} rec/s", rate(rps));
            }
            if let Some(mbs) = rf.mb_per_sec {
                text += &format!(", {mbs:.0} MB/s");
            }
            let ratio = rf
                .records_per_sec
                .map_or(String::new(), |rps| format!("{:.2}", w.records_per_sec / rps));
            (text, ratio)
        }
        None => (String::new(), String::new()),
    };
    format!(
        "| {} | {} | {:.1} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {:.1} | {} | {} |",
        w.name,
        rate(w.records_per_sec),
        w.mb_per_sec,
        w.latency_kind.unwrap_or(""),
        ms(|p| p.p50_ms),
        ms(|p| p.p99_ms),
        ms(|p| p.p999_ms),
        ms(|p| p.max_ms),
        w.elapsed_secs,
        w.broker.map_or("n/a".to_string(), |u| format!("{:.1}", u.cpu_secs)),
        w.broker_cpu_us_per_record
            .map_or("n/a".to_string(), |us| format!("{us:.2}")),
        w.broker.map_or("n/a".to_string(), |u| format!(
            "{:.0} ({:.0})",
            u.rss_peak_mb, u.rss_anon_peak_mb
        )),
        w.client_cpu_secs,
        reference,
        ratio
    )
}

/// 1 234 567 → "1.23 M", 180 000 → "180.0 k".
pub fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("n/a".to_string(), |x| format!("{x:.decimals$}"))
}
