//! Planning broker lifecycle changes: registration, fencing and unfencing, and the leader
//! moves each implies. Pure functions of the image, like `topics`; the controller commits the
//! records they return.
//!
//! Fencing a broker takes it out of every ISR and moves its leaderships to other ISR members;
//! unfencing it lets it lead partitions left leaderless (`elections` has the rules).

use uuid::Uuid;

use super::elections::{self, UncleanAllowed};
use super::image::MetadataImage;
use super::records::MetadataRecord;

/// One listener of a broker as it registers it (KRaft's BrokerRegistrationRequest `Listeners`
/// and RegisterBrokerRecord `EndPoints`): clients that connected on a listener of this name are
/// told to reach the broker here.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct BrokerEndpoint {
    pub(crate) name: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    pub(crate) security_protocol: String,
}

/// What a broker tells the controller when it starts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Registration {
    pub(crate) broker_id: i32,
    pub(crate) incarnation_id: Uuid,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) rack: Option<String>,
    /// The incarnation this broker's last run had, if that run stopped cleanly: its logs were
    /// flushed and closed (the log dir's clean-shutdown marker; Kafka's
    /// `PreviousBrokerEpoch`). A restart without it may have lost unflushed writes.
    #[serde(default)]
    pub(crate) previous_incarnation: Option<Uuid>,
    /// The directory ids of its log dirs, in `log.dirs` order (KIP-858's BrokerRegistration
    /// LogDirs).
    #[serde(default)]
    pub(crate) log_dirs: Vec<Uuid>,
    /// Every Kafka listener's advertised endpoint; `host`:`port` is the inter-broker one among
    /// them. Empty from brokers that predate per-listener registration.
    #[serde(default)]
    pub(crate) listeners: Vec<BrokerEndpoint>,
}

/// A new incarnation (or a moved endpoint) is recorded; the same registration sent again is not.
/// A broker that restarted before its session expired is fenced first: its partitions lose
/// their leader and get a new leader epoch when it is unfenced, as after any restart.
pub(crate) fn plan_register(
    image: &MetadataImage,
    r: &Registration,
    unclean: UncleanAllowed<'_>,
) -> Vec<MetadataRecord> {
    let same = image.broker(r.broker_id).is_some_and(|b| {
        b.incarnation_id == r.incarnation_id
            && b.host == r.host
            && b.port == r.port
            && b.rack == r.rack
            && b.log_dirs == r.log_dirs
            && b.listeners == r.listeners
    });
    if same {
        return Vec::new();
    }
    // A restart without the clean-shutdown marker of the incarnation the image knows may have
    // lost unflushed records: that broker is no longer an eligible leader anywhere (Kafka's
    // `handleBrokerUncleanShutdown`).
    let unclean_shutdown = image
        .broker(r.broker_id)
        .is_some_and(|b| r.previous_incarnation != Some(b.incarnation_id));
    let mut out = if unclean_shutdown {
        let mut out: Vec<MetadataRecord> = image
            .broker(r.broker_id)
            .filter(|b| !b.fenced)
            .map(|_| MetadataRecord::FenceBroker { broker_id: r.broker_id })
            .into_iter()
            .collect();
        out.extend(elections::plan_remove_broker(image, r.broker_id, unclean, true));
        out
    } else {
        plan_fence(image, r.broker_id, unclean)
    };
    out.push(MetadataRecord::RegisterBroker {
        broker_id: r.broker_id,
        incarnation_id: r.incarnation_id,
        host: r.host.clone(),
        port: r.port,
        rack: r.rack.clone(),
        log_dirs: r.log_dirs.clone(),
        listeners: r.listeners.clone(),
    });
    out
}

/// Fences a live broker: it leaves every ISR, and partitions it led get a new leader from the
/// rest of their ISR (see `elections`).
pub(crate) fn plan_fence(image: &MetadataImage, broker_id: i32, unclean: UncleanAllowed<'_>) -> Vec<MetadataRecord> {
    match image.broker(broker_id) {
        Some(b) if !b.fenced => {}
        _ => return Vec::new(),
    }
    let mut out = vec![MetadataRecord::FenceBroker { broker_id }];
    out.extend(elections::plan_remove_broker(image, broker_id, unclean, false));
    out
}

/// Unfences a caught-up broker; partitions left without a leader get one if it (or another
/// live ISR member) can lead them. It rejoins other ISRs through their leaders.
pub(crate) fn plan_unfence(image: &MetadataImage, broker_id: i32, unclean: UncleanAllowed<'_>) -> Vec<MetadataRecord> {
    match image.broker(broker_id) {
        Some(b) if b.fenced => {}
        _ => return Vec::new(),
    }
    let unfence = MetadataRecord::UnfenceBroker { broker_id };
    let mut after = image.clone();
    if after.apply(&unfence).is_err() {
        return Vec::new();
    }
    let mut out = vec![unfence];
    out.extend(elections::plan_leaderless(&after, unclean));
    out
}

