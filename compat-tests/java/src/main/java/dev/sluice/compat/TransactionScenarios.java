package dev.sluice.compat;

import static dev.sluice.compat.Ctx.attempt;
import static dev.sluice.compat.Ctx.get;
import static dev.sluice.compat.Ctx.obj;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

/** Transactions as the client's protocol version shows them: the epochs the coordinator and the
 *  partitions hold after each transaction (transactions v2 bumps the epoch at every end,
 *  KIP-890 part 2; the classic protocol keeps it), and a zombie producer fenced by a new
 *  instance with the same transactional id. */
final class TransactionScenarios {
    private TransactionScenarios() {}

    /** Commit, abort, commit (the last with a group's offsets) over two partitions (replication
     *  factor `rf`, default 1): after each,
     *  the coordinator's producer id and epoch (DescribeTransactions) and the last epoch each
     *  partition saw (DescribeProducers, markers included); then what read_committed reads. */
    @SuppressWarnings("removal") // ConsumerGroupMetadata(groupId): the group's offsets without a live member
    static Object epochs(Ctx ctx) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        String t = ctx.name("txv");
        String g = ctx.name("txv-group");
        String txId = ctx.name("txv-id");
        TopicPartition p0 = new TopicPartition(t, 0);
        TopicPartition p1 = new TopicPartition(t, 1);
        List<Object> after = new ArrayList<>();
        try (Admin admin = ctx.admin()) {
            short rf = Short.parseShort(ctx.param("rf", "1"));
            get(admin.createTopics(List.of(new NewTopic(t, 2, rf))).all());
            try (KafkaProducer<String, String> producer = ctx.producer("transactional.id", txId)) {
                producer.initTransactions();
                after.add(describe(admin, txId, p0, p1, "init"));
                boolean[] commits = {true, false, true};
                for (int i = 0; i < commits.length; i++) {
                    producer.beginTransaction();
                    producer.send(new ProducerRecord<>(t, 0, "k", "tx" + i + "-p0"));
                    producer.send(new ProducerRecord<>(t, 1, "k", "tx" + i + "-p1"));
                    if (i == 2) {
                        producer.sendOffsetsToTransaction(Map.of(p0, new OffsetAndMetadata(7)), new ConsumerGroupMetadata(g));
                    }
                    producer.flush();
                    if (commits[i]) producer.commitTransaction(); else producer.abortTransaction();
                    after.add(describe(admin, txId, p0, p1, commits[i] ? "commit" : "abort"));
                }
            }
            out.put("after", after);
            out.put("readCommitted", values(PendingScenarios.readAll(ctx, p0, "read_committed")));
            out.put("groupOffset", get(admin.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata()).get(p0).offset());
        }
        return out;
    }

    /** A producer's transaction is open when a new instance with the same transactional id
     *  starts: the open transaction is aborted, the old instance's next send and commit fail,
     *  and read_committed sees only the new instance's records. */
    static Object zombie(Ctx ctx) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        String t = ctx.name("zombie");
        String txId = ctx.name("zombie-id");
        TopicPartition tp = new TopicPartition(t, 0);
        try (Admin admin = ctx.admin()) {
            get(admin.createTopics(List.of(new NewTopic(t, 1, (short) 1))).all());
            KafkaProducer<String, String> zombie = ctx.producer("transactional.id", txId);
            try (KafkaProducer<String, String> fresh = ctx.producer("transactional.id", txId)) {
                zombie.initTransactions();
                zombie.beginTransaction();
                get(zombie.send(new ProducerRecord<>(t, 0, "k", "zombie-open")));
                fresh.initTransactions();
                out.put("afterFence", describe(admin, txId, tp, tp, "fence"));
                fresh.beginTransaction();
                get(fresh.send(new ProducerRecord<>(t, 0, "k", "fresh")));
                fresh.commitTransaction();
                out.put("zombieSend", attempt(() -> get(zombie.send(new ProducerRecord<>(t, 0, "k", "zombie-late")))));
                out.put("zombieCommit", attempt(() -> {
                    zombie.commitTransaction();
                    return null;
                }));
            } finally {
                zombie.close(java.time.Duration.ZERO);
            }
            out.put("readCommitted", values(PendingScenarios.readAll(ctx, tp, "read_committed")));
        }
        return out;
    }

    private static Map<String, Object> describe(Admin admin, String txId, TopicPartition p0, TopicPartition p1, String step)
            throws Exception {
        // EndTxn is answered once its decision is logged; the markers follow. Wait for them.
        long until = System.currentTimeMillis() + 15_000;
        TransactionDescription d = get(admin.describeTransactions(List.of(txId)).description(txId));
        while (d.state().name().startsWith("PREPARE_")) {
            if (System.currentTimeMillis() > until) throw new AssertionError(step + ": markers never written: " + d);
            Thread.sleep(20);
            d = get(admin.describeTransactions(List.of(txId)).description(txId));
        }
        long producerId = d.producerId();
        Map<String, Object> partitions = new LinkedHashMap<>();
        for (TopicPartition tp : List.of(p0, p1)) {
            List<ProducerState> states = get(admin.describeProducers(List.of(tp)).partitionResult(tp)).activeProducers();
            partitions.put(String.valueOf(tp.partition()), states.stream()
                    .filter(s -> s.producerId() == producerId)
                    .map(ProducerState::producerEpoch).findFirst().orElse(-1));
        }
        return obj("step", step, "state", d.state().name(), "producerId", d.producerId(), "epoch", d.producerEpoch(),
                "partitionEpochs", partitions);
    }

    private static List<Object> values(List<Object> records) {
        List<Object> v = new ArrayList<>();
        for (Object r : records) v.add(((Map<?, ?>) r).get("value"));
        return v;
    }
}
