//! Coordinators: services whose state lives in an internal, compacted, replicated partition of
//! their own (`__consumer_offsets` for groups, `__transaction_state` for transactions), each a
//! pure core per partition plus the one async runtime they all stand on.
//!
//! The runtime ([`runtime`]) does what every coordinator needs and none should write twice:
//! load a partition's records into a core when this broker becomes that partition's leader,
//! drop the core when it stops being one, append what the core asks to its partition (in the
//! order asked, on the partition's log writer lane) and report each append back once the ISR
//! has it, park requests until the core answers them, and run the core's timers.
//!
//! May call: `replica` (the partition's log and its committed offset), `internal_batch`.
//! Must never: know what a group or a transaction is; that is the cores' business.

pub(crate) mod codec;
pub(crate) mod runtime;

#[cfg(test)]
mod tests;

/// The partition of an internal topic that holds `key` (a group id, a transactional id), as
/// Kafka computes it: `Utils.abs(key.hashCode()) % partitions`, with Java's `String.hashCode`
/// over UTF-16 code units and `Utils.abs(Integer.MIN_VALUE) == 0`.
pub(crate) fn partition_for(key: &str, partitions: i32) -> i32 {
    debug_assert!(partitions > 0, "an internal topic must have partitions");
    if partitions <= 0 {
        return 0;
    }
    let hash = java_string_hash(key);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions
}

/// Java's `String.hashCode`: `s[0]*31^(n-1) + … + s[n-1]` over UTF-16 units, wrapping.
pub(crate) fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)))
}
