"""A Jepsen-style checker for Kafka produce histories: what producers sent and what was
acknowledged, against what a full read of every partition returned afterwards (and, optionally,
what consumers read along the way).

Input:
- the history: one `Sent` per record a producer handed to its client, each value unique across
  the whole history, with its partition, its producer and its place in that producer's send
  order, and how it ended: acknowledged (with the offset the acknowledgement named), failed
  (the client reported an error), or unknown (no report at all);
- the log: {partition: [(offset, value), ...]}, a full read of each partition in offset order;
- optionally reads: (partition, offset, value) as consumers saw them while the history ran.

Anomalies (each must be 0 in a correct run):
- lost: acknowledged, and its value is nowhere in the log;
- duplicated: a value the log holds more than once (counted once per value);
- reordered: per producer and partition, the acknowledged records in the order the producer
  sent them (for an idempotent producer, the order it must see them acknowledged in) against the
  order the log holds them: the count is how many would have to move to make the two agree
  (records present minus the longest run already in order);
- moved: acknowledged, but the acknowledged offset of that partition holds another value, or
  nothing while the value is elsewhere (a record both lost and overwritten counts in both);
- unexpected: a value in the log that no producer sent;
- phantom reads: a consumer read a value at an offset where the log now holds another value or
  nothing (served before it was committed, then truncated);
- failed: deliveries that ended in an error (unless the caller allows them).

Allowed, and counted: unacknowledged records (failed or unknown) that are in the log anyway
(a write whose acknowledgement was lost) and those that are not.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from bisect import bisect_left

ACKED, FAILED, UNKNOWN = "acked", "failed", "unknown"
EXAMPLES = 5  # of each anomaly, in the report text


def text(v) -> str:
    return v.decode(errors="replace") if isinstance(v, (bytes, bytearray)) else str(v)


@dataclass
class Sent:
    """One record a producer sent."""

    value: str
    partition: int
    producer: str = "p0"
    seq: int = 0  # its place in the producer's send order
    status: str = UNKNOWN  # ACKED, FAILED or UNKNOWN
    offset: int | None = None  # the acknowledged offset
    error: str | None = None  # the delivery error, if it failed

    def __post_init__(self):
        self.value = text(self.value)
        assert self.status in (ACKED, FAILED, UNKNOWN), self.status
        assert self.status != ACKED or self.offset is not None, f"{self.value}: acknowledged without an offset"

    def where(self) -> str:
        return f"{self.partition}@{self.offset}"


@dataclass
class Report:
    sent: int = 0
    acked: int = 0
    failed: list = field(default_factory=list)  # Sent
    unknown: int = 0
    read: int = 0
    partitions: int = 0
    lost: list = field(default_factory=list)  # Sent
    duplicated: dict = field(default_factory=dict)  # value -> [(partition, offset)]
    reordered: dict = field(default_factory=dict)  # (producer, partition) -> (count, example)
    moved: list = field(default_factory=list)  # (Sent, value at its offset or None, [(partition, offset)] of its value)
    unexpected: list = field(default_factory=list)  # (partition, offset, value)
    phantom_reads: list = field(default_factory=list)  # (partition, offset, value read, value in the log or None)
    double_offsets: list = field(default_factory=list)  # (partition, offset): the read returned an offset twice
    unacked_present: int = 0
    unacked_absent: int = 0
    failures_allowed: bool = False

    @property
    def reordered_count(self) -> int:
        return sum(n for n, _ in self.reordered.values())

    def counts(self) -> dict[str, int]:
        """Each anomaly's count (what must be 0)."""
        return {
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "reordered": self.reordered_count,
            "moved": len(self.moved),
            "unexpected": len(self.unexpected),
            "phantom reads": len(self.phantom_reads),
            "offsets read twice": len(self.double_offsets),
            "failed deliveries": 0 if self.failures_allowed else len(self.failed),
        }

    @property
    def ok(self) -> bool:
        return not any(self.counts().values())

    def summary(self) -> str:
        c = self.counts()
        return ", ".join(f"{k} {v}" for k, v in c.items())

    def __str__(self) -> str:
        lines = [
            f"{self.sent} records sent ({self.acked} acknowledged, {len(self.failed)} failed, "
            f"{self.unknown} without a delivery report); {self.read} read from {self.partitions} partitions",
            f"anomalies: {self.summary()}",
            f"unacknowledged but present (allowed): {self.unacked_present}; unacknowledged and absent: "
            f"{self.unacked_absent}",
        ]

        def section(title, items, fmt):
            if items:
                lines.append(f"{title}, e.g.:")
                lines.extend(f"    {fmt(i)}" for i in list(items)[:EXAMPLES])

        section("lost (acknowledged at partition@offset, never read)", self.lost,
                lambda s: f"{s.value} acknowledged at {s.where()} (producer {s.producer}, #{s.seq})")
        section("duplicated (value: where the log holds it)", self.duplicated.items(),
                lambda kv: f"{kv[0]}: at {', '.join(f'{p}@{o}' for p, o in kv[1])}")
        section("reordered (producer, partition: records out of place; first inversion)", self.reordered.items(),
                lambda kv: f"{kv[0][0]}, partition {kv[0][1]}: {kv[1][0]}; {kv[1][1]}")
        section("moved (acknowledged offset holding another value)", self.moved,
                lambda m: f"{m[0].value} acknowledged at {m[0].where()}, which holds "
                          f"{m[1] if m[1] is not None else 'nothing'}; the value is "
                          f"{'at ' + ', '.join(f'{p}@{o}' for p, o in m[2]) if m[2] else 'nowhere'}")
        section("unexpected (in the log, never sent)", self.unexpected, lambda u: f"{u[2]} at {u[0]}@{u[1]}")
        section("phantom reads (a consumer read it; the log holds otherwise)", self.phantom_reads,
                lambda r: f"{r[2]} read at {r[0]}@{r[1]}, where the log holds "
                          f"{r[3] if r[3] is not None else 'nothing'}")
        section("offsets the read returned twice", self.double_offsets, lambda d: f"{d[0]}@{d[1]}")
        if not self.failures_allowed:
            section("failed deliveries", self.failed, lambda s: f"{s.value} to partition {s.partition}: {s.error}")
        return "\n".join(lines)


