package dev.sluice.compat;

import static dev.sluice.compat.Ctx.attempt;
import static dev.sluice.compat.Ctx.get;
import static dev.sluice.compat.Ctx.obj;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.serialization.StringDeserializer;

/** Scenarios for features Sluice does not serve yet (transactions, KIP-848 consumer groups,
 *  ACLs, DeleteRecords). Each is what works against Apache Kafka 4.4. */
final class PendingScenarios {
    private PendingScenarios() {}

    // ---- transactions (issue 13) -----------------------------------------------------------------

    /** Commit 5, abort 3, commit 2 with the offsets of a group: read_committed sees 7 records,
     *  read_uncommitted 10, and the group's offset is committed with the transaction. */
    @SuppressWarnings("removal") // ConsumerGroupMetadata(groupId): the group's offsets without a live member
    static Object transactions(Ctx ctx) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        String t = ctx.name("tx");
        String g = ctx.name("tx-group");
        String txId = ctx.name("tx-id");
        TopicPartition tp = new TopicPartition(t, 0);
        try (Admin admin = ctx.admin()) {
            get(admin.createTopics(List.of(new NewTopic(t, 1, (short) 1))).all());
            try (KafkaProducer<String, String> producer = ctx.producer("transactional.id", txId, "max.block.ms", 10_000)) {
                producer.initTransactions();
                producer.beginTransaction();
                for (int i = 0; i < 5; i++) producer.send(new ProducerRecord<>(t, 0, "k" + i, "committed-a-" + i));
                producer.commitTransaction();
                producer.beginTransaction();
                for (int i = 0; i < 3; i++) producer.send(new ProducerRecord<>(t, 0, "k" + i, "aborted-" + i));
                producer.flush();
                producer.abortTransaction();
                producer.beginTransaction();
                for (int i = 0; i < 2; i++) producer.send(new ProducerRecord<>(t, 0, "k" + i, "committed-b-" + i));
                producer.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(4)), new ConsumerGroupMetadata(g));
                producer.commitTransaction();
            }
            out.put("readCommitted", readAll(ctx, tp, "read_committed"));
            out.put("readUncommitted", readAll(ctx, tp, "read_uncommitted"));
            out.put("latest", get(admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp)).offset());
            out.put("lastStable", get(admin.listOffsets(Map.of(tp, OffsetSpec.latest()),
                    new ListOffsetsOptions(IsolationLevel.READ_COMMITTED)).partitionResult(tp)).offset());
            out.put("groupOffsets", AdminScenarios.committed(get(admin.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata())));
            TransactionDescription d = get(admin.describeTransactions(List.of(txId)).description(txId));
            out.put("describeTransaction", obj("state", d.state().name(), "partitions", d.topicPartitions().size()));
            out.put("listTransactions", get(admin.listTransactions().all()).stream()
                    .filter(l -> l.transactionalId().equals(txId)).map(l -> l.state().name()).toList());
        }
        return out;
    }

    static List<Object> readAll(Ctx ctx, TopicPartition tp, String isolation) {
        try (KafkaConsumer<String, String> c = ctx.consumer(null, ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation)) {
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long end = c.endOffsets(List.of(tp)).get(tp);
            List<Object> got = new ArrayList<>();
            long until = System.currentTimeMillis() + 15_000;
            while (c.position(tp) < end) {
                if (System.currentTimeMillis() > until) throw new AssertionError(isolation + ": position " + c.position(tp) + " never reached " + end);
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(100))) got.add(obj("offset", r.offset(), "value", r.value()));
            }
            return got;
        }
    }

    // ---- KIP-848 consumer groups (issue 16) --------------------------------------------------------

    /** group.protocol=consumer: a member reads and commits; the group is described as a
     *  CONSUMER group; a second member resumes after the commits. */
    static Object consumerProtocol(Ctx ctx) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        String t = ctx.name("kip848");
        String g = ctx.name("kip848-group");
        try (Admin admin = ctx.admin(); KafkaProducer<String, String> producer = ctx.producer()) {
            get(admin.createTopics(List.of(new NewTopic(t, 2, (short) 1))).all());
            for (int i = 0; i < 20; i++) producer.send(new ProducerRecord<>(t, i % 2, "k" + i, "first-" + i));
            producer.flush();
            try (KafkaConsumer<String, String> c = ctx.consumer(g, ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer")) {
                c.subscribe(List.of(t));
                out.put("firstRead", ctx.pollCount(c, 20, 20_000).size());
                c.commitSync();
                ConsumerGroupDescription d = get(admin.describeConsumerGroups(List.of(g)).all()).get(g);
                out.put("describe", obj("type", d.type().name(), "state", d.groupState().name(), "members", d.members().size(),
                        "assigned", d.members().stream().mapToInt(m -> m.assignment().topicPartitions().size()).sum()));
            }
            for (int i = 0; i < 10; i++) producer.send(new ProducerRecord<>(t, i % 2, "k" + i, "second-" + i));
            producer.flush();
            try (KafkaConsumer<String, String> c = ctx.consumer(g, ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer")) {
                c.subscribe(List.of(t));
                List<ConsumerRecord<String, String>> got = ctx.pollCount(c, 10, 20_000);
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(300))) got.add(r);
                out.put("secondRead", got.stream().map(ConsumerRecord::value).sorted().toList());
            }
        }
        return out;
    }

    // ---- ACLs (issue 15) -------------------------------------------------------------------------------

    /** createAcls (a literal topic ACL and a prefixed group ACL), describeAcls, deleteAcls. */
    static Object acls(Ctx ctx) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        String t = ctx.name("acl-topic");
        String gp = ctx.name("acl-groups");
        AclBinding topicAcl = new AclBinding(new ResourcePattern(ResourceType.TOPIC, t, PatternType.LITERAL),
                new AccessControlEntry("User:alice", "*", AclOperation.READ, AclPermissionType.ALLOW));
        AclBinding groupAcl = new AclBinding(new ResourcePattern(ResourceType.GROUP, gp, PatternType.PREFIXED),
                new AccessControlEntry("User:alice", "*", AclOperation.READ, AclPermissionType.ALLOW));
        try (Admin admin = ctx.admin()) {
            get(admin.createAcls(List.of(topicAcl, groupAcl)).all());
            AclBindingFilter alice = new AclBindingFilter(ResourcePatternFilter.ANY,
                    new AccessControlEntryFilter("User:alice", null, AclOperation.ANY, AclPermissionType.ANY));
            ctx.waitFor("both ACLs described", 10_000, () -> describeAcls(admin, alice, t, gp).size() == 2);
            out.put("described", describeAcls(admin, alice, t, gp));
            var deleted = get(admin.deleteAcls(List.of(topicAcl.toFilter())).all());
            out.put("deleted", deleted.size());
            ctx.waitFor("one ACL left", 10_000, () -> describeAcls(admin, alice, t, gp).size() == 1);
            out.put("describedAfterDelete", describeAcls(admin, alice, t, gp));
            get(admin.deleteAcls(List.of(groupAcl.toFilter())).all());
        }
        return out;
    }

    static List<String> describeAcls(Admin admin, AclBindingFilter filter, String... names) {
        try {
            Set<String> wanted = Set.of(names);
            return get(admin.describeAcls(filter).values()).stream()
                    .filter(b -> wanted.contains(b.pattern().name()))
                    .map(b -> b.pattern().resourceType() + ":" + b.pattern().patternType() + ":" + b.entry().operation()
                            + ":" + b.entry().permissionType() + ":" + b.entry().principal() + "@" + b.entry().host())
                    .sorted().toList();
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    // ---- DeleteRecords (issue 14) -----------------------------------------------------------------------

    /** deleteRecords before offset 5: the low watermark, earliest offset and a consumer from
     *  the beginning all start at 5; beyond the high watermark is OffsetOutOfRange; before -1
     *  (the high watermark) empties the partition. */
    static Object deleteRecords(Ctx ctx) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        String t = ctx.name("delete-records");
        TopicPartition tp = new TopicPartition(t, 0);
        try (Admin admin = ctx.admin(); KafkaProducer<String, String> producer = ctx.producer()) {
            get(admin.createTopics(List.of(new NewTopic(t, 1, (short) 1))).all());
            for (int i = 0; i < 20; i++) producer.send(new ProducerRecord<>(t, 0, "k" + i, "v" + i));
            producer.flush();
            out.put("lowWatermark", get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(5))).lowWatermarks().get(tp)).lowWatermark());
            out.put("earliest", get(admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp)).offset());
            try (KafkaConsumer<String, String> c = ctx.consumer(null)) {
                c.assign(List.of(tp));
                c.seekToBeginning(List.of(tp));
                out.put("firstOffsetRead", ctx.pollCount(c, 1, 10_000).get(0).offset());
            }
            out.put("beyondEnd", attempt(() -> get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(100))).all())));
            out.put("toHighWatermark", get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(-1))).lowWatermarks().get(tp)).lowWatermark());
            out.put("earliestAfterAll", get(admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp)).offset());
        }
        return out;
    }
}
