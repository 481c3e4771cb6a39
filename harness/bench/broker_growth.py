"""The local broker's CPU per message against the length of the topic's log.

`python -m harness.bench.broker_growth`: starts a private tansu broker (memory storage, as the local
stack runs it), then, for each log length in `--lengths`, fills one 8-partition topic up to it
and times a tail loop (a producer sending 3 messages and flushing, a consumer polling the
tail with the worker's fetch wait) for `--seconds`, printing the broker's cores and CPU
milliseconds per message. A last round runs the same loop on a fresh topic of the same broker.
This is why `make bench` measures its half-rate step on fresh topics.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from collections.abc import Sequence

import psutil
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from harness.stack.servers import broker_bin, free_ports

PAYLOAD = b"x" * 150  # about a click's size


def tail_loop(broker: psutil.Process, producer: KafkaProducer, consumer: KafkaConsumer,
              topic: str, seconds: float) -> tuple[float, float, int]:
    """(broker cores, broker CPU ms per message, messages) while producing and tailing."""
    started, cpu0, sent = time.monotonic(), sum(broker.cpu_times()[:2]), 0
    while time.monotonic() - started < seconds:
        for _ in range(3):
            producer.send(topic, key=str(sent).encode(), value=PAYLOAD)
            sent += 1
        producer.flush()
        consumer.poll(10)
    cpu = sum(broker.cpu_times()[:2]) - cpu0
    return cpu / (time.monotonic() - started), 1000.0 * cpu / max(sent, 1), sent


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.bench.broker_growth", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--lengths", default="0,20000,50000,150000", help="log lengths to measure at")
    p.add_argument("--seconds", type=float, default=5.0, help="tail loop per length")
    p.add_argument("--fetch-wait-ms", type=int, default=10, help="the consumer's fetch wait")
    args = p.parse_args(argv)
    (port,) = free_ports(1)
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([broker_bin(), "broker", "--listener-url", url,
                             "--advertised-listener-url", url, "--storage-engine",
                             "memory://tansu/"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    boot = f"127.0.0.1:{port}"
    try:
        time.sleep(2.0)
        admin = KafkaAdminClient(bootstrap_servers=boot)
        admin.create_topics([NewTopic("grow", 8, 1), NewTopic("fresh", 8, 1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=boot, linger_ms=5, acks=1)
        consumer = KafkaConsumer(bootstrap_servers=boot, fetch_max_wait_ms=args.fetch_wait_ms,
                                 enable_auto_commit=False)
        broker, written = psutil.Process(proc.pid), 0
        print("log length | broker cores | broker CPU ms per message | messages")
        for topic, length in [("grow", int(n)) for n in args.lengths.split(",")] + [("fresh", 0)]:
            while written < length:
                producer.send(topic, key=str(written).encode(), value=PAYLOAD)
                written += 1
            producer.flush()
            parts = [TopicPartition(topic, i) for i in range(8)]
            consumer.assign(parts)
            consumer.seek_to_end(*parts)
            cores, per_message, sent = tail_loop(broker, producer, consumer, topic, args.seconds)
            written += sent if topic == "grow" else 0
            label = f"{length:,}" if topic == "grow" else "fresh topic"
            print(f"{label} | {cores:.2f} | {per_message:.3f} | {sent}", flush=True)
        producer.close()
        consumer.close()
    finally:
        proc.kill()
        proc.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
