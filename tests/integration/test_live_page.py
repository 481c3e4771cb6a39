"""The live page on a real stack: a worker process, the API with /live in a uvicorn thread.

Clicks sent from the page go through the broker to the worker; the page must then show the
history the worker wrote to Redis, the interests and the very candidates (with their
attribution) that the worker published. The browser test drives Debian's chromium headless with
Selenium and Debian's chromedriver; it is skipped when they are not installed.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from harness.stack.launch import wait_until
from harness.stack.servers import free_ports
from streams.api.live import LivePage
from streams.api.main import create_api
from streams.recall.core import open_core
from streams.records import Recommendation
from streams.settings import Settings
from tests.integration.conftest import Reader, stream_model_items

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture()
def live_api(worker: Settings, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The API with the live page on a free port, beside a worker, item vectors in Milvus;
    yields its URL and the token it made at start (no RECALL_API_TOKEN, as `recall-api`)."""
    _, items, _ = stream_model_items(worker)
    titles = tmp_path / "titles.csv"
    titles.write_text("itemId,title,genres\n" + "".join(
        f'{i},"Title {i}, the item",x\n' for i in items))
    (port,) = free_ports(1)
    settings = worker.model_copy(update={"live_page": True, "item_titles": str(titles)})
    with open_core(settings) as core:
        app = create_api(core, live=LivePage.from_core(core))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until("live page connected to the broker",
                       lambda: server.started and httpx.get(f"{url}/live/feed").json()["connected"],
                       30)
            yield url, app.state.api_token.get_secret_value()
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def user_state(url: str, user: int, k: int) -> dict[str, Any]:
    response = httpx.get(f"{url}/live/users/{user}", params={"k": k}, timeout=30)
    response.raise_for_status()
    return response.json()


def test_live_routes_show_history_interests_and_the_published_candidates(
        live_api: tuple[str, str], worker: Settings) -> None:
    live_url, token = live_api
    recs = Reader(worker, worker.recs_topic, Recommendation)
    user = uuid.uuid4().int % 10**9 + 1
    catalog = httpx.get(f"{live_url}/live/catalog", params={"limit": 5}).json()
    assert len(catalog) == 5 and all(i["title"].startswith("Title ") for i in catalog[:1])
    clicked = [item["id"] for item in catalog[:3]]
    click = {"user_id": user, "item_id": clicked[0]}
    for headers in ({}, {"X-API-Key": token[:-1]}):  # a click changes state: token only
        refused = httpx.post(f"{live_url}/live/clicks", json=click, headers=headers)
        assert refused.status_code == 401, refused.text
    for item in clicked:
        sent = httpx.post(f"{live_url}/live/clicks", json={"user_id": user, "item_id": item},
                          headers={"X-API-Key": token})
        assert sent.status_code == 200, sent.text
    wait_until("three recommendations", lambda: len(
        [r for r in recs.drain() if r.user_id == user]) == 3, 60)
    last = [r for r in recs.records if r.user_id == user][-1]
    assert last.history == clicked
    state = user_state(live_url, user, worker.top_k)
    assert [i["id"] for i in state["history"]] == clicked  # Redis, oldest first
    assert state["history"][0]["title"] == f"Title {clicked[0]}, the item"
    # the page recalls with the same core as the worker: the same candidates and attribution
    assert [c["id"] for c in state["candidates"]] == last.item_ids
    assert [c["interest"] for c in state["candidates"]] == last.interests
    assert [c["channel"] for c in state["candidates"]] == last.channels
    assert len(state["interests"]) == worker.num_interests
    lists = {it["index"]: [i["id"] for i in it["items"]] for it in state["interests"]}
    for candidate in state["candidates"]:  # MIND's: the index of one of its interests
        assert candidate["interest"] == -1 if candidate["channel"] != "mind" \
            else candidate["interest"] in lists
    assert not set(clicked) & {i for items in lists.values() for i in items}
    feed = httpx.get(f"{live_url}/live/feed").json()
    mine = [e for e in feed["entries"] if e["user_id"] == user]
    assert [e["click"]["id"] for e in mine] == clicked
    assert all(0 < e["latency_ms"] < 30_000 for e in mine)
    assert [i["interest"] for i in mine[-1]["items"]] == last.interests[:5]
    assert [i["channel"] for i in mine[-1]["items"]] == (last.channels or [])[:5]
    refused = httpx.post(f"{live_url}/live/clicks", json={"user_id": 0, "item_id": 1},
                         headers={"X-API-Key": token})
    assert refused.status_code == 422


