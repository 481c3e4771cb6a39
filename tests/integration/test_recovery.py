"""A worker that exits costs seconds, not a minute; SIGTERM always ends a worker within 10 s.

Each case runs on the shipped group timing (Settings defaults) with a steady click load on every
partition and measures, per partition, when recommendations flowed again after the fault
(tests/integration/recovery.py; `python -m tests.integration.recovery` prints every case).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pymilvus.client.connection_manager import ConnectionManager

from harness.stack.servers import LocalStack, free_ports
from streams.settings import Settings
from streams.worker.main import EXIT_STOP_TIMEOUT
from tests.integration.recovery import case

pytestmark = pytest.mark.integration

RECOVERY_S = 10.0  # the requirement: every partition resumes within this after a fault
START_S = 60.0  # generous bound for a first start (Paddle import, first join) on a busy machine


@pytest.fixture()
def settings(core_settings: Settings) -> Settings:
    return core_settings


@pytest.fixture(autouse=True, scope="module")
def _fresh_milvus_channels() -> Iterator[None]:
    """Drop this process's shared pymilvus channels after these tests.

    The tests leave this process's Milvus channel idle for a minute and more; pymilvus pings
    idle channels every 10 s and the server answers with GOAWAY "too_many_pings", after which
    the next client on the shared channel fails to connect ("Fail connecting to server").
    """
    yield
    ConnectionManager._reset_instance()


def test_sigkill_then_restart_resumes_every_partition_within_10s(
        settings: Settings, tmp_path: Path) -> None:
    with case(settings, tmp_path) as run:
        run.workers.start("w1")
        run.wait_flowing(START_S)
        fault = time.monotonic()
        run.workers.kill("w1")
        time.sleep(1.0)
        run.workers.start("w1")
        resumed = run.wait_flowing(RECOVERY_S + 20, since=fault)
        print(f"resumed after {resumed:.1f}s: {run.per_partition(fault)}")
        assert resumed <= RECOVERY_S


def test_survivor_takes_every_partition_within_10s_of_a_sigkill(
        settings: Settings, tmp_path: Path) -> None:
    with case(settings, tmp_path) as run:
        run.workers.start("w1")
        run.wait_flowing(START_S)
        run.workers.start("w2")
        run.workers.wait_assigned("w2", START_S)  # both own clicks partitions now
        run.wait_flowing(START_S)
        fault = time.monotonic()
        run.workers.kill("w2")
        resumed = run.wait_flowing(RECOVERY_S + 20, since=fault)
        print(f"resumed after {resumed:.1f}s: {run.per_partition(fault)}")
        assert resumed <= RECOVERY_S


@pytest.fixture()
def private_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack of its own: the test below kills its Milvus."""
    kafka_port, redis_port, milvus_port = free_ports(3)
    local = LocalStack(Settings(), stack_dir=tmp_path_factory.mktemp("stack-sigterm"),
                       kafka_port=kafka_port, redis_port=redis_port, milvus_port=milvus_port)
    local.start()
    try:
        yield local
    finally:
        local.stop()


def _committed(settings: Settings) -> dict[int, int]:
    """The group's committed clicks offsets (an OffsetFetch; the reader does not join)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                             group_id=settings.consumer_group, enable_auto_commit=False)
    try:
        found = {p: consumer.committed(TopicPartition(settings.clicks_topic, p))
                 for p in range(settings.partitions)}
    finally:
        consumer.close()
    return {p: off for p, off in found.items() if off is not None}


def test_sigterm_exits_within_10s_while_milvus_is_down_and_commits_nothing_unpublished(
        private_stack: LocalStack, model_dir: Path, tmp_path: Path) -> None:
    settings = private_stack.settings.model_copy(update={"model_dir": str(model_dir)})
    with case(settings, tmp_path, rate=20.0) as run:
        s = run.workers.settings
        run.workers.start("w1")
        run.wait_flowing(START_S)
        run.load.stop()
        time.sleep(2.0)  # the last clicks are published and their offsets committed
        milvus = private_stack._procs["milvus"]
        milvus.kill()
        milvus.wait(10)

        consumer = KafkaConsumer(bootstrap_servers=s.kafka_bootstrap)
        tps = [TopicPartition(s.clicks_topic, p) for p in range(s.partitions)]
        before = {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
        consumer.close()
        producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, linger_ms=1)
        for user in range(1, 41):  # every partition gets clicks the worker cannot finish
            producer.send(s.clicks_topic, key=str(user).encode(),
                          value=json.dumps({"user_id": user, "item_id": 7,
                                            "ts": time.time()}).encode())
        producer.flush()
        producer.close()
        time.sleep(3.0)  # the batch is now stuck retrying the missing Milvus

        took, code = run.workers.terminate("w1", timeout_s=30)
        log = run.workers.log_text("w1")
        print(log[-3000:])
        assert code in (0, EXIT_STOP_TIMEOUT), f"worker exit status {code}"
        assert took <= 10.0, f"worker took {took:.1f}s to exit after SIGTERM"
        committed = _committed(s)
        assert committed, "the clicks before the outage were committed"
        assert all(committed.get(p, 0) <= before[p] for p in before), (committed, before)
