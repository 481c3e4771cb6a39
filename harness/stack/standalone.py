"""A real Milvus standalone (2.3.5, from the optional `milvus` PyPI package) for measurements
that Milvus Lite cannot make: Lite 2.5.1 builds no IVF_FLAT index (its searches ignore
nprobe) and no HNSW. Install it with `pip install milvus==2.3.5` (~450 MB); production runs
Milvus standalone from docker-compose.yml instead.
"""

from __future__ import annotations

import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from harness.stack.servers import StackError
from streams.errors import ServiceUnavailable
from streams.stores.index import ItemIndex


@dataclass(frozen=True)
class Standalone:
    uri: str
    pid: int  # the server process (its descendants included when measuring it)


@contextmanager
def milvus_standalone(port: int, timeout_s: float = 180.0) -> Iterator[Standalone]:
    """Start Milvus standalone on `port` in a temp dir; yield its URI and pid; stop it on
    exit."""
    try:
        from milvus import MilvusServer  # type: ignore[import-untyped]
    except ImportError as exc:
        raise StackError("Milvus standalone needs `pip install milvus==2.3.5`") from exc
    with tempfile.TemporaryDirectory(prefix="milvus-standalone-") as base:
        server = MilvusServer()
        server.set_base_dir(base)
        server.listen_port = port
        server.start()
        try:
            deadline = time.monotonic() + timeout_s
            while not _listening(port):
                if time.monotonic() > deadline:
                    raise StackError(f"milvus standalone not listening on {port} after "
                                     f"{timeout_s:.0f}s; logs in {base}/logs")
                time.sleep(1.0)
            yield Standalone(f"http://127.0.0.1:{port}", server.server_proc.pid)
        finally:
            server.stop()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 1.0).close()
        return True
    except OSError:
        return False


def connect(index: ItemIndex, timeout_s: float = 120.0) -> None:
    """index.start(), retried while the server is still coming up."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            index.start()
            return
        except ServiceUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(2.0)


def rebuild(index: ItemIndex, kind: str, params: dict[str, Any]) -> float:
    """Replace the collection's index, wait until every row is indexed, load it again (a
    server searches the rows it has not indexed with an interim index that ignores the search
    parameters); the seconds it took."""
    started = time.perf_counter()
    index.replace_index(kind, params)
    c, name = index.client, index.collection
    while True:
        state = c.describe_index(name, "vector")
        if state.get("pending_index_rows", 0) == 0 and \
                state.get("indexed_rows", 0) >= state.get("total_rows", 0):
            break
        time.sleep(1.0)
    c.load_collection(name)
    return time.perf_counter() - started


def compact(index: ItemIndex, timeout_s: float = 600.0) -> float:
    """Flush the collection and merge its segments now, waiting until the merge is done (a
    bulk load leaves many small segments, which the server would otherwise merge, and index
    again, in the background while it is measured); the seconds it took."""
    started = time.perf_counter()
    c, name = index.client, index.collection
    c.flush(name)
    job = c.compact(name)
    deadline = time.monotonic() + timeout_s
    while c.get_compaction_state(job) != "Completed":
        if time.monotonic() > deadline:
            raise StackError(f"compaction of {name} not done after {timeout_s:.0f}s")
        time.sleep(1.0)
    return time.perf_counter() - started

