"""One frozen settings object for every entry point, read from RECALL_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a worker, the API or a CLI needs to find the servers and size its work."""

    model_config = SettingsConfigDict(env_prefix="RECALL_", frozen=True, extra="ignore")

    # servers
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL for histories")
    milvus_uri: str = Field("http://127.0.0.1:19530", description="Milvus gRPC/HTTP URI")
    milvus_collection: str = Field("items", description="Milvus collection of item vectors")
    milvus_index: str = Field("FLAT", description="Milvus index type: FLAT, IVF_FLAT or HNSW")

    # topics
    clicks_topic: str = "clicks"
    items_topic: str = "item-embeddings"
    recs_topic: str = "recommendations"
    dead_letter_topic: str = "dead-letters"
    partitions: int = Field(4, ge=1, description="partitions of the clicks/recs topics")

    # recall
    top_k: int = Field(50, ge=1, le=1000)
    history_len: int = Field(10, ge=1, description="clicks kept per user")
    num_interests: int = Field(4, ge=1)
    embedding_dim: int = Field(64, ge=1)
    max_api_batch: int = Field(1024, ge=1, description="most rows in one /recall request")

    # stream worker
    batch_size: int = Field(64, ge=1, description="clicks per micro-batch (64: best measured)")
    batch_window_s: float = Field(0.02, gt=0, description="longest wait to fill a micro-batch")
    item_batch_size: int = Field(1024, ge=1)
    fetch_max_wait_ms: int = Field(10, ge=1, description="Kafka fetch wait (tansu holds fetches)")
    consumer_group: str = "recall-worker"
    worker_web_port: int = 6066

    # model
    model_dir: str = Field("artifacts/model", description="exported MIND model directory")
    device: str = Field("auto", description="auto, cpu or gpu")
    reload_interval_s: float = Field(10.0, gt=0, description="how often to look for a new model")

    # HTTP API
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    # local stack
    stack_dir: str = Field(".stack", description="where the local stack keeps data and logs")
    kafka_port: int = 9092
    redis_port: int = 6379
    milvus_port: int = 19530
