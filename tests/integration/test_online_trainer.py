"""The online trainer on the real stack: a bad click, a new item learned and recallable, and a
SIGKILL + restart that resumes from the last version with every sample counted once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from harness.launch import to_env, wait_until
from model.export import META_FILE, read_latest
from streams.index import ItemIndex
from streams.records import Click, DeadLetter
from streams.settings import Settings
from tests.integration.conftest import Reader, stream_model_items

pytestmark = pytest.mark.integration

NEW_ITEM = 7_500_007  # below the 8_000_001.. ids another test reads back from its topic
USERS = range(7_000_001, 7_000_013)  # 12 users of this test only


def latest_meta(settings: Settings) -> dict[str, Any]:
    version = read_latest(settings.model_dir)
    assert version is not None
    return dict(json.loads((Path(settings.model_dir) / version / META_FILE).read_text()))


class Trainer:
    """`python -m streams.trainer` as a process; its log in tmp_path."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.env = to_env(settings) | {"PATH": "/usr/bin", "RECALL_ONLINE_EXPORT_S": "1.5",
                                       "RECALL_ONLINE_BATCH": "16",
                                       "RECALL_ONLINE_GROUP": f"trainer-{tmp_path.name}"}
        self.log_path = tmp_path / "trainer.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.trainer"], stdout=log,
                                     stderr=subprocess.STDOUT, env=self.env)
        started = self.log_path.read_text().count("trainer ready")
        wait_until("trainer", lambda: self.log_path.read_text().count("trainer ready") > started,
                   90, self.alive)

    def alive(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)


@pytest.fixture()
def core_settings(core_settings: Settings) -> Settings:
    """The worker of this module gets an items topic of its own: the trainer publishes its
    vectors of the session model's items there, not where other tests' workers read."""
    topic = f"items-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=core_settings.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        admin.close()
    return core_settings.model_copy(update={"items_topic": topic})


@pytest.fixture()
def trainer(worker: Settings, tmp_path: Path) -> Iterator[Trainer]:
    stream_model_items(worker)
    run = Trainer(worker, tmp_path)
    run.start()
    try:
        yield run
    finally:
        if run.proc is not None and run.proc.poll() is None:
            run.stop(signal.SIGKILL)
        print(run.log_path.read_text()[-3000:])


def send_clicks(producer: KafkaProducer, settings: Settings, rounds: range,
                rng: np.random.Generator) -> int:
    """Each user clicks known items; from round 2 on, users 0-5 click the new item too."""
    sent = 0
    for r in rounds:
        for n, user in enumerate(USERS):
            item = NEW_ITEM if r >= 2 and n < 6 and r % 2 == 0 else int(rng.integers(1, 1000))
            click = Click(user_id=user, item_id=item, ts=time.time())
            producer.send(settings.clicks_topic, key=str(user).encode(), value=click.to_bytes())
            sent += 1
    producer.flush()
    return sent


def test_trainer_learns_a_new_item_dead_letters_a_bad_click_and_resumes_after_sigkill(
        worker: Settings, trainer: Trainer) -> None:
    rng = np.random.default_rng(5)
    dead = Reader(worker, worker.dead_letter_topic, DeadLetter)
    producer = KafkaProducer(bootstrap_servers=worker.kafka_bootstrap)
    first = latest_meta(worker)["version"]
    sent = send_clicks(producer, worker, range(0, 4), rng)
    producer.send(worker.clicks_topic, key=b"bad", value=b'{"user_id": "x", "item_id": 1}')
    producer.flush()
    sent += send_clicks(producer, worker, range(4, 6), rng)

    def trained(count: int) -> bool:
        online = latest_meta(worker).get("online") or {}
        return bool(online.get("samples_seen", 0) >= count)

    wait_until("trainer export", lambda: trained(sent - len(USERS)), 60, trainer.alive)
    meta = latest_meta(worker)
    assert meta["items_streamed"] and meta["online"]["dead_letters"] == 1
    assert NEW_ITEM in np.load(Path(worker.model_dir) / meta["version"] / "item_ids.npy")
    wait_until("dead letter", lambda: any(d.topic == worker.clicks_topic and '"x"' in d.excerpt
                                          and d.reason for d in dead.drain()), 30)

    # the new item reached Milvus through the items topic with the trainer's vector
    ids = np.load(Path(worker.model_dir) / meta["version"] / "item_ids.npy")
    vector = np.load(Path(worker.model_dir) / meta["version"] / "item_vectors.npy")[
        int(np.nonzero(ids == NEW_ITEM)[0][0])]
    index = ItemIndex(worker.milvus_uri, worker.milvus_collection, worker.embedding_dim)
    index.start()

    def in_milvus() -> bool:  # the newest version's vector, within what may be left unsent
        newest = latest_meta(worker)["version"]
        ids = np.load(Path(worker.model_dir) / newest / "item_ids.npy")
        want = np.load(Path(worker.model_dir) / newest / "item_vectors.npy")[
            int(np.nonzero(ids == NEW_ITEM)[0][0])]
        rows = index.client.get(worker.milvus_collection, ids=[NEW_ITEM])
        if not rows:
            return False
        got = np.asarray(rows[0]["vector"], dtype=np.float32)
        return float(np.linalg.norm(got - want)) <= 0.05 * float(np.linalg.norm(want))

    try:
        wait_until("new item in Milvus", in_milvus, 60, trainer.alive)
        found, _ = index.search(vector[None, :], index.count())  # searchable, not only stored
        assert NEW_ITEM in found[0].tolist()
    finally:
        index.close()

    # SIGKILL after more clicks; the restarted trainer resumes from its last version
    before_kill = latest_meta(worker)["version"]
    sent += send_clicks(producer, worker, range(6, 8), rng)
    time.sleep(0.5)
    assert trainer.stop(signal.SIGKILL) == -signal.SIGKILL
    sent += send_clicks(producer, worker, range(8, 10), rng)
    trainer.start()
    wait_until("export after restart", lambda: trained(sent - len(USERS)), 60, trainer.alive)
    assert trainer.stop() == 0
    final = latest_meta(worker)
    assert final["online"]["samples_seen"] == sent - len(USERS)  # each click trained once
    assert final["online"]["clicks_seen"] == sent
    lineage, version = [], final["version"]
    while version != first:
        lineage.append(version)
        version = latest_meta_of(worker, version)["online"]["parent"]
    assert before_kill in lineage
    producer.close()


def latest_meta_of(settings: Settings, version: str) -> dict[str, Any]:
    return dict(json.loads((Path(settings.model_dir) / version / META_FILE).read_text()))
