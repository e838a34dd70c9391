package dev.sluice.compat;

import static dev.sluice.compat.Ctx.attempt;
import static dev.sluice.compat.Ctx.get;
import static dev.sluice.compat.Ctx.obj;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.AlterConfigsOptions;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListConsumerGroupsOptions;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.TopicPartitionReplica;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.config.ConfigResource;

/** Admin client scenarios: cluster, topics, offsets, configs, consumer groups, log dirs. */
final class AdminScenarios {
    private AdminScenarios() {}

    // ---- describeCluster, createTopics, describeTopics, createPartitions, deleteTopics ------

    static Object clusterAndTopics(Ctx ctx) throws Exception {
        Map<String, Object> out = new java.util.LinkedHashMap<>();
        try (Admin admin = ctx.admin()) {
            DescribeClusterResult dc = admin.describeCluster();
            out.put("cluster", obj("clusterId", get(dc.clusterId()), "controller", node(get(dc.controller())),
                    "nodes", nodes(get(dc.nodes())), "authorizedOperations", ops(get(dc.authorizedOperations()))));
            DescribeClusterResult dcOps = admin.describeCluster(new DescribeClusterOptions().includeAuthorizedOperations(true));
            out.put("clusterAuthorizedOperations", ops(get(dcOps.authorizedOperations())));

            String t = ctx.name("topic");
            CreateTopicsResult cr = admin.createTopics(List.of(new NewTopic(t, 3, (short) 1)
                    .configs(Map.of("retention.ms", "3600000", "max.message.bytes", "500000"))));
            get(cr.all());
            out.put("create", obj("topic", t, "topicId", get(cr.topicId(t)).toString(),
                    "numPartitions", get(cr.numPartitions(t)), "replicationFactor", get(cr.replicationFactor(t)),
                    "configs", configs(get(cr.config(t)), List.of("retention.ms", "max.message.bytes", "cleanup.policy"))));
            out.put("createAgain", attempt(() -> get(admin.createTopics(List.of(new NewTopic(t, 3, (short) 1))).all())));

            String d = ctx.name("defaults");
            CreateTopicsResult dr = admin.createTopics(List.of(new NewTopic(d, Optional.empty(), Optional.empty())));
            get(dr.all());
            out.put("createDefaults", obj("numPartitions", get(dr.numPartitions(d)), "replicationFactor", get(dr.replicationFactor(d))));

            String v = ctx.name("validate-only");
            out.put("validateOnly", attempt(() -> get(admin.createTopics(List.of(new NewTopic(v, 2, (short) 1)),
                    new CreateTopicsOptions().validateOnly(true)).all())));
            out.put("badPartitions", attempt(() -> get(admin.createTopics(List.of(new NewTopic(ctx.name("bad-p"), 0, (short) 1))).all())));
            out.put("badReplication", attempt(() -> get(admin.createTopics(List.of(new NewTopic(ctx.name("bad-rf"), 1, (short) 2))).all())));
            out.put("badConfig", attempt(() -> get(admin.createTopics(List.of(new NewTopic(ctx.name("bad-cfg"), 1, (short) 1)
                    .configs(Map.of("retention.ms", "soon")))).all())));
            out.put("badName", attempt(() -> get(admin.createTopics(List.of(new NewTopic("bad name!", 1, (short) 1))).all())));

            Set<String> listed = get(admin.listTopics().names());
            out.put("listed", obj("topic", listed.contains(t), "defaults", listed.contains(d), "validateOnly", listed.contains(v)));

            TopicDescription td = get(admin.describeTopics(List.of(t)).allTopicNames()).get(t);
            out.put("describe", describe(td));
            out.put("describeById", attempt(() -> describe(get(admin.describeTopics(TopicCollection.ofTopicIds(List.of(td.topicId()))).allTopicIds()).get(td.topicId()))));
            out.put("describeWithOperations", describe(get(admin.describeTopics(List.of(t),
                    new DescribeTopicsOptions().includeAuthorizedOperations(true)).allTopicNames()).get(t)));
            out.put("describeMissing", attempt(() -> get(admin.describeTopics(List.of(ctx.name("missing"))).allTopicNames())));

            get(admin.createPartitions(Map.of(t, NewPartitions.increaseTo(5))).all());
            ctx.waitFor("5 partitions described", 10_000, () -> partitionCount(admin, t) == 5);
            out.put("partitionsAfterGrow", describe(get(admin.describeTopics(List.of(t)).allTopicNames()).get(t)));
            out.put("shrink", attempt(() -> get(admin.createPartitions(Map.of(t, NewPartitions.increaseTo(2))).all())));
            out.put("same", attempt(() -> get(admin.createPartitions(Map.of(t, NewPartitions.increaseTo(5))).all())));
            out.put("growMissing", attempt(() -> get(admin.createPartitions(Map.of(ctx.name("missing"), NewPartitions.increaseTo(2))).all())));

            get(admin.deleteTopics(List.of(t)).all());
            ctx.waitFor("deleted topic gone from listTopics", 10_000, () -> !listTopics(admin).contains(t));
            out.put("deleteAgain", attempt(() -> get(admin.deleteTopics(List.of(t)).all())));

            Uuid did = get(admin.describeTopics(List.of(d)).allTopicNames()).get(d).topicId();
            out.put("deleteById", attempt(() -> get(admin.deleteTopics(TopicCollection.ofTopicIds(List.of(did))).all())));
            ctx.waitFor("topic deleted by id gone from listTopics", 10_000, () -> !listTopics(admin).contains(d));
            out.put("deleteUnknownId", attempt(() -> get(admin.deleteTopics(TopicCollection.ofTopicIds(List.of(Uuid.randomUuid()))).all())));
            Set<String> after = get(admin.listTopics().names());
            out.put("listedAfterDelete", obj("topic", after.contains(t), "defaults", after.contains(d)));
        }
        return out;
    }

