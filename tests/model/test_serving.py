"""Tests for model.export + model.serving: NumPy reference, unknown items, add_items, reload."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import paddle
import pytest

from harness.bench.forward import random_export
from model.config import MindConfig
from model.export import META_FILE, TOWER_FILE, read_latest, write_latest
from model.serving import InterestModel, ModelNotFoundError

ATOL = 1e-5  # float32 Paddle vs float64 NumPy on the same exported weights


def numpy_interests(w: dict[str, np.ndarray], emb: np.ndarray, mask: np.ndarray,
                    iters: int, layer: str) -> np.ndarray:
    """Independent B2I routing: softmax over interests every iteration, masked, squash."""
    u_hat = emb.astype(np.float64) @ w["bilinear"]  # [B, L, D]
    logits = np.broadcast_to(w["routing_init"], (len(emb), *w["routing_init"].shape)).copy()
    caps = np.zeros(0)
    for it in range(iters):
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        weights = e / e.sum(axis=1, keepdims=True) * mask[:, None, :]  # [B, K, L]
        z = weights @ u_hat  # [B, K, D]
        sq = (z * z).sum(-1, keepdims=True)
        caps = z * sq / (1 + sq) / np.sqrt(sq + 1e-9)
        if it < iters - 1:
            logits = logits + caps @ u_hat.transpose(0, 2, 1)
    if layer == "none":
        return caps
    out = caps @ w["dense.weight"] + w["dense.bias"]  # [B, K, D]
    return np.maximum(out, 0.0) if layer == "relu" else out


def test_interests_match_numpy_reference(tiny_export: Path) -> None:
    _check_against_numpy(tiny_export)


@pytest.mark.parametrize("layer", ["relu", "linear"])
def test_dense_variants_match_numpy_reference(tmp_path: Path, layer: str) -> None:
    cfg = MindConfig(interest_layer=layer, routing_init_std=1.0, device="cpu")
    _check_against_numpy(random_export(tmp_path, cfg, num_items=300).parent)


def _check_against_numpy(tiny_export: Path) -> None:
    model = InterestModel.load(tiny_export, device="cpu")
    ids, vecs = model.item_table()
    weights = {k: v.numpy().astype(np.float64) for k, v in
               paddle.load(str(tiny_export / model.version / TOWER_FILE)).items()}
    rng = np.random.default_rng(5)
    hists = [rng.choice(ids, size=n).tolist() for n in (1, 3, model.maxlen, 25)]
    noisy = hists[3][:20] + [10**9] + hists[3][20:]  # an unknown id inside the window
    got, skipped = model.interests(hists[:3] + [noisy])
    row = {int(i): r for r, i in enumerate(ids)}
    emb = np.zeros((4, model.maxlen, model.dim))
    mask = np.zeros((4, model.maxlen))
    for b, h in enumerate(hists):
        tail = h[-model.maxlen:]
        emb[b, : len(tail)] = vecs[[row[i] for i in tail]]
        mask[b, : len(tail)] = 1
    meta = json.loads((tiny_export / model.version / META_FILE).read_text())
    want = numpy_interests(weights, emb, mask, 3, meta["config"]["interest_layer"])
    assert got.shape == (4, model.num_interests, model.dim) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=ATOL)
    assert skipped.tolist() == [0, 0, 0, 1]


def test_unknown_items_zero_rows_and_add_items(tiny_export: Path) -> None:
    model = InterestModel.load(tiny_export, device="cpu")
    ids, vecs = model.item_table()
    known = int(ids[0])
    res = model.interests([[known, 10**9], [10**9 + 1], []])
    assert res.n_skipped.tolist() == [1, 1, 0] and res.n_used.tolist() == [1, 0, 0]
    np.testing.assert_array_equal(res.vectors[1:], 0.0)
    alone = model.interests([[known]]).vectors
    np.testing.assert_allclose(res.vectors[0], alone[0], atol=1e-6)
    model.add_items([10**9, known], np.stack([vecs[1], np.zeros(model.dim)]))
    after = model.interests([[known, 10**9]])
    assert after.n_skipped.tolist() == [0] and after.n_used.tolist() == [2]
    same = model.interests([[known, int(ids[1])]]).vectors  # trained vector kept for `known`
    np.testing.assert_allclose(after.vectors, same, atol=1e-6)
    assert model.streamed_items == 1
    model.remove_items([10**9, known])  # a delete record: the streamed vector goes
    gone = model.interests([[known, 10**9]])
    assert gone.n_skipped.tolist() == [1] and gone.n_used.tolist() == [1]
    assert model.streamed_items == 0
    np.testing.assert_allclose(gone.vectors[0], alone[0], atol=1e-6)  # trained one stays
    with pytest.raises(ValueError):
        model.add_items([1], np.zeros((1, 3)))


def test_load_errors_and_version_dir(tiny_export: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        InterestModel.load(tmp_path / "nothing")
    version = read_latest(tiny_export)
    assert version is not None and (tiny_export / version / META_FILE).exists()
    model = InterestModel.load(tiny_export / version, device="cpu")
    assert model.version == version and model.device == "cpu"
    assert len(model.popular(5)) == 5 and model.popular(3) == model.popular(5)[:3]


def test_reload_if_newer_swaps_while_serving(tiny_export: Path) -> None:
    model = InterestModel.load(tiny_export, device="cpu")
    old = model.version
    assert model.reload_if_newer() is False
    newer = old[:-4] + "zzzz"  # sorts after the current version
    (tiny_export / old).rename(tiny_export / newer)
    meta = (tiny_export / newer / META_FILE).read_text().replace(old, newer)
    (tiny_export / newer / META_FILE).write_text(meta)
    write_latest(tiny_export, newer)
    ids, _ = model.item_table()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(20):
                model.interests([ids[:5].tolist()] * 8)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    assert model.reload_if_newer() is True
    thread.join()
    assert not errors and model.version == newer
