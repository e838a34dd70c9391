//! `partition_for` against Java's `String.hashCode`.

use super::{java_string_hash, partition_for};

#[test]
fn partition_for_matches_java_string_hash_code() {
    // Expected hashes worked out with Java's rule (h = 31*h + UTF-16 unit, wrapping i32).
    assert_eq!(java_string_hash(""), 0);
    assert_eq!(java_string_hash("a"), 97);
    assert_eq!(java_string_hash("ab"), 97 * 31 + 98);
    assert_eq!(java_string_hash("my-group"), -1_906_497_762);
    assert_eq!(java_string_hash("test-group"), 627_841_412);
    assert_eq!(partition_for("my-group", 50), 12);
    assert_eq!(partition_for("test-group", 50), 12);
    assert_eq!(partition_for("console-consumer-12345", 50), 6);
    assert_eq!(partition_for("a", 50), 47);
    assert_eq!(partition_for("", 50), 0);
}

#[test]
fn partition_for_hashes_utf16_units_and_maps_min_value_to_zero() {
    // U+1F600 is the surrogate pair D83D DE00 in UTF-16: 0xD83D * 31 + 0xDE00.
    assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);
    assert_eq!(partition_for("😀", 50), 49);
    assert_eq!(partition_for("groupé", 50), 6);
    // A well-known string whose Java hashCode is Integer.MIN_VALUE: Utils.abs gives 0.
    assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    assert_eq!(partition_for("polygenelubricants", 50), 0);
    assert_eq!(partition_for("my-group", 1), 0);
}
