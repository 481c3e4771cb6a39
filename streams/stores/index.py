"""Item vectors in Milvus: create, upsert, delete, count and batched inner-product search."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
from pydantic import SecretStr
from pymilvus import DataType, MilvusClient, MilvusException
from pymilvus.client.constants import ConsistencyLevel
from pymilvus.client.prepare import Prepare
from pymilvus.client.utils import check_status
from pymilvus.exceptions import ConnectError, MilvusUnavailableException

from streams.errors import InvalidRequest, ServiceUnavailable

log = logging.getLogger(__name__)

# index type -> build params; milvus-lite 2.5.1 builds FLAT and IVF_FLAT and rejects HNSW
# ("local mode only support FLAT IVF_FLAT AUTOINDEX"): HNSW then falls back to FLAT
INDEX_PARAMS: dict[str, dict[str, Any]] = {
    "FLAT": {},
    "IVF_FLAT": {"nlist": 128},
    "HNSW": {"M": 16, "efConstruction": 200},
}
SEARCH_PARAMS: dict[str, dict[str, Any]] = {
    "FLAT": {},
    "IVF_FLAT": {"nprobe": 16},
    "HNSW": {"ef": 64},
}
# No keepalive pings on an idle channel: pymilvus pings every 10 s even without calls, and a
# server that counts those as abuse (Milvus Lite) answers GOAWAY "too_many_pings", after which
# the shared channel fails to connect. A dead connection now shows on the next call instead
# (an outage: retried).
# what tells pymilvus that byte rows are float vectors (Prepare reads the field's type from it)
_VECTOR_SCHEMA = {"fields": [{"name": "vector", "type": DataType.FLOAT_VECTOR}]}
GRPC_OPTIONS = {"grpc.keepalive_time_ms": 60_000, "grpc.keepalive_permit_without_calls": False}
CONSISTENCY = ("Strong", "Session", "Bounded", "Eventually")


@dataclass(frozen=True)
class IndexChoice:
    """What to build for a catalog size: RECALL_MILVUS_INDEX and its build and search
    parameters (INDEX_PARAMS / SEARCH_PARAMS hold the same values for HNSW)."""

    index: str
    build: dict[str, Any]
    search: dict[str, Any]


# Chosen on Milvus standalone 2.3.5 by `python -m harness.bench.index_sweep` (the fastest point
# keeping >= 95% of exact search's merged top-50 for 2,237 real users, docs/bench/index-sweep-*):
# up to LIMIT items -> the choice. Below 50k exact search is cheap (12k: a 3,300 users/s ceiling,
# eight times what the pipeline sustains); 100k measured; 1M measured.
RECOMMENDED: tuple[tuple[float, IndexChoice], ...] = (
    (50_000, IndexChoice("FLAT", INDEX_PARAMS["FLAT"], SEARCH_PARAMS["FLAT"])),
    (float("inf"), IndexChoice("HNSW", INDEX_PARAMS["HNSW"], SEARCH_PARAMS["HNSW"])),
)


def recommended_index(items: int) -> IndexChoice:
    """The index to build for a catalog of `items` on Milvus standalone (Milvus Lite builds only
    FLAT: its IVF_FLAT searches ignore nprobe and it has no HNSW)."""
    return next(choice for limit, choice in RECOMMENDED if items <= limit)


UPSERT_BATCH = 4096
DELETE_BATCH = 16384


# Status codes of an outage: connection failed, rate limited / server busy, and collection not
# found / not loaded (transient at run time: start() made it, so another process is dropping or
# loading it, e.g. POST /drop); and the words of a gRPC deadline or an unreachable server.
# Every other refusal is a bad request.
OUTAGE_CODES = {2, 8, 100, 101}
OUTAGE_WORDS = ("unavailable", "deadline_exceeded", "timed out", "timeout", "connection")


def is_outage(exc: MilvusException) -> bool:
    """True when Milvus could not be reached or was busy; False when it refused the request."""
    if isinstance(exc, ConnectError | MilvusUnavailableException):
        return True
    if exc.code in OUTAGE_CODES:
        return True
    text = str(exc.message).lower()
    return exc.code == 1 and any(word in text for word in OUTAGE_WORDS)


@contextmanager
def _unavailable(what: str) -> Iterator[None]:
    """Outages become ServiceUnavailable (retried); refusals InvalidRequest (never retried)."""
    try:
        yield
    except MilvusException as exc:
        if is_outage(exc):
            raise ServiceUnavailable(f"milvus {what} failed: {exc}") from exc
        raise InvalidRequest(f"milvus refused {what}: {exc}") from exc


class ItemIndex:
    """One Milvus collection of item vectors (int64 `item_id`, FLOAT_VECTOR `vector`, metric IP)."""

    def __init__(self, uri: str, collection: str, dim: int, index_type: str = "FLAT",
                 timeout_s: float = 10.0, token: SecretStr | None = None,
                 build_params: dict[str, Any] | None = None,
                 consistency: str = "Strong") -> None:
        if index_type not in INDEX_PARAMS:
            raise ValueError(f"index_type must be one of {sorted(INDEX_PARAMS)}, got {index_type}")
        self.build_params = INDEX_PARAMS[index_type] if build_params is None else build_params
        # Strong: a search sees every write acknowledged before it (item freshness). On Milvus
        # standalone it waits for the server's next time tick (FLAT at 100k items: 324 against
        # 834 users/s, docs/serving-speed.md); Bounded and Eventually do not wait.
        if consistency not in CONSISTENCY:
            raise ValueError(f"consistency must be one of {CONSISTENCY}, got {consistency}")
        self.consistency = getattr(ConsistencyLevel, consistency)
        self.uri = uri
        self.collection = collection
        self.dim = dim
        self.index_type = index_type
        self.timeout_s = timeout_s
        self._token = token  # 'user:password' or an API key; None: no authentication
        self._client: MilvusClient | None = None

    @property
    def client(self) -> MilvusClient:
        if self._client is None:
            raise RuntimeError("ItemIndex.start() was not called")
        return self._client

    def start(self) -> None:
        """Connect, ping with a cheap call, create the collection if missing and load it."""
        with _unavailable("connect"):
            token = self._token.get_secret_value() if self._token is not None else ""
            self._client = MilvusClient(self.uri, token=token, timeout=self.timeout_s,
                                        grpc_options=GRPC_OPTIONS)
            self._client.list_collections()
            self._ensure()

    def ping(self) -> None:
        """One cheap call to Milvus (readiness): is the collection there?"""
        with _unavailable("ping"):
            if not self.client.has_collection(self.collection):
                raise ServiceUnavailable(f"milvus has no collection {self.collection}")

    def close(self) -> None:
        try:
            if self._client is not None:
                self._client.close()
        finally:
            self._client = None

    def _ensure(self) -> None:
        c = self.client
        if not c.has_collection(self.collection):
            schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("item_id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
            c.create_collection(self.collection, schema=schema, consistency_level="Strong")
        if not c.list_indexes(self.collection, field_name="vector"):
            self._create_index()
        c.load_collection(self.collection)

    def replace_index(self, index_type: str, build_params: dict[str, Any]) -> None:
        """Release the collection and build another index on it (measurements: the caller
        waits until every row is indexed, then loads the collection again)."""
        with _unavailable("replace index"):
            self.client.release_collection(self.collection)
            self.client.drop_index(self.collection, "vector")
            self.index_type, self.build_params = index_type, build_params
            self._create_index()

    def _create_index(self) -> None:
        index = self.client.prepare_index_params()
        index.add_index("vector", index_type=self.index_type, metric_type="IP",
                        params=self.build_params)
        try:
            self.client.create_index(self.collection, index)
        except MilvusException as exc:
            if "local mode only support" not in str(exc) or self.index_type == "FLAT":
                raise
            log.warning("milvus-lite has no %s index, using FLAT", self.index_type)
            self.index_type, self.build_params = "FLAT", INDEX_PARAMS["FLAT"]
            self._create_index()

    def upsert(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray) -> int:
        """Insert or overwrite items; ids [N] int64, vectors [N, D] float32. Returns N."""
        ids_np = np.asarray(ids, dtype=np.int64)  # [N]
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)  # [N, D]
        if vecs.ndim != 2 or vecs.shape != (len(ids_np), self.dim):
            raise ValueError(f"vectors must be [{len(ids_np)}, {self.dim}], got {vecs.shape}")
        with _unavailable("upsert"):
            for s in range(0, len(ids_np), UPSERT_BATCH):
                rows = [{"item_id": i, "vector": v} for i, v in
                        zip(ids_np[s:s + UPSERT_BATCH].tolist(), vecs[s:s + UPSERT_BATCH],
                            strict=True)]
                self.client.upsert(self.collection, rows)
        return len(ids_np)

    def delete(self, ids: Sequence[int] | np.ndarray) -> None:
        """Remove items by id (missing ids are ignored)."""
        id_list = [int(i) for i in ids]
        with _unavailable("delete"):
            for s in range(0, len(id_list), DELETE_BATCH):
                self.client.delete(self.collection, ids=id_list[s:s + DELETE_BATCH])

    def count(self) -> int:
        """Exact number of live items."""
        with _unavailable("count"):
            rows = self.client.query(self.collection, filter="", output_fields=["count(*)"],
                                     consistency_level="Strong")
        return int(rows[0]["count(*)"])

    def drop(self) -> None:
        """Remove every item: drop the collection and create it again, empty."""
        with _unavailable("drop"):
            self.client.drop_collection(self.collection)
            self._ensure()

    def destroy(self) -> None:
        """Drop the collection for good (tests)."""
        with _unavailable("drop"):
            self.client.drop_collection(self.collection)

    def search(self, vectors: np.ndarray, top_k: int,
               params: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product for each query in one call; pads with -1 / -inf.

        vectors [N, D] float32 -> (ids [N, k] int64, scores [N, k] float32). `params` overrides
        the index type's search parameters (e.g. {"nprobe": 8}).

        The answer is decoded straight from the protobuf into arrays: pymilvus' own SearchResult
        builds a dict per hit, which took 60% of a 256-query top-60 search here (README
        "Serving speed").
        """
        q = np.ascontiguousarray(vectors, dtype=np.float32)  # [N, D]
        n = q.shape[0]
        ids = np.full((n, top_k), -1, dtype=np.int64)  # [N, k]
        scores = np.full((n, top_k), -np.inf, dtype=np.float32)  # [N, k]
        if n == 0:
            return ids, scores
        chosen = dict(SEARCH_PARAMS[self.index_type] if params is None else params)
        if "ef" in chosen:  # HNSW refuses an ef below k
            chosen["ef"] = max(int(chosen["ef"]), top_k)
        search_params = {"metric_type": "IP", "params": chosen}
        with _unavailable("search"), _grpc_outage("search"):
            request = search_request(self.collection, q, top_k, search_params, self.consistency)
            response = self.client._get_connection()._stub.Search(request, timeout=self.timeout_s)
            check_status(response.status)
        found = response.results
        counts = np.asarray(found.topks, dtype=np.int64)  # [N] hits per query
        flat_ids = np.asarray(found.ids.int_id.data, dtype=np.int64)  # [sum(counts)]
        flat_scores = np.asarray(found.scores, dtype=np.float32)  # [sum(counts)]
        if len(counts) == n and (counts == top_k).all():
            return flat_ids.reshape(n, top_k), flat_scores.reshape(n, top_k)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist()
        for row, (start, got) in enumerate(zip(starts, counts.tolist(), strict=False)):
            got = min(got, top_k)
            ids[row, :got] = flat_ids[start:start + got]
            scores[row, :got] = flat_scores[start:start + got]
        return ids, scores


def search_request(collection: str, queries: np.ndarray, top_k: int,
                   search_params: dict[str, Any], consistency: Any) -> Any:
    """The gRPC SearchRequest for float32 queries [N, D]. They go as raw bytes: given numpy
    rows, pymilvus packs each float through `struct.pack(*row)` (1.4 ms for 256 queries of 64
    against 0.09 ms; the request is byte for byte the same, tests/streams/stores/test_index.py).
    """
    return Prepare.search_requests_with_expr(
        collection, anns_field="vector", param=search_params, limit=top_k,
        data=[row.tobytes() for row in queries], schema=_VECTOR_SCHEMA, output_fields=[],
        use_default_consistency=False, consistency_level=consistency, guarantee_timestamp=0)


@contextmanager
def _grpc_outage(what: str) -> Iterator[None]:
    """A raw gRPC failure of a call made on pymilvus' channel: unreachable or slow is an outage."""
    try:
        yield
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.StatusCode.CANCELLED, grpc.StatusCode.RESOURCE_EXHAUSTED, None):
            raise ServiceUnavailable(f"milvus {what} failed: {exc!r}") from exc
        raise InvalidRequest(f"milvus refused {what}: {exc!r}") from exc
