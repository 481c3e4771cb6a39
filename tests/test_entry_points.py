"""Console scripts (pyproject.toml) exist, resolve and answer --help; so do the `python -m` ones."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
    "scripts"]
# What the Makefile and the docs run as `python -m ...`.
MODULES = ["streams.worker", "streams.api", "streams.training", "harness.stack",
           "harness.stack.run", "harness.bench", "harness.faults", "harness.online", "harness.demo",
           "model.train", "model.evaluate"]


def test_users_get_one_script_per_face() -> None:
    assert set(SCRIPTS) == {"recall-worker", "recall-api", "recall-trainer", "recall-click",
                            "recall-replay", "recall-items", "recall-follow"}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_answers_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    module, func = SCRIPTS[name].split(":")
    main = getattr(importlib.import_module(module), func)
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_scripts_are_installed_in_the_venv() -> None:
    """`make venv` installs the project editable, so the scripts are on the venv's PATH."""
    bin_dir = Path(sys.executable).parent
    missing = [name for name in SCRIPTS if not (bin_dir / name).exists()]
    assert not missing, f"run `make venv` (pip install -e .): {missing} not in {bin_dir}"
    done = subprocess.run([str(bin_dir / "recall-click"), "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "usage:" in done.stdout


def test_python_dash_m_answers_help() -> None:
    """Every `python -m` entry point at once (each imports the model stack: seconds apiece)."""
    procs = {m: subprocess.Popen([sys.executable, "-m", m, "--help"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, cwd=ROOT) for m in MODULES}
    failed = {}
    for module, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        if proc.returncode != 0 or "usage:" not in out:
            failed[module] = err[-1000:]
    assert not failed
