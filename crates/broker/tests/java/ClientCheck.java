// Apache Kafka's Java client (kafka-clients 4.x) against the broker: admin, idempotent
// producer, assigned consumer, offsets, two consumers sharing a topic in a group. Run by
// tests/java_client.rs.
import java.time.Duration;
import java.util.*;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.serialization.*;

public class ClientCheck {
    static void check(boolean ok, String what) { if (!ok) throw new RuntimeException("FAILED: " + what); System.out.println("ok: " + what); }
    // Two consumers in one group read 4 partitions between them: each message once, the
    // partitions split without overlap, and the group's commits are the ends.
    static void groupOfTwo(String bs, Properties ap, Properties pp, Properties cp, String assignor) throws Exception {
        String topic = "java-group-" + UUID.randomUUID().toString().substring(0, 8);
        String group = topic + "-g";
        int partitions = 4, perPartition = 50;
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
        }
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            for (int part = 0; part < partitions; part++)
                for (int i = 0; i < perPartition; i++) p.send(new ProducerRecord<>(topic, part, "k", part + "-" + i));
            p.flush();
        }
        int total = partitions * perPartition;
        Set<String> seen = Collections.synchronizedSet(new HashSet<>());
        List<String> duplicates = Collections.synchronizedList(new ArrayList<>());
        List<Set<TopicPartition>> owned = List.of(ConcurrentHashMap.newKeySet(), ConcurrentHashMap.newKeySet());
        java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
        List<Throwable> errors = Collections.synchronizedList(new ArrayList<>());
        List<Thread> threads = new ArrayList<>();
        for (int m = 0; m < 2; m++) {
            int member = m;
            Thread t = new Thread(() -> {
                Properties gp = new Properties();
                gp.putAll(cp);
                gp.put("group.id", group); gp.put("client.id", "java-member-" + member);
                gp.put("enable.auto.commit", "false"); gp.put("auto.offset.reset", "earliest");
                gp.put("partition.assignment.strategy", assignor);
                try (KafkaConsumer<String, String> c = new KafkaConsumer<>(gp)) {
                    c.subscribe(List.of(topic));
                    long deadline = System.currentTimeMillis() + 60000;
                    while (!done.get() && System.currentTimeMillis() < deadline) {
                        for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                            if (!seen.add(r.value())) duplicates.add(r.value());
                        }
                        owned.get(member).clear();
                        owned.get(member).addAll(c.assignment());
                        try {
                            c.commitSync();
                        } catch (RebalanceInProgressException | CommitFailedException e) {
                            // A rebalance under way: the next poll rejoins, later commits land.
                        }
                    }
                } catch (Throwable e) {
                    errors.add(e);
                }
            });
            t.start();
            threads.add(t);
        }
        long deadline = System.currentTimeMillis() + 60000;
        while (System.currentTimeMillis() < deadline && errors.isEmpty()) {
            Set<TopicPartition> a = new HashSet<>(owned.get(0)), b = new HashSet<>(owned.get(1));
            boolean split = !a.isEmpty() && !b.isEmpty() && a.size() + b.size() == partitions && Collections.disjoint(a, b);
            if (seen.size() >= total && split) break;
            Thread.sleep(50);
        }
        System.out.println("group of two (" + assignor + "): read " + seen.size() + ", owned " + owned + ", read twice " + duplicates);
        done.set(true);
        for (Thread t : threads) t.join();
        check(errors.isEmpty(), "group members ran without errors " + errors);
        check(seen.size() == total, assignor + ": group of two read all " + total + " messages, read " + seen.size());
        Set<TopicPartition> union = new HashSet<>(owned.get(0));
        union.addAll(owned.get(1));
        check(union.size() == partitions && owned.get(0).size() + owned.get(1).size() == partitions
            && !owned.get(0).isEmpty() && !owned.get(1).isEmpty(), "the two members split the partitions " + owned);
        try (Admin admin = Admin.create(ap)) {
            var offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            boolean ends = offsets.size() == partitions;
            for (var e : offsets.entrySet()) ends &= e.getValue().offset() == perPartition;
            check(ends, "the group committed the end of every partition " + offsets);
            var described = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            check(described.groupState() == GroupState.EMPTY && described.members().isEmpty(),
                "the group is empty after its members closed " + described);
        }
    }

    public static void main(String[] args) throws Exception {
        String bs = args[0];
        String t1 = "java-" + UUID.randomUUID().toString().substring(0, 8);
        String t2 = t1 + "-other";
        Properties ap = new Properties(); ap.put("bootstrap.servers", bs);
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic(t1, 3, (short) 1), new NewTopic(t2, Optional.empty(), Optional.empty()))).all().get();
            check(admin.listTopics().names().get().containsAll(List.of(t1, t2)), "listTopics");
            var desc = admin.describeTopics(List.of(t1)).allTopicNames().get().get(t1);
            check(desc.partitions().size() == 3 && desc.topicId() != null, "describeTopics " + desc);
            var cluster = admin.describeCluster();
            check(cluster.nodes().get().size() == 1 && cluster.clusterId().get() != null, "describeCluster " + cluster.clusterId().get());
            ConfigResource cr = new ConfigResource(ConfigResource.Type.TOPIC, t1);
            admin.incrementalAlterConfigs(Map.of(cr, List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "123456"), AlterConfigOp.OpType.SET)))).all().get();
            var cfg = admin.describeConfigs(List.of(cr)).all().get().get(cr);
            check("123456".equals(cfg.get("retention.ms").value()), "configs " + cfg.get("retention.ms"));
            var bcfg = admin.describeConfigs(List.of(new ConfigResource(ConfigResource.Type.BROKER, "0"))).all().get();
            System.out.println("broker configs: " + bcfg.values().iterator().next().entries().size());
            admin.createPartitions(Map.of(t1, NewPartitions.increaseTo(4))).all().get();
            check(admin.describeTopics(List.of(t1)).allTopicNames().get().get(t1).partitions().size() == 4, "createPartitions");
        }
        Properties pp = new Properties();
        pp.put("bootstrap.servers", bs); pp.put("acks", "all"); pp.put("enable.idempotence", "true"); pp.put("linger.ms", "10");
        pp.put("key.serializer", StringSerializer.class.getName()); pp.put("value.serializer", StringSerializer.class.getName());
        int n = 1000;
        long firstTs = System.currentTimeMillis();
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            List<java.util.concurrent.Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++) fs.add(p.send(new ProducerRecord<>(t1, 0, "k" + i, "v" + i)));
            for (int i = 0; i < n; i++) if (fs.get(i).get().offset() != i) throw new RuntimeException("offset " + i);
            System.out.println("ok: offsets 0.." + (n - 1));
            p.send(new ProducerRecord<>(t2, "x", "y")).get();
        }
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bs);
        cp.put("key.deserializer", StringDeserializer.class.getName()); cp.put("value.deserializer", StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
            TopicPartition tp = new TopicPartition(t1, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            int got = 0; long deadline = System.currentTimeMillis() + 30000;
            while (got < n && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    if (r.offset() != got || !r.value().equals("v" + got)) throw new RuntimeException("record " + got);
                    got++;
                }
            }
            check(got == n, "consumed " + got);
            check(c.endOffsets(List.of(tp)).get(tp) == n, "endOffsets");
            check(c.beginningOffsets(List.of(tp)).get(tp) == 0, "beginningOffsets");
            var ot = c.offsetsForTimes(Map.of(tp, firstTs - 1000)).get(tp);
            check(ot != null && ot.offset() == 0, "offsetsForTimes " + ot);
        }
        try (Admin admin = Admin.create(ap)) {
            admin.deleteRecords(Map.of(new TopicPartition(t1, 0), RecordsToDelete.beforeOffset(10))).all().get();
            admin.deleteTopics(List.of(t2)).all().get();
            var names = admin.listTopics().names().get();
            check(names.contains(t1) && !names.contains(t2), "deleteTopics " + names);
        }
        groupOfTwo(bs, ap, pp, cp, RangeAssignor.class.getName());
        groupOfTwo(bs, ap, pp, cp, CooperativeStickyAssignor.class.getName());
        System.out.println("ALL OK");
    }
}
