"""`make gpu-check` (`python -m harness.bench.gpu`): the model stage on a GPU beside the CPU.

On a machine where `nvidia-smi` lists a GPU, builds `.venv-gpu` once with PyPI's
`paddlepaddle-gpu` (2.6.2: Paddle's 3.x GPU wheels are on Paddle's own index, not PyPI) and the
few packages the model needs, then runs `python -m harness.bench.forward` (MIND's interest
forward pass, the worker's model stage) with `--device gpu` and `--device cpu` in that
environment, one after the other, and prints users/s per batch size and the GPU/CPU ratio.
The model code runs unchanged on Paddle 2.6.2: `tests/model` passes on its CPU wheel, whose
Python API is the GPU wheel's (docs/serving-speed.md).

Without a GPU it says so and runs the same comparison with both sides on the CPU, in this
interpreter, so the script itself stays tested. The search ceiling on a GPU needs a Milvus
built with GPU indexes (GPU_IVF_FLAT, GPU_CAGRA: the `milvusdb/milvus:*-gpu` image), which the
local stack does not start: this check does not measure it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from model.cli import HelpFormatter

ROOT = Path(__file__).resolve().parents[2]
GPU_VENV = ROOT / ".venv-gpu"
GPU_PACKAGES = ("paddlepaddle-gpu==2.6.2", "numpy<2", "pyyaml", "tqdm")


def gpu_present() -> bool:
    """True when `nvidia-smi -L` lists at least one GPU."""
    if shutil.which("nvidia-smi") is None:
        return False
    done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    return done.returncode == 0 and "GPU" in done.stdout


def gpu_python() -> str:
    """The interpreter of `.venv-gpu`, built (once) with GPU_PACKAGES; a stamp written after
    the install succeeds, so an interrupted install is redone, not reused."""
    python, stamp = GPU_VENV / "bin" / "python", GPU_VENV / ".installed"
    if not stamp.exists():
        subprocess.run([sys.executable, "-m", "venv", str(GPU_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *GPU_PACKAGES], check=True)
        stamp.touch()
    return str(python)


def forward(python: str, device: str, sizes: str, seconds: float) -> dict[int, float]:
    """users/s per batch size of harness.bench.forward run by `python` on `device`."""
    done = subprocess.run(
        [python, "-m", "harness.bench.forward", "--device", device, "--batch-sizes", sizes,
         "--seconds", str(seconds), "--json"],
        cwd=ROOT, capture_output=True, text=True, check=True)  # -m finds the project in cwd
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    return {int(r["batch_size"]): float(r["users_per_s"]) for r in rows}


def table(left: dict[int, float], right: dict[int, float], names: tuple[str, str]) -> str:
    """Users/s side by side and their ratio, one row per batch size."""
    lines = [f"{'batch':>8} {names[0] + ' users/s':>18} {names[1] + ' users/s':>18} {'ratio':>8}"]
    for bs in sorted(left):
        lines.append(f"{bs:>8} {left[bs]:>18.0f} {right[bs]:>18.0f} "
                     f"{left[bs] / right[bs]:>7.2f}x")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.bench.gpu", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--batch-sizes", default="16,256,1024,4096", help="comma-separated sizes")
    p.add_argument("--seconds", type=float, default=2.0, help="time per batch size and device")
    p.add_argument("--cpu-only", action="store_true",
                   help="skip the GPU even if one is present (both sides on the CPU)")
    args = p.parse_args(argv)
    if not args.cpu_only and gpu_present():
        python = gpu_python()
        left, names = forward(python, "gpu", args.batch_sizes, args.seconds), ("gpu", "cpu")
        print(f"GPU found; Paddle 2.6.2 in {GPU_VENV}")
    else:
        python = sys.executable
        print("no GPU here (nvidia-smi lists none, or --cpu-only): both sides run on the CPU, "
              "to check the script; the ratio is then ~1")
        left, names = forward(python, "cpu", args.batch_sizes, args.seconds), ("cpu", "cpu")
    right = forward(python, "cpu", args.batch_sizes, args.seconds)
    print("MIND interest forward (harness.bench.forward), K=4, D=64, maxlen 10:")
    print(table(left, right, names))
    print("Search ceiling on a GPU: not measured (needs Milvus' GPU image; see --help).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
