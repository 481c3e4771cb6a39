"""Continuous training from the click stream (`python -m streams.training`).

Consumes the clicks topic on its own (every partition, its own consumer group for lag, never
in the workers' path), turns each click into a sample (the user's last clicks before it ->
the clicked item), gives never-seen items a table row on first sight and fine-tunes the
newest model in mini-batches (newest samples plus a replay buffer; offline loss; gradient
clipping). Every RECALL_ONLINE_EXPORT_S (or, with RECALL_ONLINE_EXPORT_EVERY, after every
that many clicks learned: data time) it publishes the item vectors that changed to the items
topic (Milvus and every worker get them the usual way), then exports a new version (LATEST
last); workers hot-reload it. The canary gate (RECALL_ONLINE_GATE, model.online.canary) lets a
version out only if, on the samples since the last export, scored before training on them,
the learner recalled at least as well as the version serving. With RECALL_EVAL_WATERMARK_KEY
(evaluation) a click is learned only once the watermark in Redis reaches its time
(streams.training.feed). A restart resumes from the last version's state and offsets; bad
clicks go to the dead-letter topic with their reason, like the worker's.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from pathlib import Path
from types import FrameType

import numpy as np
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from model.cli import HelpFormatter
from model.export import read_latest
from model.online.canary import Gate
from model.online.learner import NEW_ITEM_INITS, OnlineConfig, load_learner
from model.online.state import (
    StreamState,
    Window,
    after_publish,
    changed_rows,
    export_online,
    prune_versions,
)
from streams import logs
from streams.records import Click, ItemEmbedding, Limits
from streams.security import kafka_python_kwargs
from streams.settings import Settings
from streams.training.feed import ClickBuffer, Pending, RedisWatermark, Watermark
from streams.worker.pipeline import Output, RawMessage, parse_all

log = logging.getLogger("streams.training")


class OnlineTrainer:
    """One trainer process: Kafka in, training, versions and item vectors out."""

    def __init__(self, settings: Settings, ocfg: OnlineConfig, root: Path,
                 consumer: KafkaConsumer | None = None, producer: KafkaProducer | None = None,
                 watermark: Watermark | None = None) -> None:
        """`consumer`, `producer`, `watermark`: made from `settings` when not given."""
        self.settings, self.ocfg, self.root = settings, ocfg, root
        latest = read_latest(root)
        if latest is None:
            raise SystemExit(f"no exported model under {root} (train one: make train)")
        self.learner, meta = load_learner(root / latest, ocfg)
        self.parent = latest
        self.state = StreamState.load(root / latest)
        self.published = self.learner.vectors()  # what the items topic holds (assumed)
        self.limits = Limits.from_settings(settings, dim=self.learner.cfg.dim)
        self.window = Window()
        self.pending: list[tuple[np.ndarray, int]] = []
        self.stopping = False
        key = settings.eval_watermark_key
        self.buffer = ClickBuffer(key is not None, self.state.buffered)
        self.watermark: Watermark | None = watermark or (
            RedisWatermark(settings, key) if key else None)
        self.serving = self.learner.snapshot([])  # what serves now: the gate's reference
        self.gate = Gate()
        kafka = kafka_python_kwargs(settings)
        self.consumer = consumer or KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap, group_id=settings.online_group,
            enable_auto_commit=False, auto_offset_reset="latest", client_id="recall-trainer",
            fetch_max_wait_ms=100, max_poll_records=2048, **kafka)
        self.producer = producer or KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=20,
            client_id="recall-trainer", **kafka)
        log.info("trainer from %s (%d items, %d samples seen so far, %d clicks held)", latest,
                 self.learner.num_items, self.state.samples_seen, len(self.buffer))

    def assign(self, from_start: bool) -> None:
        """Every partition of the clicks topic, at the saved offset, else committed, else end."""
        topic = self.settings.clicks_topic
        deadline = time.monotonic() + 60
        while not (parts := self.consumer.partitions_for_topic(topic)):
            if time.monotonic() > deadline:
                raise SystemExit(f"topic {topic!r} not found")
            time.sleep(0.5)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        self.consumer.assign(tps)
        for tp in tps:
            saved = self.state.offsets.get(tp.partition)
            committed = self.consumer.committed(tp)
            if saved is not None or committed is not None:
                self.consumer.seek(tp, saved if saved is not None else int(committed or 0))
            elif from_start:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek_to_end(tp)
            self.state.offsets[tp.partition] = self.consumer.position(tp)
        log.info("trainer ready: %s at %s", topic, self.state.offsets)

    def consume(self, timeout_ms: int = 200) -> int:
        """One poll: bad clicks dead-lettered, valid ones into the buffer; how many polled."""
        polled = 0
        for tp, records in self.consumer.poll(timeout_ms=timeout_ms).items():
            messages = [RawMessage(tp.topic, tp.partition, r.offset, r.key, r.value)
                        for r in records]
            out = Output()
            clicks = [c for _, c in parse_all(messages, Click, out, self.limits,
                                              self.settings.dead_letter_excerpt_bytes)]
            for key, value in out.dead:
                self.producer.send(self.settings.dead_letter_topic, key=key, value=value)
            self.state.dead_letters += len(out.dead)
            self.buffer.extend((c.user_id, c.item_id, float(c.ts)) for c in clicks)
            self.state.offsets[tp.partition] = records[-1].offset + 1
            polled += len(records)
        return polled

    def release(self) -> int:
        """Learn the held clicks the watermark lets through (every one without a watermark),
        exporting after every `online_export_every` clicks learned; how many were learned."""
        upto = self.watermark.read() if self.watermark is not None else float("inf")
        every, learned = self.settings.online_export_every, 0
        while clicks := self.buffer.release(
                upto, every - self.state.clicks_seen % every if every > 0 else None):
            self.learn(clicks)
            learned += len(clicks)
            if every > 0 and self.state.clicks_seen % every == 0:
                self.export()
        return learned

    def learn(self, clicks: list[Pending]) -> None:
        """Rows for new items, then one sample per click of a user with a history."""
        state, learner = self.state, self.learner
        learner.add_items([(item, state.histories.get(user, [])) for user, item, _ in clicks])
        for user, item, _ in clicks:
            history = state.histories.get(user, [])
            if history:
                self.pending.append((learner.rows(history), learner.row[item]))
            state.histories[user] = (history + [item])[-learner.cfg.maxlen:]
            state.counts[item] += 1
        state.learned([ts for _, _, ts in clicks])
        self.window.add([ts for _, _, ts in clicks], 0)
        while len(self.pending) >= self.settings.online_batch:
            self.train_step()

    def train_step(self) -> None:
        """One learner step on the oldest pending samples, scored by the gate first."""
        batch = self.pending[: self.settings.online_batch]
        del self.pending[: self.settings.online_batch]
        hist, label = np.stack([h for h, _ in batch]), np.array([y for _, y in batch])
        if self.settings.online_gate:  # prequential: before the learner sees them
            self.gate.score(self.learner, self.serving, hist, label)
        started = time.perf_counter()
        self.learner.step(hist, label)
        self.window.train_s += time.perf_counter() - started
        self.window.add([], len(batch))
        self.state.samples_seen += len(batch)

    def export(self) -> None:
        """Publish changed vectors, write the version, then commit the offsets it holds; not
        when the canary gate refuses the learner (or waits for more samples)."""
        started = time.perf_counter()
        while self.pending:
            self.train_step()
        if self.window.samples == 0 and self.learner.num_items == len(self.published):
            return
        if not self.gate_allows():
            return
        vectors = self.learner.vectors()  # [N, D]
        rows = changed_rows(vectors, self.published, self.settings.online_publish_min_change)
        for r in rows.tolist():
            record = ItemEmbedding(item_id=self.learner.ids[r], vector=vectors[r].tolist())
            self.producer.send(self.settings.items_topic, key=str(record.item_id).encode(),
                               value=record.to_bytes())
        self.producer.flush()
        published = time.perf_counter()
        self.published = after_publish(self.published, vectors, rows)
        self.state.buffered = self.buffer.held()
        vdir = export_online(self.root, self.learner, self.state, self.window, self.parent,
                             self.ocfg, len(rows),
                             self.gate.meta() if self.settings.online_gate else None)
        log.info("exported %s: %d samples in window (%.1f s training), %d items published "
                 "(%.1f s), %d items, written in %.1f s", vdir.name, self.window.samples,
                 self.window.train_s, len(rows), published - started, self.learner.num_items,
                 time.perf_counter() - published)
        self.parent, self.window = vdir.name, Window()
        self.serving, self.gate = self.learner.snapshot([]), Gate()
        prune_versions(self.root, self.settings.online_keep_versions)
        self.commit()

    def gate_allows(self) -> bool:
        """The canary gate's word on exporting the learner now (always yes when it is off)."""
        if not self.settings.online_gate:
            return True
        gate = self.gate
        decision = gate.decide(self.settings.online_gate_min_samples)
        if decision == "wait":
            log.info("export waits: %d samples scored since the last export (gate needs %d)",
                     gate.samples, self.settings.online_gate_min_samples)
        elif decision == "skip":
            self.state.exports_skipped += 1
            log.warning("export skipped by the gate: learner HR@50 %.4f < serving %.4f on %d "
                        "samples (%d skipped so far)", gate.learner / gate.samples,
                        gate.serving / gate.samples, gate.samples, self.state.exports_skipped)
            self.gate = Gate()
        return decision == "export"

    def commit(self) -> None:
        """Committed offsets show the trainer's lag; restarts use the version's own."""
        topic = self.settings.clicks_topic
        try:
            self.consumer.commit({TopicPartition(topic, p): OffsetAndMetadata(o, "", -1)
                                  for p, o in self.state.offsets.items()})
        except Exception as exc:  # noqa: BLE001 - lag reporting only
            log.warning("offset commit failed (lag metric only): %r", exc)

    def run(self) -> None:
        timed = self.settings.online_export_every == 0  # else: exports in data time
        next_export = time.monotonic() + self.settings.online_export_s
        try:
            while not self.stopping:
                polled = self.consume()
                if not self.release() and not polled and self.pending:
                    self.train_step()  # a quiet stream: train what is here
                if timed and time.monotonic() >= next_export:
                    self.export()
                    next_export = time.monotonic() + self.settings.online_export_s
            self.export()  # what was learned since the last version is not lost on a stop
        finally:
            self.consumer.close()
            self.producer.close(timeout=5)
            if self.watermark is not None:
                self.watermark.close()


