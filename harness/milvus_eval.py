"""Scores a model's test users through Milvus with the model's metric code, beside exact search."""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model.data import read_any, synthetic
from model.evaluate import evaluate_users
from model.serving import InterestModel
from model.split import Split, comirec_split, holdout, load_split
from streams.index import ItemIndex
from streams.recaller import merge
from streams.settings import Settings


def milvus_retriever(index: ItemIndex):  # noqa: ANN201 - model.metrics.Retriever
    """retrieve(user_vectors [U, K, D], n) through one Milvus search per call, merged per user."""

    def retrieve(user_vectors: np.ndarray, n: int) -> list[list[int]]:
        users, interests, dim = user_vectors.shape
        ids, scores = index.search(user_vectors.reshape(-1, dim), n)  # [U * K, n]
        merged = merge(ids.reshape(users, interests, n), scores.reshape(users, interests, n),
                       [[]] * users, n)  # no history exclusion, as in the exact protocol
        return [items for items, _, _ in merged]

    return retrieve


def compare(model: InterestModel, index: ItemIndex, histories: Sequence[Sequence[int]],
            targets: Sequence[Sequence[int]]) -> dict[str, dict[str, float]]:
    """Metrics of the same user vectors by exact NumPy ranking and by Milvus, and their gap."""
    vectors, _ = model.interests(histories)  # [U, K, D]
    item_ids, item_vectors = model.item_table()
    exact = evaluate_users(vectors, targets, item_ids=item_ids, item_vectors=item_vectors)
    milvus = evaluate_users(vectors, targets, retrieve=milvus_retriever(index))
    loss = {key: exact[key] - milvus[key] for key in exact}
    return {"exact": exact, "milvus": milvus, "exact_minus_milvus": loss}


def holdout_users(model_dir: Path, data: str | None) -> tuple[list[list[int]], list[list[int]]]:
    """Histories and targets of the split's test users (the split the model was trained on)."""
    seqs = read_any(data) if data else synthetic()
    split_file = model_dir / "split.json"
    split: Split = load_split(split_file, seqs) if split_file.is_file() else comirec_split(seqs)
    return holdout(seqs, split.test)


def main(argv: Sequence[str] | None = None) -> None:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m harness.milvus_eval", description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model-dir", default=defaults.model_dir, help="env RECALL_MODEL_DIR")
    parser.add_argument("--data", default=None, help="dataset the model was trained on "
                        "(default: the built-in generator)")
    parser.add_argument("--index", default=defaults.milvus_index,
                        help="FLAT (must equal exact) or IVF_FLAT (reports the recall loss)")
    parser.add_argument("--milvus-uri", default=defaults.milvus_uri, help="env RECALL_MILVUS_URI")
    args = parser.parse_args(argv)
    model = InterestModel.load(args.model_dir)
    version_dir = Path(args.model_dir) / model.version
    histories, targets = holdout_users(version_dir if version_dir.is_dir() else
                                    Path(args.model_dir), args.data)
    index = ItemIndex(args.milvus_uri, f"eval_{uuid.uuid4().hex[:10]}", model.dim, args.index,
                      token=defaults.milvus_token)
    index.start()
    try:
        ids, vectors = model.item_table()
        index.upsert(ids.tolist(), vectors)
        result = compare(model, index, histories, targets)
    finally:
        index.destroy()
        index.close()
    print(json.dumps({"model": model.version, "index": index.index_type,
                      "users": len(histories), **result}, indent=1))


if __name__ == "__main__":
    main()
