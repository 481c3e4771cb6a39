"""The online trainer on the real stack: a bad click, a new item learned and recallable, a
SIGKILL + restart that resumes from the last version with every sample counted once, and an
evaluation's watermark in Redis that holds clicks back until it passes them."""

from __future__ import annotations

import json
import shutil
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
import redis
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from harness.stack.launch import to_env, wait_until
from model.export import META_FILE, read_latest
from streams.records import Click, DeadLetter
from streams.settings import Settings
from streams.stores.index import ItemIndex
from tests.integration.conftest import Reader, stream_model_items

STATE_FILE = "online_state.json"

pytestmark = pytest.mark.integration

NEW_ITEM = 7_500_007  # below the 8_000_001.. ids another test reads back from its topic
USERS = range(7_000_001, 7_000_013)  # 12 users of this test only


def latest_meta(settings: Settings) -> dict[str, Any]:
    version = read_latest(settings.model_dir)
    assert version is not None
    return dict(json.loads((Path(settings.model_dir) / version / META_FILE).read_text()))


class Trainer:
    """`python -m streams.training` as a process; its log in tmp_path."""

    def __init__(self, settings: Settings, tmp_path: Path, **env: str) -> None:
        self.env = to_env(settings) | {"PATH": "/usr/bin", "RECALL_ONLINE_EXPORT_S": "1.5",
                                       "RECALL_ONLINE_BATCH": "16",
                                       "RECALL_ONLINE_GATE": "false",  # exports when asked
                                       "RECALL_ONLINE_GROUP": f"trainer-{tmp_path.name}"} | env
        self.log_path = tmp_path / "trainer.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.training"], stdout=log,
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


def online_metas(settings: Settings) -> list[dict[str, Any]]:
    """The meta of every version the trainer exported, oldest first."""
    root = Path(settings.model_dir)
    found = [json.loads((p / META_FILE).read_text()) for p in sorted(root.iterdir())
             if (p / META_FILE).exists()]
    return [m for m in found if "online" in m]


def test_trainer_learns_a_click_only_once_the_watermark_passes_it(
        core_settings: Settings, model_dir: Path, tmp_path: Path) -> None:
    """Clicks sent out of time order, a watermark W in Redis: nothing is learned while the key
    is absent, every version holds clicks up to W only (`trained_ts_max`), exports come
    after every 12 clicks learned, and the clicks still held are saved with the version."""
    own = tmp_path / "model"
    shutil.copytree(model_dir, own)
    clicks = f"clicks-{uuid.uuid4().hex[:8]}"  # only this test's clicks, on 2 partitions
    admin = KafkaAdminClient(bootstrap_servers=core_settings.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(clicks, 2, 1)])
    finally:
        admin.close()
    settings = core_settings.model_copy(update={"model_dir": str(own), "clicks_topic": clicks})
    key = f"eval-watermark-{uuid.uuid4().hex[:8]}"
    store = redis.Redis.from_url(settings.redis_url, username=settings.redis_username,
                                 password=settings.redis_password.get_secret_value()
                                 if settings.redis_password is not None else None)
    store.delete(key)
    run = Trainer(settings, tmp_path, RECALL_EVAL_WATERMARK_KEY=key,
                  RECALL_ONLINE_EXPORT_EVERY="12")
    run.start()
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        t0 = time.time() - 1000.0
        order = np.random.default_rng(3).permutation(30)  # ts t0 + k, sent shuffled
        for k in order.tolist():
            user = USERS[k % 3]  # 3 users: most clicks have a history, so make samples
            click = Click(user_id=user, item_id=1 + 7 * k, ts=t0 + k)
            producer.send(settings.clicks_topic, key=str(user).encode(), value=click.to_bytes())
        producer.flush()
        time.sleep(3.0)  # consumed by now; the key is absent: nothing may be learned
        assert online_metas(settings) == []

        store.set(key, repr(t0 + 13.5))  # releases clicks 0..13: a version after 12
        wait_until("a version at 12 clicks", lambda: len(online_metas(settings)) == 1, 60,
                   run.alive)
        first = online_metas(settings)[0]
        assert first["clicks_learned"] == 12 and first["trained_ts_max"] == t0 + 11

        store.set(key, repr(t0 + 20))  # 21 clicks now: no version before 24
        time.sleep(3.0)
        assert len(online_metas(settings)) == 1
        assert run.stop() == 0  # the stop exports what it learned, and saves what it holds
        last = online_metas(settings)[-1]
        assert last["clicks_learned"] == 21 and last["trained_ts_max"] == t0 + 20
        state = json.loads((own / last["version"] / STATE_FILE).read_text())
        assert sorted(ts for _, _, ts in state["buffered"]) == [t0 + k for k in range(21, 30)]
    finally:
        if run.proc is not None and run.proc.poll() is None:
            run.stop(signal.SIGKILL)
        print(run.log_path.read_text()[-3000:])
        producer.close()
        store.delete(key)
        store.close()
