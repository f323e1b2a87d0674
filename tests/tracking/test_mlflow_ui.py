"""The MLflow UI (pinned MLflow 3.17.2) on a trained store, in a real browser: headless Debian
chromium through Playwright, ``mlflow server --workers 1`` on loopback (issue 23, point 1).

MLflow 3.17.2 opens every experiment on the view of its sidebar's workflow switch (GenAI by
default; the experiment tag ``mlflow.experimentKind`` is not read): one click on *Model
training*, remembered by the browser, opens bonemet's experiments on their training runs and
shows the registry (docs/comparing-versions.md). Screenshots of docs/ are made here
(``BONEMET_UPDATE_SCREENSHOT=1``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.browser import CHROMIUM_ARGS, chromium_path
from tests.serving.servers import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SHOTS = {name: REPO / "docs" / f"mlflow-{name}.png" for name in ("runs", "compare", "registry")}
WAIT = 90_000  # ms: the UI's first load on a busy 2-core machine


@pytest.fixture(scope="module")
def mlflow_ui(trained_store):
    from training.config import Settings

    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    store = Settings(data_dir=Path(trained_store["env"]["BONEMET_DATA_DIR"])).tracking_uri
    proc = subprocess.Popen(
        [str(mlflow), "server", "--backend-store-uri", store]
        + ["--workers", "1", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if requests.get(f"{base}/health", timeout=2).ok:
                    break
            except requests.RequestException:  # refused, or too busy to answer yet
                pass
            time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def page(mlflow_ui):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(WAIT)
        yield page
        browser.close()


def _shot(page, name: str, tmp_path: Path) -> None:
    target = SHOTS[name] if os.environ.get("BONEMET_UPDATE_SCREENSHOT") else tmp_path / "s.png"
    page.screenshot(path=str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_click_opens_training_runs_and_the_registry(mlflow_ui, page, tmp_path):
    from playwright.sync_api import expect

    page.goto(f"{mlflow_ui}/")
    registry = page.get_by_role("link", name="Model registry")
    expect(page.get_by_text("Model training", exact=True)).to_be_visible()
    expect(registry).to_have_count(0)  # MLflow's default: the GenAI view, no registry
    page.get_by_text("Model training", exact=True).click()
    expect(registry).to_be_visible()  # the home page shows the registry now
    page.reload()  # remembered by the browser
    expect(registry).to_be_visible()
    page.get_by_role("link", name="Experiments").first.click()
    page.get_by_role("link", name="tests", exact=True).click()
    page.wait_for_url(re.compile(r"#/experiments/\d+"))
    assert "genai" not in page.url and "overview" not in page.url
    # The training runs (each family's run under its training's), named by what and data.
    run = page.get_by_text(re.compile(r"train · 600 patients · data \w+")).first
    expect(run).to_be_visible()
    assert (REPO / "docs" / "comparing-versions.md").read_text().count("Model training") >= 1
    _shot(page, "runs", tmp_path)


def test_two_versions_compared_on_their_headline_metrics(mlflow_ui, page, tmp_path):
    from playwright.sync_api import expect

    page.goto(f"{mlflow_ui}/#/models/bone-metastasis-risk")
    rows = page.get_by_role("checkbox")
    expect(rows.nth(2)).to_be_visible()
    rows.nth(1).check()
    rows.nth(2).check()
    page.get_by_test_id("compareButton").click()
    page.wait_for_url(re.compile(r"compare-model-versions"))
    headline = page.get_by_text("headline/Uno C", exact=True).first
    expect(headline).to_be_visible()
    page.wait_for_timeout(3000)  # the table re-renders once loaded
    page.get_by_text("headline/Uno C", exact=True).first.scroll_into_view_if_needed()
    _shot(page, "compare", tmp_path)


def test_registry_rows_fit_on_one_or_two_lines(mlflow_ui, page, tmp_path):
    """Each version is a row of two tags (its summary: family, headline metrics, data; its
    facts as JSON), not ~280 px of truncated tags (issue 23, point 1). MLflow 3.17.2's table
    shows a line per tag (measured: 24 px each, a row 37 px more)."""
    from playwright.sync_api import expect

    page.goto(f"{mlflow_ui}/#/models/bone-metastasis-risk")
    summary = page.get_by_text(re.compile(r"\w+ · Uno C 0\.\d+ · AUC 24m")).first
    expect(summary).to_be_visible()
    page.wait_for_timeout(2000)  # the table settles once its data is in
    rows = page.get_by_role("row")
    versions = [
        rows.nth(i) for i in range(rows.count()) if "Uno C" in (rows.nth(i).inner_text() or "")
    ]
    assert len(versions) == 3  # two families and the run's stack of them
    _shot(page, "registry", tmp_path)
    heights = [row.bounding_box()["height"] for row in versions]
    line = summary.bounding_box()["height"]
    # Two lines of tags and the padding; the champion's promotion is in its facts.
    assert max(heights) <= 5 * line, (heights, line)
