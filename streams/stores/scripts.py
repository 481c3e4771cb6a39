"""The Redis Lua scripts, kept as .lua files in streams/stores/lua/ and read once.

append.lua  appends a micro-batch of clicks to the users' histories and counts co-occurrences
            (its header documents the Redis layout and its arguments)
near.lua    reads the co-occurrence neighbours and followers of a batch's history items
n_of.lua    a helper both include: a line `-- include n_of.lua` is replaced by that file
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

LUA_DIR = Path(__file__).with_name("lua")
INCLUDE = "-- include "
FIRST_CLICK_ARG = 13  # append.lua's ARGV index of the first click's key index
DEFER, ALL = "@defer", "@all"  # append.lua's queue modes in place of a watermark key


@cache
def lua_script(name: str) -> str:
    """The text of `LUA_DIR/name`, its include lines replaced by the files they name."""
    parts = []
    for line in (LUA_DIR / name).read_text().splitlines(keepends=True):
        parts.append(lua_script(line[len(INCLUDE):].strip()) if line.startswith(INCLUDE)
                     else line)
    return "".join(parts)
