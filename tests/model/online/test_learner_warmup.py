"""Unit test of the online learner's learning-rate warm-up (OnlineConfig.warmup_steps)."""

from __future__ import annotations

import numpy as np
import pytest

from model.config import MindConfig
from model.network import MindUserTower
from model.online.learner import OnlineConfig, OnlineLearner

CFG = MindConfig(dim=8, num_interests=2, maxlen=4, negatives=16, seed=1)


def test_the_lr_ramps_from_a_share_of_lr_to_lr_over_the_warmup_steps() -> None:
    vectors = np.random.default_rng(0).normal(0, 0.3, (20, CFG.dim)).astype(np.float32)
    ocfg = OnlineConfig(lr=0.01, warmup_steps=4, warmup_start=0.2, replay=0, passes=1)
    model = OnlineLearner(CFG, ocfg, MindUserTower(CFG).state_dict(), np.arange(1, 21), vectors)
    seen = []
    for _ in range(6):
        seen.append(model.lr())
        model.step(np.array([[1, 2, 0, 0]]), np.array([3]))
        assert model.opt.get_lr() == pytest.approx(seen[-1])
    assert seen == pytest.approx([0.002, 0.004, 0.006, 0.008, 0.01, 0.01])
    assert OnlineLearner(CFG, OnlineConfig(lr=0.01, warmup_steps=0),
                         MindUserTower(CFG).state_dict(), np.arange(1, 21),
                         vectors).lr() == 0.01  # 0 steps: no warm-up
    assert OnlineLearner(CFG, OnlineConfig(lr=0.01), MindUserTower(CFG).state_dict(),
                         np.arange(1, 21), vectors).lr() == pytest.approx(0.001)  # default: 60
