//! DescribeTopicPartitions (KIP-966), what Kafka 4's Admin `describeTopics` and
//! `kafka-topics --describe` ask: topics by name (or every topic when none is named) with
//! their ids and partitions (leader, leader epoch, replicas, ISR, offline replicas, and the
//! eligible leader replicas and last known leader of KIP-966), in pages of at most a
//! partition limit that a cursor continues.
//!
//! Answered from this node's metadata image, like Metadata; it never creates a topic. Paging
//! follows Kafka 4.4 (`DescribeTopicPartitionsRequestHandler`, `KRaftMetadataCache`): topics
//! sorted by name from the cursor's, the cursor's partition index applying to its own topic
//! only, and the next cursor where the limit ran out.

use std::collections::BTreeSet;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::metadata::{missing_topic_error, partition_view};
use super::request_error::RequestError;
use super::Ctx;
use crate::authz::{Operation, ResourceType};
use crate::metadata::{is_internal_topic, MetadataImage, TopicImage};

/// The most partitions one response holds, whatever the client asks: Kafka's default of
/// `max.request.partition.size.limit`. Clients page on with the cursor.
const RESPONSE_PARTITIONS_MAX: i32 = 2000;

/// One topic of a page: found, with the partition indexes `first..end` that fit in it, or
/// named by the client but not in the image.
#[derive(Debug)]
enum PageTopic<'a> {
    Found {
        topic: &'a TopicImage,
        first: i32,
        end: i32,
    },
    Missing(String),
    /// Named by the client, who may not describe it (whether or not it exists).
    Denied(String),
}

/// One response's worth of topics, and where the next one starts (topic, partition).
#[derive(Debug)]
struct Page<'a> {
    topics: Vec<PageTopic<'a>>,
    next: Option<(String, i32)>,
}

pub(super) fn describe_topic_partitions(
    ctx: &Ctx,
    req: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let image = ctx.broker.metadata.image();
    let limit = req.response_partition_limit.clamp(1, RESPONSE_PARTITIONS_MAX);
    let access = ctx.access();
    let describable = |name: &str| access.may(Operation::Describe, ResourceType::Topic, name);
    match plan(&image, &req, limit, &describable) {
        Ok(page) => respond(ctx, &image, page),
        Err(e) => refused(ctx, &req, &e),
    }
}

/// Chooses the page: which topics, which of their partitions, and the next cursor. Pure.
fn plan<'a>(
    image: &'a MetadataImage,
    req: &DescribeTopicPartitionsRequest,
    limit: i32,
    describable: &dyn Fn(&str) -> bool,
) -> Result<Page<'a>, RequestError> {
    let cursor = req
        .cursor
        .as_ref()
        .map(|c| (c.topic_name.0.as_str(), c.partition_index));
    let from = cursor.map_or("", |(topic, _)| topic);
    let every_topic = req.topics.is_empty();
    // Sorted and without duplicates, as Kafka's sorted set of names.
    let names: BTreeSet<&str> = if every_topic {
        // Every topic the principal may describe; the others are not mentioned (Kafka's).
        image
            .topics()
            .map(|t| t.name.as_str())
            .filter(|n| *n >= from && describable(n))
            .collect()
    } else {
        req.topics
            .iter()
            .map(|t| t.name.0.as_str())
            .filter(|n| *n >= from)
            .collect()
    };
    if let Some((topic, partition)) = cursor {
        if !every_topic && !names.contains(topic) {
            return Err(RequestError::CursorTopicNotRequested(topic.to_string()));
        }
        if partition < 0 {
            return Err(RequestError::NegativeCursorPartition(partition));
        }
    }
    let mut page = Page {
        topics: Vec::new(),
        next: None,
    };
    let mut remaining = limit;
    for name in names {
        if remaining == 0 {
            // The previous topics filled the page exactly: the next one starts the next page.
            page.next = Some((name.to_string(), 0));
            break;
        }
        if !every_topic && !describable(name) {
            page.topics.push(PageTopic::Denied(name.to_string()));
            continue;
        }
        let Some(topic) = image.topic(name) else {
            if !every_topic {
                page.topics.push(PageTopic::Missing(name.to_string()));
            }
            continue;
        };
        let count = topic.partitions.len() as i32;
        let first = cursor.filter(|(t, _)| *t == name).map_or(0, |(_, p)| p);
        let end = count.min(first.saturating_add(remaining));
        page.topics.push(PageTopic::Found { topic, first, end });
        if end < count {
            page.next = Some((name.to_string(), end));
            break;
        }
        remaining -= (end - first).max(0);
    }
    Ok(page)
}

