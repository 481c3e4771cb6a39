"""Shared argparse options and input loading for the `python -m model.*` entry points."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

from model.config import MindConfig, load_config, setup_paddle
from model.data import Sequences, read_any, synthetic
from model.split import Split, comirec_split, load_split


@dataclass(frozen=True)
class Inputs:
    """Everything an entry point needs after parsing the command line."""

    cfg: MindConfig
    seqs: Sequences
    split: Split
    data_label: str
    device: str


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description layout and appends each option's default to its help."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return text + " (default: %(default)s)"


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """--data/--synthetic, --config, --set, --split, --maxlen, --seed, --device, --epochs."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="sequence file, AmazonBook train.txt/dir, or user,item,ts CSV")
    src.add_argument("--synthetic", action="store_true",
                     help="built-in seeded multi-interest generator (2000 users, 1000 items)")
    parser.add_argument("--config", default=None, help="YAML file of MindConfig overrides")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a MindConfig field (repeatable; unknown keys are errors); "
                        "default: none")
    parser.add_argument("--split", default=None,
                        help="JSON {train,valid,test} user lists (default: ComiRec 80/10/10 split)")
    parser.add_argument("--maxlen", type=int, default=None,
                        help=f"history length (default: {MindConfig.maxlen})")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"max epochs (default: {MindConfig.epochs})")
    parser.add_argument("--seed", type=int, default=None,
                        help=f"train seed (default: {MindConfig.seed})")
    parser.add_argument("--device", choices=["auto", "cpu", "gpu"], default=None,
                        help="default: auto = GPU when Paddle sees one, else CPU")
    parser.add_argument("--no-progress", action="store_true", help="disable progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")


def load_inputs(args: argparse.Namespace) -> Inputs:
    """Build the config (defaults < YAML < --set < dedicated flags), read data, make the split."""
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sets = list(args.sets)
    for key in ("maxlen", "epochs", "seed", "device"):
        if getattr(args, key) is not None:
            sets.append(f"{key}={getattr(args, key)}")
    cfg = load_config(args.config, sets)
    device = setup_paddle(cfg)
    if args.synthetic:
        seqs, label = synthetic(), "synthetic"
    else:
        seqs, label = read_any(args.data), str(args.data)
    split = load_split(args.split, seqs) if args.split else comirec_split(seqs)
    return Inputs(cfg, seqs, split, label, device)
