"""kafka-python's default producer (idempotent since kafka-python 3) and its
transactional producer against a Kraft node, as a user would run them.

Usage: exactly_once.py BOOTSTRAP. Prints one JSON object with what the
clients saw; tests/python_clients.rs checks it. Any failure raises, so the
process exits non-zero with the client's own error.
"""

import json
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

bootstrap = sys.argv[1]
TIMEOUT_MS = 60_000


def read(topic, isolation, count):
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level=isolation,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=TIMEOUT_MS,
    )
    consumer.assign([TopicPartition(topic, 0)])
    values = []
    for message in consumer:
        values.append(message.value.decode())
        if len(values) == count:
            break
    consumer.close()
    return values


# The default producer: idempotence on, acks=all.
plain = KafkaProducer(bootstrap_servers=bootstrap)
for i in range(20):
    plain.send("py-plain", value=f"m{i}".encode(), partition=0).get(timeout=60)
plain.close()

# consume-transform-produce: each input record becomes one output record,
# and the group's offset moves with the transaction that wrote it.
for i in range(4):
    KafkaProducer(bootstrap_servers=bootstrap).send(
        "py-in", value=f"in{i}".encode(), partition=0
    ).get(timeout=60)
txn = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="py-tx")
txn.init_transactions()
source = TopicPartition("py-in", 0)

txn.begin_transaction()
# Acknowledged first: an abort drops what the client has not sent yet.
txn.send("py-out", value=b"aborted", partition=0).get(timeout=60)
txn.send_offsets_to_transaction({source: OffsetAndMetadata(3, "", -1)}, "py-group")
txn.abort_transaction()

txn.begin_transaction()
txn.send("py-out", value=b"out0", partition=0)
txn.send("py-out", value=b"out1", partition=0)
txn.send_offsets_to_transaction({source: OffsetAndMetadata(2, "", -1)}, "py-group")
txn.commit_transaction()
txn.close()

group = KafkaConsumer(
    bootstrap_servers=bootstrap, group_id="py-group", enable_auto_commit=False
)
committed = group.committed(source)
group.close()

print(
    json.dumps(
        {
            "plain": read("py-plain", "read_committed", 20),
            "committed": read("py-out", "read_committed", 2),
            "uncommitted": read("py-out", "read_uncommitted", 3),
            "group_offset": committed,
        }
    )
)