fn respond(ctx: &Ctx, image: &MetadataImage, page: Page<'_>) -> DescribeTopicPartitionsResponse {
    let access = ctx.access();
    let topics = page
        .topics
        .into_iter()
        .map(|t| match t {
            PageTopic::Found { topic, first, end } => found(ctx, image, topic, first, end),
            PageTopic::Missing(name) => {
                let e = missing_topic_error(&name);
                topic_entry(&name)
                    .with_error_code(ctx.code(&e))
                    .with_is_internal(is_internal_topic(&name))
            }
            PageTopic::Denied(name) => {
                topic_entry(&name).with_error_code(ctx.count(ResponseError::TopicAuthorizationFailed))
            }
        })
        // Kafka sets them on every topic of a normal answer, found or not.
        .map(|t| {
            let name = t.name.as_ref().map_or("", |n| n.0.as_str());
            let ops = access.operations(ResourceType::Topic, name);
            t.with_topic_authorized_operations(ops)
        })
        .collect();
    let next = page.next.map(|(topic, partition)| {
        Cursor::default()
            .with_topic_name(TopicName(StrBytes::from_string(topic)))
            .with_partition_index(partition)
    });
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next)
}

fn topic_entry(name: &str) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
        .with_topic_id(Uuid::nil())
}

fn found(
    ctx: &Ctx,
    image: &MetadataImage,
    topic: &TopicImage,
    first: i32,
    end: i32,
) -> DescribeTopicPartitionsResponseTopic {
    let partitions = topic
        .partitions
        .range(first..end.max(first))
        .map(|(&index, p)| {
            let view = partition_view(ctx, image, &topic.name, index, p);
            // Kafka leaves the partition error at 0 here even without a leader; -1 says it.
            DescribeTopicPartitionsResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(BrokerId(view.leader.unwrap_or(-1)))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(view.replicas)
                .with_isr_nodes(view.isr)
                .with_eligible_leader_replicas(Some(p.elr.iter().copied().map(BrokerId).collect()))
                .with_last_known_elr(Some(p.last_known_elr.iter().copied().map(BrokerId).collect()))
                .with_offline_replicas(view.offline)
        })
        .collect();
    topic_entry(&topic.name)
        .with_topic_id(topic.id)
        .with_is_internal(topic.is_internal())
        .with_partitions(partitions)
}

