"""The checker of checker.py on synthetic histories: no broker, no client."""

import pytest

from checker import ACKED, FAILED, UNKNOWN, Sent, check, out_of_order


def acked(value, partition, offset, producer="p0", seq=None):
    return Sent(value, partition, producer, seq if seq is not None else int(value.rsplit("-", 1)[1]), ACKED, offset)


def history_and_log(n=10, partitions=2):
    """n records of producer p0, round robin over the partitions, each acknowledged at the
    offset the log holds it: a correct run."""
    history, log = [], {p: [] for p in range(partitions)}
    for seq in range(n):
        p = seq % partitions
        value = f"p0-{seq}"
        history.append(acked(value, p, len(log[p]), seq=seq))
        log[p].append((len(log[p]), value))
    return history, log


def test_a_correct_run_has_no_anomaly():
    history, log = history_and_log()

    r = check(history, log)

    assert r.ok, str(r)
    assert (r.sent, r.acked, r.read, r.partitions) == (10, 10, 10, 2)
    assert set(r.counts().values()) == {0}
    assert "anomalies: lost 0, duplicated 0, reordered 0, moved 0" in str(r)


def test_lost_acknowledged_record():
    history, log = history_and_log()
    del log[1][2]  # p0-5, acknowledged at 1@2

    r = check(history, log)

    assert not r.ok
    assert [s.value for s in r.lost] == ["p0-5"]
    assert r.counts()["lost"] == 1 and r.counts()["moved"] == 0  # its offset holds nothing now
    assert "p0-5 acknowledged at 1@2" in str(r)


def test_truncated_then_overwritten_offset_is_lost_and_moved():
    """Kafka's classic loss: a deposed leader's acknowledged record truncated, its offset reused."""
    history, log = history_and_log()
    history.append(Sent("p1-0", 0, "p1", 0, ACKED, 4))
    log[0][4] = (4, "p1-0")  # p0-8 was acknowledged at 0@4

    r = check(history, log)

    assert [s.value for s in r.lost] == ["p0-8"]
    assert [(m[0].value, m[1]) for m in r.moved] == [("p0-8", "p1-0")]
    assert "p0-8 acknowledged at 0@4, which holds p1-0; the value is nowhere" in str(r)


def test_value_at_another_offset_is_moved_not_lost():
    history, log = history_and_log(4, 1)
    log[0] = [(0, "p0-0"), (1, "p0-1"), (2, "p0-2"), (5, "p0-3")]  # acknowledged at 3

    r = check(history, log)

    assert r.lost == []
    assert [(m[0].value, m[1], m[2]) for m in r.moved] == [("p0-3", None, [(0, 5)])]
    assert r.reordered_count == 0


def test_duplicate_counts_each_value_once():
    history, log = history_and_log(4, 1)
    log[0] += [(4, "p0-1"), (5, "p0-1")]

    r = check(history, log)

    assert r.duplicated == {"p0-1": [(0, 1), (0, 4), (0, 5)]}
    assert r.counts()["duplicated"] == 1
    assert r.lost == r.moved == []


def test_duplicate_across_partitions():
    history, log = history_and_log(4, 2)
    log[1].append((2, "p0-0"))

    assert check(history, log).duplicated == {"p0-0": [(0, 0), (1, 2)]}


def test_reordered_when_acknowledged_offsets_disagree_with_send_order():
    """The log matches every acknowledged offset, but the producer's second record was
    acknowledged before its first: reordered, not moved."""
    history = [acked("p0-0", 0, 1), acked("p0-1", 0, 0), acked("p0-2", 0, 2)]
    log = {0: [(0, "p0-1"), (1, "p0-0"), (2, "p0-2")]}

    r = check(history, log)

    assert r.moved == [] and r.lost == []
    assert r.reordered_count == 1
    assert r.reordered[("p0", 0)][1] == "p0-0 (#0) is at log position 1, after p0-1 (#1) at 0"


