"""Scores a model's test users through Milvus with the model's metric code, beside exact search."""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from model.data import read_any, synthetic
from model.evaluate import evaluate_users
from model.serving import InterestModel, version_dir
from model.split import Split, comirec_split, holdout, load_split
from streams.recall.lists import keep_interests, merge
from streams.settings import Settings
from streams.stores.index import ItemIndex


def milvus_retriever(index: ItemIndex):  # noqa: ANN201 - model.ranking_metrics.Retriever
    """retrieve(user_vectors [U, K, D], n) through one Milvus search per call, merged per user.

    All-zero interest vectors (pruned by the recaller, see `compare`) are not searched.
    """

    def retrieve(user_vectors: np.ndarray, n: int) -> list[list[int]]:
        users, interests, _ = user_vectors.shape
        live = np.abs(user_vectors).sum(axis=2) > 0  # [U, K]
        ids = np.full((users, interests, n), -1, dtype=np.int64)  # [U, K, n]
        scores = np.full((users, interests, n), -np.inf, dtype=np.float32)  # [U, K, n]
        ids[live], scores[live] = index.search(user_vectors[live], n)  # [Q, n] each
        merged = merge(ids, scores, [[]] * users, n)  # no history exclusion (ComiRec protocol)
        return [items for items, _, _ in merged]

    return retrieve


def compare(model: InterestModel, index: ItemIndex, histories: Sequence[Sequence[int]],
            targets: Sequence[Sequence[int]], pruning: str = "none",
            dedup_cosine: float = 0.99) -> dict[str, Any]:
    """Metrics of the same user vectors by exact NumPy ranking and by Milvus, and their gap.

    With `pruning`, Milvus searches only the interests the recaller would keep; `kept` is the
    Milvus Recall@50 as a share of the exact one.
    """
    vectors, _ = model.interests(histories)  # [U, K, D]
    item_ids, item_vectors = model.item_table()
    keep = keep_interests(vectors, np.array([len(h) for h in histories]), pruning, dedup_cosine)
    exact = evaluate_users(vectors, targets, item_ids=item_ids, item_vectors=item_vectors)
    pruned = vectors * keep[:, :, None]  # [U, K, D], dropped interests zeroed
    milvus = evaluate_users(pruned, targets, retrieve=milvus_retriever(index))
    loss = {key: exact[key] - milvus[key] for key in exact}
    kept = milvus["recall@50"] / exact["recall@50"] if exact.get("recall@50") else None
    return {"exact": exact, "milvus": milvus, "exact_minus_milvus": loss,
            "queries_per_user": float(keep.sum(axis=1).mean()), "recall_kept": kept}


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
    parser.add_argument("--pruning", default=defaults.interest_pruning,
                        choices=["none", "log2", "dedup"],
                        help="interests searched per user (env RECALL_INTEREST_PRUNING)")
    parser.add_argument("--dedup-cosine", type=float, default=defaults.interest_dedup_cosine,
                        help="env RECALL_INTEREST_DEDUP_COSINE")
    parser.add_argument("--milvus-uri", default=defaults.milvus_uri, help="env RECALL_MILVUS_URI")
    args = parser.parse_args(argv)
    model = InterestModel.load(args.model_dir)
    histories, targets = holdout_users(version_dir(args.model_dir), args.data)
    index = ItemIndex(args.milvus_uri, f"eval_{uuid.uuid4().hex[:10]}", model.dim, args.index,
                      token=defaults.milvus_token)
    index.start()
    try:
        ids, vectors = model.item_table()
        index.upsert(ids.tolist(), vectors)
        result = compare(model, index, histories, targets, args.pruning, args.dedup_cosine)
    finally:
        index.destroy()
        index.close()
    print(json.dumps({"model": model.version, "index": index.index_type, "pruning": args.pruning,
                      "users": len(histories), **result}, indent=1))


if __name__ == "__main__":
    main()