/// Kafka's error answer (`DescribeTopicPartitionsRequest.getErrorResponse`): every requested
/// topic with the error, nothing else.
fn refused(ctx: &Ctx, req: &DescribeTopicPartitionsRequest, e: &RequestError) -> DescribeTopicPartitionsResponse {
    let code = ctx.code(e);
    let topics = req
        .topics
        .iter()
        .map(|t| topic_entry(&t.name).with_error_code(code))
        .collect();
    DescribeTopicPartitionsResponse::default().with_topics(topics)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
    use kafka_protocol::messages::TopicName;

    use super::*;
    use crate::metadata::MetadataRecord;

    /// Topics "a" (3 partitions), "b" (1) and "c" (2).
    fn image() -> MetadataImage {
        let mut image = MetadataImage::default();
        for (name, count) in [("a", 3), ("b", 1), ("c", 2)] {
            let topic_id = Uuid::new_v4();
            let mut records = vec![MetadataRecord::Topic {
                name: name.to_string(),
                topic_id,
                configs: Default::default(),
            }];
            records.extend((0..count).map(|partition| MetadataRecord::Partition {
                topic_id,
                partition,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
                adding: Vec::new(),
                removing: Vec::new(),
                elr: Vec::new(),
                last_known_elr: Vec::new(),
            }));
            records.iter().for_each(|r| image.apply(r).unwrap());
        }
        image
    }

    fn request(topics: &[&str], cursor: Option<(&str, i32)>) -> DescribeTopicPartitionsRequest {
        let name = |t: &str| TopicName(StrBytes::from_string(t.to_string()));
        DescribeTopicPartitionsRequest::default()
            .with_topics(
                topics
                    .iter()
                    .map(|t| TopicRequest::default().with_name(name(t)))
                    .collect(),
            )
            .with_cursor(cursor.map(|(t, p)| Cursor::default().with_topic_name(name(t)).with_partition_index(p)))
    }

    /// A page as (topic, first, end) with end -1 for a missing topic, and the next cursor.
    type Shape = (Vec<(String, i32, i32)>, Option<(String, i32)>);

    fn shape(page: Page<'_>) -> Shape {
        let topics = page
            .topics
            .into_iter()
            .map(|t| match t {
                PageTopic::Found { topic, first, end } => (topic.name.clone(), first, end),
                PageTopic::Missing(name) => (name, 0, -1),
                PageTopic::Denied(name) => (name, -1, -1),
            })
            .collect();
        (topics, page.next)
    }

    fn paged(topics: &[&str], cursor: Option<(&str, i32)>, limit: i32) -> Shape {
        shape(plan(&image(), &request(topics, cursor), limit, &|_| true).unwrap())
    }

    fn t(name: &str, first: i32, end: i32) -> (String, i32, i32) {
        (name.to_string(), first, end)
    }

    #[test]
    fn no_topics_named_means_every_topic_in_name_order() {
        assert_eq!(
            paged(&[], None, 100),
            (vec![t("a", 0, 3), t("b", 0, 1), t("c", 0, 2)], None)
        );
    }

    #[test]
    fn named_topics_are_sorted_deduplicated_and_unknown_ones_reported() {
        let (topics, next) = paged(&["c", "zz", "a", "c"], None, 100);
        assert_eq!(topics, vec![t("a", 0, 3), t("c", 0, 2), t("zz", 0, -1)]);
        assert_eq!(next, None);
    }

    #[test]
    fn the_limit_cuts_inside_a_topic_and_the_cursor_continues_there() {
        assert_eq!(paged(&[], None, 2), (vec![t("a", 0, 2)], Some(("a".into(), 2))));
        assert_eq!(
            paged(&[], Some(("a", 2)), 2),
            (vec![t("a", 2, 3), t("b", 0, 1)], Some(("c".into(), 0)))
        );
        assert_eq!(paged(&[], Some(("c", 0)), 2), (vec![t("c", 0, 2)], None));
    }

    /// Kafka's "remaining == 0" rule: a page filled exactly points the cursor at the next
    /// topic, partition 0, even one that turns out not to exist.
    #[test]
    fn a_page_filled_exactly_points_at_the_next_topic() {
        assert_eq!(
            paged(&["a", "zz"], None, 3),
            (vec![t("a", 0, 3)], Some(("zz".into(), 0)))
        );
    }

    #[test]
    fn topics_before_the_cursor_are_skipped_and_its_partition_applies_to_its_topic_only() {
        assert_eq!(
            paged(&["a", "b", "c"], Some(("b", 0)), 100),
            (vec![t("b", 0, 1), t("c", 0, 2)], None)
        );
        // A cursor past the topic's partitions gives it none, and goes on.
        assert_eq!(
            paged(&[], Some(("a", 7)), 100),
            (vec![t("a", 7, 3), t("b", 0, 1), t("c", 0, 2)], None)
        );
    }

    #[test]
    fn a_cursor_outside_the_named_topics_or_negative_is_refused() {
        let refused =
            |topics: &[&str], cursor| plan(&image(), &request(topics, Some(cursor)), 10, &|_| true).unwrap_err();
        assert!(matches!(
            refused(&["a"], ("b", 0)),
            RequestError::CursorTopicNotRequested(_)
        ));
        assert!(matches!(
            refused(&["a"], ("a", -1)),
            RequestError::NegativeCursorPartition(-1)
        ));
        assert!(matches!(
            refused(&[], ("a", -1)),
            RequestError::NegativeCursorPartition(-1)
        ));
    }
}
