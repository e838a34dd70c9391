package dev.sluice.compat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/** What every scenario gets: the bootstrap, its key=value parameters, its deadline, and helpers. */
final class Ctx {
    /** How long one client call may block; well under any scenario's own timeout. */
    static final int CALL_TIMEOUT_MS = 15_000;

    final String bootstrap;
    final String scenario;
    final Map<String, String> params;
    final long deadlineMs;

    Ctx(String bootstrap, String scenario, Map<String, String> params, long deadlineMs) {
        this.bootstrap = bootstrap;
        this.scenario = scenario;
        this.params = params;
        this.deadlineMs = deadlineMs;
    }

    String param(String key) {
        String v = params.get(key);
        if (v == null) throw new IllegalArgumentException("scenario " + scenario + " needs " + key + "=...");
        return v;
    }

    String param(String key, String fallback) {
        return params.getOrDefault(key, fallback);
    }

    /** A topic (or group, or application) name unique to this run: the `prefix` parameter plus a suffix. */
    String name(String suffix) {
        return param("prefix", "java-" + scenario + "-" + Long.toHexString(System.nanoTime())) + "-" + suffix;
    }

    static synchronized void emit(Object line) {
        System.out.println(Json.write(line));
        System.out.flush();
    }

    static void event(Object... kv) {
        emit(Map.of("event", obj(kv)));
    }

    /** An ordered JSON object from alternating keys and values. */
    static Map<String, Object> obj(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    // ---- clients ---------------------------------------------------------------------------

    Properties common(String role) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "sluice-compat-" + scenario + "-" + role);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 200);
        p.put(AdminClientConfig.RETRY_BACKOFF_MAX_MS_CONFIG, 200);
        return p;
    }

    Admin admin() {
        Properties p = common("admin");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, CALL_TIMEOUT_MS);
        return Admin.create(p);
    }

    /** acks=all and the idempotent producer: the Java client's defaults, spelled out. */
    KafkaProducer<String, String> producer(Object... extra) {
        Properties p = common("producer");
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 20_000);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, CALL_TIMEOUT_MS);
        put(p, extra);
        return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
    }

    /** A classic-protocol consumer reading from the earliest offset when it has none committed. */
    KafkaConsumer<String, String> consumer(String group, Object... extra) {
        Properties p = common("consumer");
        if (group != null) p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, CALL_TIMEOUT_MS);
        p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100);
        put(p, extra);
        return new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer());
    }

    static void put(Properties p, Object... kv) {
        for (int i = 0; i < kv.length; i += 2) p.put((String) kv[i], kv[i + 1]);
    }

    // ---- waiting ---------------------------------------------------------------------------

    /** Polls `condition` every 50 ms until it holds; throws once `timeoutMs` (or the scenario's deadline) passes. */
    void waitFor(String what, long timeoutMs, BooleanSupplier condition) throws InterruptedException {
        long until = Math.min(System.currentTimeMillis() + timeoutMs, deadlineMs - 1_000);
        while (!condition.getAsBoolean()) {
            if (System.currentTimeMillis() > until) throw new AssertionError("timed out waiting for " + what);
            Thread.sleep(50);
        }
    }

    static <T> T get(KafkaFuture<T> f) throws Exception {
        return unwrap(f);
    }

    static <T> T get(Future<T> f) throws Exception {
        try {
            return f.get(CALL_TIMEOUT_MS + 5_000, TimeUnit.MILLISECONDS);
        } catch (ExecutionException | CompletionException e) {
            if (e.getCause() instanceof Exception cause) throw cause;
            throw e;
        }
    }

    private static <T> T unwrap(KafkaFuture<T> f) throws Exception {
        try {
            return f.get(CALL_TIMEOUT_MS + 5_000, TimeUnit.MILLISECONDS);
        } catch (ExecutionException | CompletionException e) {
            if (e.getCause() instanceof Exception cause) throw cause;
            throw e;
        }
    }

    interface Call {
        Object run() throws Exception;
    }

    /** {"ok": value} or {"error": "ExceptionClass", "message": ...}: for calls whose failure is the point. */
    static Map<String, Object> attempt(Call call) {
        try {
            Object v = call.run();
            return obj("ok", v == null ? true : v);
        } catch (Exception e) {
            Throwable t = e;
            while ((t instanceof ExecutionException || t instanceof CompletionException) && t.getCause() != null) {
                t = t.getCause();
            }
            return obj("error", t.getClass().getSimpleName(), "message", String.valueOf(t.getMessage()));
        }
    }

    static String describe(Throwable t) {
        StringBuilder s = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (s.length() > 0) s.append(" <- ");
            s.append(c.getClass().getSimpleName()).append(": ").append(c.getMessage());
        }
        return s.toString();
    }

    // ---- records ---------------------------------------------------------------------------

    static Map<String, Object> record(ConsumerRecord<String, String> r) {
        List<Object> headers = new ArrayList<>();
        for (Header h : r.headers()) {
            headers.add(List.of(h.key(), h.value() == null ? "<null>" : new String(h.value(), java.nio.charset.StandardCharsets.UTF_8)));
        }
        Map<String, Object> m = obj("partition", r.partition(), "offset", r.offset(), "timestamp", r.timestamp(),
                "timestampType", r.timestampType().toString(), "key", r.key(), "value", r.value(), "headers", headers);
        m.put("leaderEpoch", r.leaderEpoch());
        return m;
    }

    /** Polls `consumer` until `done` holds for what it has read; fails at `timeoutMs`. */
    List<ConsumerRecord<String, String>> pollUntil(KafkaConsumer<String, String> consumer, long timeoutMs,
            String what, java.util.function.Predicate<List<ConsumerRecord<String, String>>> done) {
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        long until = Math.min(System.currentTimeMillis() + timeoutMs, deadlineMs - 1_000);
        while (!done.test(got)) {
            if (System.currentTimeMillis() > until) {
                throw new AssertionError("timed out polling for " + what + " (" + got.size() + " records read)");
            }
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) got.add(r);
        }
        return got;
    }

    List<ConsumerRecord<String, String>> pollCount(KafkaConsumer<String, String> consumer, int count, long timeoutMs) {
        return pollUntil(consumer, timeoutMs, count + " records", got -> got.size() >= count);
    }

    static List<Object> records(Collection<ConsumerRecord<String, String>> rs) {
        List<Object> out = new ArrayList<>();
        for (ConsumerRecord<String, String> r : rs) out.add(record(r));
        return out;
    }
}
