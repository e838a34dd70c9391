//! Client quota enforcement, as Kafka's `ClientQuotaManager` does it for produce and fetch
//! byte rates: each quota's sharers (a user and client id, a user, or a client id, as the
//! matched quota entity says) have one sampled rate; a request's bytes are recorded on it, and
//! a rate above the quota gives the time the client must pause. The API layer puts that time
//! in the response's `throttle_time_ms` and mutes the connection for it (see
//! [`Throttle`]), so a noisy client slows down while others are served as before.
//!
//! May read the metadata image's quotas; never writes anything, never blocks.

pub(crate) mod window;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::metadata::client_quotas::{ClientQuotas, QuotaSharer};
use window::SampledRate;

/// Most sharers tracked per quota: beyond it, the idlest are dropped (their windows restart).
const MAX_SHARERS: usize = 10_000;

/// One quota key's rates (`producer_byte_rate` or `consumer_byte_rate`).
#[derive(Debug)]
pub(crate) struct QuotaManager {
    key: &'static str,
    num: usize,
    window_ms: u64,
    rates: Mutex<HashMap<QuotaSharer, SampledRate>>,
}

impl QuotaManager {
    pub(crate) fn new(key: &'static str, num: usize, window_ms: u64) -> QuotaManager {
        QuotaManager {
            key,
            num,
            window_ms,
            rates: Mutex::new(HashMap::new()),
        }
    }

    /// Records `bytes` of `user` with `client_id` at `now_ms`; the throttle time in ms (0 when
    /// no quota applies or the rate is within it).
    pub(crate) fn record(&self, quotas: &ClientQuotas, user: &str, client_id: &str, bytes: u64, now_ms: u64) -> u64 {
        let Some((quota, sharer)) = quotas.quota_for(user, client_id, self.key) else {
            return 0;
        };
        let mut rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        if !rates.contains_key(&sharer) && rates.len() >= MAX_SHARERS {
            evict_idlest(&mut rates);
        }
        let rate = rates
            .entry(sharer)
            .or_insert_with(|| SampledRate::new(self.num, self.window_ms, now_ms));
        rate.record(bytes as f64, now_ms);
        rate.throttle_ms(quota, now_ms)
    }

    /// Takes back bytes recorded for a response that was not sent with them.
    pub(crate) fn unrecord(&self, quotas: &ClientQuotas, user: &str, client_id: &str, bytes: u64, now_ms: u64) {
        let Some((_, sharer)) = quotas.quota_for(user, client_id, self.key) else {
            return;
        };
        let mut rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rate) = rates.get_mut(&sharer) {
            rate.unrecord(bytes as f64, now_ms);
        }
    }
}

fn evict_idlest(rates: &mut HashMap<QuotaSharer, SampledRate>) {
    let idlest = rates
        .iter()
        .min_by_key(|(_, r)| r.last_record_ms)
        .map(|(s, _)| s.clone());
    if let Some(s) = idlest {
        rates.remove(&s);
    }
}

/// The quota managers of a broker.
#[derive(Debug)]
pub(crate) struct ClientQuotaManagers {
    pub(crate) produce: QuotaManager,
    pub(crate) fetch: QuotaManager,
}

impl ClientQuotaManagers {
    pub(crate) fn new(num: usize, window_ms: u64) -> ClientQuotaManagers {
        use crate::metadata::client_quotas::{CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE};
        ClientQuotaManagers {
            produce: QuotaManager::new(PRODUCER_BYTE_RATE, num, window_ms),
            fetch: QuotaManager::new(CONSUMER_BYTE_RATE, num, window_ms),
        }
    }
}

/// One connection's mute (Kafka mutes a throttled client's channel): requests are not read
/// from the connection before `until_ms`.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    until_ms: AtomicU64,
}

impl Throttle {
    /// Mutes the connection for `ms` from `now_ms` (never shortening a longer mute).
    pub(crate) fn mute(&self, now_ms: u64, ms: u64) {
        if ms > 0 {
            self.until_ms.fetch_max(now_ms + ms, Ordering::Relaxed);
        }
    }

    /// How long the connection stays muted from `now_ms`.
    pub(crate) fn remaining_ms(&self, now_ms: u64) -> u64 {
        self.until_ms.load(Ordering::Relaxed).saturating_sub(now_ms)
    }
}

/// The quota user of a principal: `User:alice` is alice (Kafka's sanitized user name).
pub(crate) fn user_of(principal: &str) -> &str {
    principal.strip_prefix("User:").unwrap_or(principal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::client_quotas::{plan_alter, QuotaAlteration, PRODUCER_BYTE_RATE};

    fn quotas(entity: &[(&str, Option<&str>)], rate: f64) -> ClientQuotas {
        let mut q = ClientQuotas::default();
        let a = QuotaAlteration {
            entity: entity
                .iter()
                .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
                .collect(),
            ops: vec![(PRODUCER_BYTE_RATE.into(), Some(rate))],
        };
        for r in plan_alter(&q, &[a]).0 {
            q.apply(&r).unwrap();
        }
        q
    }

    #[test]
    fn only_the_client_over_its_quota_is_throttled() {
        let q = quotas(&[("client-id", Some("noisy"))], 1000.0);
        let m = QuotaManager::new(PRODUCER_BYTE_RATE, 11, 1000);
        assert_eq!(m.record(&q, "ANONYMOUS", "quiet", 1_000_000, 0), 0);
        assert_eq!(m.record(&q, "ANONYMOUS", "noisy", 5_000, 0), 0);
        let t = m.record(&q, "ANONYMOUS", "noisy", 15_000, 0);
        assert_eq!(t, 10_000, "20 kB over 10 s is twice 1 kB/s: 10 s more");
    }

    #[test]
    fn a_client_id_quota_is_shared_by_every_user_with_it() {
        let q = quotas(&[("client-id", Some("app"))], 1000.0);
        let m = QuotaManager::new(PRODUCER_BYTE_RATE, 11, 1000);
        m.record(&q, "alice", "app", 10_000, 0);
        assert!(m.record(&q, "bob", "app", 10_000, 0) > 0);
    }

    #[test]
    fn a_mute_only_grows() {
        let t = Throttle::default();
        t.mute(1000, 500);
        t.mute(1000, 100);
        assert_eq!(t.remaining_ms(1200), 300);
        assert_eq!(t.remaining_ms(2000), 0);
        assert_eq!(user_of("User:alice"), "alice");
    }
}
