"""Throughput benchmark (`python -m harness.bench.forward`): interests() users/s per batch size."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from model.cli import HelpFormatter
from model.config import MindConfig, load_config, setup_paddle
from model.export import export_model
from model.network import RecallModel
from model.serving import InterestModel
from model.split import Split, Vocab


def random_export(root: Path, cfg: MindConfig, num_items: int = 10000) -> Path:
    """Export a randomly initialised network of the config's shape (for pure speed tests)."""
    vocab = Vocab(np.arange(1, num_items + 1, dtype=np.int64), np.ones(num_items, np.int64))
    model = RecallModel(cfg, num_items, "mind")
    return export_model(root, model, vocab, cfg, data_path="random", split=Split([], [], []),
                        metrics={})


def bench(model: InterestModel, batch_sizes: list[int], seconds: float = 2.0,
          seed: int = 0) -> list[dict[str, float]]:
    """users/s of full `interests()` calls (lookup + padding + forward) per batch size."""
    ids, _ = model.item_table()
    rng = np.random.default_rng(seed)
    rows = []
    for bs in batch_sizes:
        hists = [rng.choice(ids, size=int(rng.integers(1, 2 * model.maxlen))).tolist()
                 for _ in range(bs)]
        model.interests(hists)  # warm-up
        calls, start = 0, time.perf_counter()
        while True:
            model.interests(hists)
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds and calls >= 3:
                break
        rows.append({"batch_size": bs, "users_per_s": bs * calls / elapsed,
                     "ms_per_call": 1000 * elapsed / calls})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.forward", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--model", default=None,
                        help="export root or version dir (default: random network of --set shape)")
    parser.add_argument("--batch-sizes", default="1,16,256,1024,4096",
                        help="comma-separated batch sizes")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per batch size")
    parser.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto", help="device")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="MindConfig override for the random network (e.g. maxlen=20)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for Paddle")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    args = parser.parse_args(argv)
    cfg = load_config(None, [*args.sets, f"device={args.device}", f"threads={args.threads}"])
    setup_paddle(cfg)
    sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.model) if args.model else random_export(Path(tmp), cfg)
        model = InterestModel.load(path, device=args.device)
        rows = bench(model, sizes, args.seconds)
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"device {model.device}, model {model.version}, K={model.num_interests}, "
          f"D={model.dim}, maxlen={model.maxlen}")
    print(f"{'batch':>8} {'users/s':>12} {'ms/call':>10}")
    for r in rows:
        print(f"{r['batch_size']:>8} {r['users_per_s']:>12.0f} {r['ms_per_call']:>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
