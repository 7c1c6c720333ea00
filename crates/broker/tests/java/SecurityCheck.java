// Apache Kafka's Java client against a SASL broker with ACLs: SCRAM credentials made and
// described with the Admin API, then used to log in; a producer refused until an ACL
// allows it; ACLs created, described and deleted; a wrong password refused. Run by
// tests/java_client.rs.
import java.util.*;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.acl.*;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.resource.*;
import org.apache.kafka.common.serialization.StringSerializer;

public class SecurityCheck {
    static void check(boolean ok, String what) { if (!ok) throw new RuntimeException("FAILED: " + what); System.out.println("ok: " + what); }

    static Properties login(String bs, String mechanism, String user, String password) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bs);
        p.put("security.protocol", "SASL_PLAINTEXT");
        p.put("sasl.mechanism", mechanism);
        String module = mechanism.equals("PLAIN")
            ? "org.apache.kafka.common.security.plain.PlainLoginModule"
            : "org.apache.kafka.common.security.scram.ScramLoginModule";
        p.put("sasl.jaas.config", module + " required username=\"" + user + "\" password=\"" + password + "\";");
        p.put("default.api.timeout.ms", "15000");
        p.put("request.timeout.ms", "10000");
        return p;
    }

    static Properties producerProps(Properties base, boolean idempotent) {
        Properties p = new Properties();
        p.putAll(base);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("enable.idempotence", Boolean.toString(idempotent));
        p.put("acks", idempotent ? "all" : "1");
        p.put("max.block.ms", "15000");
        p.put("delivery.timeout.ms", "15000");
        return p;
    }

    public static void main(String[] args) throws Exception {
        String bs = args[0], adminPassword = args[1];
        String topic = "java-secure";
        AclBindingFilter javaUserAcls = new AclBindingFilter(
            new ResourcePatternFilter(ResourceType.ANY, null, PatternType.ANY),
            new AccessControlEntryFilter("User:java-user", null, AclOperation.ANY, AclPermissionType.ANY));
        try (Admin admin = Admin.create(login(bs, "SCRAM-SHA-512", "admin", adminPassword))) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
            admin.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion(
                "java-user", new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192), "java-pw"))).all().get();
            UserScramCredentialsDescription d = admin.describeUserScramCredentials(List.of("java-user")).description("java-user").get();
            check(d.credentialInfos().size() == 1
                && d.credentialInfos().get(0).mechanism() == ScramMechanism.SCRAM_SHA_256
                && d.credentialInfos().get(0).iterations() == 8192, "SCRAM credential made and described: " + d);

            // Logged in with the new credential, but no ACL yet: the write is refused.
            try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps(login(bs, "SCRAM-SHA-256", "java-user", "java-pw"), false))) {
                try {
                    p.send(new ProducerRecord<>(topic, "k", "refused")).get();
                    check(false, "write without an ACL is refused");
                } catch (ExecutionException e) {
                    check(e.getCause() instanceof TopicAuthorizationException, "write without an ACL is refused: " + e.getCause());
                }
            }

            admin.createAcls(List.of(new AclBinding(
                new ResourcePattern(ResourceType.TOPIC, "java-", PatternType.PREFIXED),
                new AccessControlEntry("User:java-user", "*", AclOperation.WRITE, AclPermissionType.ALLOW)))).all().get();
            Collection<AclBinding> described = admin.describeAcls(javaUserAcls).values().get();
            check(described.size() == 1
                && described.iterator().next().pattern().patternType() == PatternType.PREFIXED, "ACL created and described: " + described);

            // An idempotent producer (the default): InitProducerId is allowed by Write on a topic.
            try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps(login(bs, "PLAIN", "java-user", "java-pw"), true))) {
                RecordMetadata m = p.send(new ProducerRecord<>(topic, "k", "allowed")).get();
                check(m.offset() == 0, "write allowed by the prefixed ACL, idempotent, over PLAIN");
            }

            Collection<AclBinding> deleted = admin.deleteAcls(List.of(javaUserAcls)).all().get();
            check(deleted.size() == 1, "ACL deleted");
            check(admin.describeAcls(javaUserAcls).values().get().isEmpty(), "no ACL left");
        }

        try (Admin wrong = Admin.create(login(bs, "SCRAM-SHA-256", "java-user", "not-the-password"))) {
            wrong.listTopics().names().get();
            check(false, "a wrong password is refused");
        } catch (ExecutionException e) {
            check(e.getCause() instanceof SaslAuthenticationException, "a wrong password is refused: " + e.getCause());
        }
        System.out.println("ALL OK");
    }
}
