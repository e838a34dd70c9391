//! What a consumer group subscribes to: topic names and RE2/J-style regular expressions
//! (`subscribedTopicRegex`), resolved against the cluster's topics at each heartbeat so that a
//! topic created or deleted changes the group's subscription metadata and bumps its epoch.
//!
//! Regexes are compiled once per group with `regex-automata` (the engine of the `regex` crate,
//! whose syntax is RE2's); the cache is bounded by the members' regexes, at most one each.

use std::collections::BTreeMap;

use regex_automata::meta::Regex;

use super::{ConsumerMember, TopicInfo};

/// Longest regex a member may send: bounds compile time and memory.
pub(crate) const MAX_REGEX_BYTES: usize = 4_096;

/// Compiled regexes by source text, one per distinct member regex.
#[derive(Debug, Clone, Default)]
pub(crate) struct RegexCache {
    compiled: BTreeMap<String, Regex>,
}

impl RegexCache {
    /// Compiles `pattern` (anchored: Kafka matches the whole topic name). Err when invalid.
    pub(crate) fn compile(&mut self, pattern: &str) -> Result<(), String> {
        if self.compiled.contains_key(pattern) {
            return Ok(());
        }
        if pattern.len() > MAX_REGEX_BYTES {
            return Err("regex too long".into());
        }
        let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| e.to_string())?;
        self.compiled.insert(pattern.to_owned(), regex);
        Ok(())
    }

    pub(crate) fn matches(&self, pattern: &str, topic: &str) -> bool {
        self.compiled.get(pattern).is_some_and(|r| r.is_match(topic))
    }

    /// Keeps only the regexes some member still uses.
    pub(crate) fn retain_used<'a>(&mut self, members: impl Iterator<Item = &'a ConsumerMember>) {
        let used: std::collections::BTreeSet<&str> =
            members.filter_map(|m| m.subscribed_topic_regex.as_deref()).collect();
        self.compiled.retain(|k, _| used.contains(k.as_str()));
    }
}

/// The metadata of every existing topic some member subscribes to.
pub(crate) fn subscription_metadata<'a>(
    members: impl Iterator<Item = &'a ConsumerMember> + Clone,
    regexes: &RegexCache,
    topics: &BTreeMap<String, TopicInfo>,
) -> BTreeMap<String, TopicInfo> {
    topics
        .iter()
        .filter(|(name, _)| members.clone().any(|m| m.subscribes(name, regexes)))
        .map(|(name, info)| (name.clone(), info.clone()))
        .collect()
}