def browser() -> Any:
    """Headless chromium through chromedriver, or a skip saying what is missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.skip(f"no browser for the live page test: {missing} missing "
                    "(apt-get install chromium chromium-driver; .ci/run installs them)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--disable-gpu"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def ids(driver: Any, selector: str, attribute: str = "data-id") -> list[str]:
    """`attribute` of every element `selector` finds, in page order, read in one script (the
    page re-renders its lists on timers: element handles kept across calls go stale)."""
    return list(driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".map(e => e.getAttribute(arguments[1]) || '')", selector, attribute))


def text_of(driver: Any, selector: str) -> str:
    """The text of the first element `selector` finds ("" if none), read in one script."""
    return str(driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''",
        selector))


def click(driver: Any, selector: str, tries: int = 20) -> None:
    """Click the element `selector` finds, again if the page re-rendered it meanwhile."""
    from selenium.common.exceptions import StaleElementReferenceException

    for attempt in range(tries):
        try:
            driver.find_element("css selector", selector).click()
            return
        except StaleElementReferenceException:
            if attempt == tries - 1:
                raise
            time.sleep(0.1)


def history_of(length: int) -> Callable[[Any], bool]:
    """A wait condition: the page lists `length` clicks of the user."""
    return lambda driver: len(ids(driver, "#history li")) == length


def test_live_page_in_a_browser_updates_interests_and_candidates(live_api: tuple[str, str],
                                                                  worker: Settings) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    live_url, token = live_api
    driver = browser()
    user = uuid.uuid4().int % 10**9 + 1
    try:
        wait = WebDriverWait(driver, 60, poll_frequency=0.2)
        driver.get(f"{live_url}/live")  # without the token a click is refused, and says so
        wait.until(lambda d: len(ids(d, "#catalog button")) >= 3)
        click(driver, "#catalog button")
        wait.until(lambda d: "needs the API token" in text_of(d, "#status"))
        driver.get("about:blank")  # (else the next address is the same page, a new fragment)
        # the link make run prints: the page takes the token and drops it from the address bar
        driver.get(f"{live_url}/live#user={user}&token={token}")
        wait.until(lambda d: len(ids(d, "#catalog button")) >= 3)
        assert token not in driver.current_url and driver.current_url.endswith(f"#user={user}")
        buttons = ids(driver, "#catalog button")
        clicked = [buttons[n] for n in (0, 2)]
        seen: list[list[str]] = []
        for n, item in enumerate(clicked, start=1):
            before = ids(driver, "#candidates li")
            click(driver, f'#catalog button[data-id="{item}"]')
            started = time.monotonic()
            wait.until(history_of(n))
            seen.append(ids(driver, "#candidates li"))
            print(f"click {n}: page updated after {time.monotonic() - started:.2f} s")
            assert ids(driver, "#history li")[0] == item  # newest first
            assert seen[-1] and seen[-1] != before
            assert item not in seen[-1]
        items_per_column = driver.execute_script(
            "return Array.from(document.querySelectorAll('#interests .interest'))"
            ".map(c => c.querySelectorAll('li').length)")
        assert len(items_per_column) == worker.num_interests and all(items_per_column)
        marks = set(ids(driver, "#candidates li", "data-interest"))
        assert marks <= {str(k) for k in range(-1, worker.num_interests)}
        channels = set(ids(driver, "#candidates li", "data-channel"))
        assert channels and channels <= {"mind", "cooccur", "next", "popular"}
        assert driver.execute_script(  # a tag shows (it has a layout box)
            "const t = document.querySelector('#candidates li .tag');"
            "return t !== null && t.offsetParent !== null")
        wait.until(lambda d: len(ids(d, f'#feed tr[data-user="{user}"]')) == len(clicked))
        latency = text_of(driver, f'#feed tr[data-user="{user}"] .latency').strip()
        assert latency.endswith(" ms") and float(latency[:-3]) > 0
        shot = os.environ.get("LIVE_SCREENSHOT")  # where to save a picture of the page
        if shot:
            driver.save_screenshot(shot)
    finally:
        driver.quit()
