"""kafka-python against a SASL broker with ACLs: a SCRAM-SHA-512 credential made with the
admin API and used to log in, a producer refused until an ACL allows it, the ACL
described and deleted. (A refused login is checked with librdkafka and the Java client,
which report it as such; kafka-python only times out.) Run by tests/python_client.rs with the
bootstrap servers and the admin's password; prints ALL OK at the end."""

import sys

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    NewTopic,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    UserScramCredentialUpsertion,
)
from kafka.errors import TopicAuthorizationFailedError


def check(ok, what):
    if not ok:
        raise SystemExit("FAILED: " + what)
    print("ok: " + what, flush=True)


def login(mechanism, user, password):
    return dict(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_plain_username=user,
        sasl_plain_password=password,
    )


def try_send(bs, topic):
    producer = KafkaProducer(
        bootstrap_servers=bs, max_block_ms=5000, **login("SCRAM-SHA-512", "py-user", "py-pw")
    )
    try:
        producer.send(topic, value=b"v").get(timeout=10)
        return None
    except TopicAuthorizationFailedError as e:
        return e
    finally:
        producer.close()


def main():
    bs, admin_password = sys.argv[1], sys.argv[2]
    topic = "py-secure"
    admin = KafkaAdminClient(bootstrap_servers=bs, **login("SCRAM-SHA-256", "admin", admin_password))
    admin.create_topics([NewTopic(topic, 1, 1)])
    result = admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion("py-user", "SCRAM-SHA-512", "py-pw", iterations=4096)]
    )
    check(result == {"py-user": None}, f"SCRAM credential made: {result}")
    described = admin.describe_user_scram_credentials(["py-user"])
    check(described["py-user"]["error"] is None, f"SCRAM credential described: {described}")

    check(isinstance(try_send(bs, topic), TopicAuthorizationFailedError), "write without an ACL refused")

    acl = ACL(
        principal="User:py-user",
        host="*",
        operation=ACLOperation.WRITE,
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(ResourceType.TOPIC, topic),
    )
    created = admin.create_acls([acl])
    check(len(created["succeeded"]) == 1 and not created["failed"], f"ACL created: {created}")
    acl_filter = ACLFilter(
        principal="User:py-user",
        host=None,
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    acls, error = admin.describe_acls(acl_filter)
    check(len(acls) == 1 and acls[0].operation == ACLOperation.WRITE, f"ACL described: {acls} {error}")
    check(try_send(bs, topic) is None, "write allowed by the ACL")
    deleted = admin.delete_acls([acl_filter])
    check(len(deleted) == 1 and len(deleted[0][1]) == 1, f"ACL deleted: {deleted}")
    check(isinstance(try_send(bs, topic), TopicAuthorizationFailedError), "write refused again")
    admin.close()

    print("ALL OK")


main()
