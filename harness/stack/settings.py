"""Where the local stack's servers listen and keep their data: harness only, never production.

The same RECALL_* names as before the settings were split (RECALL_STACK_DIR, RECALL_KAFKA_PORT,
RECALL_REDIS_PORT, RECALL_MILVUS_PORT); `streams.settings` knows nothing of them.
"""

from __future__ import annotations

from pydantic import Field

from streams.settings import RecallEnv


class StackSettings(RecallEnv):
    """The local stack's data/log directory and the ports of its three servers."""

    stack_dir: str = Field(".stack", description="where the local stack keeps data and logs")
    kafka_port: int = Field(9092, ge=1, le=65535, description="the local broker's port")
    redis_port: int = Field(6379, ge=1, le=65535, description="the local Redis port")
    milvus_port: int = Field(19530, ge=1, le=65535, description="the local Milvus port")
