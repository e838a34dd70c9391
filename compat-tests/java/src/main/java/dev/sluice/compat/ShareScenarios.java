package dev.sluice.compat;

import static dev.sluice.compat.Ctx.get;
import static dev.sluice.compat.Ctx.obj;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;

/** Share groups (KIP-932): KafkaShareConsumer reading, acknowledging and being redelivered to. */
final class ShareScenarios {
    private ShareScenarios() {}

    /** Creates the topic (1 partition), writes `count` records v0.., sets share.auto.offset.reset=earliest on the group. */
    static void setup(Ctx ctx, Admin admin, String topic, String group, int count) throws Exception {
        get(admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all());
        try (KafkaProducer<String, String> producer = ctx.producer()) {
            for (int i = 0; i < count; i++) producer.send(new ProducerRecord<>(topic, 0, "k" + i, "v" + i));
            producer.flush();
        }
        get(admin.incrementalAlterConfigs(Map.of(new ConfigResource(ConfigResource.Type.GROUP, group), List.of(
                new AlterConfigOp(new ConfigEntry("share.auto.offset.reset", "earliest"), AlterConfigOp.OpType.SET)))).all());
    }

    static KafkaShareConsumer<String, String> consumer(Ctx ctx, String group, String role, int maxPollRecords) {
        Properties p = ctx.common(role);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put("share.acknowledgement.mode", "explicit");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, maxPollRecords);
        return new KafkaShareConsumer<>(p, new StringDeserializer(), new StringDeserializer());
    }

    static Map<String, Object> delivered(ConsumerRecord<String, String> r) {
        return obj("offset", r.offset(), "value", r.value(), "deliveryCount", (int) r.deliveryCount().orElse((short) -1));
    }

    /** A KafkaShareConsumer (share.auto.offset.reset=earliest set on the group) reads 10
     *  records, accepts each, commits; the group is then empty. */
    static Object shareConsumer(Ctx ctx) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        String t = ctx.name("share");
        String g = ctx.name("share-group");
        try (Admin admin = ctx.admin()) {
            setup(ctx, admin, t, g, 10);
            List<Object> got = new ArrayList<>();
            try (KafkaShareConsumer<String, String> c = consumer(ctx, g, "share-consumer", 500)) {
                c.subscribe(List.of(t));
                long until = System.currentTimeMillis() + 20_000;
                while (got.size() < 10) {
                    if (System.currentTimeMillis() > until) throw new AssertionError("share consumer read only " + got.size() + " of 10");
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                        got.add(delivered(r));
                        c.acknowledge(r, AcknowledgeType.ACCEPT);
                    }
                    c.commitSync();
                }
            }
            out.put("got", got);
            var d = get(admin.describeShareGroups(List.of(g)).all()).get(g);
            out.put("describe", obj("state", d.groupState().name(), "members", d.members().size()));
        }
        return out;
    }

    /** Two share consumers on one partition, five records per poll, polled in turn, accepting
     *  all: both receive records and every record is delivered once. Then nothing more comes. */
    static Object twoConsumers(Ctx ctx) throws Exception {
        int count = Integer.parseInt(ctx.param("count", "60"));
        Map<String, Object> out = new LinkedHashMap<>();
        String t = ctx.name("share2");
        String g = ctx.name("share2-group");
        try (Admin admin = ctx.admin()) {
            setup(ctx, admin, t, g, count);
            Map<Long, Integer> deliveries = new TreeMap<>();
            Map<String, Integer> perConsumer = new TreeMap<>();
            List<Object> maxDeliveryCount = new ArrayList<>();
            try (KafkaShareConsumer<String, String> a = consumer(ctx, g, "share-a", 5);
                 KafkaShareConsumer<String, String> b = consumer(ctx, g, "share-b", 5)) {
                a.subscribe(List.of(t));
                b.subscribe(List.of(t));
                long until = System.currentTimeMillis() + 30_000;
                while (deliveries.size() < count || perConsumer.size() < 2) {
                    if (System.currentTimeMillis() > until) {
                        throw new AssertionError("read " + deliveries.size() + " of " + count + " records, by " + perConsumer);
                    }
                    for (var entry : List.of(Map.entry("a", a), Map.entry("b", b))) {
                        var c = entry.getValue();
                        for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(100))) {
                            deliveries.merge(r.offset(), 1, Integer::sum);
                            perConsumer.merge(entry.getKey(), 1, Integer::sum);
                            c.acknowledge(r, AcknowledgeType.ACCEPT);
                            if (r.deliveryCount().orElse((short) 1) != 1) maxDeliveryCount.add(r.offset());
                        }
                        c.commitSync();
                    }
                }
                var d = get(admin.describeShareGroups(List.of(g)).all()).get(g);
                // Nothing more may come: every record was accepted.
                long quiet = System.currentTimeMillis() + 1_500;
                int extra = 0;
                while (System.currentTimeMillis() < quiet) {
                    extra += a.poll(Duration.ofMillis(100)).count();
                    extra += b.poll(Duration.ofMillis(100)).count();
                }
                out.put("membersWhileReading", d.members().size());
                out.put("extraAfterAll", extra);
            }
            out.put("perConsumer", perConsumer);
            out.put("distinct", deliveries.size());
            out.put("deliveredTwice", deliveries.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey).toList());
            out.put("redelivered", maxDeliveryCount);
        }
        return out;
    }

    /** RELEASE of the first record of a poll: it comes back with delivery count 2; the rest,
     *  accepted, never come back. */
    static Object release(Ctx ctx) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        String t = ctx.name("share-release");
        String g = ctx.name("share-release-group");
        try (Admin admin = ctx.admin()) {
            setup(ctx, admin, t, g, 5);
            List<Object> first = new ArrayList<>();
            List<Object> second = new ArrayList<>();
            try (KafkaShareConsumer<String, String> c = consumer(ctx, g, "share-release", 500)) {
                c.subscribe(List.of(t));
                long until = System.currentTimeMillis() + 20_000;
                while (first.size() < 5) {
                    if (System.currentTimeMillis() > until) throw new AssertionError("read only " + first.size() + " of 5");
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                        first.add(delivered(r));
                        c.acknowledge(r, r.offset() == 0 ? AcknowledgeType.RELEASE : AcknowledgeType.ACCEPT);
                    }
                    c.commitSync();
                }
                while (second.isEmpty()) {
                    if (System.currentTimeMillis() > until) throw new AssertionError("the released record did not come back");
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                        second.add(delivered(r));
                        c.acknowledge(r, AcknowledgeType.ACCEPT);
                    }
                    c.commitSync();
                }
                long quiet = System.currentTimeMillis() + 1_000;
                while (System.currentTimeMillis() < quiet) {
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) second.add(delivered(r));
                }
            }
            out.put("first", first);
            out.put("second", second);
        }
        return out;
    }

    /** Sets up (when setup=true) and reads up to `max` records, announcing each poll as an event
     *  and acknowledging nothing: the test kills this process while it holds their locks. */
    static Object hold(Ctx ctx) throws Exception {
        String t = ctx.param("topic");
        String g = ctx.param("group");
        if (Boolean.parseBoolean(ctx.param("setup", "false"))) {
            try (Admin admin = ctx.admin()) {
                setup(ctx, admin, t, g, Integer.parseInt(ctx.param("count")));
            }
        }
        KafkaShareConsumer<String, String> c = consumer(ctx, g, "share-hold", Integer.parseInt(ctx.param("max", "5")));
        c.subscribe(List.of(t));
        List<Object> held = new ArrayList<>();
        while (held.isEmpty()) {
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) held.add(delivered(r));
        }
        Ctx.event("held", held);
        Thread.sleep(Long.MAX_VALUE);
        return held;
    }

    /** Reads until `count` distinct records are accepted (or `ackType` for each), reporting
     *  each delivery with its delivery count. */
    static Object consume(Ctx ctx) throws Exception {
        String t = ctx.param("topic");
        String g = ctx.param("group");
        int count = Integer.parseInt(ctx.param("count"));
        List<Object> got = new ArrayList<>();
        java.util.Set<Long> distinct = new java.util.TreeSet<>();
        long started = System.currentTimeMillis();
        try (KafkaShareConsumer<String, String> c = consumer(ctx, g, "share-consume", 500)) {
            c.subscribe(List.of(t));
            long until = System.currentTimeMillis() + Long.parseLong(ctx.param("timeoutMs", "30000"));
            while (distinct.size() < count) {
                if (System.currentTimeMillis() > until) throw new AssertionError("read " + distinct.size() + " of " + count);
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    got.add(delivered(r));
                    distinct.add(r.offset());
                    c.acknowledge(r, AcknowledgeType.ACCEPT);
                }
                c.commitSync();
            }
            long quiet = System.currentTimeMillis() + Long.parseLong(ctx.param("quietMs", "1000"));
            while (System.currentTimeMillis() < quiet) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) got.add(delivered(r));
            }
        }
        return obj("got", got, "elapsedMs", System.currentTimeMillis() - started);
    }
}
