"""Publish an exported model's item embedding table (or item deletions) to the items topic."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from producers.kafka import (
    EXIT_CODES,
    EXIT_OK,
    EXIT_PARTIAL,
    Sender,
    add_kafka_args,
    open_sender,
    run_cli,
)
from streams.errors import BadRequest
from streams.records import ItemEmbedding
from streams.settings import Settings


def version_dir(model_dir: str | Path, version: str | None = None) -> Path:
    """The directory of `version`, or of the version named in `model_dir/LATEST`."""
    root = Path(model_dir)
    if version is None:
        latest = root / "LATEST"
        if not latest.is_file():
            raise BadRequest(f"{latest} not found: not an exported model directory")
        version = latest.read_text(encoding="utf-8").strip()
    path = root / version
    if not path.is_dir():
        raise BadRequest(f"model version directory {path} not found")
    return path


def read_item_ids(model_dir: str | Path, version: str | None = None) -> np.ndarray:
    """Item ids [N] int64 of an exported model (a model dir, or a path to an item_ids.npy)."""
    path = Path(model_dir)
    if path.suffix != ".npy":
        path = version_dir(path, version) / "item_ids.npy"
    if not path.is_file():
        raise BadRequest(f"{path} not found")
    return np.load(path).astype(np.int64).reshape(-1)


def read_item_table(model_dir: str | Path, version: str | None = None
                    ) -> tuple[str, np.ndarray, np.ndarray]:
    """(version, ids [N] int64, vectors [N, D] float32) of an exported model."""
    vdir = version_dir(model_dir, version)
    ids = read_item_ids(vdir / "item_ids.npy")
    vectors_path = vdir / "item_vectors.npy"
    if not vectors_path.is_file():
        raise BadRequest(f"{vectors_path} not found")
    vectors = np.load(vectors_path).astype(np.float32)  # [N, D]
    if vectors.ndim != 2 or vectors.shape[0] != ids.shape[0]:
        raise BadRequest(f"item_vectors.npy shape {vectors.shape} does not fit {len(ids)} ids")
    return vdir.name, ids, vectors


def embedding_records(ids: np.ndarray, vectors: np.ndarray) -> Iterator[ItemEmbedding]:
    """One ItemEmbedding per row, in table order."""
    for item_id, vector in zip(ids.tolist(), vectors, strict=True):
        yield ItemEmbedding(item_id=item_id, vector=vector.tolist(), deleted=False)


def deletion_records(ids: Iterable[int]) -> Iterator[ItemEmbedding]:
    """One delete record (no vector) per id."""
    for item_id in ids:
        yield ItemEmbedding(item_id=int(item_id), vector=None, deleted=True)


def publish(records: Iterable[ItemEmbedding], sender: Sender, progress: bool = False,
            total: int | None = None) -> None:
    """Send records keyed by item id; invalid ones (e.g. NaN vectors) are counted and skipped."""
    for record in tqdm(records, total=total, disable=None if progress else True, unit="item"):
        sender.send_valid(record.item_id, record, f"item {record.item_id}")


def parse_args(argv: list[str] | None, settings: Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m producers.items", description=__doc__,
                                     epilog=EXIT_CODES)
    parser.add_argument("--model-dir", default=settings.model_dir,
                        help="exported model directory (env RECALL_MODEL_DIR, now %(default)s)")
    parser.add_argument("--version", help="model version to publish (default: DIR/LATEST)")
    parser.add_argument("--delete", nargs="+", type=int, metavar="ID",
                        help="send delete records for these item ids instead of a table")
    parser.add_argument("--limit", type=int, help="publish only the first N items")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_kafka_args(parser, settings, "items_topic")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit 0 ok, 1 some items failed, 2 bad input, 3 broker unreachable."""
    settings = Settings()
    args = parse_args(argv, settings)

    def body() -> int:
        if args.delete:
            records: Iterable[ItemEmbedding] = deletion_records(args.delete)
            total, what = len(args.delete), "deletions"
        else:
            version, ids, vectors = read_item_table(args.model_dir, args.version)
            if vectors.shape[1] != settings.embedding_dim:
                raise BadRequest(f"vectors have dim {vectors.shape[1]}, settings expect "
                                 f"{settings.embedding_dim} (RECALL_EMBEDDING_DIM)")
            ids, vectors = ids[: args.limit], vectors[: args.limit]
            records, total, what = embedding_records(ids, vectors), len(ids), f"items of {version}"
        with open_sender(args.bootstrap, args.topic, settings=settings) as sender:
            publish(records, sender, progress=not args.no_progress, total=total)
            stats = sender.flush()
        print(f"{what} -> {args.topic}: {stats.summary()}", file=sys.stderr)
        return EXIT_OK if stats.failed == stats.invalid == 0 else EXIT_PARTIAL

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
