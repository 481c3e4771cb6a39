"""The local stack: topics with their partitions, a Kafka round trip, Redis and Milvus answer."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from pymilvus import MilvusClient

from harness.stack.servers import LocalStack, StackError, free_ports

pytestmark = pytest.mark.integration


def test_topics_exist_with_their_partitions(stack: LocalStack) -> None:
    s = stack.settings
    admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap, request_timeout_ms=5000)
    try:
        topics = {d["name"]: len(d["partitions"]) for d in admin.describe_topics()}
    finally:
        admin.close()
    assert topics[s.clicks_topic] == s.partitions
    assert topics[s.recs_topic] == s.partitions
    assert topics[s.items_topic] == 1
    assert topics[s.dead_letter_topic] == 1


def test_kafka_python_produce_aiokafka_consume(stack: LocalStack) -> None:
    s = stack.settings
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, linger_ms=0)
    try:
        meta = producer.send(s.clicks_topic, b"hello", key=b"k", partition=2).get(timeout=10)
    finally:
        producer.close()

    async def consume() -> tuple[bytes | None, bytes | None]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap, fetch_max_wait_ms=s.fetch_max_wait_ms,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            tp = TopicPartition(s.clicks_topic, 2)
            consumer.assign([tp])
            consumer.seek(tp, meta.offset)
            msg = await asyncio.wait_for(consumer.getone(), 10)
            return msg.key, msg.value
        finally:
            await consumer.stop()

    assert asyncio.run(consume()) == (b"k", b"hello")


def test_redis_and_milvus_answer_at_settings(stack: LocalStack) -> None:
    s = stack.settings
    assert s.redis_url.endswith(f":{stack.redis_port}/0")
    client = redis.Redis.from_url(s.redis_url)
    try:
        assert client.ping()
    finally:
        client.close()
    milvus = MilvusClient(s.milvus_uri)
    try:
        assert isinstance(milvus.list_collections(), list)
    finally:
        milvus.close()
    assert set(stack.startup_s) == {"kafka", "redis", "milvus"}
    assert all(0 < t < 30 for t in stack.startup_s.values())
    assert (Path(stack.dir) / "kafka.log").exists()


def test_start_failure_names_the_log_and_stops_the_rest(tmp_path: Path) -> None:
    kafka_port, redis_port, milvus_port = free_ports(3)
    with socket.socket() as busy:  # redis cannot bind a port that is taken
        busy.bind(("127.0.0.1", redis_port))
        busy.listen()
        stack = LocalStack(stack_dir=tmp_path, kafka_port=kafka_port, redis_port=redis_port,
                           milvus_port=milvus_port, timeout_s=20)
        with pytest.raises(StackError, match=r"redis .*redis\.log"):
            stack.start()
    assert not stack._procs
    with socket.socket() as probe:  # the broker that did start was stopped again
        assert probe.connect_ex(("127.0.0.1", kafka_port)) != 0
