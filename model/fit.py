"""Training loop: prefix samples, shared negatives, early stop on valid Recall@50, checkpoints."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import paddle
from tqdm import tqdm

from model.config import MindConfig
from model.data import Sequences
from model.network import RecallModel
from model.ranking_metrics import evaluate_vectors, exact_retriever
from model.split import Split, Vocab, encode, holdout, prefix_samples

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Best model (weights restored), per-epoch log and the best valid metrics."""

    model: RecallModel
    best_epoch: int
    best_valid: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)


def infer_vectors(model: RecallModel, hist_ids: np.ndarray, batch: int = 2048) -> np.ndarray:
    """User vectors for id histories [U, L] -> [U, K, D] float32 (eval mode, no grad)."""
    model.eval()
    outs = []
    with paddle.no_grad():
        for s in range(0, len(hist_ids), batch):
            outs.append(model.user_vectors(paddle.to_tensor(hist_ids[s : s + batch])).numpy())
    model.train()
    return np.concatenate(outs).astype(np.float32)  # [U, K, D]


def evaluate_model(
    model: RecallModel, vocab: Vocab, hists: list[list[int]], targets: list[list[int]], maxlen: int
) -> dict[str, float]:
    """Full-ranking metrics of `model` on held-out (history, targets) pairs."""
    vecs = infer_vectors(model, encode(hists, vocab.index(), maxlen))  # [U, K, D]
    return evaluate_vectors(vecs, targets, exact_retriever(vocab.item_ids, model.item_matrix()))


def negative_table(vocab: Vocab, cfg: MindConfig) -> tuple[np.ndarray, np.ndarray]:
    """(cdf over rows 1..N, logQ [N + 1]) for q(i) ~ (count_i + 1) ** alpha."""
    q = (vocab.counts.astype(np.float64) + 1.0) ** cfg.neg_alpha  # [N]
    q /= q.sum()
    logq = np.zeros(vocab.size + 1, dtype=np.float32)  # [N + 1]
    if cfg.logq_correction and cfg.negatives < vocab.size:
        logq[1:] = np.log(cfg.negatives * q)
    return np.cumsum(q), logq


def _rename_opt_state(model: RecallModel, state: dict, to_structured: bool) -> dict:
    """Optimizer state keys use auto param names; map them to/from structured names."""
    pairs = [(p.name, n) for n, p in model.named_parameters()]
    pairs = [(a, b) if to_structured else (b, a) for a, b in pairs]
    pairs.sort(key=lambda ab: -len(ab[0]))  # longest prefix first
    out = {}
    for key, val in state.items():
        for old, new in pairs:
            if key.startswith(old + "_"):
                key = new + key[len(old):]
                break
        out[key] = val
    return out


def _save_ckpt(path: Path, model: RecallModel, opt: paddle.optimizer.Optimizer,
               state: dict) -> None:
    path.mkdir(parents=True, exist_ok=True)
    paddle.save(model.state_dict(), str(path / f"{model.kind}.pdparams"))
    opt_state = _rename_opt_state(model, opt.state_dict(), to_structured=True)
    paddle.save(opt_state, str(path / f"{model.kind}.pdopt"))
    (path / f"{model.kind}.json").write_text(json.dumps(state))


def train_model(
    seqs: Sequences,
    split: Split,
    vocab: Vocab,
    cfg: MindConfig,
    kind: str = "mind",
    ckpt_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train `kind` ("mind" | "youtube_dnn") on train users; early-stop on valid Recall@50."""
    paddle.seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    index = vocab.index()
    x, y = prefix_samples(seqs, split.train, index, cfg.maxlen)  # [M, L], [M]
    if len(y) == 0:
        raise ValueError("no training samples: train users need sequences of length >= 2")
    v_hist, v_targ = holdout(seqs, split.valid)
    model = RecallModel(cfg, vocab.size, kind)
    opt = paddle.optimizer.Adam(
        learning_rate=cfg.lr, parameters=model.parameters(), weight_decay=cfg.weight_decay or None
    )
    cdf, logq_np = negative_table(vocab, cfg)
    logq = paddle.to_tensor(logq_np)  # [N + 1]
    full_softmax = cfg.negatives >= vocab.size  # negatives >= N: no sampling, full softmax
    all_items = np.arange(1, vocab.size + 1, dtype=np.int64)  # [N]
    state: dict = {"epoch": 0, "best_epoch": 0, "best_valid": {}, "history": [], "stale": 0}
    best_weights = None
    ckpt = Path(ckpt_dir) if ckpt_dir else None
    if resume and ckpt and (ckpt / f"{kind}.json").exists():
        state = json.loads((ckpt / f"{kind}.json").read_text())
        model.set_state_dict(paddle.load(str(ckpt / f"{kind}.pdparams")))
        opt_state = paddle.load(str(ckpt / f"{kind}.pdopt"))
        opt.set_state_dict(_rename_opt_state(model, opt_state, to_structured=False))
        if (ckpt / f"{kind}.best.pdparams").exists():
            best_weights = paddle.load(str(ckpt / f"{kind}.best.pdparams"))
        rng = np.random.default_rng([cfg.seed, state["epoch"]])
        log.info("resumed %s at epoch %d", kind, state["epoch"])
    start = time.monotonic()
    model.train()
    while state["epoch"] < cfg.epochs and state["stale"] < cfg.patience:
        epoch = state["epoch"] + 1
        perm = rng.permutation(len(y))
        bar = tqdm(range(0, len(y), cfg.batch_size), desc=f"{kind} epoch {epoch}",
                   disable=None if progress else True, leave=False, mininterval=1.0)
        total = 0.0
        for step, s in enumerate(bar):
            idx = perm[s : s + cfg.batch_size]
            if full_softmax:
                neg = all_items  # [N] every item: exact softmax
            else:
                neg = 1 + np.searchsorted(cdf, rng.random(cfg.negatives) * cdf[-1])  # [S]
                neg = np.minimum(neg, vocab.size)
            loss = model.loss(paddle.to_tensor(x[idx]), paddle.to_tensor(y[idx]),
                              paddle.to_tensor(neg), logq)
            loss.backward()
            opt.step()
            opt.clear_grad()
            total += float(loss)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{total / (step + 1):.4f}")
        valid = evaluate_model(model, vocab, v_hist, v_targ, cfg.maxlen)
        row = {"epoch": epoch, "loss": total / max(1, len(bar)), **valid}
        state["history"].append(row)
        state["epoch"] = epoch
        if valid["recall@50"] > state["best_valid"].get("recall@50", -1.0):
            state.update(best_epoch=epoch, best_valid=valid, stale=0)
            best_weights = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            state["stale"] += 1
        log.debug("%s epoch %d loss %.4f valid R@50 %.4f HR@50 %.4f", kind, epoch, row["loss"],
                 valid["recall@50"], valid["hitrate@50"])
        if progress:
            tqdm.write(f"{kind} epoch {epoch}: loss {row['loss']:.4f} valid recall@50 "
                       f"{valid['recall@50']:.4f} hitrate@50 {valid['hitrate@50']:.4f}")
        if ckpt:
            _save_ckpt(ckpt, model, opt, state)
            if state["stale"] == 0:
                paddle.save(model.state_dict(), str(ckpt / f"{kind}.best.pdparams"))
        if cfg.max_minutes and time.monotonic() - start > cfg.max_minutes * 60:
            log.warning("%s: stopping after %.1f min (max_minutes)", kind, cfg.max_minutes)
            break
    if best_weights is not None:
        model.set_state_dict(best_weights)
    model.eval()
    return TrainResult(model, state["best_epoch"], state["best_valid"], state["history"])
