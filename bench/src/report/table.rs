//! The Markdown report, readable as is in a terminal and written to results.md: the run's
//! header and ceilings, the comparison table (one column per broker and the `×` ratio), the
//! settings each broker got, then each broker's detail table (see `details`).

use std::fmt::Write;

use super::compare::{Better, Row};
use super::{details, Report};

pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let names: Vec<&str> = r.brokers.iter().map(|b| b.name.as_str()).collect();
    let _ = writeln!(s, "# Benchmark results: {}\n", names.join(" vs "));
    let _ = writeln!(
        s,
        "Machine: {} × {}, {} MB RAM, Linux {}. Each broker ran alone, one after the other ({}), on this machine, sharing its {} CPUs with the load generator. \
         Run time per timed workload: {:.0} s{}; latency workload at {} rec/s for every broker. Whole run: {:.0} s. MB = 2^20 bytes of record keys + values.\n",
        r.machine.cpus,
        r.machine.cpu_model,
        r.machine.mem_total_mb,
        r.machine.kernel,
        names.join(", then "),
        r.machine.cpus,
        r.run_secs_per_workload,
        if r.quick { " (--quick)" } else { "" },
        r.latency_rate,
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

    comparison(&mut s, r);

    for b in &r.brokers {
        details::section(&mut s, b);
    }
    let _ = writeln!(
        s,
        "`lat`: `e2e` = produce call → consumer poll and `ack` = produce call → delivery report, both at the paced rate; `ack@max` = produce call → delivery report while producers send as fast as they can, \
         which is mostly time records wait in the client's own queue, not in the broker. `s`: the measured time the rates are over. `gen CPU s`: CPU the load generator used (for kafka-perf-test rows its JVM, start included); \
         where broker + generator CPU comes near {} × `s`, every core was busy and the figure is a bound of this machine, not of the broker alone. \
         `other cores`: cores everything else on the machine used on average meanwhile (other work sharing it); a run where it reached 0.25 was run again, and the Notes say so.",
        r.machine.cpus
    );
    s
}

fn comparison(s: &mut String, r: &Report) {
    // One ratio per pair of brokers that ran one after the other: (first, second), (third, fourth).
    let pairs: Vec<(&str, &str)> = r
        .brokers
        .chunks(2)
        .filter(|p| p.len() == 2)
        .map(|p| (p[0].short_name.as_str(), p[1].short_name.as_str()))
        .collect();
    let ratio_names: Vec<String> = pairs.iter().map(|(_, b)| format!("×{b}")).collect();
    let _ = writeln!(s, "## Comparison\n");
    let mut header = "| workload | generator | measure | better |".to_string();
    let mut align = "|---|---|---|---|".to_string();
    for b in &r.brokers {
        header += &format!(" {} |", b.name);
        align += "---:|";
    }
    for name in &ratio_names {
        header += &format!(" {name} |");
        align += "---:|";
    }
    for b in &r.brokers {
        header += &format!(" {} µs/rec |", b.short_name);
        align += "---:|";
    }
    let _ = writeln!(s, "{header}\n{align}");
    for row in &r.comparison {
        let _ = writeln!(s, "{}", line(row, ratio_names.len()));
    }
    let _ = writeln!(s);
    for (name, (a, b)) in ratio_names.iter().zip(&pairs) {
        let _ = writeln!(
            s,
            "`{name}` = {a} ÷ {b}, from this run. Where higher is better (records/s) a ratio above 1 means {a} did better; where lower is better (latency, follower lag, start time, memory) a ratio below 1 means {a} did better.\n"
        );
    }
    if r.brokers.iter().any(|b| b.nodes > 1) {
        let _ = writeln!(
            s,
            "A cluster's nodes all run on this machine, sharing its {} CPUs with each other and the load generator; its CPU, µs/rec and memory are those of all its nodes together. \
             Follower lag is what each Sluice leader reports (`sluice_follower_lag_records`: offsets a follower is behind the leader's log end), read from every node every 250 ms during the run: \
             p50 is the median of the worst lag of each reading, max the worst seen. Kafka's clusters have no such figure here (its metrics are JMX).\n",
            r.machine.cpus
        );
    }
    let _ = writeln!(
        s,
        "`µs/rec`: broker CPU per record, which compares the brokers even where the generator, not the broker, was the limit.\n"
    );
}

fn line(row: &Row, ratios: usize) -> String {
    let mut text = format!(
        "| {} | {} | {} | {} |",
        row.workload,
        row.generator,
        row.measure,
        match row.better {
            Better::Higher => "higher",
            Better::Lower => "lower",
        }
    );
    for (i, value) in row.values.iter().enumerate() {
        let cell = match (value, row.mb_per_sec.get(i).copied().flatten()) {
            (None, _) => "n/a".to_string(),
            (Some(v), Some(mb)) => format!("{} ({mb:.0} MB/s)", rate(*v)),
            (Some(v), None) if row.measure == "records/s" => rate(*v),
            (Some(v), None) => format!("{v:.2}"),
        };
        text += &format!(" {cell} |");
    }
    for i in 0..ratios {
        text += &format!(" {} |", opt(row.ratios.get(i).copied().flatten(), 2));
    }
    for us in &row.broker_us_per_record {
        text += &format!(" {} |", us.map_or(String::new(), |v| format!("{v:.2}")));
    }
    text
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

pub fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("n/a".to_string(), |x| format!("{x:.decimals$}"))
}
