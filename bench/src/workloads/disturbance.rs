//! Other work on the machine. The broker and the generator share a small machine that other
//! people may be using too, and their work shows up in the figures. So before each measured
//! run the harness waits (a bounded time) for a quiet moment, measures how many cores other
//! work took during the run (the machine's busy time less the broker's and the generator's;
//! niced work, which only takes CPU nothing else wants, is not counted),
//! and runs a disturbed workload again (`--retries`), keeping the least disturbed attempt.
//! Each kept result says how disturbed it was.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::broker::procfs;
use crate::report::WorkloadResult;

/// Cores other work may use on average during a run before the run counts as disturbed.
pub const DISTURBED_CORES: f64 = 0.25;
/// Longest wait for a quiet moment before a measured run; past it the run starts anyway.
pub const QUIET_WAIT: Duration = Duration::from_secs(20);
/// The same before running a disturbed workload again.
const RETRY_QUIET_WAIT: Duration = Duration::from_secs(30);
/// The window over which quiet is judged.
const QUIET_WINDOW: Duration = Duration::from_millis(1000);

/// CPU seconds of this process and of the children it has waited for (the generator).
pub fn generator_cpu_secs() -> f64 {
    procfs::cpu_secs(None).unwrap_or(0.0) + procfs::children_cpu_secs()
}

/// Waits until other work uses under [`DISTURBED_CORES`] over a window, or `limit` passes
/// (at once without the broker's pids, whose CPU could not be told apart).
pub fn wait_quiet(broker_pids: Option<&[u32]>, limit: Duration) {
    if broker_pids.is_none() {
        return;
    }
    let started = Instant::now();
    while started.elapsed() < limit {
        let before = Sample::take(broker_pids);
        thread::sleep(QUIET_WINDOW);
        match Sample::take(broker_pids).other_cores_since(&before) {
            Some(cores) if cores >= DISTURBED_CORES => continue,
            _ => return,
        }
    }
}

/// The machine's, the broker's and the generator's CPU time at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    at: Instant,
    machine: Option<f64>,
    broker: Option<f64>,
    generator: f64,
}

impl Sample {
    /// `broker_pids`: the broker's process, or every node of a cluster (their CPU is summed).
    pub fn take(broker_pids: Option<&[u32]>) -> Sample {
        Sample {
            at: Instant::now(),
            machine: procfs::machine_busy_secs(),
            broker: broker_pids.and_then(procfs::cpu_secs_sum),
            generator: generator_cpu_secs(),
        }
    }

    /// CPU seconds the generator used since `earlier`.
    pub fn generator_since(&self, earlier: &Sample) -> f64 {
        self.generator - earlier.generator
    }

    /// Average cores used since `earlier` by anything but the broker and the generator (None
    /// without the broker's pid: its CPU could not be told apart).
    pub fn other_cores_since(&self, earlier: &Sample) -> Option<f64> {
        let wall = self.at.duration_since(earlier.at).as_secs_f64();
        let machine = self.machine? - earlier.machine?;
        let broker = self.broker? - earlier.broker?;
        let other = machine - broker - (self.generator - earlier.generator);
        (wall > 0.0).then(|| (other / wall).max(0.0))
    }
}

/// Runs `run` until an attempt is undisturbed, at most 1 + `retries` times, waiting longer for
/// a quiet moment before each retry; keeps the least disturbed attempt (`cores` says how
/// disturbed one is) and hands the others to `discard`. Returns it with every attempt's
/// disturbance, in order. An attempt that fails ends the tries: the first failure is
/// returned, or the best attempt so far.
pub fn least_disturbed<T>(
    retries: u32,
    broker_pids: Option<&[u32]>,
    mut run: impl FnMut() -> Result<T>,
    cores: impl Fn(&T) -> Option<f64>,
    mut discard: impl FnMut(T),
) -> Result<(T, Vec<f64>)> {
    let mut best: Option<(T, f64)> = None;
    let mut seen = Vec::new();
    for attempt in 0..=retries {
        let value = match run() {
            Ok(v) => v,
            Err(e) if best.is_none() => return Err(e),
            Err(e) => {
                eprintln!("   the attempt after a disturbed one failed ({e:#}); keeping the disturbed one");
                break;
            }
        };
        let c = cores(&value).unwrap_or(0.0);
        seen.push(c);
        match best.take() {
            Some((kept, kept_cores)) if kept_cores <= c => {
                discard(value);
                best = Some((kept, kept_cores));
            }
            previous => {
                if let Some((old, _)) = previous {
                    discard(old);
                }
                best = Some((value, c));
            }
        }
        if c < DISTURBED_CORES {
            break;
        }
        if attempt < retries {
            eprintln!("   disturbed: other work used {c:.2} cores on average; running it again");
            wait_quiet(broker_pids, RETRY_QUIET_WAIT);
        }
    }
    let (kept, _) = best.expect("at least one attempt ran");
    Ok((kept, seen))
}

/// Notes on a kept result: how many attempts it took, and whether it is still disturbed.
pub fn annotate(r: &mut WorkloadResult, attempts: &[f64]) {
    if attempts.len() > 1 {
        let list: Vec<String> = attempts.iter().map(|c| format!("{c:.2}")).collect();
        r.notes.push(format!(
            "ran {} times because other work on the machine disturbed it (other cores per attempt: {}); this is the least disturbed",
            attempts.len(),
            list.join(", ")
        ));
    }
    if let Some(c) = r.other_cores.filter(|c| *c >= DISTURBED_CORES) {
        r.notes.push(format!(
            "disturbed: other work on the machine used {c:.2} cores on average during this run"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_least_disturbed_attempt_and_discards_the_rest() {
        let disturbances = [0.9, 0.4, 0.6];
        let mut next = disturbances.iter();
        let mut discarded = Vec::new();
        let (kept, seen) = least_disturbed(
            2,
            None,
            || Ok(*next.next().unwrap()),
            |v| Some(*v),
            |v| discarded.push(v),
        )
        .unwrap();
        assert_eq!(kept, 0.4);
        assert_eq!(seen, vec![0.9, 0.4, 0.6]);
        assert_eq!(discarded, vec![0.9, 0.6]);
    }

    #[test]
    fn stops_at_the_first_quiet_attempt() {
        let mut runs = 0;
        let (kept, seen) = least_disturbed(
            2,
            None,
            || {
                runs += 1;
                Ok(0.1)
            },
            |v| Some(*v),
            |_| {},
        )
        .unwrap();
        assert_eq!((kept, seen.len(), runs), (0.1, 1, 1));
    }
}