def test_reordered_counts_the_fewest_records_out_of_place():
    # p0-4 landed first: one record out of place, not four.
    history = [acked(f"p0-{i}", 0, o) for i, o in [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)]]
    log = {0: [(0, "p0-4"), (1, "p0-0"), (2, "p0-1"), (3, "p0-2"), (4, "p0-3")]}

    assert check(history, log).reordered_count == 1


def test_interleaved_producers_and_partitions_are_not_reordering():
    history = [acked("a-0", 0, 0, "a"), acked("b-0", 0, 1, "b"), acked("a-1", 0, 2, "a"), acked("b-1", 0, 3, "b"),
               acked("a-2", 1, 0, "a")]
    log = {0: [(0, "a-0"), (1, "b-0"), (2, "a-1"), (3, "b-1")], 1: [(0, "a-2")]}

    assert check(history, log).ok


def test_unexpected_value():
    history, log = history_and_log(2, 1)
    log[0].append((2, "never-sent"))

    r = check(history, log)

    assert r.unexpected == [(0, 2, "never-sent")]
    assert not r.ok


def test_unacknowledged_records_may_or_may_not_be_present():
    history, log = history_and_log(2, 1)
    history += [Sent("p0-2", 0, "p0", 2, FAILED, error="REQUEST_TIMED_OUT"), Sent("p0-3", 0, "p0", 3, UNKNOWN),
                Sent("p0-4", 0, "p0", 4, UNKNOWN)]
    log[0] += [(2, "p0-2"), (3, "p0-3")]

    r = check(history, log, failures_allowed=True)

    assert r.ok, str(r)
    assert (r.unacked_present, r.unacked_absent, r.unknown, len(r.failed)) == (2, 1, 2, 1)


def test_failed_delivery_is_an_anomaly_unless_allowed():
    history, log = history_and_log(2, 1)
    history.append(Sent("p0-2", 0, "p0", 2, FAILED, error="NOT_ENOUGH_REPLICAS"))

    r = check(history, log)

    assert r.counts()["failed deliveries"] == 1
    assert "p0-2 to partition 0: NOT_ENOUGH_REPLICAS" in str(r)
    assert check(history, log, failures_allowed=True).ok


def test_phantom_read_of_a_record_later_truncated():
    history, log = history_and_log(3, 1)
    history.append(Sent("p0-3", 0, "p0", 3, UNKNOWN))
    reads = [(0, 0, "p0-0"), (0, 1, "p0-1"), (0, 3, "p0-3")]  # served above the HW, then truncated

    r = check(history, log, reads)

    assert r.phantom_reads == [(0, 3, "p0-3", None)]
    assert "p0-3 read at 0@3, where the log holds nothing" in str(r)


def test_offset_returned_twice_by_the_read():
    history, log = history_and_log(2, 1)
    log[0].append((1, "p0-1"))

    r = check(history, log)

    assert r.double_offsets == [(0, 1)]


def test_bytes_values_are_accepted():
    history = [Sent(b"p0-0", 0, "p0", 0, ACKED, 0)]

    assert check(history, {0: [(0, b"p0-0")]}).ok


def test_values_must_be_unique_in_the_history():
    with pytest.raises(AssertionError, match="sent twice"):
        check([acked("p0-0", 0, 0), acked("p0-0", 1, 0, seq=1)], {})


def test_report_lists_a_bounded_number_of_examples():
    history = [acked(f"p0-{i}", 0, i) for i in range(50)]

    r = check(history, {0: []})

    assert len(r.lost) == 50
    assert str(r).count("acknowledged at 0@") == 5


@pytest.mark.parametrize(
    "positions, expected",
    [([], 0), ([1, 2, 3], 0), ([3, 2, 1], 2), ([5, 1, 2, 3, 4], 1), ([2, 1, 4, 3], 2), ([1, 5, 2, 3, 4], 1)],
)
def test_out_of_order(positions, expected):
    assert out_of_order(positions) == expected
