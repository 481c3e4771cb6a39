"""Ports and readiness probes of the local stack's servers (is each one usable yet?)."""

from __future__ import annotations

import socket

import redis
from kafka.admin import KafkaAdminClient, NewTopic
from pymilvus import MilvusClient

from streams.settings import Settings
from streams.stores.index import GRPC_OPTIONS


def free_ports(n: int = 1) -> list[int]:
    """Return `n` distinct TCP ports that were free on 127.0.0.1 a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def kafka_ready(s: Settings) -> bool:
    """The broker answers and the four topics exist with their partition counts."""
    if not port_open(int(s.kafka_bootstrap.rsplit(":", 1)[1])):
        return False
    want = {s.clicks_topic: s.partitions, s.recs_topic: s.partitions,
            s.items_topic: 1, s.dead_letter_topic: 1}
    admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap, request_timeout_ms=5000)
    try:
        have = set(admin.list_topics())
        new = [NewTopic(t, n, 1) for t, n in want.items() if t not in have]
        if new:
            admin.create_topics(new)
        described = admin.describe_topics(list(want))
        parts = {d["name"]: len(d["partitions"]) for d in described if not d["error_code"]}
        # A client's metadata request can auto-create a topic with the broker's default
        # partition count right after a restart: drop it, it is made again next round.
        wrong = [t for t, n in want.items() if t in parts and parts[t] != n]
        if wrong:
            admin.delete_topics(wrong)
            return False
        return all(parts.get(t) == n for t, n in want.items())
    finally:
        admin.close()


def redis_ready(s: Settings) -> bool:
    client = redis.Redis.from_url(s.redis_url, socket_timeout=1.0)
    try:
        return bool(client.ping())
    finally:
        client.close()


def milvus_ready(s: Settings) -> bool:
    if not port_open(int(s.milvus_uri.rsplit(":", 1)[1].rstrip("/"))):
        return False
    client = MilvusClient(s.milvus_uri, timeout=5,
                          grpc_options=GRPC_OPTIONS)  # shared channel: no idle pings
    try:
        client.list_collections()
        return True
    finally:
        client.close()
