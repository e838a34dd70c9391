package dev.sluice.compat;

import static dev.sluice.compat.Ctx.get;
import static dev.sluice.compat.Ctx.obj;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.state.KeyValueStore;

/** Kafka Streams: a word count with a repartition topic and a changelogged store. */
final class StreamsScenarios {
    private StreamsScenarios() {}

    static final String[] VOCABULARY = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"};

    /** Line i of a phase: 1 to 5 words, some capitalised, with punctuation between. */
    static List<String> lines(int phase, int count) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            StringBuilder line = new StringBuilder();
            int words = 1 + (i * 7 + phase) % 5;
            for (int j = 0; j < words; j++) {
                String w = VOCABULARY[(i * 3 + j * 5 + phase * 2) % VOCABULARY.length];
                if ((i + j) % 4 == 0) w = w.substring(0, 1).toUpperCase(Locale.ROOT) + w.substring(1);
                line.append(j == 0 ? "" : (j % 2 == 0 ? ", " : " ")).append(w);
            }
            out.add(line.append(i % 3 == 0 ? "!" : "").toString());
        }
        return out;
    }

    static List<String> words(String line) {
        return Arrays.stream(line.toLowerCase(Locale.ROOT).split("\\W+")).filter(w -> !w.isEmpty()).toList();
    }

    static Map<String, Long> expectedCounts(List<String> lines) {
        Map<String, Long> out = new TreeMap<>();
        for (String l : lines) for (String w : words(l)) out.merge(w, 1L, Long::sum);
        return out;
    }

    /** The changelog's topic configs when the scenario has the broker's cleaner compact it
     *  between the runs: small segments that roll as soon as they are older than 100 ms, and
     *  any dirt at all worth a cleaning. */
    static final Map<String, String> COMPACTED_CHANGELOG = Map.of(
            "segment.bytes", "1024", "segment.ms", "100", "min.cleanable.dirty.ratio", "0.01");

    static Topology topology(String in, String out, Map<String, String> changelogConfig) {
        Materialized<String, Long, KeyValueStore<Bytes, byte[]>> store = Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("counts")
                .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long());
        if (!changelogConfig.isEmpty()) store = store.withLoggingEnabled(changelogConfig);
        StreamsBuilder b = new StreamsBuilder();
        b.stream(in, Consumed.with(Serdes.String(), Serdes.String()))
                .flatMapValues(StreamsScenarios::words)
                .groupBy((key, word) -> word, Grouped.with("words", Serdes.String(), Serdes.String()))
                .count(store)
                .toStream()
                .to(out, Produced.with(Serdes.String(), Serdes.Long()));
        return b.build();
    }

    static Object wordCount(Ctx ctx) throws Exception {
        String guarantee = ctx.param("guarantee", StreamsConfig.AT_LEAST_ONCE);
        boolean compacted = Boolean.parseBoolean(ctx.param("compactChangelog", "false"));
        Map<String, String> changelogConfig = compacted ? COMPACTED_CHANGELOG : Map.of();
        String stateBase = ctx.param("stateDir");
        String app = ctx.name("wc");
        String in = ctx.name("lines");
        String outTopic = ctx.name("counts");
        Map<String, Object> out = new java.util.LinkedHashMap<>();
        out.put("applicationId", app);
        out.put("input", in);
        out.put("output", outTopic);
        List<String> first = lines(1, 40);
        List<String> second = lines(2, 25);
        out.put("firstLines", first);
        out.put("secondLines", second);
        try (Admin admin = ctx.admin(); KafkaProducer<String, String> producer = ctx.producer()) {
            get(admin.createTopics(List.of(new NewTopic(in, 2, (short) 1), new NewTopic(outTopic, 2, (short) 1))).all());
            produce(producer, in, first);
            Map<String, Long> expected = expectedCounts(first);
            out.put("firstRun", run(ctx, app, in, outTopic, stateBase + "/run-1", guarantee, expected, changelogConfig));

            Map<String, Object> internal = new TreeMap<>();
            List<String> internalNames = AdminScenarios.listTopics(admin).stream().filter(n -> n.startsWith(app + "-")).sorted().toList();
            for (String name : internalNames) {
                TopicDescription td = get(admin.describeTopics(List.of(name)).allTopicNames()).get(name);
                ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, name);
                internal.put(name, obj("partitions", td.partitions().size(),
                        "replicationFactor", td.partitions().get(0).replicas().size(),
                        "configs", AdminScenarios.describeConfigs(admin, r,
                                List.of("cleanup.policy", "retention.ms", "segment.bytes", "message.timestamp.type"))));
            }
            out.put("internalTopics", internal);
            out.put("groupOffsetsAfterFirstRun", AdminScenarios.committed(
                    get(admin.listConsumerGroupOffsets(app).partitionsToOffsetAndMetadata())));
            Map<String, Object> ends = new TreeMap<>();
            for (String name : internalNames) {
                int n = get(admin.describeTopics(List.of(name)).allTopicNames()).get(name).partitions().size();
                for (int p = 0; p < n; p++) {
                    TopicPartition tp = new TopicPartition(name, p);
                    ends.put(tp.toString(), get(admin.listOffsets(Map.of(tp, org.apache.kafka.clients.admin.OffsetSpec.latest())).partitionResult(tp)).offset());
                }
            }
            out.put("internalEndOffsetsAfterFirstRun", ends);
            if (compacted) out.put("changelogAfterCleaning", waitForCleanedChangelog(ctx, app + "-counts-changelog", ends));

            produce(producer, in, second);
            List<String> all = new ArrayList<>(first);
            all.addAll(second);
            out.put("secondRun", run(ctx, app, in, outTopic, stateBase + "/run-2", guarantee, expectedCounts(all), changelogConfig));
            out.put("groupOffsetsAfterSecondRun", AdminScenarios.committed(
                    get(admin.listConsumerGroupOffsets(app).partitionsToOffsetAndMetadata())));
        }
        return out;
    }

    /** Waits until the broker's cleaner has compacted each changelog partition (it holds fewer
     *  records than its end offset: some were cleaned away); returns each one's end and the
     *  records it holds then. */
    static Map<String, Object> waitForCleanedChangelog(Ctx ctx, String changelog, Map<String, Object> ends) throws Exception {
        Map<String, Object> out = new TreeMap<>();
        try (KafkaConsumer<String, String> c = ctx.consumer(null)) {
            ctx.waitFor("the cleaner to compact " + changelog, 40_000, () -> {
                for (int p = 0; p < 2; p++) {
                    TopicPartition tp = new TopicPartition(changelog, p);
                    long end = (Long) ends.get(tp.toString());
                    c.assign(List.of(tp));
                    c.seekToBeginning(List.of(tp));
                    long held = 0;
                    while (c.position(tp) < end) held += c.poll(Duration.ofMillis(100)).count();
                    out.put(tp.toString(), obj("end", end, "records", held));
                    if (held >= end) return false;
                }
                return true;
            });
        }
        return out;
    }

    static void produce(KafkaProducer<String, String> producer, String topic, List<String> lines) throws Exception {
        List<java.util.concurrent.Future<?>> fs = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) fs.add(producer.send(new ProducerRecord<>(topic, i % 2, null, lines.get(i))));
        producer.flush();
        for (var f : fs) Ctx.get(f);
    }

    /** One run of the application on a fresh state dir: start, wait until RUNNING, read the
     *  output until its latest count per word is `expected`, close (leaving the group). */
    static Map<String, Object> run(Ctx ctx, String app, String in, String outTopic, String stateDir, String guarantee,
            Map<String, Long> expected, Map<String, String> changelogConfig) throws Exception {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, app);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, ctx.bootstrap);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG), 100);
        p.put(StreamsConfig.restoreConsumerPrefix(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG), 100);
        p.put(StreamsConfig.producerPrefix("linger.ms"), 5);
        List<String> states = Collections.synchronizedList(new ArrayList<>());
        List<Object> restores = Collections.synchronizedList(new ArrayList<>());
        Map<String, long[]> restoreStarts = new ConcurrentHashMap<>();
        String[] failure = {null};
        Map<String, Object> result = new java.util.LinkedHashMap<>();
        long t0 = System.currentTimeMillis();
        KafkaStreams streams = new KafkaStreams(topology(in, outTopic, changelogConfig), p);
        streams.setStateListener((now, before) -> states.add(now.name()));
        streams.setUncaughtExceptionHandler(e -> {
            failure[0] = Ctx.describe(e);
            return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.setGlobalStateRestoreListener(new StateRestoreListener() {
            @Override
            public void onRestoreStart(TopicPartition tp, String store, long start, long end) {
                restoreStarts.put(tp.toString(), new long[] {start, end});
            }

            @Override
            public void onBatchRestored(TopicPartition tp, String store, long batchEnd, long n) {}

            @Override
            public void onRestoreEnd(TopicPartition tp, String store, long total) {
                long[] se = restoreStarts.getOrDefault(tp.toString(), new long[] {-1, -1});
                restores.add(obj("partition", tp.toString(), "store", store, "start", se[0], "end", se[1], "restored", total));
            }
        });
        {
            streams.start();
            try {
                ctx.waitFor("the application to be RUNNING", 30_000, () -> {
                    if (failure[0] != null || streams.state() == KafkaStreams.State.ERROR) throw new AssertionError("stream thread failed: " + failure[0]);
                    return streams.state() == KafkaStreams.State.RUNNING;
                });
                result.put("msToRunning", System.currentTimeMillis() - t0);
                Map<String, Long> counts = new TreeMap<>();
                int[] outputRecords = {0};
                Properties cp = ctx.common("output-reader");
                cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, guarantee.equals(StreamsConfig.AT_LEAST_ONCE) ? "read_uncommitted" : "read_committed");
                cp.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100);
                try (KafkaConsumer<String, Long> reader = new KafkaConsumer<>(cp, new StringDeserializer(), new LongDeserializer())) {
                    List<TopicPartition> tps = List.of(new TopicPartition(outTopic, 0), new TopicPartition(outTopic, 1));
                    reader.assign(tps);
                    reader.seekToBeginning(tps);
                    long until = System.currentTimeMillis() + 40_000;
                    while (!counts.equals(expected) && System.currentTimeMillis() < Math.min(until, ctx.deadlineMs - 8_000)) {
                        if (failure[0] != null) break;
                        for (ConsumerRecord<String, Long> r : reader.poll(Duration.ofMillis(100))) {
                            counts.put(r.key(), r.value());
                            outputRecords[0]++;
                        }
                    }
                }
                result.put("converged", counts.equals(expected));
                result.put("msToConverged", System.currentTimeMillis() - t0);
                result.put("counts", counts);
                result.put("expected", expected);
                result.put("outputRecordsRead", outputRecords[0]);
            } finally {
                boolean closed = streams.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
                        .withTimeout(Duration.ofSeconds(20)));
                result.put("closedCleanly", closed);
                result.put("failure", failure[0]);
                result.put("states", new ArrayList<>(states));
                result.put("restores", new ArrayList<>(restores));
                Ctx.event("streamsRun", result);
            }
        }
        return result;
    }
}
