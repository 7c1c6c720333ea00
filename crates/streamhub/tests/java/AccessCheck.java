// What Apache Kafka's own Java client is allowed to do with a user's SCRAM credentials:
// for each topic, produce, consume, commit (in the user's group streamhub-<user>) and
// describe. Prints one line per cell: "<topic> <op> allowed|denied"; exits 1 when a call
// fails for another reason than authorization.
//
//   java -cp "<kafka libs>/*:<classes>" AccessCheck <bootstrap> <user> <password> <topic>...

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class AccessCheck {
    interface Call {
        void run() throws Exception;
    }

    static String bootstrap, user, password;

    static Properties props() {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("security.protocol", "SASL_PLAINTEXT");
        p.put("sasl.mechanism", "SCRAM-SHA-512");
        p.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
                + user + "\" password=\"" + password + "\";");
        p.put("request.timeout.ms", "10000");
        p.put("default.api.timeout.ms", "15000");
        return p;
    }

    /** True when `call` succeeds, false when the broker refuses it for authorization. */
    static boolean allowed(Call call) throws Exception {
        try {
            call.run();
            return true;
        } catch (AuthorizationException e) {
            return false;
        } catch (ExecutionException e) {
            if (e.getCause() instanceof AuthorizationException) {
                return false;
            }
            throw e;
        }
    }

    public static void main(String[] args) throws Exception {
        bootstrap = args[0];
        user = args[1];
        password = args[2];
        for (int i = 3; i < args.length; i++) {
            String topic = args[i];
            TopicPartition tp = new TopicPartition(topic, 0);

            Properties pp = props();
            pp.put("key.serializer", StringSerializer.class.getName());
            pp.put("value.serializer", StringSerializer.class.getName());
            pp.put("max.block.ms", "10000");
            pp.put("enable.idempotence", "false");
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                boolean ok = allowed(() -> producer.send(new ProducerRecord<>(topic, "k", "{}")).get(15, TimeUnit.SECONDS));
                System.out.println(topic + " produce " + (ok ? "allowed" : "denied"));
            }

            Properties cp = props();
            cp.put("key.deserializer", StringDeserializer.class.getName());
            cp.put("value.deserializer", StringDeserializer.class.getName());
            cp.put("group.id", "streamhub-" + user);
            cp.put("enable.auto.commit", "false");
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
                consumer.assign(List.of(tp));
                consumer.seekToBeginning(List.of(tp));
                boolean ok = allowed(() -> {
                    long end = System.currentTimeMillis() + 15000;
                    while (consumer.poll(Duration.ofMillis(500)).isEmpty()) {
                        if (System.currentTimeMillis() > end) {
                            throw new IllegalStateException("no record and no refusal from " + topic);
                        }
                    }
                });
                System.out.println(topic + " consume " + (ok ? "allowed" : "denied"));
                ok = allowed(() -> consumer.commitSync(Map.of(tp, new OffsetAndMetadata(0)), Duration.ofSeconds(15)));
                System.out.println(topic + " commit " + (ok ? "allowed" : "denied"));
            }

            try (Admin admin = Admin.create(props())) {
                boolean ok = allowed(() -> admin.describeTopics(List.of(topic)).allTopicNames().get(15, TimeUnit.SECONDS));
                System.out.println(topic + " describe " + (ok ? "allowed" : "denied"));
            }
        }
    }
}
