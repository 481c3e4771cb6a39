"""model.online.sim's --set KEY=VALUE overrides, cast to each field's type."""

from __future__ import annotations

import pytest

from model.online.learner import OnlineConfig
from model.online.sim import overrides


def test_values_take_the_field_type_and_booleans_parse_their_words() -> None:
    cfg = overrides(OnlineConfig(), ["lr=0.05", "passes=2", "sparse=true", "new_item_init=random"])
    assert (cfg.lr, cfg.passes, cfg.sparse, cfg.new_item_init) == (0.05, 2, True, "random")
    assert overrides(cfg, ["sparse=False"]).sparse is False  # bool("False") would be True


def test_a_boolean_field_refuses_other_words() -> None:
    with pytest.raises(ValueError, match="sparse takes true or false"):
        overrides(OnlineConfig(), ["sparse=yes"])