def build_parser(defaults: Settings) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m streams.training", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--model-dir", default=defaults.model_dir,
                   help="export root to continue from and write to (env RECALL_MODEL_DIR)")
    p.add_argument("--from-start", action="store_true",
                   help="with no saved or committed offsets, read the topic from its start "
                   "(default: from its end)")
    p.add_argument("--lr", type=float, default=OnlineConfig.lr, help="Adam learning rate")
    p.add_argument("--replay", type=int, default=OnlineConfig.replay,
                   help="replayed samples per step")
    p.add_argument("--passes", type=int, default=OnlineConfig.passes,
                   help="steps per batch of new samples")
    p.add_argument("--buffer", type=int, default=OnlineConfig.buffer, help="replay buffer")
    p.add_argument("--clip-norm", type=float, default=OnlineConfig.clip_norm)
    p.add_argument("--new-item-init", choices=NEW_ITEM_INITS,
                   default=OnlineConfig.new_item_init, help="vector of a never-seen item")
    p.add_argument("--sparse", action=argparse.BooleanOptionalAction,
                   default=defaults.online_sparse, help="sparse table gradient and lazy Adam "
                   "(large catalogs; env RECALL_ONLINE_SPARSE)")
    p.add_argument("--warmup-steps", type=int, default=defaults.online_warmup_steps,
                   help="steps over which the learning rate ramps up to --lr after the start "
                   "(0: none; env RECALL_ONLINE_WARMUP_STEPS)")
    return p


def main(argv: list[str] | None = None) -> int:
    settings = Settings()
    args = build_parser(settings).parse_args(argv)
    logs.configure(settings.log_format)
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python logs every connect
    ocfg = OnlineConfig(lr=args.lr, replay=args.replay, passes=args.passes, buffer=args.buffer,
                        clip_norm=args.clip_norm, new_item_init=args.new_item_init,
                        sparse=args.sparse, warmup_steps=args.warmup_steps)
    trainer = OnlineTrainer(settings, ocfg, Path(args.model_dir))

    def stop(signum: int, frame: FrameType | None) -> None:
        trainer.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    trainer.assign(args.from_start)
    trainer.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
