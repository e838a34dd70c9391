package dev.sluice.compat;

import static dev.sluice.compat.Ctx.get;
import static dev.sluice.compat.Ctx.obj;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Future;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.internals.RecordHeaders;

/** KafkaProducer and KafkaConsumer (classic group protocol) scenarios. */
final class ClientScenarios {
    private ClientScenarios() {}

    static List<Object> acks(List<Future<RecordMetadata>> fs) throws Exception {
        List<Object> out = new ArrayList<>();
        for (Future<RecordMetadata> f : fs) {
            RecordMetadata md = get(f);
            out.add(obj("partition", md.partition(), "offset", md.offset(), "timestamp", md.timestamp()));
        }
        return out;
    }

    // ---- manual commits -----------------------------------------------------------------------

    /** 20 keyed records per partition; a member reads them all and commits explicit offsets
     *  (7 and 12, with metadata); the next member of the group starts exactly there, and its own
     *  commitSync() stores its positions with the leader epoch of what it read. */
    static Object manualCommit(Ctx ctx) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        String t = ctx.name("manual");
        String g = ctx.name("manual-group");
        TopicPartition p0 = new TopicPartition(t, 0);
        TopicPartition p1 = new TopicPartition(t, 1);
        try (Admin admin = ctx.admin()) {
            get(admin.createTopics(List.of(new NewTopic(t, 2, (short) 1))).all());
            try (KafkaProducer<String, String> producer = ctx.producer()) {
                List<Future<RecordMetadata>> fs = new ArrayList<>();
                for (int i = 0; i < 20; i++) {
                    for (int p = 0; p < 2; p++) fs.add(producer.send(new ProducerRecord<>(t, p, "k" + p + "-" + i, "v" + p + "-" + i)));
                }
                producer.flush();
                out.put("acks", acks(fs));
            }
            var producers = get(admin.describeProducers(List.of(p0)).partitionResult(p0)).activeProducers();
            List<Object> ps = new ArrayList<>();
            for (ProducerState s : producers) {
                ps.add(obj("producerId", s.producerId(), "epoch", s.producerEpoch(), "lastSequence", s.lastSequence(),
                        "hasTimestamp", s.lastTimestamp() > 0, "currentTransactionStartOffset",
                        s.currentTransactionStartOffset().isPresent() ? s.currentTransactionStartOffset().getAsLong() : null));
            }
            out.put("producers", ps);

            try (KafkaConsumer<String, String> first = ctx.consumer(g)) {
                first.subscribe(List.of(t));
                out.put("firstRead", Ctx.records(ctx.pollCount(first, 40, 20_000)));
                first.commitSync(Map.of(p0, new OffsetAndMetadata(7, "meta-0"), p1, new OffsetAndMetadata(12, "meta-1")));
                out.put("committedByFirst", AdminScenarios.committed(first.committed(Set.of(p0, p1))));
            }
            out.put("adminAfterFirst", AdminScenarios.committed(get(admin.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata())));
            try (KafkaConsumer<String, String> second = ctx.consumer(g)) {
                second.subscribe(List.of(t));
                List<ConsumerRecord<String, String>> got = ctx.pollCount(second, 21, 20_000);
                // Anything more would be a record read twice or past the end; one more short poll to see it.
                for (ConsumerRecord<String, String> r : second.poll(Duration.ofMillis(300))) got.add(r);
                out.put("secondRead", Ctx.records(got));
                out.put("secondPositions", obj("p0", second.position(p0), "p1", second.position(p1)));
                second.commitSync();
                out.put("committedBySecond", AdminScenarios.committed(second.committed(Set.of(p0, p1))));
            }
        }
        return out;
    }

    // ---- auto commits -------------------------------------------------------------------------

    /** A member with enable.auto.commit (100 ms) reads part of two partitions; while paused, its
     *  auto commits reach what it consumed; it closes; more records arrive; the next member reads
     *  exactly the rest. */
    static Object autoCommit(Ctx ctx) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        String t = ctx.name("auto");
        String g = ctx.name("auto-group");
        TopicPartition p0 = new TopicPartition(t, 0);
        TopicPartition p1 = new TopicPartition(t, 1);
        try (Admin admin = ctx.admin(); KafkaProducer<String, String> producer = ctx.producer()) {
            get(admin.createTopics(List.of(new NewTopic(t, 2, (short) 1))).all());
            for (int i = 0; i < 30; i++) producer.send(new ProducerRecord<>(t, i % 2, "k" + i, "first-" + i));
            producer.flush();
            Object[] auto = {"enable.auto.commit", true, "auto.commit.interval.ms", 100, "max.poll.records", 7};
            KafkaConsumer<String, String> first = ctx.consumer(g, auto);
            first.subscribe(List.of(t));
            List<ConsumerRecord<String, String>> firstRead = ctx.pollCount(first, 14, 20_000);
            out.put("firstRead", Ctx.records(firstRead));
            Map<String, Long> consumed = new TreeMap<>();
            for (TopicPartition tp : first.assignment()) consumed.put(tp.toString(), first.position(tp));
            out.put("firstPositions", consumed);
            first.pause(first.assignment());
            // Paused: poll() returns nothing but still sends the periodic auto commit.
            long until = System.currentTimeMillis() + 10_000;
            Map<String, Object> seen = Map.of();
            while (System.currentTimeMillis() < until) {
                first.poll(Duration.ofMillis(100));
                seen = AdminScenarios.committed(get(admin.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata()));
                if (offsetsOf(seen).equals(consumed)) break;
            }
            out.put("autoCommittedWhilePaused", seen);
            first.close();
            out.put("committedAfterClose", AdminScenarios.committed(get(admin.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata())));

            for (int i = 0; i < 10; i++) producer.send(new ProducerRecord<>(t, i % 2, "k" + i, "second-" + i));
            producer.flush();
            int remaining = 40 - firstRead.size();
            try (KafkaConsumer<String, String> second = ctx.consumer(g, auto)) {
                second.subscribe(List.of(t));
                List<ConsumerRecord<String, String>> got = ctx.pollCount(second, remaining, 20_000);
                for (ConsumerRecord<String, String> r : second.poll(Duration.ofMillis(300))) got.add(r);
                out.put("secondRead", Ctx.records(got));
            }
            out.put("committedAtEnd", AdminScenarios.committed(get(admin.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata())));
        }
        return out;
    }

    static Map<String, Long> offsetsOf(Map<String, Object> committed) {
        Map<String, Long> out = new TreeMap<>();
        for (Map.Entry<String, Object> e : committed.entrySet()) {
            if (e.getValue() instanceof Map<?, ?> m) out.put(e.getKey(), ((Number) m.get("offset")).longValue());
        }
        return out;
    }

    // ---- codecs ---------------------------------------------------------------------------------

    /** 60 records with keys, headers (a repeated key, a null value), a null key and a null value,
     *  explicit timestamps, compressed with `codec` in batches of up to 20 (linger.ms); read back
     *  by assign() from the beginning. */
    static Object codec(Ctx ctx) throws Exception {
        String codec = ctx.param("codec");
        Map<String, Object> out = new LinkedHashMap<>();
        String t = ctx.name("codec-" + codec);
        long base = System.currentTimeMillis() - 10_000;
        out.put("topic", t);
        List<Object> sent = new ArrayList<>();
        try (Admin admin = ctx.admin()) {
            get(admin.createTopics(List.of(new NewTopic(t, 1, (short) 1))).all());
        }
        try (KafkaProducer<String, String> producer = ctx.producer("compression.type", codec, "linger.ms", 200,
                "batch.size", 1 << 20)) {
            producer.partitionsFor(t);
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < 60; i++) {
                String key = i % 10 == 3 ? null : "key-" + i;
                String value = i == 17 ? null : ("value " + i + " ").repeat(1 + i % 5) + "ünïcødé";
                RecordHeaders headers = new RecordHeaders();
                headers.add("trace", ("t-" + i).getBytes(StandardCharsets.UTF_8));
                headers.add("trace", "again".getBytes(StandardCharsets.UTF_8));
                headers.add("empty", null);
                fs.add(producer.send(new ProducerRecord<>(t, 0, base + i, key, value, headers)));
                List<Object> hs = List.of(List.of("trace", "t-" + i), List.of("trace", "again"), List.of("empty", "<null>"));
                sent.add(obj("key", key, "value", value, "timestamp", base + i, "headers", hs));
                if (i % 20 == 19) producer.flush(); // three batches
            }
            producer.flush();
            out.put("acks", acks(fs));
        }
        out.put("sent", sent);
        try (KafkaConsumer<String, String> consumer = ctx.consumer(null)) {
            TopicPartition tp = new TopicPartition(t, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            out.put("got", Ctx.records(ctx.pollCount(consumer, 60, 20_000)));
        }
        return out;
    }

    // ---- seek / offsetsForTimes -------------------------------------------------------------------

    /** 100 records (timestamps base + 10 i) in lz4 batches; beginning/end offsets, seek into the
     *  middle of a batch, seek with a leader epoch, offsetsForTimes, seekToEnd/Beginning. */
    static Object seekAndOffsetsForTimes(Ctx ctx) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        String t = ctx.name("seek");
        TopicPartition tp = new TopicPartition(t, 0);
        long base = System.currentTimeMillis() - 100_000;
        out.put("base", base);
        try (Admin admin = ctx.admin()) {
            get(admin.createTopics(List.of(new NewTopic(t, 1, (short) 1))).all());
        }
        try (KafkaProducer<String, String> producer = ctx.producer("compression.type", "lz4", "linger.ms", 100)) {
            for (int i = 0; i < 100; i++) {
                producer.send(new ProducerRecord<>(t, 0, base + 10L * i, "k" + i, "v" + i));
                if (i % 25 == 24) producer.flush();
            }
        }
        try (KafkaConsumer<String, String> c = ctx.consumer(null)) {
            c.assign(List.of(tp));
            out.put("beginning", c.beginningOffsets(List.of(tp)).get(tp));
            out.put("end", c.endOffsets(List.of(tp)).get(tp));
            c.seek(tp, 42);
            out.put("afterSeek42", Ctx.record(ctx.pollCount(c, 1, 10_000).get(0)));
            c.seek(tp, new OffsetAndMetadata(60, Optional.of(0), ""));
            out.put("afterSeek60WithEpoch", Ctx.record(ctx.pollCount(c, 1, 10_000).get(0)));
            Map<String, Object> times = new LinkedHashMap<>();
            for (long target : new long[] {0, base, base + 425, base + 990, base + 991}) {
                OffsetAndTimestamp ot = c.offsetsForTimes(Map.of(tp, target)).get(tp);
                times.put(target == 0 ? "epoch" : String.valueOf(target - base), ot == null ? null
                        : obj("offset", ot.offset(), "timestamp", ot.timestamp() - base, "leaderEpoch", ot.leaderEpoch()));
            }
            out.put("offsetsForTimes", times);
            c.seekToEnd(List.of(tp));
            out.put("positionAtEnd", c.position(tp));
            c.seek(tp, 99);
            out.put("afterSeek99", Ctx.record(ctx.pollCount(c, 1, 10_000).get(0)));
            out.put("positionAfter99", c.position(tp));
            c.seekToBeginning(List.of(tp));
            out.put("positionAtBeginning", c.position(tp));
            List<ConsumerRecord<String, String>> all = ctx.pollCount(c, 100, 10_000);
            out.put("allOffsets", all.stream().map(ConsumerRecord::offset).toList());
            out.put("allValuesInOrder", all.stream().map(ConsumerRecord::value).toList().equals(
                    java.util.stream.IntStream.range(0, 100).mapToObj(i -> "v" + i).toList()));
            c.seek(tp, 500);
            // Out of range: auto.offset.reset=earliest takes the consumer back to the log start.
            out.put("afterSeekPastEnd", Ctx.record(ctx.pollCount(c, 1, 10_000).get(0)));
        }
        return out;
    }
}
