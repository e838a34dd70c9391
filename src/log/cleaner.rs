//! The log cleaner (Kafka's `LogCleaner` and `LogCleanerManager`): `log.cleaner.threads`
//! background threads, each taking the dirtiest compacted log in turn (the largest share of
//! dirty bytes above its `min.cleanable.dirty.ratio`, or any log whose dirt waited past
//! `max.compaction.lag.ms`), cleaning it (`compaction`), and checkpointing how far it got
//! (`cleaner-offset-checkpoint`). An idle thread sleeps `log.cleaner.backoff.ms`. Their
//! reads and writes together are throttled to `log.cleaner.io.max.bytes.per.second`; each
//! has its own key map, `log.cleaner.dedupe.buffer.size` shared out over them.
//!
//! Owns: the threads, which logs are being cleaned (never one by two threads), which failed
//! (left alone until a restart, as Kafka's uncleanable partitions), the cleaner's counters for
//! the metrics. May call: `compaction`, `offset_map`, `throttle`, the log dirs (for the
//! checkpoints), std threads. Must never: block a partition for longer than `compaction`
//! takes its lock, or keep running once `shutdown` returned.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::cleaning_progress::CleaningProgress;
use super::compaction::{clean, with_log, CleanError, CleanStats, CleanTarget, CleanerIo, Dirtiness};
use super::dirs::LogDirs;
use super::offset_map::OffsetMap;
use super::swap::Step;
use super::throttle::Throttle;

/// The cleaner's settings (Kafka's `log.cleaner.*`).
#[derive(Debug, Clone)]
pub(crate) struct CleanerConfig {
    pub(crate) enabled: bool,
    pub(crate) threads: usize,
    pub(crate) dedupe_buffer_bytes: u64,
    pub(crate) load_factor: f64,
    pub(crate) io_buffer_bytes: usize,
    pub(crate) io_max_bytes_per_second: f64,
    pub(crate) backoff: Duration,
}

/// Where the cleaner finds the logs: called at every round, so logs come and go freely.
pub(crate) type Targets = Box<dyn Fn() -> Vec<Arc<dyn CleanTarget>> + Send + Sync>;

type Key = (String, i32);

/// The cleaner's counters, read by the metrics at scrape time.
#[derive(Debug, Default)]
pub(crate) struct CleanerStats {
    pub(crate) runs: AtomicU64,
    pub(crate) bytes_read: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    /// Bytes of dirty log read per second by the last cleaning (an f64's bits).
    last_bytes_per_second: AtomicU64,
    /// Wall clock of the last time a thread looked for a log to clean, ms.
    last_run_ms: AtomicI64,
    /// Each compacted log's dirty ratio as of the last round.
    dirty_ratios: Mutex<HashMap<Key, f64>>,
    pub(crate) uncleanable: AtomicU64,
}

impl CleanerStats {
    pub(crate) fn last_bytes_per_second(&self) -> f64 {
        f64::from_bits(self.last_bytes_per_second.load(Ordering::Relaxed))
    }

    /// Seconds since a cleaner thread last looked for work (-1 before the first time).
    pub(crate) fn seconds_since_last_run(&self) -> f64 {
        match self.last_run_ms.load(Ordering::Relaxed) {
            0 => -1.0,
            at => (now_ms() - at).max(0) as f64 / 1000.0,
        }
    }

    pub(crate) fn dirty_ratios(&self) -> Vec<(Key, f64)> {
        let ratios = self.dirty_ratios.lock().unwrap_or_else(PoisonError::into_inner);
        ratios.iter().map(|(k, r)| (k.clone(), *r)).collect()
    }
}

/// What the threads share.
struct Shared {
    config: CleanerConfig,
    targets: Targets,
    logs: Arc<LogDirs>,
    in_progress: Mutex<HashSet<Key>>,
    uncleanable: Mutex<HashSet<Key>>,
    stop: AtomicBool,
    wake: (Mutex<bool>, Condvar),
    throttle: Throttle,
    stats: Arc<CleanerStats>,
    /// Serialises the checkpoint writes of the threads.
    checkpointing: Mutex<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub(crate) struct LogCleaner {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl LogCleaner {
    /// Starts the cleaner threads (none when disabled or with 0 threads).
    pub(crate) fn start(config: CleanerConfig, logs: Arc<LogDirs>, targets: Targets) -> LogCleaner {
        let threads = if config.enabled { config.threads } else { 0 };
        let shared = Arc::new(Shared {
            throttle: Throttle::new(config.io_max_bytes_per_second),
            config,
            targets,
            logs,
            in_progress: Mutex::new(HashSet::new()),
            uncleanable: Mutex::new(HashSet::new()),
            stop: AtomicBool::new(false),
            wake: (Mutex::new(false), Condvar::new()),
            stats: Arc::new(CleanerStats::default()),
            checkpointing: Mutex::new(()),
        });
        let handles = (0..threads)
            .filter_map(|i| {
                let shared = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("log-cleaner-{i}"))
                    .spawn(move || shared.run(i));
                match spawned {
                    Ok(handle) => Some(handle),
                    Err(e) => {
                        tracing::error!(error = %e, "could not start a log cleaner thread");
                        None
                    }
                }
            })
            .collect();
        LogCleaner {
            shared,
            threads: Mutex::new(handles),
        }
    }

    pub(crate) fn stats(&self) -> Arc<CleanerStats> {
        self.shared.stats.clone()
    }

    /// Stops the threads (a cleaning in progress is abandoned, its files deleted) and waits
    /// for them; then writes the checkpoints one last time.
    pub(crate) fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Release);
        {
            let (lock, cvar) = &self.shared.wake;
            *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
            cvar.notify_all();
        }
        let handles = std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for handle in handles {
            if handle.join().is_err() {
                tracing::error!("a log cleaner thread panicked");
            }
        }
        self.shared.checkpoint();
    }

    /// Runs one round on the calling thread.
    #[cfg(test)]
    pub(crate) fn clean_once(&self, now_ms: i64) -> Option<CleanStats> {
        let mut map = self.shared.new_map();
        self.shared.round(&mut map, now_ms)
    }
}

