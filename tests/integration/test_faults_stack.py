"""Per-server control of the local stack, as the fault tests use it: same ports, state kept
where the server keeps it (Redis AOF, Milvus items.db), topics recreated on a fresh broker."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from kafka.admin import KafkaAdminClient

from harness.stack.probes import port_open
from harness.stack.servers import LocalStack, StackError, free_ports
from streams.settings import Settings

pytestmark = pytest.mark.integration


def test_restart_each_server_on_its_port(tmp_path: Path) -> None:
    kafka, redis_port, milvus = free_ports(3)
    with LocalStack(Settings(partitions=3), stack_dir=tmp_path, kafka_port=kafka,
                    redis_port=redis_port, milvus_port=milvus, fresh=True) as stack:
        s = stack.settings
        client = redis.Redis.from_url(s.redis_url)
        client.hset("hist:1", mapping={"h": "1.5 1 42", "o0": "7"})
        client.close()

        stack.restart_server("redis")  # clean stop: the AOF has every write
        client = redis.Redis.from_url(s.redis_url)
        assert client.hgetall("hist:1") == {b"h": b"1.5 1 42", b"o0": b"7"}
        client.close()
        assert (tmp_path / "appendonly.aof").is_file() or (tmp_path / "appendonlydir").is_dir()

        stack.stop_server("milvus")
        assert not stack.running("milvus") and not port_open(milvus)
        with pytest.raises(StackError):
            stack.stop_server("milvus")
        assert stack.start_server("milvus") >= 0 and port_open(milvus)
        with pytest.raises(StackError):
            stack.start_server("milvus")

        stack.restart_server("kafka", kill=True)  # memory storage: topics made again
        admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap, request_timeout_ms=5000)
        try:
            parts = {d["name"]: len(d["partitions"]) for d in admin.describe_topics()}
        finally:
            admin.close()
        assert parts[s.clicks_topic] == 3 and parts[s.dead_letter_topic] == 1
        assert stack.running("kafka") and stack.running("redis")
