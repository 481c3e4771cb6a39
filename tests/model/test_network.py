"""Tests for model.network: shapes, routing semantics, masking, determinism, loss."""

from __future__ import annotations

import numpy as np
import paddle

from model.config import MindConfig
from model.network import MindUserTower, RecallModel, YoutubeUserTower, label_aware_readout

CFG = MindConfig(dim=8, num_interests=3, maxlen=5, seed=1, device="cpu")


def _inputs(b: int = 4) -> tuple[paddle.Tensor, paddle.Tensor]:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(b, CFG.maxlen, CFG.dim)).astype("float32")  # [B, L, D]
    mask = np.ones((b, CFG.maxlen), dtype="float32")  # [B, L]
    mask[1, 3:] = 0.0
    emb[1, 3:] = 0.0
    return paddle.to_tensor(emb), paddle.to_tensor(mask)


def test_tower_shapes_and_fixed_routing_init() -> None:
    tower = MindUserTower(CFG)
    emb, mask = _inputs()
    assert tower(emb, mask).shape == [4, 3, 8]
    again = MindUserTower(CFG).routing_init.numpy()  # seeded, identical across instances
    np.testing.assert_array_equal(again, tower.routing_init.numpy())
    names = [n for n, _ in tower.named_parameters()]
    assert "routing_init" not in names and "routing_init" in tower.state_dict()
    assert YoutubeUserTower(CFG)(emb, mask).shape == [4, 1, 8]


def test_padded_positions_do_not_matter() -> None:
    tower = MindUserTower(CFG)
    tower.eval()
    emb, mask = _inputs()
    noisy = emb.numpy().copy()
    noisy[1, 3:] = 100.0  # garbage in masked positions
    a = tower(emb, mask).numpy()
    b = tower(paddle.to_tensor(noisy), mask).numpy()
    np.testing.assert_allclose(a[1], b[1], atol=1e-6)


def test_label_aware_attention_hard_and_soft() -> None:
    caps = paddle.to_tensor(np.eye(3, 4, dtype="float32")[None])  # [1, 3, 4]
    target = paddle.to_tensor(np.array([[0.0, 2.0, 1.0, 0.0]], dtype="float32"))  # [1, 4]
    hard = label_aware_readout(caps, target, float("inf")).numpy()
    np.testing.assert_allclose(hard, [[0, 1, 0, 0]])
    soft = label_aware_readout(caps, target, 1.0).numpy()
    want = np.exp([0.0, 2.0, 1.0]) / np.exp([0.0, 2.0, 1.0]).sum()
    np.testing.assert_allclose(soft[0, :3], want, rtol=1e-5)


def test_loss_is_finite_and_trains() -> None:
    paddle.seed(0)
    model = RecallModel(CFG, num_items=20)
    opt = paddle.optimizer.Adam(learning_rate=0.05, parameters=model.parameters())
    hist = paddle.to_tensor(np.array([[1, 2, 0, 0, 0], [3, 4, 5, 0, 0]], dtype="int64"))
    labels = paddle.to_tensor(np.array([6, 7], dtype="int64"))
    negs = paddle.to_tensor(np.arange(1, 21, dtype="int64"))
    logq = paddle.zeros([21])
    first = float(model.loss(hist, labels, negs, logq))
    for _ in range(30):
        loss = model.loss(hist, labels, negs, logq)
        loss.backward()
        opt.step()
        opt.clear_grad()
    assert np.isfinite(first) and float(loss) < first
    assert model.item_matrix().shape == (20, 8)