impl Shared {
    fn new_map(&self) -> OffsetMap {
        let threads = self.config.threads.max(1) as u64;
        OffsetMap::new(self.config.dedupe_buffer_bytes / threads, self.config.load_factor)
    }

    fn run(&self, id: usize) {
        tracing::info!(thread = id, "log cleaner started");
        let mut map = self.new_map();
        while !self.stop.load(Ordering::Acquire) {
            if self.round(&mut map, now_ms()).is_none() {
                self.sleep(self.config.backoff);
            }
        }
        tracing::info!(thread = id, "log cleaner stopped");
    }

    /// Waits up to `d`, or until shutdown.
    fn sleep(&self, d: Duration) {
        let (lock, cvar) = &self.wake;
        let guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        if *guard {
            return;
        }
        let _ = cvar.wait_timeout(guard, d);
    }

    /// Picks the dirtiest log and cleans it. None if there was nothing to clean.
    fn round(&self, map: &mut OffsetMap, now_ms: i64) -> Option<CleanStats> {
        let (target, dirtiness) = self.grab_filthiest(now_ms)?;
        let key = target.name();
        let stats = self.clean(target.as_ref(), &dirtiness, map, now_ms);
        self.in_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
        if stats.is_some() {
            self.checkpoint();
        }
        stats
    }

