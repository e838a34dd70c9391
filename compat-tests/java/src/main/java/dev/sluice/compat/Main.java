package dev.sluice.compat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * Runs one scenario against a broker and prints what it observed as JSON lines on stdout:
 * {@code {"event": ...}} lines while it runs, then one last line, {@code {"result": {...}}} or
 * {@code {"error": "...", "stack": "..."}}. Exit status 0 with a result, 1 with an error, 2
 * when the hard timeout fired (a dump of every thread's stack is the error's "stack").
 *
 * <pre>java -jar target/java-compat.jar BOOTSTRAP SCENARIO TIMEOUT_SECONDS [key=value ...]</pre>
 */
public final class Main {
    interface Scenario {
        Object run(Ctx ctx) throws Exception;
    }

    static final Map<String, Scenario> SCENARIOS = new TreeMap<>();

    static {
        SCENARIOS.put("admin_cluster_topics", AdminScenarios::clusterAndTopics);
        SCENARIOS.put("admin_list_offsets", AdminScenarios::listOffsets);
        SCENARIOS.put("admin_configs", AdminScenarios::configs);
        SCENARIOS.put("admin_groups", AdminScenarios::groups);
        SCENARIOS.put("admin_log_dirs", AdminScenarios::logDirs);
        SCENARIOS.put("manual_commit", ClientScenarios::manualCommit);
        SCENARIOS.put("auto_commit", ClientScenarios::autoCommit);
        SCENARIOS.put("codec", ClientScenarios::codec);
        SCENARIOS.put("seek_offsets_for_times", ClientScenarios::seekAndOffsetsForTimes);
        SCENARIOS.put("streams_word_count", StreamsScenarios::wordCount);
        SCENARIOS.put("streams_word_count_failover", ReplicationScenarios::wordCountFailover);
        SCENARIOS.put("transactions", PendingScenarios::transactions);
        SCENARIOS.put("transaction_epochs", TransactionScenarios::epochs);
        SCENARIOS.put("transaction_zombie", TransactionScenarios::zombie);
        SCENARIOS.put("consumer_protocol", PendingScenarios::consumerProtocol);
        SCENARIOS.put("share_consumer", ShareScenarios::shareConsumer);
        SCENARIOS.put("share_two_consumers", ShareScenarios::twoConsumers);
        SCENARIOS.put("share_release", ShareScenarios::release);
        SCENARIOS.put("share_hold", ShareScenarios::hold);
        SCENARIOS.put("share_consume", ShareScenarios::consume);
        SCENARIOS.put("acls", PendingScenarios::acls);
        SCENARIOS.put("delete_records", PendingScenarios::deleteRecords);
    }

    public static void main(String[] args) {
        if (args.length < 3 || !SCENARIOS.containsKey(args[1])) {
            System.err.println("usage: java -jar java-compat.jar BOOTSTRAP SCENARIO TIMEOUT_SECONDS [key=value ...]");
            System.err.println("scenarios: " + String.join(", ", SCENARIOS.keySet()));
            System.exit(64);
        }
        Map<String, String> params = new LinkedHashMap<>();
        for (int i = 3; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq < 0) {
                System.err.println("not key=value: " + args[i]);
                System.exit(64);
            }
            params.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        long timeoutMs = (long) (Double.parseDouble(args[2]) * 1000);
        startWatchdog(args[1], timeoutMs);
        Ctx ctx = new Ctx(args[0], args[1], params, System.currentTimeMillis() + timeoutMs);
        int status;
        try {
            Object result = SCENARIOS.get(args[1]).run(ctx);
            Ctx.emit(Map.of("result", result));
            status = 0;
        } catch (Throwable t) {
            Map<String, Object> err = new LinkedHashMap<>();
            err.put("error", Ctx.describe(t));
            err.put("stack", stackOf(t));
            Ctx.emit(err);
            status = 1;
        }
        System.out.flush();
        // Some clients' threads are not daemons; a scenario is over once it has printed its line.
        Runtime.getRuntime().halt(status);
    }

    private static void startWatchdog(String scenario, long timeoutMs) {
        Thread t = new Thread(() -> {
            try {
                Thread.sleep(timeoutMs);
            } catch (InterruptedException e) {
                return;
            }
            StringBuilder dump = new StringBuilder();
            for (ThreadInfo info : ManagementFactory.getThreadMXBean().dumpAllThreads(false, false)) {
                dump.append('"').append(info.getThreadName()).append("\" ").append(info.getThreadState()).append('\n');
                for (StackTraceElement e : info.getStackTrace()) {
                    dump.append("    at ").append(e).append('\n');
                }
            }
            Map<String, Object> err = new LinkedHashMap<>();
            err.put("error", "scenario " + scenario + " timed out after " + timeoutMs + " ms");
            err.put("stack", dump.toString());
            Ctx.emit(err);
            System.out.flush();
            Runtime.getRuntime().halt(2);
        }, "watchdog");
        t.setDaemon(true);
        t.start();
    }

    static String stackOf(Throwable t) {
        StringWriter w = new StringWriter();
        t.printStackTrace(new PrintWriter(w));
        return w.toString();
    }
}