    static Set<String> listTopics(Admin admin) {
        try {
            return get(admin.listTopics().names());
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    static int partitionCount(Admin admin, String topic) {
        try {
            return get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic).partitions().size();
        } catch (Exception e) {
            return -1;
        }
    }

    static Map<String, Object> node(Node n) {
        return n == null ? null : obj("id", n.id(), "host", n.host(), "port", n.port(), "rack", n.rack());
    }

    static List<Object> nodes(Collection<Node> ns) {
        List<Object> out = new ArrayList<>();
        for (Node n : ns) out.add(node(n));
        return out;
    }

    static List<String> ops(Set<AclOperation> ops) {
        if (ops == null) return null;
        return ops.stream().map(Enum::name).sorted().toList();
    }

    static Map<String, Object> describe(TopicDescription td) {
        List<Object> parts = new ArrayList<>();
        for (TopicPartitionInfo p : td.partitions()) {
            parts.add(obj("partition", p.partition(), "leader", p.leader() == null ? null : p.leader().id(),
                    "replicas", p.replicas().stream().map(Node::id).toList(), "isr", p.isr().stream().map(Node::id).toList(),
                    "elr", p.elr() == null ? null : p.elr().stream().map(Node::id).toList(),
                    "lastKnownElr", p.lastKnownElr() == null ? null : p.lastKnownElr().stream().map(Node::id).toList()));
        }
        return obj("name", td.name(), "topicId", td.topicId().toString(), "internal", td.isInternal(),
                "partitions", parts, "authorizedOperations", ops(td.authorizedOperations()));
    }

    // ---- listOffsets ------------------------------------------------------------------------

    /** Timestamps (ms after `base`) of the records produced to partition 0, in two batches. */
    static final long[][] TS_BATCHES = {{1000, 5000, 3000, 2000, 4000}, {2500, 7000, 6000}};

    static Object listOffsets(Ctx ctx) throws Exception {
        Map<String, Object> out = new java.util.LinkedHashMap<>();
        String t = ctx.name("offsets");
        long base = System.currentTimeMillis() - 60_000;
        try (Admin admin = ctx.admin(); KafkaProducer<String, String> producer = ctx.producer()) {
            get(admin.createTopics(List.of(new NewTopic(t, 2, (short) 1))).all());
            List<Object> acks = new ArrayList<>();
            int i = 0;
            for (long[] batch : TS_BATCHES) {
                List<java.util.concurrent.Future<org.apache.kafka.clients.producer.RecordMetadata>> fs = new ArrayList<>();
                for (long ts : batch) fs.add(producer.send(new ProducerRecord<>(t, 0, base + ts, "k" + i, "v" + i++)));
                producer.flush();
                for (var f : fs) {
                    var md = get(f);
                    acks.add(obj("offset", md.offset(), "timestamp", md.timestamp()));
                }
            }
            out.put("base", base);
            out.put("acks", acks);
            TopicPartition p0 = new TopicPartition(t, 0);
            TopicPartition p1 = new TopicPartition(t, 1);
            Map<String, OffsetSpec> specs = new java.util.LinkedHashMap<>();
            specs.put("earliest", OffsetSpec.earliest());
            specs.put("latest", OffsetSpec.latest());
            specs.put("maxTimestamp", OffsetSpec.maxTimestamp());
            specs.put("earliestLocal", OffsetSpec.earliestLocal());
            specs.put("latestTiered", OffsetSpec.latestTiered());
            specs.put("atOrAfter0", OffsetSpec.forTimestamp(0));
            specs.put("atOrAfter2500", OffsetSpec.forTimestamp(base + 2500));
            specs.put("atOrAfter5500", OffsetSpec.forTimestamp(base + 5500));
            specs.put("atOrAfter7000", OffsetSpec.forTimestamp(base + 7000));
            specs.put("after7000", OffsetSpec.forTimestamp(base + 7001));
            for (TopicPartition tp : List.of(p0, p1)) {
                Map<String, Object> byName = new java.util.LinkedHashMap<>();
                for (Map.Entry<String, OffsetSpec> e : specs.entrySet()) {
                    byName.put(e.getKey(), offsetInfo(get(admin.listOffsets(Map.of(tp, e.getValue())).partitionResult(tp))));
                }
                out.put("partition" + tp.partition(), byName);
            }
            out.put("latestReadCommitted", offsetInfo(get(admin.listOffsets(Map.of(p0, OffsetSpec.latest()),
                    new ListOffsetsOptions(IsolationLevel.READ_COMMITTED)).partitionResult(p0))));
            // Several partitions and specs in one call.
            var all = get(admin.listOffsets(Map.of(p0, OffsetSpec.latest(), p1, OffsetSpec.earliest())).all());
            out.put("together", obj("p0Latest", all.get(p0).offset(), "p1Earliest", all.get(p1).offset()));
            TopicPartition missing = new TopicPartition(ctx.name("missing"), 0);
            out.put("missingTopic", attempt(() -> get(admin.listOffsets(Map.of(missing, OffsetSpec.latest())).all())));
        }
        return out;
    }

    static Map<String, Object> offsetInfo(ListOffsetsResultInfo info) {
        return obj("offset", info.offset(), "timestamp", info.timestamp(), "leaderEpoch", info.leaderEpoch());
    }

    // ---- describeConfigs / incrementalAlterConfigs ------------------------------------------

    static final List<String> TOPIC_KEYS = List.of("retention.ms", "cleanup.policy", "segment.bytes", "max.message.bytes",
            "min.insync.replicas", "compression.type", "message.timestamp.type");

    static Object configs(Ctx ctx) throws Exception {
        Map<String, Object> out = new java.util.LinkedHashMap<>();
        String t = ctx.name("configs");
        try (Admin admin = ctx.admin()) {
            get(admin.createTopics(List.of(new NewTopic(t, 1, (short) 1)
                    .configs(Map.of("retention.ms", "3600000", "cleanup.policy", "delete")))).all());
            ConfigResource topic = new ConfigResource(ConfigResource.Type.TOPIC, t);
            out.put("initial", describeConfigs(admin, topic, TOPIC_KEYS));
            Config full = get(admin.describeConfigs(List.of(topic),
                    new DescribeConfigsOptions().includeSynonyms(true).includeDocumentation(true)).all()).get(topic);
            out.put("entryNames", full.entries().stream().map(ConfigEntry::name).sorted().toList());
            out.put("withSynonyms", configs(full, List.of("retention.ms", "cleanup.policy", "segment.bytes")));

            get(admin.incrementalAlterConfigs(Map.of(topic, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND)))).all());
            out.put("afterSetAndAppend", describeConfigs(admin, topic, List.of("retention.ms", "cleanup.policy")));

            get(admin.incrementalAlterConfigs(Map.of(topic, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", null), AlterConfigOp.OpType.DELETE),
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", "delete"), AlterConfigOp.OpType.SUBTRACT)))).all());
            out.put("afterDeleteAndSubtract", describeConfigs(admin, topic, List.of("retention.ms", "cleanup.policy")));

            out.put("validateOnly", attempt(() -> get(admin.incrementalAlterConfigs(Map.of(topic, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "1000"), AlterConfigOp.OpType.SET))),
                    new AlterConfigsOptions().validateOnly(true)).all())));
            out.put("afterValidateOnly", describeConfigs(admin, topic, List.of("retention.ms")));

            out.put("badValue", attempt(() -> get(admin.incrementalAlterConfigs(Map.of(topic, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "soon"), AlterConfigOp.OpType.SET)))).all())));
            out.put("unknownName", attempt(() -> get(admin.incrementalAlterConfigs(Map.of(topic, List.of(
                    new AlterConfigOp(new ConfigEntry("no.such.config", "1"), AlterConfigOp.OpType.SET)))).all())));
            out.put("appendToNonList", attempt(() -> get(admin.incrementalAlterConfigs(Map.of(topic, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "5"), AlterConfigOp.OpType.APPEND)))).all())));
            ConfigResource missing = new ConfigResource(ConfigResource.Type.TOPIC, ctx.name("missing"));
            out.put("alterMissingTopic", attempt(() -> get(admin.incrementalAlterConfigs(Map.of(missing, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "5000"), AlterConfigOp.OpType.SET)))).all())));
            out.put("describeMissingTopic", attempt(() -> get(admin.describeConfigs(List.of(missing)).all())));
            out.put("afterErrors", describeConfigs(admin, topic, List.of("retention.ms", "cleanup.policy")));

            String brokerId = String.valueOf(get(admin.describeCluster().nodes()).iterator().next().id());
            ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, brokerId);
            Config bc = get(admin.describeConfigs(List.of(broker)).all()).get(broker);
            out.put("brokerEntryCount", bc.entries().size());
            out.put("broker", configs(bc, List.of("num.partitions", "log.dirs", "log.segment.bytes", "auto.create.topics.enable",
                    "group.initial.rebalance.delay.ms", "log.retention.ms")));
        }
        return out;
    }

    static Map<String, Object> describeConfigs(Admin admin, ConfigResource r, List<String> keys) throws Exception {
        return configs(get(admin.describeConfigs(List.of(r)).all()).get(r), keys);
    }

    static Map<String, Object> configs(Config config, List<String> keys) {
        Map<String, Object> out = new java.util.LinkedHashMap<>();
        for (String k : keys) {
            ConfigEntry e = config.get(k);
            if (e == null) {
                out.put(k, null);
                continue;
            }
            Map<String, Object> m = obj("value", e.value(), "source", e.source().name(), "isDefault", e.isDefault(),
                    "readOnly", e.isReadOnly(), "sensitive", e.isSensitive(), "type", e.type() == null ? null : e.type().name());
            if (!e.synonyms().isEmpty()) {
                m.put("synonyms", e.synonyms().stream().map(s -> obj("name", s.name(), "value", s.value(), "source", s.source().name())).toList());
            }
            if (e.documentation() != null) m.put("hasDocumentation", !e.documentation().isEmpty());
            out.put(k, m);
        }
        return out;
    }

    // ---- consumer groups --------------------------------------------------------------------

    static Object groups(Ctx ctx) throws Exception {
        Map<String, Object> out = new java.util.LinkedHashMap<>();
        String t = ctx.name("groups");
        String g = ctx.name("group");
        String simple = ctx.name("simple-group");
        TopicPartition p0 = new TopicPartition(t, 0);
        TopicPartition p1 = new TopicPartition(t, 1);
        try (Admin admin = ctx.admin()) {
            get(admin.createTopics(List.of(new NewTopic(t, 2, (short) 1))).all());
            try (KafkaProducer<String, String> producer = ctx.producer()) {
                for (int i = 0; i < 10; i++) producer.send(new ProducerRecord<>(t, i % 2, "k" + i, "v" + i));
                producer.flush();
            }
            KafkaConsumer<String, String> member = ctx.consumer(g, "client.id", "sluice-compat-member");
            member.subscribe(List.of(t));
            List<ConsumerRecord<String, String>> read = ctx.pollCount(member, 10, 20_000);
            out.put("memberRead", read.size());
            member.commitSync();
            out.put("memberCommitted", committed(member.committed(Set.of(p0, p1))));

            out.put("listWhileStable", listGroups(admin, g, null));
            out.put("listStableOnly", listGroups(admin, g, Set.of(GroupState.STABLE)));
            out.put("listEmptyOnly", listGroups(admin, g, Set.of(GroupState.EMPTY)));
            out.put("listGroupsWhileStable", groupListing(admin, g));
            out.put("describeWhileStable", describeGroup(admin, g));
            out.put("offsetsWhileStable", attempt(() -> committed(get(admin.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata()))));
            out.put("deleteWhileStable", attempt(() -> get(admin.deleteConsumerGroups(List.of(g)).all())));
            out.put("alterWhileStable", attempt(() -> get(admin.alterConsumerGroupOffsets(g, Map.of(p0, new OffsetAndMetadata(1))).all())));
            out.put("deleteOffsetsWhileSubscribed", attempt(() -> get(admin.deleteConsumerGroupOffsets(g, Set.of(p0)).all())));

            member.close(); // leaves the group
            ctx.waitFor("group Empty after its member closed", 10_000, () -> "EMPTY".equals(stateOf(admin, g)));
            out.put("describeOnceEmpty", describeGroup(admin, g));
            out.put("listOnceEmpty", listGroups(admin, g, null));
            out.put("alterOnceEmpty", attempt(() -> get(admin.alterConsumerGroupOffsets(g, Map.of(p0, new OffsetAndMetadata(2, "two"))).all())));
            out.put("deleteOffsetsOnceEmpty", attempt(() -> get(admin.deleteConsumerGroupOffsets(g, Set.of(p1)).all())));
            out.put("offsetsOnceEmpty", attempt(() -> committed(get(admin.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata()))));
            out.put("delete", attempt(() -> get(admin.deleteConsumerGroups(List.of(g)).all())));
            out.put("deleteAgain", attempt(() -> get(admin.deleteConsumerGroups(List.of(g)).all())));
            out.put("describeAfterDelete", attempt(() -> describeGroup(admin, g)));
            out.put("offsetsAfterDelete", attempt(() -> committed(get(admin.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata()))));
            out.put("listAfterDelete", listGroups(admin, g, null));

            // Offsets committed by a consumer that never joins: a "simple" group.
            try (KafkaConsumer<String, String> assigned = ctx.consumer(simple)) {
                assigned.assign(List.of(p0));
                assigned.commitSync(Map.of(p0, new OffsetAndMetadata(3)));
            }
            out.put("simpleList", listGroups(admin, simple, null));
            out.put("simpleDescribe", describeGroup(admin, simple));
            out.put("simpleOffsets", committed(get(admin.listConsumerGroupOffsets(simple).partitionsToOffsetAndMetadata())));
        }
        return out;
    }

    static String stateOf(Admin admin, String g) {
        try {
            return get(admin.describeConsumerGroups(List.of(g)).all()).get(g).groupState().name();
        } catch (Exception e) {
            return null;
        }
    }

    @SuppressWarnings({"removal", "deprecation"}) // listConsumerGroups: what Kafka 4.4's Admin still offers beside listGroups
    static List<Object> listGroups(Admin admin, String g, Set<GroupState> states) throws Exception {
        ListConsumerGroupsOptions opts = new ListConsumerGroupsOptions();
        if (states != null) opts = opts.inGroupStates(states);
        List<Object> out = new ArrayList<>();
        for (ConsumerGroupListing l : get(admin.listConsumerGroups(opts).all())) {
            if (l.groupId().equals(g)) {
                out.add(obj("groupId", l.groupId(), "isSimple", l.isSimpleConsumerGroup(),
                        "state", l.groupState().map(Enum::name), "type", l.type().map(Enum::name)));
            }
        }
        return out;
    }

    static List<Object> groupListing(Admin admin, String g) throws Exception {
        List<Object> out = new ArrayList<>();
        for (GroupListing l : get(admin.listGroups().all())) {
            if (l.groupId().equals(g)) {
                out.add(obj("groupId", l.groupId(), "type", l.type().map(Enum::name), "protocol", l.protocol(),
                        "state", l.groupState().map(Enum::name), "isSimple", l.isSimpleConsumerGroup()));
            }
        }
        return out;
    }

    static Map<String, Object> describeGroup(Admin admin, String g) throws Exception {
        ConsumerGroupDescription d = get(admin.describeConsumerGroups(List.of(g)).all()).get(g);
        List<Object> members = new ArrayList<>();
        for (MemberDescription m : d.members()) {
            members.add(obj("memberId", m.consumerId(), "clientId", m.clientId(), "host", m.host(),
                    "groupInstanceId", m.groupInstanceId(),
                    "assignment", m.assignment().topicPartitions().stream().map(TopicPartition::toString).sorted().toList()));
        }
        return obj("groupId", d.groupId(), "isSimple", d.isSimpleConsumerGroup(), "state", d.groupState().name(),
                "type", d.type().name(), "partitionAssignor", d.partitionAssignor(),
                "coordinator", d.coordinator() == null ? null : d.coordinator().id(), "members", members);
    }

    static Map<String, Object> committed(Map<TopicPartition, OffsetAndMetadata> offsets) {
        Map<String, Object> out = new TreeMap<>();
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : offsets.entrySet()) {
            OffsetAndMetadata o = e.getValue();
            out.put(e.getKey().toString(), o == null ? null
                    : obj("offset", o.offset(), "metadata", o.metadata(), "leaderEpoch", o.leaderEpoch()));
        }
        return out;
    }

    // ---- describeLogDirs --------------------------------------------------------------------

    static Object logDirs(Ctx ctx) throws Exception {
        Map<String, Object> out = new java.util.LinkedHashMap<>();
        String t = ctx.name("log-dirs");
        try (Admin admin = ctx.admin()) {
            get(admin.createTopics(List.of(new NewTopic(t, 2, (short) 1))).all());
            try (KafkaProducer<String, String> producer = ctx.producer()) {
                for (int i = 0; i < 10; i++) producer.send(new ProducerRecord<>(t, 0, "k" + i, "value-" + i));
                producer.flush();
            }
            int brokerId = get(admin.describeCluster().nodes()).iterator().next().id();
            out.put("brokerId", brokerId);
            out.put("topic", t);
            Map<Integer, Map<String, LogDirDescription>> all = get(admin.describeLogDirs(List.of(brokerId)).allDescriptions());
            Map<String, Object> dirs = new java.util.LinkedHashMap<>();
            for (Map.Entry<String, LogDirDescription> e : all.get(brokerId).entrySet()) {
                LogDirDescription ld = e.getValue();
                Map<String, Object> replicas = new TreeMap<>();
                int total = 0;
                for (Map.Entry<TopicPartition, ReplicaInfo> r : ld.replicaInfos().entrySet()) {
                    total++;
                    if (r.getKey().topic().equals(t)) {
                        replicas.put(r.getKey().toString(), obj("size", r.getValue().size(), "offsetLag", r.getValue().offsetLag(),
                                "isFuture", r.getValue().isFuture()));
                    }
                }
                dirs.put(e.getKey(), obj("error", ld.error() == null ? null : ld.error().getClass().getSimpleName(),
                        "replicaCount", total, "replicas", replicas,
                        "totalBytes", ld.totalBytes().isPresent() ? ld.totalBytes().getAsLong() : null,
                        "usableBytes", ld.usableBytes().isPresent() ? ld.usableBytes().getAsLong() : null,
                        "cordoned", ld.isCordoned()));
            }
            out.put("dirs", dirs);
            TopicPartitionReplica replica = new TopicPartitionReplica(t, 0, brokerId);
            var rd = get(admin.describeReplicaLogDirs(List.of(replica)).all()).get(replica);
            out.put("replicaLogDir", obj("current", rd.getCurrentReplicaLogDir(), "offsetLag", rd.getCurrentReplicaOffsetLag(),
                    "future", rd.getFutureReplicaLogDir()));
        }
        return out;
    }
}
