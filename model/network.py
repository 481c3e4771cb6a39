"""MIND in Paddle: B2I routing tower, YouTube-DNN tower, label-aware attention, sampled softmax."""

from __future__ import annotations

import math

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn

from model.config import MindConfig


def squash(z: paddle.Tensor) -> paddle.Tensor:
    """Capsule squash: |z|^2 / (1 + |z|^2) * z / |z| along the last axis."""
    sq = paddle.sum(z * z, axis=-1, keepdim=True)  # [B, K, 1]
    return z * (sq / (1.0 + sq) / paddle.sqrt(sq + 1e-9))  # [B, K, D]


class MindUserTower(nn.Layer):
    """Multi-interest extractor: shared bilinear map S, B2I routing, optional dense layer.

    Default `interest_layer="none"`: the squashed capsules are the interests (their length
    encodes interest strength); a dense layer on top overfit in our Beauty experiments.

    Input is history item EMBEDDINGS (not ids) so serving can feed streamed item vectors.
    """

    def __init__(self, cfg: MindConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, k, length = cfg.dim, cfg.num_interests, cfg.maxlen
        self.bilinear = self.create_parameter(
            [d, d], default_initializer=nn.initializer.XavierUniform()
        )  # S: [D, D]
        init = np.random.default_rng(cfg.seed).normal(0.0, cfg.routing_init_std, (k, length))
        self.register_buffer(
            "routing_init", paddle.to_tensor(init.astype("float32")), persistable=True
        )  # [K, L] fixed routing logits, not trained
        self.dense = nn.Linear(d, d) if cfg.interest_layer != "none" else None

    def forward(self, hist: paddle.Tensor, mask: paddle.Tensor) -> paddle.Tensor:
        k = self.cfg.num_interests
        u_hat = paddle.matmul(hist, self.bilinear)  # [B, L, D]
        u_hat_fixed = u_hat.detach()  # [B, L, D] no gradient through routing iterations
        m = mask.unsqueeze(1)  # [B, 1, L]
        logits = self.routing_init.unsqueeze(0).tile([hist.shape[0], 1, 1])  # [B, K, L]
        kmask = None
        if self.cfg.dynamic_k:
            n = paddle.sum(mask, axis=1, keepdim=True)  # [B, 1]
            k_u = paddle.clip(paddle.floor(paddle.log2(paddle.clip(n, min=1.0))), 1.0, k)  # [B, 1]
            ks = paddle.arange(k, dtype="float32").unsqueeze(0)  # [1, K]
            kmask = paddle.cast(ks < k_u, "float32")  # [B, K] 1 = capsule in use
            logits = logits - (1.0 - kmask.unsqueeze(-1)) * 1e9  # [B, K, L] extras get no items
        caps = None
        for it in range(self.cfg.routing_iters):
            w = F.softmax(logits, axis=1) * m  # [B, K, L] softmax over interests, pads -> 0
            last = it == self.cfg.routing_iters - 1
            z = paddle.matmul(w, u_hat if last else u_hat_fixed)  # [B, K, D]
            caps = squash(z)  # [B, K, D]
            if not last:
                delta = paddle.matmul(caps, u_hat_fixed, transpose_y=True)  # [B, K, L]
                logits = logits + delta  # [B, K, L]
        assert caps is not None and caps.shape[1] == k
        if self.dense is not None:
            caps = self.dense(caps)  # [B, K, D]
            if self.cfg.interest_layer == "relu":
                caps = F.relu(caps)  # [B, K, D]
        if kmask is not None:
            keep = kmask.unsqueeze(-1)  # [B, K, 1]
            caps = caps * keep + caps[:, :1] * (1.0 - keep)  # [B, K, D] extras = capsule 0
        return caps  # [B, K, D]


class YoutubeUserTower(nn.Layer):
    """Single-interest baseline: masked mean of history embeddings, one dense ReLU layer."""

    def __init__(self, cfg: MindConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.dense = nn.Linear(cfg.dim, cfg.dim)

    def forward(self, hist: paddle.Tensor, mask: paddle.Tensor) -> paddle.Tensor:
        m = mask.unsqueeze(-1)  # [B, L, 1]
        mean = paddle.sum(hist * m, axis=1) / paddle.clip(paddle.sum(m, axis=1), min=1.0)  # [B, D]
        return F.relu(self.dense(mean)).unsqueeze(1)  # [B, 1, D]


def label_aware_readout(caps: paddle.Tensor, target: paddle.Tensor, pow_p: float) -> paddle.Tensor:
    """Label-aware attention: softmax_k(sign(s)|s|^p) with s = <v_k, e_target>; p=inf -> argmax."""
    scores = paddle.matmul(caps, target.unsqueeze(-1)).squeeze(-1)  # [B, K]
    if math.isinf(pow_p):
        att = F.one_hot(paddle.argmax(scores, axis=1), caps.shape[1])  # [B, K]
    else:
        powed = paddle.sign(scores) * paddle.pow(paddle.abs(scores) + 1e-12, pow_p)  # [B, K]
        att = F.softmax(powed, axis=1)  # [B, K]
    return paddle.sum(caps * att.unsqueeze(-1), axis=1)  # [B, D]


def sampled_softmax_loss(
    user: paddle.Tensor,
    pos: paddle.Tensor,
    pos_ids: paddle.Tensor,
    neg: paddle.Tensor,
    neg_ids: paddle.Tensor,
    neg_logq: paddle.Tensor,
    pos_logq: paddle.Tensor,
) -> paddle.Tensor:
    """Softmax over [positive, shared negatives]; logQ-corrected; accidental hits masked."""
    pos_logit = paddle.sum(user * pos, axis=-1, keepdim=True) - pos_logq.unsqueeze(-1)  # [B, 1]
    neg_logit = paddle.matmul(user, neg, transpose_y=True) - neg_logq.unsqueeze(0)  # [B, S]
    hit = paddle.equal(pos_ids.unsqueeze(-1), neg_ids.unsqueeze(0))  # [B, S]
    neg_logit = paddle.where(hit, paddle.full_like(neg_logit, -1e9), neg_logit)  # [B, S]
    logits = paddle.concat([pos_logit, neg_logit], axis=1)  # [B, 1 + S]
    labels = paddle.zeros([user.shape[0]], dtype="int64")  # [B]
    return F.cross_entropy(logits, labels)  # [] mean over the batch


class RecallModel(nn.Layer):
    """Item embedding table (row 0 = padding) + a user tower (MIND or YouTube-DNN)."""

    def __init__(self, cfg: MindConfig, num_items: int, kind: str = "mind",
                 sparse: bool = False) -> None:
        """`sparse`: the table's gradient holds only the rows a batch used (with a lazy
        optimizer, a step costs the batch's rows, not the whole table)."""
        super().__init__()
        self.cfg, self.kind = cfg, kind
        self.items = nn.Embedding(
            num_items + 1, cfg.dim, padding_idx=0, sparse=sparse,
            weight_attr=nn.initializer.Normal(0.0, 1.0 / math.sqrt(cfg.dim)),
        )  # [N + 1, D]
        self.tower = MindUserTower(cfg) if kind == "mind" else YoutubeUserTower(cfg)

    def user_vectors(self, hist_ids: paddle.Tensor) -> paddle.Tensor:
        mask = paddle.cast(hist_ids > 0, "float32")  # [B, L]
        return self.tower(self.items(hist_ids), mask)  # [B, K, D]

    def loss(
        self, hist_ids: paddle.Tensor, labels: paddle.Tensor, neg_ids: paddle.Tensor,
        logq: paddle.Tensor,
    ) -> paddle.Tensor:
        caps = self.user_vectors(hist_ids)  # [B, K, D]
        pos = self.items(labels)  # [B, D]
        user = label_aware_readout(caps, pos, self.cfg.pow_p)  # [B, D]
        neg = self.items(neg_ids)  # [S, D]
        return sampled_softmax_loss(
            user, pos, labels, neg, neg_ids,
            paddle.gather(logq, neg_ids), paddle.gather(logq, labels),
        )

    def item_matrix(self) -> np.ndarray:
        """Item vectors without the padding row -> [N, D] float32."""
        return self.items.weight.numpy()[1:].astype(np.float32)  # [N, D]