/// The order replicas are placed in: live brokers by id, interleaved across racks (one from
/// each rack in turn) so consecutive brokers sit on different racks whenever racks are set.
pub(crate) fn placement_order(image: &MetadataImage) -> Vec<i32> {
    let mut racks: std::collections::BTreeMap<Option<&str>, Vec<i32>> = Default::default();
    for b in image.live_brokers() {
        racks.entry(b.rack.as_deref()).or_default().push(b.id);
    }
    let mut columns: Vec<std::vec::IntoIter<i32>> = racks.into_values().map(Vec::into_iter).collect();
    let mut out = Vec::new();
    loop {
        let before = out.len();
        for c in columns.iter_mut() {
            out.extend(c.next());
        }
        if out.len() == before {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::testkit::{add_topic, apply, live_brokers, registration};

    /// Three live brokers and one topic with a partition led by each.
    fn cluster() -> (MetadataImage, Uuid) {
        let mut image = live_brokers(&[(1, None), (2, None), (3, None)]);
        let id = add_topic(&mut image, "t", &[vec![1], vec![2], vec![3]]);
        (image, id)
    }

    fn leaders(image: &MetadataImage) -> Vec<i32> {
        image
            .topic("t")
            .unwrap()
            .partitions
            .values()
            .map(|p| p.leader)
            .collect()
    }

    #[test]
    fn registering_twice_with_the_same_incarnation_writes_nothing() {
        let mut image = MetadataImage::default();
        let r = registration(1, None);
        let records = plan_register(&image, &r, &|_| false);
        assert_eq!(records.len(), 1);
        apply(&mut image, &records);
        assert!(plan_register(&image, &r, &|_| false).is_empty());
        // A log dir added to the same incarnation's registration is recorded.
        let more_dirs = Registration {
            log_dirs: vec![Uuid::new_v4()],
            ..r.clone()
        };
        assert_eq!(plan_register(&image, &more_dirs, &|_| false).len(), 1);
        // So is a listener added (or moved).
        let more_listeners = Registration {
            listeners: vec![BrokerEndpoint {
                name: "SASL_SSL".into(),
                host: "h".into(),
                port: 9,
                security_protocol: "SASL_SSL".into(),
            }],
            ..r.clone()
        };
        let records = plan_register(&image, &more_listeners, &|_| false);
        assert!(
            matches!(&records[..], [MetadataRecord::RegisterBroker { listeners, .. }] if listeners == &more_listeners.listeners)
        );
        let restarted = Registration {
            incarnation_id: Uuid::new_v4(),
            ..r
        };
        assert_eq!(plan_register(&image, &restarted, &|_| false).len(), 1);
    }

    #[test]
    fn a_restart_within_the_session_fences_first_so_leaders_get_a_new_epoch() {
        let (mut image, _) = cluster();
        let restarted = registration(2, None);
        let records = plan_register(&image, &restarted, &|_| false);
        apply(&mut image, &records);
        assert_eq!(leaders(&image), [1, -1, 3]);
        let records = plan_unfence(&image, 2, &|_| false);
        apply(&mut image, &records);
        assert_eq!(leaders(&image), [1, 2, 3]);
        assert_eq!(image.topic("t").unwrap().partitions[&1].leader_epoch, 2);
    }

    #[test]
    fn fencing_makes_the_last_replica_an_eligible_leader_with_no_leader() {
        let (mut image, _) = cluster();
        let records = plan_fence(&image, 2, &|_| false);
        apply(&mut image, &records);
        assert_eq!(leaders(&image), [1, -1, 3]);
        let p = &image.topic("t").unwrap().partitions[&1];
        assert_eq!((p.isr.clone(), p.elr.clone(), p.leader_epoch), (vec![], vec![2], 1));
        assert!(
            plan_fence(&image, 2, &|_| false).is_empty(),
            "fencing a fenced broker is a no-op"
        );
        // Coming back, it leads its partition again, at a new epoch.
        let records = plan_unfence(&image, 2, &|_| false);
        apply(&mut image, &records);
        assert_eq!(leaders(&image), [1, 2, 3]);
        assert_eq!(image.topic("t").unwrap().partitions[&1].leader_epoch, 2);
    }

    #[test]
    fn fencing_moves_leadership_to_another_live_isr_member() {
        let (mut image, id) = cluster();
        apply(
            &mut image,
            &[MetadataRecord::Partition {
                topic_id: id,
                partition: 3,
                replicas: vec![1, 3],
                isr: vec![1, 3],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
                adding: Vec::new(),
                removing: Vec::new(),
                elr: Vec::new(),
                last_known_elr: Vec::new(),
            }],
        );
        let records = plan_fence(&image, 1, &|_| false);
        apply(&mut image, &records);
        let p = &image.topic("t").unwrap().partitions[&3];
        assert_eq!((p.leader, p.isr.clone()), (3, vec![3]));
    }

    #[test]
    fn placement_interleaves_racks() {
        let mut image = MetadataImage::default();
        for (id, rack) in [(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c")] {
            let records = plan_register(&image, &registration(id, Some(rack)), &|_| false);
            apply(&mut image, &records);
            let records = plan_unfence(&image, id, &|_| false);
            apply(&mut image, &records);
        }
        assert_eq!(placement_order(&image), [1, 3, 5, 2, 4]);
    }
}
