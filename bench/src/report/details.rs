//! One broker's section of results.md: how it was started and with which settings, its start
//! times and memory, every workload row with the figures the comparison leaves out (latency
//! percentiles, CPU of broker and generator, RSS), and its notes and failures.

use std::fmt::Write;

use super::table::{opt, rate};
use super::{BrokerRun, WorkloadResult};
use crate::broker::replication::Replication;

pub fn section(s: &mut String, b: &BrokerRun) {
    let _ = writeln!(s, "## {}\n", b.name);
    let _ = writeln!(s, "{} at {}.\n", b.description, b.bootstrap);
    if !b.settings.is_empty() {
        let settings: Vec<String> = b.settings.iter().map(|(k, v)| format!("`{k}={v}`")).collect();
        let _ = writeln!(
            s,
            "Settings given (all others are its defaults): {}.\n",
            settings.join(", ")
        );
    }
    if let Some(t) = b.start {
        let _ = writeln!(
            s,
            "Start: spawn → listening {:.2} s; spawn → first acknowledged record {} s.\n",
            t.listening_secs,
            opt(t.first_ack_secs, 2)
        );
    }
    let _ = writeln!(
        s,
        "| workload | generator | records/s | MB/s | lat | p50 | p99 | p99.9 | max | s | broker CPU s | broker µs/rec | broker RSS peak MB (anon) | gen CPU s | other cores |"
    );
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for w in &b.workloads {
        let _ = writeln!(s, "{}", row(w));
    }
    let _ = writeln!(s);
    replication(s, b);
    let _ = writeln!(
        s,
        "RSS after all runs (topics deleted, clients gone): {} MB = {} MB own memory (RssAnon) + {} MB mapped file pages (RssFile). Peak RSS (VmHWM, mapped file pages included): {} MB; peak own memory (RssAnon) during the runs: {} MB; broker CPU over the whole run: {} s; clean shutdown on SIGTERM: {} s.\n",
        opt(b.rss_end_mb, 0),
        opt(b.rss_anon_end_mb, 0),
        opt(b.rss_file_end_mb, 0),
        opt(b.rss_hwm_mb, 0),
        opt(b.rss_anon_peak_mb, 0),
        opt(b.cpu_total_secs, 1),
        opt(b.shutdown_secs, 2)
    );
    let mut notes: Vec<String> = b
        .workloads
        .iter()
        .filter(|w| !w.notes.is_empty() || w.errors > 0)
        .map(|w| {
            let mut n = w.notes.clone();
            if w.errors > 0 {
                n.insert(0, format!("{} errors", w.errors));
            }
            format!("- {} [{}]: {}", w.name, w.generator, n.join("; "))
        })
        .collect();
    notes.extend(
        b.failures
            .iter()
            .map(|f| format!("- failed: {}", f.replace('\n', "\n  "))),
    );
    if !notes.is_empty() {
        let _ = writeln!(s, "Notes:\n");
        for n in notes {
            let _ = writeln!(s, "{n}");
        }
        let _ = writeln!(s);
    }
}

/// The follower lag and ISR changes of a Sluice cluster's runs (nothing for other brokers).
fn replication(s: &mut String, b: &BrokerRun) {
    let with: Vec<(&WorkloadResult, &Replication)> = b
        .workloads
        .iter()
        .filter(|w| w.latency_kind != Some("ack"))
        .filter_map(|w| w.replication.as_ref().map(|r| (w, r)))
        .collect();
    if with.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "Replication during each run, from every node's /metrics every 250 ms (lag: offsets a follower is behind its leader's log end; p50/p99 of the worst lag of each reading):\n"
    );
    let _ = writeln!(
        s,
        "| workload | readings | lag p50 | lag p99 | lag max | lag mean | readings with a follower not yet heard from | under-replicated max | under min ISR max | ISR shrinks | ISR expands |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (w, r) in with {
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.1} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            w.name,
            r.samples,
            r.lag_records_p50,
            r.lag_records_p99,
            r.lag_records_max,
            r.lag_records_mean,
            r.samples_with_unheard_follower,
            r.under_replicated_max,
            r.under_min_isr_max,
            r.isr_shrinks,
            r.isr_expands
        );
    }
    let _ = writeln!(s);
}

fn row(w: &WorkloadResult) -> String {
    let lat = w.latency.as_ref();
    let ms = |f: fn(&super::Percentiles) -> f64| lat.map_or(String::new(), |p| format!("{:.2}", f(p)));
    format!(
        "| {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {:.1} | {} |",
        w.name,
        w.generator,
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
        opt(w.other_cores, 2),
    )
}
