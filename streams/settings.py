"""Frozen settings read from RECALL_* environment variables, one class per concern.

Each entry point builds `Settings()` (every concern composed) once and passes it down;
code that needs one concern only takes that class. The local stack's own ports are not
here: they belong to the harness (harness/stack/settings.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

INT64_MAX = 2**63 - 1


class RecallEnv(BaseSettings):
    """Base of every concern: RECALL_* variables, frozen, unknown names ignored."""

    model_config = SettingsConfigDict(env_prefix="RECALL_", frozen=True, extra="ignore")

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> Self:
        """A copy with `update` applied; a name that is no setting of this class is an error
        (pydantic would silently keep it as an unused attribute)."""
        unknown = sorted(set(update or {}) - set(type(self).model_fields))
        if unknown:
            raise TypeError(f"{type(self).__name__} has no settings {unknown}")
        return super().model_copy(update=update, deep=deep)


class KafkaSettings(RecallEnv):
    """The Kafka cluster: where, how to authenticate, the topics, the consumer group."""

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    kafka_security_protocol: str = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    kafka_sasl_mechanism: str = Field("PLAIN", description="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = Field(None, description="CA bundle to verify the brokers")
    kafka_ssl_certfile: str | None = Field(None, description="client certificate (mutual TLS)")
    kafka_ssl_keyfile: str | None = Field(None, description="client key (mutual TLS)")
    clicks_topic: str = "clicks"
    items_topic: str = "item-embeddings"
    recs_topic: str = "recommendations"
    dead_letter_topic: str = "dead-letters"
    partitions: int = Field(4, ge=1, description="partitions of the clicks/recs topics")
    consumer_group: str = "recall-worker"
    group_instance_id: str | None = Field(
        None, description="static group membership id of this worker (restart without rebalance)")
    session_timeout_s: float = Field(
        4.0, gt=0, description="consumer group session timeout: a dead worker's partitions move "
        "after this; tansu also holds each JoinGroup for half of it (Kafka needs "
        "group.min.session.timeout.ms <= this; its default is 6 s)")
    heartbeat_interval_s: float = Field(1.0, gt=0, description="consumer group heartbeat")
    rebalance_timeout_s: float = Field(10.0, gt=0, description="consumer group rebalance timeout")
    fetch_max_wait_ms: int = Field(
        50, ge=1, description="Kafka fetch wait: the local broker (tansu) holds every fetch this "
        "long, so the worker fetches 1000/this times a second whatever the rate (10: the worker "
        "and broker spend about twice the CPU, docs/serving-speed.md)")
    max_message_bytes: int = Field(
        1 << 20, ge=1024, description="largest record the worker publishes (broker limit)")


class RedisSettings(RecallEnv):
    """The Redis server (or cluster) that keeps histories and co-occurrence counts."""

    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL for histories")
    redis_cluster: bool = Field(
        False, description="redis_url names a node of a Redis Cluster (histories by hash slot)")
    redis_username: str | None = Field(None, description="Redis ACL user")
    redis_password: SecretStr | None = None


class MilvusSettings(RecallEnv):
    """The Milvus server that holds the item vectors."""

    milvus_uri: str = Field("http://127.0.0.1:19530", description="Milvus gRPC/HTTP URI")
    milvus_collection: str = Field("items", description="Milvus collection of item vectors")
    milvus_index: str = Field("FLAT", description="Milvus index type: FLAT, IVF_FLAT or HNSW")
    milvus_token: SecretStr | None = Field(None, description="Milvus token ('user:password')")
    milvus_nprobe: int = Field(16, ge=1, description="IVF_FLAT clusters searched per query")
    milvus_consistency: Literal["Strong", "Session", "Bounded", "Eventually"] = Field(
        "Strong", description="consistency of searches: Strong sees every acknowledged item "
        "upsert, and on Milvus standalone waits for the next time tick to do so")
    milvus_nlist: int = Field(128, ge=1, description="IVF_FLAT clusters built (when the "
                              "collection is created)")

    def build_params(self) -> dict[str, Any] | None:
        """Milvus index build parameters from the settings (None: the index type's own)."""
        return {"nlist": self.milvus_nlist} if self.milvus_index == "IVF_FLAT" else None


class ModelSettings(RecallEnv):
    """The exported MIND model the worker and the API serve."""

    model_dir: str = Field("artifacts/model", description="exported MIND model directory")
    device: str = Field("auto", description="auto, cpu or gpu")
    reload_interval_s: float = Field(10.0, gt=0, description="how often to look for a new model")
    num_interests: int = Field(4, ge=1)
    embedding_dim: int = Field(64, ge=1)


class RecallSettings(RecallEnv):
    """What a list is made of: histories, interests, channels and their fusion."""

    top_k: int = Field(50, ge=1, le=1000)
    history_len: int = Field(10, ge=1, description="clicks kept per user")
    exclude_seen: bool = Field(
        True, description="never recommend an item the user has clicked (its last seen_max "
        "distinct items, kept in Redis beside the history), not only its last history_len")
    seen_max: int = Field(
        1000, ge=0, description="most distinct clicked items kept per user for exclude_seen; "
        "the least recently clicked are dropped first")
    history_ttl_s: float | None = Field(
        None, gt=0, description="a user's history and seen items expire this long after the "
        "user's last click (unset: never)")
    interest_pruning: Literal["none", "log2", "dedup"] = Field(
        "dedup", description="fewer Milvus queries per user: none, log2 (MIND's dynamic K_u = "
        "max(1, min(K, log2 |history|))) or dedup (drop near-identical capsules)")
    interest_dedup_cosine: float = Field(
        0.8, gt=0, le=1, description="dedup: cosine at which two capsules count as one "
        "(0.8: 2.24 queries per Beauty test user, Recall@50 101.7% of exact search)")
    per_interest_extra: int | None = Field(
        None, ge=0, description="each interest asks Milvus for top_k + this many (unset: + the "
        "batch's most items any of its users has seen, so top_k remain after they are removed)")
    search_extra_cap: int | None = Field(
        100, ge=0, description="with per_interest_extra unset, the first search asks for at "
        "most top_k + this many; only queries left with fewer than top_k unseen items are "
        "searched again, deep enough for their user: the same lists as one deep search, "
        "without every query of a batch as deep as its heaviest user's (unset: one search)")
    channels: str = Field(
        "mind,cooccur,next,popular", description="comma list of the channels merged into each "
        "list: mind, cooccur (item-to-item co-occurrence counted in Redis), next (what users "
        "click next after an item: transitions counted in Redis), popular")
    cooccur_window: int = Field(10, ge=1, description="previous clicks paired with each click")
    cooccur_cap: int = Field(500, ge=1, description="strongest neighbours kept per item")
    cooccur_half_life_s: float | None = Field(
        None, gt=0, description="co-occurrence counts halve in this much data time (unset: no "
        "decay)")
    cooccur_read: int = Field(100, ge=1, description="neighbours read per history item")
    cooccur_pos_decay: float = Field(
        0.1, ge=0, description="weight of the p-th newest history item: 1 / (1 + this * p)")
    cooccur_normalize: Literal["read", "write"] = Field(
        "read", description="where the neighbour's count divides a pair count: read (cosine at "
        "read time) or write (each increment, so sets keep neighbours by cosine)")
    cooccur_cache_s: float = Field(
        1.0, ge=0, description="age in seconds at which the worker's cached neighbour list of "
        "an item is stale (0: no cache, every batch reads every list)")
    cooccur_refresh: int = Field(
        32, ge=0, description="stale neighbour lists re-read per batch, the stalest first "
        "(bounds Redis' cost per batch; 0: a cached list is never re-read)")
    cooccur_defer: bool = Field(
        False, description="the append script only queues each click (under its replay "
        "guard) and the worker counts the batch in a second call beside MIND's search, off "
        "the append's round trip (false: counted inside the append; measured mixed on 2 "
        "cores, docs/serving-speed.md)")
    next_window: int = Field(
        3, ge=1, description="next: a click follows each of the user's this many previous "
        "distinct items")
    next_cap: int = Field(500, ge=1, description="next: strongest followers kept per item")
    next_read: int = Field(200, ge=1, description="next: followers read per history item")
    next_history: int = Field(
        3, ge=1, description="next: the user's newest distinct items whose followers are read")
    next_pos_decay: float = Field(
        0.5, ge=0, description="next: weight of the p-th newest of them: 1 / (1 + this * p)")
    fusion_mind: float = Field(1.0, ge=0, description="fusion weight of the MIND channel")
    fusion_cooccur: float = Field(2.0, ge=0, description="fusion weight of the cooccur channel")
    fusion_next: float = Field(1.0, ge=0, description="fusion weight of the next channel")
    fusion_popular: float = Field(
        0.25, ge=0, description="fusion weight of the popular channel")
    fusion_k0: float = Field(60.0, ge=0, description="rank offset of reciprocal-rank fusion")
    fusion_list_len: int = Field(
        100, ge=1, description="each channel's list length before fusion (at least top_k)")
    record_channel_lists: bool = Field(
        False, description="each recommendation also carries every channel's own list "
        "(`channel_lists`; evaluation and debugging)")
    eval_watermark_key: str | None = Field(
        None, description="evaluation only: a Redis key holding a data time W; clicks later "
        "than W are applied to histories at once but learned from (co-occurrence counts, the "
        "trainer) only once W reaches them (unset: learn at once)")


class InputSettings(RecallEnv):
    """Validation of clicks and item vectors, before any state changes."""

    max_user_id: int = Field(INT64_MAX, ge=1, le=INT64_MAX, description="largest user id")
    max_item_id: int = Field(INT64_MAX, ge=1, le=INT64_MAX, description="largest item id")
    max_click_future_s: float = Field(
        300.0, ge=0, description="a click may be at most this far ahead of the worker's clock")
    max_click_age_s: float | None = Field(
        None, gt=0, description="a click may be at most this old (unset: no lower bound)")
    max_vector_norm: float = Field(1000.0, gt=0, description="largest L2 norm of an item vector")
    dead_letter_excerpt_bytes: int = Field(
        1024, ge=0, description="bytes of a bad message kept in its dead letter")


class WorkerSettings(RecallEnv):
    """The stream worker's batching, retries, shutdown and web server."""

    batch_size: int = Field(64, ge=1, description="clicks per micro-batch (64: best measured)")
    batch_window_s: float = Field(0.02, gt=0, description="longest wait to fill a micro-batch")
    publish_overlap: bool = Field(
        True, description="publish a click batch while the next one runs its step")
    item_batch_size: int = Field(1024, ge=1)
    retry_max_delay_s: float = Field(5.0, gt=0, description="cap of the outage retry backoff")
    stop_timeout_s: float = Field(
        8.0, gt=0, description="after SIGTERM/SIGINT the worker exits at the latest this late")
    worker_web_host: str = Field(
        "127.0.0.1", description="address of the worker's /metrics, /healthz and /readyz")
    worker_web_port: int = Field(
        6066, ge=0, le=65535, description="port of the worker's metrics and health server (0: off)")
    worker_data_dir: str = Field(
        ".stack", description="Faust's local state goes under <dir>/faust-<consumer group>")


class ObserveSettings(RecallEnv):
    """Logs, metrics sampling and readiness checks."""

    log_format: Literal["text", "json"] = Field(
        "text", description="text lines, or one JSON object per line (with topic/partition/offset)")
    metrics_interval_s: float = Field(
        5.0, gt=0, description="how often consumer lag, items in Milvus and readiness are sampled")
    readiness_timeout_s: float = Field(
        3.0, gt=0, description="longest wait for one /readyz check of a server")


class TrainerSettings(RecallEnv):
    """The continuous trainer (python -m streams.training)."""

    online_group: str = Field("recall-trainer", description="the trainer's consumer group")
    online_export_s: float = Field(
        60.0, gt=0, description="seconds between the trainer's exports of a new version")
    online_batch: int = Field(256, ge=1, description="new samples per training step")
    online_keep_versions: int = Field(
        20, ge=1, description="the trainer deletes versions older than the newest this many")
    online_publish_min_change: float = Field(
        0.01, ge=0, description="an item vector is published again when it moved by more "
        "than this share of its length since it was last published")
    online_export_every: int = Field(
        0, ge=0, description="export after every this many clicks learned (data time: an "
        "evaluation independent of the machine's speed; online_export_s is then ignored); "
        "0: every online_export_s")
    online_gate: bool = Field(
        True, description="canary gate: a version is exported only if the learner's "
        "prequential HR@50 since the last export is at least the serving version's")
    online_sparse: bool = Field(
        False, description="sparse gradient of the item table and lazy Adam: a step costs "
        "the rows it used, not the whole table (set it beyond ~100k items: at 1M items a "
        "step took 3.0 s dense, 105 ms sparse; harness.bench.tables)")
    online_warmup_steps: int = Field(
        60, ge=0, description="the learning rate ramps from a tenth of lr to lr over this many "
        "training steps after the trainer starts (0: none; docs/online/learner-tuning.md)")
    online_gate_min_samples: int = Field(
        100, ge=0, description="the gate decides on at least this many scored samples; with "
        "fewer the export waits (the window goes on)")


class ApiSettings(RecallEnv):
    """The HTTP API and its live page."""

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_auth: Literal["token", "off"] = Field(
        "token", description="token: the calls that change state (/insert, /drop, the live "
        "page's POST /live/clicks) need the API token; off: every call is open (tests, a "
        "trusted host)")
    api_token: SecretStr | None = Field(
        None, description="the API token, sent as 'Authorization: Bearer <token>' or "
        "'X-API-Key: <token>' (unset with api_auth=token: the API makes one at start, "
        "secrets.token_urlsafe, and logs it once)")
    api_token_all: bool = Field(
        False, description="require the API token on the reading calls too (/recall, /count, "
        "the live page's JSON routes); health, metrics, /docs and the page's HTML stay open")
    max_api_batch: int = Field(1024, ge=1, description="most rows in one /recall request")
    max_api_history: int = Field(200, ge=1, description="most item ids in one /recall row")
    max_api_body_bytes: int = Field(1 << 20, ge=1024, description="largest HTTP request body")
    max_api_results: int = Field(
        100_000, ge=1, description="most rows x top_k in one /recall request (its cost)")
    live_page: bool = Field(
        False, description="serve the live page /live on the API (it then reads histories from "
        "Redis, sends the page's clicks to the clicks topic and tails the recommendations topic)")
    item_titles: str | None = Field(
        None, description="CSV with item ids in the first column and a 'title' column (e.g. "
        "MovieLens movies.csv): titles on the live page")


class Settings(
    KafkaSettings, RedisSettings, MilvusSettings, ModelSettings, RecallSettings, InputSettings,
    WorkerSettings, ObserveSettings, TrainerSettings, ApiSettings,
):
    """Every concern composed: what a worker, the API, the trainer or a CLI is given."""
