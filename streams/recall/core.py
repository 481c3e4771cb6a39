"""Builds the recall core once from Settings: model, Redis history, Milvus index, Recaller."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from model import ranking
from model.cooccur import CooccurConfig
from model.fusion import FusionConfig
from model.serving import InterestModel
from streams.recall.cooccur_reader import CooccurReader
from streams.recall.fused import FusedRecaller, parse_channels
from streams.recall.recaller import Recaller
from streams.security import redact_url
from streams.settings import MilvusSettings, RecallSettings, Settings
from streams.stores.history import HistoryStore
from streams.stores.index import ItemIndex

log = logging.getLogger(__name__)


@dataclass
class Core:
    """The objects every face shares; created by `open_core`, closed when it exits."""

    settings: Settings
    model: InterestModel
    index: ItemIndex
    history: HistoryStore | None
    recaller: Recaller | FusedRecaller

    def load_items(self, batch: int = 10_000) -> int:
        """Upsert the current model's whole item table into Milvus; returns how many items."""
        ids, vectors = self.model.item_table()  # [N], [N, D]
        for start in range(0, len(ids), batch):
            self.index.upsert(ids[start : start + batch].tolist(), vectors[start : start + batch])
        return len(ids)

    def reload_model(self) -> bool:
        """Switch to a newer exported model if there is one, upserting its item vectors unless
        the version says they were streamed to the items topic (an online version)."""
        fresh = self.model.reload_if_newer()
        if fresh and self.model.items_streamed:  # the online trainer sent them to the topic
            log.info("model %s loaded; its changed item vectors come by the items topic",
                     self.model.version)
        elif fresh:
            count = self.load_items()
            log.info("model %s loaded, %d item vectors upserted", self.model.version, count)
        return fresh


def check_model(model: InterestModel, settings: Settings) -> None:
    """Fail early when the exported model does not fit the settings."""
    if model.dim != settings.embedding_dim or model.num_interests != settings.num_interests:
        raise ValueError(
            f"model {model.version} has dim={model.dim}, K={model.num_interests}; "
            f"settings expect dim={settings.embedding_dim}, K={settings.num_interests}"
        )


def search_params(settings: MilvusSettings, index: ItemIndex) -> dict[str, Any] | None:
    """Milvus search parameters from the settings (None: the index type's defaults)."""
    return {"nprobe": settings.milvus_nprobe} if index.index_type == "IVF_FLAT" else None


def cooccur_config(settings: RecallSettings) -> CooccurConfig | None:
    """The counting the channels need (None: none of cooccur, next and popular; transitions
    only with `next`)."""
    channels = set(parse_channels(settings.channels))
    if not {"cooccur", "next", "popular"} & channels:
        return None
    return CooccurConfig(settings.cooccur_window, settings.cooccur_cap,
                         settings.cooccur_half_life_s, settings.cooccur_read,
                         settings.cooccur_pos_decay, settings.cooccur_normalize,
                         next_window=settings.next_window if "next" in channels else 0,
                         next_cap=settings.next_cap, next_read=settings.next_read,
                         next_history=settings.next_history,
                         next_pos_decay=settings.next_pos_decay)


def history_store(settings: Settings) -> HistoryStore:
    """The Redis history store the settings describe (not yet started); it also counts
    co-occurrences when a channel needs them."""
    return HistoryStore(settings.redis_url, history_len=settings.history_len,
                        ttl_s=settings.history_ttl_s,
                        seen_max=settings.seen_max if settings.exclude_seen else 0,
                        username=settings.redis_username, password=settings.redis_password,
                        cluster=settings.redis_cluster,
                        cooccur=None if settings.redis_cluster else cooccur_config(settings),
                        watermark_key=settings.eval_watermark_key,
                        defer_counts=settings.cooccur_defer)


def make_recaller(settings: Settings, model: InterestModel, index: ItemIndex,
                  top_k: int | None = None, history: HistoryStore | None = None
                  ) -> Recaller | FusedRecaller:
    """The recaller the settings describe (`top_k`: instead of the settings' own): MIND alone,
    or the channels fused; co-occurrence and live popularity need `history`'s Redis."""
    mind = Recaller(model, index, top_k or settings.top_k, settings.per_interest_extra,
                    settings.interest_pruning, settings.interest_dedup_cosine,
                    search_params(settings, index), settings.search_extra_cap)
    return fuse_channels(settings, mind, history)


def fuse_channels(settings: Settings, mind: Recaller, history: HistoryStore | None
                  ) -> Recaller | FusedRecaller:
    """`mind` alone, or fused with the other channels the settings name (co-occurrence and
    live popularity read `history`'s Redis; without it popularity is the model's)."""
    channels = parse_channels(settings.channels)
    if channels == ("mind",):
        return mind
    ranking.warm()  # compiles the channels' scoring and merge loop (cached on disk) now
    reader = None
    if history is not None and history.cooccur is not None:
        reader = CooccurReader(history.client, history.cooccur, history.co_prefix,
                               settings.cooccur_cache_s, settings.cooccur_refresh)
        reader.start()
    count = history.count_due if history is not None and history.defer_counts else None
    return FusedRecaller(mind, channels, fusion_config(settings), reader,
                         settings.fusion_list_len, count, settings.record_channel_lists)


def fusion_config(settings: RecallSettings) -> FusionConfig:
    """The fusion weights the settings give."""
    return FusionConfig(mind=settings.fusion_mind, cooccur=settings.fusion_cooccur,
                        next=settings.fusion_next, popular=settings.fusion_popular,
                        k0=settings.fusion_k0)


@contextmanager
def open_core(settings: Settings, with_history: bool = True) -> Iterator[Core]:
    """Load the model, connect and ping Redis and Milvus; close everything on exit."""
    with ExitStack() as stack:
        model = InterestModel.load(settings.model_dir, device=settings.device)
        check_model(model, settings)
        index = ItemIndex(settings.milvus_uri, settings.milvus_collection, model.dim,
                          settings.milvus_index, token=settings.milvus_token,
                          build_params=settings.build_params(),
                          consistency=settings.milvus_consistency)
        stack.callback(index.close)
        index.start()
        history = None
        if with_history:
            history = history_store(settings)
            stack.callback(history.close)
            history.start()
        recaller = make_recaller(settings, model, index, history=history)
        if isinstance(recaller, FusedRecaller):
            stack.callback(recaller.close)
        log.info("core ready: model %s on %s, %s, %s", model.version, model.device,
                 redact_url(settings.milvus_uri),
                 redact_url(settings.redis_url) if with_history else "no redis")
        yield Core(settings, model, index, history, recaller)
