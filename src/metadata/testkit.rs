//! Test support for the metadata planners and the cores that use them: images with live
//! brokers and topics, built through the real planning functions.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::brokers::{plan_register, plan_unfence, Registration};
use super::{MetadataImage, MetadataRecord};

pub(crate) fn registration(id: i32, rack: Option<&str>) -> Registration {
    Registration {
        broker_id: id,
        incarnation_id: Uuid::new_v4(),
        host: "127.0.0.1".into(),
        port: 9000 + id as u16,
        rack: rack.map(String::from),
        previous_incarnation: None,
        log_dirs: Vec::new(),
        listeners: Vec::new(),
    }
}

pub(crate) fn apply(image: &mut MetadataImage, records: &[MetadataRecord]) {
    for r in records {
        image.apply(r).expect("planned records apply");
    }
}

/// An image where each of `ids` registered (with `rack`) and was unfenced.
pub(crate) fn live_brokers(ids: &[(i32, Option<&str>)]) -> MetadataImage {
    let mut image = MetadataImage::default();
    for &(id, rack) in ids {
        let records = plan_register(&image, &registration(id, rack), &|_| false);
        apply(&mut image, &records);
        let records = plan_unfence(&image, id, &|_| false);
        apply(&mut image, &records);
    }
    image
}

/// Adds topic `name` whose partition i has replicas (and ISR, leader first) `replicas[i]`.
pub(crate) fn add_topic(image: &mut MetadataImage, name: &str, replicas: &[Vec<i32>]) -> Uuid {
    let id = Uuid::new_v4();
    let mut records = vec![MetadataRecord::Topic {
        name: name.into(),
        topic_id: id,
        configs: BTreeMap::new(),
    }];
    for (p, r) in replicas.iter().enumerate() {
        records.push(MetadataRecord::Partition {
            topic_id: id,
            partition: p as i32,
            replicas: r.clone(),
            isr: r.clone(),
            leader: r[0],
            leader_epoch: 0,
            partition_epoch: 0,
            adding: Vec::new(),
            removing: Vec::new(),
            elr: Vec::new(),
            last_known_elr: Vec::new(),
        });
    }
    apply(image, &records);
    id
}
