"""Train MIND (`python -m model.train`), early-stop on valid Recall@50, then export atomically."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from model.cli import HelpFormatter, add_common_args, load_inputs
from model.export import export_model
from model.fit import evaluate_model, train_model
from model.split import build_vocab, holdout


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m model.train", description=__doc__,
        formatter_class=HelpFormatter,
    )
    add_common_args(parser)
    parser.add_argument("--out", default="artifacts/model",
                        help="export root: writes <out>/<version>/ then <out>/LATEST")
    parser.add_argument("--checkpoint-dir", default=None,
                        help="per-epoch checkpoints (default: <out>/.checkpoint)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the checkpoint in --checkpoint-dir")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    inp = load_inputs(args)
    out = Path(args.out)
    ckpt = Path(args.checkpoint_dir) if args.checkpoint_dir else out / ".checkpoint"
    vocab = build_vocab(inp.seqs, inp.split.train)
    print(f"data {inp.data_label}: {len(inp.seqs)} users, {vocab.size} items; split "
          f"{len(inp.split.train)}/{len(inp.split.valid)}/{len(inp.split.test)}; "
          f"device {inp.device}", file=sys.stderr)
    result = train_model(inp.seqs, inp.split, vocab, inp.cfg, "mind", ckpt_dir=ckpt,
                         resume=args.resume, progress=not args.no_progress)
    t_hist, t_targ = holdout(inp.seqs, inp.split.test)
    test = evaluate_model(result.model, vocab, t_hist, t_targ, inp.cfg.maxlen)
    metrics = {"best_epoch": result.best_epoch, "valid": result.best_valid, "test": test}
    vdir = export_model(out, result.model, vocab, inp.cfg, data_path=inp.data_label,
                        split=inp.split, metrics=metrics)
    print(json.dumps({"export": str(vdir), **metrics}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
