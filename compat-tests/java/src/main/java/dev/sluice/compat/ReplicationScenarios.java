package dev.sluice.compat;

import static dev.sluice.compat.Ctx.get;
import static dev.sluice.compat.Ctx.obj;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;

/**
 * Clients on a replicated cluster while the test (compat-tests/test_replication_clients.py)
 * kills and restarts brokers: the scenario reports its progress as events and goes on until a
 * line "stop" (or the end) on its stdin.
 */
final class ReplicationScenarios {
    private ReplicationScenarios() {}

    /**
     * The word count of {@link StreamsScenarios} (at_least_once, cache off) on topics of
     * `partitions` partitions, replication factor `rf` and min.insync.replicas `minIsr`, its
     * internal topics made with `replication.factor` = rf. A producer (idempotent, acks=all)
     * sends lines at `rate` lines/s and a reader follows the output topic; every quarter second a
     * {"event": {"progress": ...}} line says how far each has come, with the group's coordinator
     * and the leaders of the application's partitions. On "stop": the producer stops (every line
     * must be acknowledged), and the output must converge to the exact count of every word sent.
     */
    static Object wordCountFailover(Ctx ctx) throws Exception {
        String stateDir = ctx.param("stateDir");
        int partitions = Integer.parseInt(ctx.param("partitions", "6"));
        short rf = Short.parseShort(ctx.param("rf", "3"));
        String minIsr = ctx.param("minIsr", "2");
        double rate = Double.parseDouble(ctx.param("rate", "50"));
        String app = ctx.name("wc");
        String in = ctx.name("lines");
        String outTopic = ctx.name("counts");
        Map<String, Object> out = new java.util.LinkedHashMap<>();
        out.put("applicationId", app);

        CountDownLatch stop = new CountDownLatch(1);
        Thread stdin = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    if (line.trim().equals("stop")) break;
                }
            } catch (Exception e) {
                // the end of stdin is a stop too
            }
            stop.countDown();
        }, "stdin");
        stdin.setDaemon(true);
        stdin.start();

        try (Admin admin = ctx.admin()) {
            Map<String, String> topicConfig = Map.of("min.insync.replicas", minIsr);
            get(admin.createTopics(List.of(new NewTopic(in, partitions, rf).configs(topicConfig),
                    new NewTopic(outTopic, partitions, rf).configs(topicConfig))).all());

            Properties p = new Properties();
            p.put(StreamsConfig.APPLICATION_ID_CONFIG, app);
            p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, ctx.bootstrap);
            p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
            p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
            p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, (int) rf);
            p.put(StreamsConfig.topicPrefix("min.insync.replicas"), minIsr);
            p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
            p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
            p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
            p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG), 100);
            p.put(StreamsConfig.restoreConsumerPrefix(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG), 100);
            p.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 5);

            List<Object> states = Collections.synchronizedList(new ArrayList<>()); // [state, epoch ms]
            String[] failure = {null};
            KafkaStreams streams = new KafkaStreams(StreamsScenarios.topology(in, outTopic, Map.of()), p);
            streams.setStateListener((now, before) -> states.add(List.of(now.name(), System.currentTimeMillis())));
            streams.setUncaughtExceptionHandler(e -> {
                failure[0] = Ctx.describe(e);
                return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
            });
            long t0 = System.currentTimeMillis();
            streams.start();
            try {
                ctx.waitFor("the application to be RUNNING", 60_000, () -> {
                    if (failure[0] != null || streams.state() == KafkaStreams.State.ERROR) throw new AssertionError("stream thread failed: " + failure[0]);
                    return streams.state() == KafkaStreams.State.RUNNING;
                });
                out.put("msToRunning", System.currentTimeMillis() - t0);
                Map<String, Object> internal = new TreeMap<>();
                for (String name : AdminScenarios.listTopics(admin)) {
                    if (!name.startsWith(app + "-")) continue;
                    TopicDescription td = get(admin.describeTopics(List.of(name)).allTopicNames()).get(name);
                    internal.put(name, obj("partitions", td.partitions().size(),
                            "replicationFactor", td.partitions().get(0).replicas().size()));
                }
                out.put("internalTopics", internal);

                // The output, followed from the start: the latest count per word.
                Map<String, Long> counts = new java.util.concurrent.ConcurrentHashMap<>();
                AtomicLong outputRecords = new AtomicLong();
                CountDownLatch readerStop = new CountDownLatch(1);
                String[] readerFailure = {null};
                Thread reader = new Thread(() -> {
                    Properties cp = ctx.common("output-reader");
                    cp.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100);
                    try (KafkaConsumer<String, Long> c = new KafkaConsumer<>(cp, new StringDeserializer(), new LongDeserializer())) {
                        List<TopicPartition> tps = new ArrayList<>();
                        for (int i = 0; i < partitions; i++) tps.add(new TopicPartition(outTopic, i));
                        c.assign(tps);
                        c.seekToBeginning(tps);
                        while (readerStop.getCount() > 0) {
                            for (ConsumerRecord<String, Long> r : c.poll(Duration.ofMillis(100))) {
                                counts.put(r.key(), r.value());
                                outputRecords.incrementAndGet();
                            }
                        }
                    } catch (Exception e) {
                        readerFailure[0] = Ctx.describe(e);
                    }
                }, "output-reader");
                reader.setDaemon(true);
                reader.start();

                // The input, at a steady rate until "stop".
                List<String> sent = Collections.synchronizedList(new ArrayList<>());
                List<Future<RecordMetadata>> acks = Collections.synchronizedList(new ArrayList<>());
                AtomicInteger acked = new AtomicInteger();
                List<String> sendErrors = Collections.synchronizedList(new ArrayList<>());
                try (KafkaProducer<String, String> producer = ctx.producer(
                        ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 120_000, ProducerConfig.MAX_BLOCK_MS_CONFIG, 60_000)) {
                    List<String> lines = StreamsScenarios.lines(3, 100_000);
                    long started = System.currentTimeMillis();
                    long lastEvent = 0;
                    while (stop.getCount() > 0) {
                        if (System.currentTimeMillis() > ctx.deadlineMs - 60_000) throw new AssertionError("no stop before the deadline");
                        if (failure[0] != null) throw new AssertionError("stream thread failed: " + failure[0]);
                        long owed = (long) (rate * (System.currentTimeMillis() - started) / 1000.0) - sent.size();
                        for (long i = 0; i < owed && sent.size() < lines.size(); i++) {
                            int n = sent.size();
                            String line = lines.get(n);
                            sent.add(line);
                            acks.add(producer.send(new ProducerRecord<>(in, n % partitions, null, line), (md, e) -> {
                                if (e == null) acked.incrementAndGet();
                                else sendErrors.add(Ctx.describe(e));
                            }));
                        }
                        if (System.currentTimeMillis() - lastEvent >= 250) {
                            lastEvent = System.currentTimeMillis();
                            Ctx.event("progress", obj("sent", sent.size(), "acked", acked.get(),
                                    "outputRecords", outputRecords.get(), "state", streams.state().name(),
                                    "sendErrors", sendErrors.size()));
                        }
                        stop.await(10, java.util.concurrent.TimeUnit.MILLISECONDS);
                    }
                    producer.flush();
                    for (Future<RecordMetadata> f : acks) get(f);
                }
                Map<String, Long> expected = StreamsScenarios.expectedCounts(sent);
                long words = expected.values().stream().mapToLong(Long::longValue).sum();
                out.put("linesSent", sent.size());
                out.put("words", words);
                out.put("sendErrors", sendErrors);
                long until = Math.min(System.currentTimeMillis() + 60_000, ctx.deadlineMs - 10_000);
                while (!counts.equals(expected) && System.currentTimeMillis() < until && failure[0] == null) {
                    Thread.sleep(50);
                }
                readerStop.countDown();
                reader.join(10_000);
                out.put("converged", counts.equals(expected));
                out.put("counts", new TreeMap<>(counts));
                out.put("expected", expected);
                out.put("outputRecordsRead", outputRecords.get());
                out.put("readerFailure", readerFailure[0]);
            } finally {
                boolean closed = streams.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
                        .withTimeout(Duration.ofSeconds(20)));
                out.put("closedCleanly", closed);
                out.put("failure", failure[0]);
                out.put("states", new ArrayList<>(states));
            }
        }
        return out;
    }
}