    fn clean(
        &self,
        target: &dyn CleanTarget,
        dirtiness: &Dirtiness,
        map: &mut OffsetMap,
        now_ms: i64,
    ) -> Option<CleanStats> {
        let (topic, partition) = target.name();
        let mut io = CleanerIo {
            map,
            throttle: &self.throttle,
            stop: &self.stop,
            write_chunk_bytes: self.config.io_buffer_bytes.max(1),
            swap_until: Step::Deleted,
        };
        match clean(target, dirtiness, &mut io, now_ms) {
            Ok(stats) => {
                self.record(&stats);
                tracing::info!(
                    topic,
                    partition,
                    mb_read = stats.bytes_read as f64 / 1e6,
                    mb_written = stats.bytes_written as f64 / 1e6,
                    records_read = stats.records_read,
                    records_kept = stats.records_kept,
                    segments_before = stats.segments_before,
                    segments_after = stats.segments_after,
                    end_offset = stats.end_offset,
                    elapsed_ms = stats.elapsed.as_millis() as u64,
                    swap_locked_ms = stats.swap_locked.as_millis() as u64,
                    "log cleaned"
                );
                Some(stats)
            }
            Err(CleanError::Abandoned(why)) => {
                tracing::debug!(topic, partition, why, "log cleaning abandoned");
                None
            }
            Err(CleanError::Failed(e)) => {
                tracing::error!(topic, partition, error = %e, "log cleaning failed; the partition is not cleaned again until a restart");
                self.uncleanable
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert((topic, partition));
                self.stats.uncleanable.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    fn record(&self, stats: &CleanStats) {
        let s = &self.stats;
        s.runs.fetch_add(1, Ordering::Relaxed);
        s.bytes_read.fetch_add(stats.bytes_read, Ordering::Relaxed);
        s.bytes_written.fetch_add(stats.bytes_written, Ordering::Relaxed);
        let rate = stats.bytes_read as f64 / stats.elapsed.as_secs_f64().max(1e-6);
        s.last_bytes_per_second.store(rate.to_bits(), Ordering::Relaxed);
    }

    /// Kafka's `grabFilthiestCompactedLog`: every compacted log not being cleaned and not
    /// failed, the dirtiest that should be cleaned, marked in progress.
    fn grab_filthiest(&self, now_ms: i64) -> Option<(Arc<dyn CleanTarget>, Dirtiness)> {
        self.stats.last_run_ms.store(now_ms, Ordering::Relaxed);
        let mut in_progress = self.in_progress.lock().unwrap_or_else(PoisonError::into_inner);
        let uncleanable = self.uncleanable.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut ratios = HashMap::new();
        let mut best: Option<(Arc<dyn CleanTarget>, Dirtiness)> = None;
        for target in (self.targets)() {
            let key = target.name();
            if in_progress.contains(&key) || uncleanable.contains(&key) {
                continue;
            }
            let upper_bound = target.upper_bound();
            let found = with_log(target.as_ref(), |log| log.dirtiness(upper_bound, now_ms));
            let dirtiness = match found {
                Some(Ok(Some(d))) if d.total_bytes() > 0 => d,
                Some(Err(e)) => {
                    tracing::warn!(topic = %key.0, partition = key.1, error = %e, "cannot tell how dirty a log is");
                    continue;
                }
                _ => continue,
            };
            ratios.insert(key, dirtiness.ratio());
            if dirtiness.should_clean() && best.as_ref().is_none_or(|(_, b)| dirtiness.ratio() > b.ratio()) {
                best = Some((target, dirtiness));
            }
        }
        *self.stats.dirty_ratios.lock().unwrap_or_else(PoisonError::into_inner) = ratios;
        let (target, dirtiness) = best?;
        in_progress.insert(target.name());
        Some((target, dirtiness))
    }

    /// Writes the cleaner's checkpoints of every compacted log.
    fn checkpoint(&self) {
        let _guard = self.checkpointing.lock().unwrap_or_else(PoisonError::into_inner);
        let progress: Vec<(PathBuf, (String, i32, CleaningProgress))> = (self.targets)()
            .iter()
            .filter_map(|t| {
                let (topic, partition) = t.name();
                with_log(t.as_ref(), |log| {
                    (log.config().compaction.is_some() || log.cleaning_progress().first_dirty.is_some())
                        .then(|| (log.dir().to_path_buf(), log.cleaning_progress()))
                })
                .flatten()
                .map(|(dir, p)| (dir, (topic, partition, p)))
            })
            .collect();
        // Each log dir gets the entries of its own logs.
        if let Err(e) = self.logs.write_cleaning(progress) {
            tracing::warn!(error = %e, "cleaner checkpoint failed");
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::config::{CompactionConfig, LogConfig};
    use crate::log::manager::CLEANER_CHECKPOINT;
    use crate::log::testutil::{config, keyed_batch};
    use crate::log::Log;
    use kafka_protocol::records::Compression;

    struct Hosted(Mutex<Log>);

    impl CleanTarget for Hosted {
        fn name(&self) -> (String, i32) {
            ("t".into(), 0)
        }
        fn lock_log(&self, f: &mut dyn FnMut(&mut Log)) -> bool {
            f(&mut self.0.lock().unwrap());
            true
        }
        fn upper_bound(&self) -> i64 {
            i64::MAX
        }
    }

    fn cleaner_config() -> CleanerConfig {
        CleanerConfig {
            enabled: true,
            threads: 0,
            dedupe_buffer_bytes: 1 << 20,
            load_factor: 0.9,
            io_buffer_bytes: 1 << 16,
            io_max_bytes_per_second: f64::MAX,
            backoff: Duration::from_millis(10),
        }
    }

    #[test]
    fn a_round_cleans_the_dirtiest_log_and_checkpoints_it_in_kafkas_format() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Arc::new(LogDirs::open(&[(dir.path().to_path_buf(), uuid::Uuid::new_v4())]).unwrap());
        let compacted = LogConfig {
            segment_bytes: 1024,
            compaction: Some(CompactionConfig::default()),
            ..config()
        };
        let mut log = logs.create("t", 0, compacted.clone(), &[]).unwrap();
        for round in 0..10 {
            for k in ["a", "b", "c"] {
                let value = format!("{round}");
                let mut batch = keyed_batch(&[(Some(k), Some(value.as_str()))], 1, -1, 0, Compression::None);
                log.append(&mut batch, 0, 0).unwrap();
            }
        }
        log.roll().unwrap();
        let end = log.log_end_offset();
        let hosted: Arc<dyn CleanTarget> = Arc::new(Hosted(Mutex::new(log)));
        let target = hosted.clone();
        let cleaner = LogCleaner::start(cleaner_config(), logs.clone(), Box::new(move || vec![target.clone()]));
        let stats = cleaner.clean_once(0).expect("the log was dirty enough");
        assert_eq!((stats.records_read, stats.records_kept, stats.end_offset), (30, 3, end));
        assert!(cleaner.clean_once(0).is_none(), "nothing dirty left");
        let s = cleaner.stats();
        assert_eq!(s.runs.load(Ordering::Relaxed), 1);
        assert_eq!(s.dirty_ratios(), vec![(("t".to_string(), 0), 0.0)]);
        let text = std::fs::read_to_string(dir.path().join(CLEANER_CHECKPOINT)).unwrap();
        assert_eq!(text, format!("0\n1\nt 0 {end}\n"));
        cleaner.shutdown();
        // The next start picks up where the cleaner was.
        drop(hosted);
        let reopened = LogDirs::open(&[(dir.path().to_path_buf(), uuid::Uuid::new_v4())]).unwrap();
        let loaded = reopened.load_all(|_| Some(compacted.clone())).unwrap();
        assert_eq!(loaded[0].2.cleaning_progress().first_dirty, Some(end));
    }
}