def out_of_order(positions: list[int]) -> int:
    """How many entries must move for `positions` to be increasing: its length minus its
    longest strictly increasing subsequence."""
    tails: list[int] = []
    for x in positions:
        i = bisect_left(tails, x)
        if i == len(tails):
            tails.append(x)
        else:
            tails[i] = x
    return len(positions) - len(tails)


def check(history, log: dict[int, list], reads=(), failures_allowed: bool = False) -> Report:
    """Checks `history` (Sent records) against `log` ({partition: [(offset, value)]}) and
    `reads` ((partition, offset, value) seen by consumers); see the module docstring."""
    history = list(history)
    r = Report(failures_allowed=failures_allowed)
    r.sent = len(history)
    by_value: dict[str, Sent] = {}
    for s in history:
        assert s.value not in by_value, f"value {s.value} sent twice: values must be unique"
        by_value[s.value] = s

    at: dict[tuple[int, int], str] = {}  # (partition, offset) -> value
    where: dict[str, list[tuple[int, int]]] = defaultdict(list)  # value -> [(partition, offset)]
    position: dict[tuple[int, int], int] = {}  # (partition, offset) -> index in that partition's read
    for partition, records in log.items():
        r.partitions += 1
        for i, (offset, value) in enumerate(records):
            value = text(value)
            r.read += 1
            if (partition, offset) in at:
                r.double_offsets.append((partition, offset))
            at[(partition, offset)] = value
            position.setdefault((partition, offset), i)
            where[value].append((partition, offset))
            if value not in by_value:
                r.unexpected.append((partition, offset, value))

    r.duplicated = {v: places for v, places in where.items() if len(places) > 1}

    for s in history:
        present = bool(where.get(s.value))
        if s.status == ACKED:
            r.acked += 1
            if not present:
                r.lost.append(s)
            held = at.get((s.partition, s.offset))
            if held != s.value and (held is not None or present):
                r.moved.append((s, held, where.get(s.value, [])))
        else:
            if s.status == FAILED:
                r.failed.append(s)
            else:
                r.unknown += 1
            if present:
                r.unacked_present += 1
            else:
                r.unacked_absent += 1

    # Reordering: per (producer, partition), acknowledged records in send order, by where the
    # log holds them in that partition (first copy).
    streams: dict[tuple[str, int], list[Sent]] = defaultdict(list)
    for s in history:
        if s.status == ACKED:
            streams[(s.producer, s.partition)].append(s)
    for key, records in sorted(streams.items()):
        records.sort(key=lambda s: s.seq)
        placed = []
        for s in records:
            spots = [position[(p, o)] for p, o in where.get(s.value, []) if p == s.partition]
            if spots:
                placed.append((s, min(spots)))
        n = out_of_order([pos for _, pos in placed])
        if n:
            example = next(
                f"{a.value} (#{a.seq}) is at log position {pa}, after {b.value} (#{b.seq}) at {pb}"
                for (a, pa), (b, pb) in zip(placed, placed[1:])
                if pb < pa
            )
            r.reordered[key] = (n, example)

    for partition, offset, value in reads:
        value = text(value)
        held = at.get((partition, offset))
        if held != value:
            r.phantom_reads.append((partition, offset, value, held))
    return r
