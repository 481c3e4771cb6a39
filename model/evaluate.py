"""Paper-style evaluation (`python -m model.evaluate`): MIND vs YouTube-DNN vs MostPopular.

Protocol (ComiRec): users split 80/10/10 (train/valid/test); models train on train users'
whole sequences and early-stop on valid users' Recall@50; test users' history is the first
80% of their clicks (the model sees the last `maxlen`), targets are the rest. Full ranking
over all items by exact inner product; history items are NOT excluded (as in ComiRec).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model.cli import HelpFormatter, add_common_args, load_inputs
from model.config import MindConfig
from model.data import Sequences
from model.fit import infer_vectors, train_model
from model.ranking_metrics import (
    Retriever,
    evaluate_vectors,
    exact_retriever,
    mean_sd,
    popular_retriever,
)
from model.split import Split, Vocab, build_vocab, encode, holdout, save_split

MODELS = ("mind", "youtube_dnn", "most_popular")
KEYS = ("recall@20", "ndcg@20", "hitrate@20", "recall@50", "ndcg@50", "hitrate@50")


def evaluate_users(
    user_vectors: np.ndarray,
    targets: Sequence[Sequence[int]],
    retrieve: Retriever | None = None,
    item_ids: np.ndarray | None = None,
    item_vectors: np.ndarray | None = None,
    ns: Sequence[int] = (20, 50),
) -> dict[str, float]:
    """Metrics for precomputed user vectors [U, K, D]; `retrieve` defaults to exact NumPy.

    Pass e.g. a Milvus search as `retrieve(user_vectors, n) -> id lists` to score it with
    the same metric code. History items are not excluded from the ranking (ComiRec).
    """
    if retrieve is None:
        if item_ids is None or item_vectors is None:
            raise ValueError("give either retrieve or item_ids + item_vectors")
        retrieve = exact_retriever(item_ids, item_vectors)
    return evaluate_vectors(user_vectors, targets, retrieve, ns)


def run_protocol(
    seqs: Sequences, split: Split, cfg: MindConfig, seeds: int = 1, progress: bool = True,
    models: Sequence[str] = MODELS,
) -> tuple[dict[str, dict[str, float]], dict[str, list[dict]]]:
    """Train/evaluate each model `seeds` times; returns (summary per model, raw runs)."""
    vocab: Vocab = build_vocab(seqs, split.train)
    hists, targets = holdout(seqs, split.test)
    ids = encode(hists, vocab.index(), cfg.maxlen)  # [U, L]
    runs: dict[str, list[dict]] = {m: [] for m in models}
    if "most_popular" in models:
        pop = popular_retriever(vocab.item_ids[:100].tolist())
        runs["most_popular"].append(
            evaluate_vectors(np.zeros((len(targets), 1, 1), np.float32), targets, pop)
        )
    for s in range(seeds):
        run_cfg = cfg.replace(seed=cfg.seed + s)
        for kind in (m for m in models if m != "most_popular"):
            t0 = time.monotonic()
            res = train_model(seqs, split, vocab, run_cfg, kind, progress=progress)
            vecs = infer_vectors(res.model, ids)  # [U, K, D]
            test = evaluate_users(vecs, targets, item_ids=vocab.item_ids,
                                  item_vectors=res.model.item_matrix())
            runs[kind].append({**test, "best_epoch": res.best_epoch,
                               "valid_recall@50": res.best_valid.get("recall@50", 0.0),
                               "minutes": (time.monotonic() - t0) / 60})
            if progress:
                print(f"[seed {run_cfg.seed}] {kind}: test recall@50 {test['recall@50']:.4f} "
                      f"hitrate@50 {test['hitrate@50']:.4f} (best epoch {res.best_epoch})",
                      file=sys.stderr)
    summary = {m: mean_sd([{k: r[k] for k in KEYS} for r in rs]) for m, rs in runs.items()}
    return summary, runs


def format_table(summary: dict[str, dict[str, float]]) -> str:
    """Readable table in percent: mean (± sd when several seeds)."""
    head = f"{'model':<14}" + "".join(f"{k:>16}" for k in KEYS)
    lines = [head, "-" * len(head)]
    for model, vals in summary.items():
        cells = []
        for k in KEYS:
            sd = vals.get(f"{k}_sd", 0.0)
            cells.append(f"{100 * vals[k]:.2f}" + (f" ±{100 * sd:.2f}" if sd else ""))
        lines.append(f"{model:<14}" + "".join(f"{c:>16}" for c in cells))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m model.evaluate", description=__doc__,
        formatter_class=HelpFormatter,
    )
    add_common_args(parser)
    parser.add_argument("--seeds", type=int, default=1,
                        help="training runs per model, seeds seed..seed+S-1")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as JSON on stdout (default: table)")
    parser.add_argument("--out", default=None,
                        help="also write summary + runs JSON to this file (default: none)")
    parser.add_argument("--split-out", default=None,
                        help="where to write the split used (default: <out>.split.json, or "
                        "artifacts/eval-split.json without --out)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    inp = load_inputs(args)
    summary, runs = run_protocol(inp.seqs, inp.split, inp.cfg, args.seeds,
                                 progress=not args.no_progress)
    split_out = Path(args.split_out or (f"{args.out}.split.json" if args.out
                                        else "artifacts/eval-split.json"))
    split_out.parent.mkdir(parents=True, exist_ok=True)
    save_split(inp.split, split_out)
    if args.out:
        Path(args.out).write_text(json.dumps(
            {"data": inp.data_label, "config": inp.cfg.to_dict(), "seeds": args.seeds,
             "summary": summary, "runs": runs, "split_file": str(split_out)}, indent=1))
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"data {inp.data_label}, maxlen {inp.cfg.maxlen}, seeds {args.seeds}, "
              f"test users {len(holdout(inp.seqs, inp.split.test)[1])} (percent)")
        print(format_table(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
