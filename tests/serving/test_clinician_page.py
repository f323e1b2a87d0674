"""The clinician's page in a real browser: headless Debian chromium driven by Playwright.

The page is served by the real ``bonemet serve`` (the shared ``server`` fixture; a second
server with a bearer token for the token prompt), and every number it shows is checked
against the JSON API's own answer for the same patient. ``scripts/browser-test-deps.sh`` (run
by ``scripts/test.sh``) installs chromium and the axe-core accessibility checker.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from tests.browser import CHROMIUM_ARGS, chromium_path
from tests.serving.servers import free_port, running_server

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / ".cache" / "axe-core" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOT = REPO / "docs" / "clinician.png"
TABLET = {"width": 1024, "height": 1366}  # a 12.9-inch tablet, portrait
PATIENT = {
    "patient_id": "P0001",
    "age_years": 54,
    "disease_setting": "metastatic",
    "bone_metastasis_at_enrollment": False,
    "menopausal_status": "post",
    "er_status": "positive",
    "pr_status": "positive",
    "her2_status": "negative",
    "ki67_percent": 20,
    "histologic_grade": 2,
    "tumor_size_mm": 25,
    "positive_lymph_nodes": 2,
    "visceral_metastasis": False,
    "oc_positive_percent": 0.061,
}
#: The required fields and the marker only: too little to show a number.
FIVE_FIELDS = {
    "patient_id": "P0005",
    "age_years": 54,
    "disease_setting": "metastatic",
    "bone_metastasis_at_enrollment": False,
    "oc_positive_percent": 0.061,
}
#: Early disease, postmenopausal, no bone-targeted agent: the trials' benefit applies.
EARLY_POST = dict(
    PATIENT,
    patient_id="P0002",
    disease_setting="early",
    bone_targeted_therapy="none",
    endocrine_therapy=True,
    chemotherapy=False,
)
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A fresh Chromium profile per module; each test opens its own context."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    # bypass_csp: only so that the accessibility test can inject axe-core into the page.
    context = browser.new_context(viewport=TABLET, bypass_csp=True)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda err: errors.append(str(err)))
    yield page
    context.close()
    assert errors == [], errors  # no script error on any page


def url(base: str, fields: dict, **extra) -> str:
    params = {k: str(v).lower() if isinstance(v, bool) else v for k, v in fields.items()}
    return f"{base}/clinician?{urlencode({**params, **extra})}"


def api_answer(base: str, record: dict, months: float, headers: dict | None = None) -> dict:
    r = requests.post(
        f"{base}/predict",
        json={"patients": [record], "horizons_months": [months]},
        headers=headers or {},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    (pred,) = r.json()["predictions"]
    (bm,) = pred["bone_metastasis_probability"]
    return {
        "bm": bm["probability"],
        "low": bm["low"],
        "high": bm["high"],
        "death": pred["death_probability"][0]["probability"],
        "answer": pred,
    }


def headline_text(truth: dict, within: str) -> str:
    n, low, high = (round(100 * truth[k]) for k in ("bm", "low", "high"))
    return (
        f"{n} out of 100 women like this develop bone metastasis within {within}, "
        f"likely between {low} and {high}."
    )


def wait_for_result(page) -> str:
    page.wait_for_selector("#headline:not(:empty)", timeout=30_000)
    return page.inner_text("#headline")


def icon_counts(page) -> dict[str, int]:
    return {
        kind: page.locator(f"#icons [data-kind='{kind}']").count()
        for kind in ("bm", "death", "neither")
    }


def test_url_prefill_shows_the_result_on_load_equal_to_the_api(server, page):
    page.goto(url(server, PATIENT, horizon_months=24))
    headline = wait_for_result(page)
    # Every field given in the link is in the form.
    assert page.input_value("#f-age_years") == "54"
    assert page.input_value("#f-disease_setting") == "metastatic"
    assert page.input_value("#f-bone_metastasis_at_enrollment") == "false"
    assert page.input_value("#f-oc_positive_percent") == "0.061"
    assert page.input_value("#f-horizon_months") == "24"
    truth = api_answer(server, PATIENT, 24)
    n = round(100 * truth["bm"])
    assert headline == headline_text(truth, "2 years")
    counts = icon_counts(page)
    assert sum(counts.values()) == 100
    assert counts["bm"] == n
    assert counts["death"] == min(round(100 * truth["death"]), 100 - n)
    text = page.inner_text("#icon-text")
    assert f"{counts['bm']} develop bone metastasis" in text
    assert f"{counts['death']} die before any bone metastasis" in text
    assert f"{counts['neither']} have neither" in text
    # Curves of both over 5 years, reasons, every warning, the model, the notice.
    assert page.locator("#curves polyline").count() == 2
    assert page.locator("#curve-table tbody tr").count() == 5
    assert page.locator("#reasons li").count() >= 1
    missing = page.locator("#missing li").all_inner_texts()
    assert any(m.startswith("Alkaline phosphatase") for m in missing)
    assert "version" in page.inner_text("#model-text")
    assert "trained 20" in page.inner_text("#model-text")
    assert page.is_visible("#research-notice")
    card = requests.get(server + page.get_attribute("#card-link", "href"), timeout=10)
    assert card.status_code == 200 and card.text.startswith("# Model card")
    assert card.headers["content-type"].startswith("text/markdown")


@pytest.mark.parametrize("months", [12, 60])
def test_n_and_the_three_counts_follow_the_api_at_each_horizon(server, page, months):
    record = dict(PATIENT, disease_setting="early", er_status="negative", age_years=67)
    page.goto(url(server, record, horizon_months=months))
    headline = wait_for_result(page)
    truth = api_answer(server, record, months)
    n = round(100 * truth["bm"])
    years = months // 12
    assert headline == headline_text(truth, f"{years} year{'s' if years > 1 else ''}")
    counts = icon_counts(page)
    assert sum(counts.values()) == 100 and counts["bm"] == n


def test_form_round_trip_with_the_keyboard(server, page):
    page.goto(f"{server}/clinician")
    assert page.inner_text("#headline") == ""  # nothing to show without the required fields
    page.keyboard.press("Tab")  # the skip link comes first
    assert page.evaluate("document.activeElement.textContent") == "Skip to the result"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "f-patient_id"
    page.keyboard.type("WEB-7")
    page.keyboard.press("Tab")
    page.keyboard.type("61")
    page.select_option("#f-disease_setting", "early")
    page.select_option("#f-bone_metastasis_at_enrollment", "false")
    page.select_option("#f-her2_status", "positive")
    page.select_option("#f-er_status", "negative")
    page.select_option("#f-pr_status", "negative")
    page.select_option("#f-menopausal_status", "pre")
    page.fill("#f-tumor_size_mm", "18")
    page.fill("#f-positive_lymph_nodes", "0")
    page.fill("#f-histologic_grade", "3")
    page.fill("#f-oc_positive_percent", "0.05")
    page.click("#add-draw")
    page.fill("#d0-day", "120")
    page.fill("#d0-oc_positive_percent", "0.08")
    page.select_option("#f-horizon_months", "48")
    page.focus("#f-age_years")
    page.keyboard.press("Enter")  # submits the form
    headline = wait_for_result(page)
    record = {
        "patient_id": "WEB-7",
        "age_years": 61,
        "disease_setting": "early",
        "bone_metastasis_at_enrollment": False,
        "her2_status": "positive",
        "er_status": "negative",
        "pr_status": "negative",
        "menopausal_status": "pre",
        "tumor_size_mm": 18,
        "positive_lymph_nodes": 0,
        "histologic_grade": 3,
        "oc_positive_percent": 0.05,
        "oc_measurements": [{"day": 120, "oc_positive_percent": 0.08}],
    }
    assert headline == headline_text(api_answer(server, record, 48), "4 years")
    warnings = page.locator("#warnings li").all_inner_texts()
    assert any("draw of day 120" in w for w in warnings) or any("landmark" in w for w in warnings)
    # The address bar now holds a link to this result: opening it shows the same answer.
    link = page.url
    assert "patient_id=WEB-7" in link and "horizon_months=48" in link
    page.goto(link)
    assert wait_for_result(page) == headline
    assert page.input_value("#d0-day") == "120"


def test_bone_metastasis_at_enrollment_shows_the_warning_not_a_risk(server, page):
    record = dict(PATIENT, bone_metastasis_at_enrollment=True)
    page.goto(url(server, record))
    headline = wait_for_result(page)
    assert headline.startswith("bone metastasis present at enrollment")
    assert page.locator("#icons [data-kind]").count() == 0 or not page.is_visible("#icons")


def test_field_errors_next_to_their_fields_in_the_clinicians_words(server, page):
    bad = dict(PATIENT, age_years=17, er_status="pos", disease_setting="early")
    bad["visceral_metastasis"] = True
    page.goto(url(server, bad, horizon_months=7))
    # A horizon outside 1-5 years is refused before anything is sent.
    assert "must be 1, 2, 3, 4 or 5 years" in page.inner_text("#f-horizon_months-error")
    page.select_option("#f-horizon_months", "36")
    page.click("#submit")
    page.wait_for_selector("#f-age_years-error:not([hidden])", timeout=30_000)
    answer = requests.post(
        f"{server}/predict",
        json={"patients": [{**bad, "bone_metastasis_at_enrollment": False}]},
        timeout=30,
    )
    assert answer.status_code == 400
    messages = {d["loc"][-1]: d["msg"] for d in answer.json()["detail"]}
    # What is wrong and what to type, not the validator's words.
    plain = {"age_years": "Must be at least 18.", "er_status": "Choose one of the options in the list."}
    assert "greater than or equal to 18" in messages["age_years"]
    for field in ("age_years", "er_status"):
        assert page.inner_text(f"#f-{field}-error") == plain[field], field
        assert page.get_attribute(f"#f-{field}", "aria-invalid") == "true"
        # The error is read with the field (aria-describedby).
        assert f"f-{field}-error" in page.get_attribute(f"#f-{field}", "aria-describedby")
    assert page.is_visible("#error-summary")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert page.inner_text("#headline") == ""


@pytest.fixture(scope="module")
def token_server(trained_store, tmp_path_factory):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(trained_store["env"], BONEMET_API_TOKEN="s3cret-token")
    cmd = [sys.executable, "-m", "training.cli", "serve", "--port", str(port)]
    log = tmp_path_factory.mktemp("token-server") / "server.log"
    with running_server(cmd, env, trained_store["dir"], f"{base}/readyz", log):
        yield base


def test_token_prompt_and_session_storage(token_server, page):
    page.goto(url(token_server, PATIENT, horizon_months=36))
    page.wait_for_selector("#token-panel:not([hidden])", timeout=30_000)
    assert page.evaluate("document.activeElement.id") == "token"
    page.fill("#token", "wrong")
    page.keyboard.press("Enter")
    page.wait_for_selector("#token-error:not([hidden])", timeout=30_000)
    assert "not accepted" in page.inner_text("#token-error")
    page.fill("#token", "s3cret-token")
    page.keyboard.press("Enter")
    headline = wait_for_result(page)
    auth = {"Authorization": "Bearer s3cret-token"}
    n = round(100 * api_answer(token_server, PATIENT, 36, auth)["bm"])
    assert headline.startswith(f"{n} out of 100")
    assert page.evaluate("sessionStorage.getItem('bonemet-api-token')") == "s3cret-token"
    assert page.evaluate("localStorage.length") == 0  # kept for the session only
    # A new browser session asks again.
    other = page.context.browser.new_context(viewport=TABLET)
    try:
        fresh = other.new_page()
        fresh.goto(url(token_server, PATIENT))
        fresh.wait_for_selector("#token-panel:not([hidden])", timeout=30_000)
    finally:
        other.close()


def axe_violations(page) -> list[dict]:
    if not AXE.exists():
        pytest.fail(f"{AXE} missing: run bash scripts/browser-test-deps.sh")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


def test_no_serious_accessibility_violations(server, page):
    # With a result, then with field errors (axe-core, WCAG 2.x A and AA rules).
    page.goto(url(server, PATIENT, horizon_months=36))
    wait_for_result(page)
    page.click("#add-draw")
    page.click("details > summary")
    assert axe_violations(page) == []
    page.goto(url(server, dict(PATIENT, age_years=17)))
    page.wait_for_selector("#f-age_years-error:not([hidden])", timeout=30_000)
    assert axe_violations(page) == []


def test_the_page_loads_nothing_from_elsewhere(server, page):
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(url(server, PATIENT))
    wait_for_result(page)
    assert requested and all(u.startswith(server) or u.startswith("data:") for u in requested)
    assert not any("axe" in u for u in requested)


def test_screenshot_in_docs_is_what_the_page_shows(server, page, tmp_path):
    """docs/clinician.png, shown by the README, is made here (BONEMET_UPDATE_SCREENSHOT=1):
    a tablet in landscape, form and result side by side."""
    import os

    page.set_viewport_size({"width": TABLET["height"], "height": TABLET["width"]})
    page.goto(url(server, PATIENT, horizon_months=36))
    wait_for_result(page)
    target = SCREENSHOT if os.environ.get("BONEMET_UPDATE_SCREENSHOT") else tmp_path / "page.png"
    page.screenshot(path=str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert SCREENSHOT.exists()
    assert "docs/clinician.png" in (REPO / "README.md").read_text()


def test_page_fields_cover_the_contract():
    from features.schema import OUTCOME_COLUMNS, PATIENT_COLUMNS, PROVENANCE_COLUMNS
    from serving.clinician import LABELS, page_fields, render_page

    fields = page_fields()
    names = {f["name"] for f in fields["patient"] + fields["marker"]}
    left_out = {*OUTCOME_COLUMNS, *PROVENANCE_COLUMNS}  # provenance: never a predictor
    assert names == {c.name for c in PATIENT_COLUMNS if c.name not in left_out}
    assert not {f["name"] for f in fields["draw"]} & set(PROVENANCE_COLUMNS)
    assert all(name in LABELS for name in names)
    assert fields["horizons_months"] == [12, 24, 36, 48, 60]
    page = render_page()
    embedded = page.split('id="fields">', 1)[1].split("</script>", 1)[0]
    assert json.loads(embedded) == fields


def explain_answer(base: str, record: dict, months: float) -> dict:
    r = requests.post(
        f"{base}/explain", json={"patients": [record], "horizons_months": [months]}, timeout=30
    )
    assert r.status_code == 200, r.text
    assert r.json()["interval_level"] == 0.9
    return r.json()["predictions"][0]


def test_competing_event_named_as_what_it_is(server, page):
    page.goto(url(server, PATIENT, horizon_months=36))
    wait_for_result(page)
    body = page.inner_text("body")
    assert "other causes" not in body
    assert "die before any bone metastasis (from any cause" in page.inner_text("#subline")
    assert page.is_visible("#competing-note")
    assert "can no longer develop bone metastasis" in page.inner_text("#competing-note")
    legend = page.locator("#curve-legend li").all_inner_texts()
    assert any(t.startswith(" Death before any bone metastasis") or
               "Death before any bone metastasis" in t for t in legend)


def test_five_fields_too_uncertain_and_what_to_fill(server, page):
    page.goto(url(server, FIVE_FIELDS, horizon_months=24))
    headline = wait_for_result(page)
    truth = explain_answer(server, FIVE_FIELDS, 24)
    assert truth["too_uncertain"] is True
    assert headline.startswith("Too uncertain to show a number")
    assert page.inner_text("#headline").find(" out of 100") < 0
    assert not page.is_visible("#icons")
    # The missing fields, the one that could change the answer most first, as the API says.
    items = page.locator("#missing li")
    assert [items.nth(k).get_attribute("data-input") for k in range(items.count())] == [
        m["input"] for m in truth["missing_inputs"]
    ]
    first = truth["missing_inputs"][0]
    assert items.nth(0).get_attribute("data-low") == str(round(100 * first["low"]))
    assert items.nth(0).get_attribute("data-high") == str(round(100 * first["high"]))
    # A missing field is never a reason.
    reasons = " ".join(page.locator("#reasons li").all_inner_texts())
    assert "imputed" not in reasons and "missing" not in reasons
    assert all(e["value"] != "missing (imputed)" for e in truth["explanation"])
    # Its link leads to the field.
    items.nth(0).locator("a").click()
    assert page.evaluate("document.activeElement.id") == f"f-{first['input']}"


def test_interval_and_treatment_benefit_for_an_early_postmenopausal_patient(server, page):
    page.goto(url(server, EARLY_POST, horizon_months=36))
    headline = wait_for_result(page)
    truth = api_answer(server, EARLY_POST, 36)
    assert headline == headline_text(truth, "3 years")
    assert page.get_attribute("#headline", "data-low") == str(round(100 * truth["low"]))
    (benefit,) = truth["answer"]["treatment_benefit"]
    assert benefit["treatment"] == "adjuvant_bisphosphonate" and benefit["relative_risk"] == 0.72
    (treated,) = benefit["bone_metastasis_probability"]
    shown = page.locator("#treatment .treatment")
    assert shown.get_attribute("data-n") == str(round(100 * treated["probability"]))
    assert shown.get_attribute("data-low") == str(round(100 * treated["low"]))
    assert shown.get_attribute("data-high") == str(round(100 * treated["high"]))
    text = page.inner_text("#treatment")
    assert "With adjuvant bisphosphonate:" in text and "instead of" in text
    assert "EBCTCG" in text and "0.72" in text and "0.6-0.86" in text


def test_no_treatment_benefit_for_a_premenopausal_patient_and_why(server, page):
    record = dict(EARLY_POST, menopausal_status="pre")
    page.goto(url(server, record, horizon_months=36))
    wait_for_result(page)
    truth = api_answer(server, record, 36)["answer"]
    assert truth["treatment_benefit"] == []
    assert page.locator("#treatment .treatment").count() == 0
    line = page.inner_text("#treatment-none")
    assert truth["treatment_benefit_note"] in line and "not postmenopausal" in line


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1366x768", "phone"])
def test_headline_in_view_and_focused_after_show_the_risk(server, page, viewport):
    page.set_viewport_size(viewport)
    page.goto(url(server, PATIENT, horizon_months=24))
    wait_for_result(page)
    page.evaluate("window.scrollTo(0, 0)")
    page.fill("#f-age_years", "55")
    page.click("#submit")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'headline'")
    box = page.evaluate(
        "(() => { const r = document.getElementById('headline').getBoundingClientRect();"
        " return {top: r.top, bottom: r.bottom}; })()"
    )
    assert -1 <= box["top"] and box["bottom"] <= viewport["height"], box  # sub-pixel scroll


def test_errors_in_the_clinicians_words_and_decimal_commas(server, page):
    record = dict(PATIENT, oc_positive_percent="0,061")
    page.goto(url(server, record, horizon_months=24))
    headline = wait_for_result(page)  # 0,061 is read as 0.061
    assert headline == headline_text(api_answer(server, PATIENT, 24), "2 years")
    page.fill("#f-patient_id", "-A1 x")
    page.fill("#f-alkaline_phosphatase_u_per_l", "1,000")  # a thousands separator? explained
    page.click("#submit")
    page.wait_for_selector("#f-patient_id-error:not([hidden])", timeout=30_000)
    id_error = page.inner_text("#f-patient_id-error")
    assert "letters, digits, _ or -" in id_error
    assert "pattern" not in id_error and "^" not in id_error
    alp_error = page.inner_text("#f-alkaline_phosphatase_u_per_l-error")
    assert "Type a number" in alp_error and "0,05" in alp_error
    assert "valid number" not in page.inner_text("#error-summary")


def test_accuracy_population_and_the_model_card_page(server, page):
    page.goto(url(server, PATIENT))
    wait_for_result(page)
    details = requests.get(f"{server}/model", timeout=10).json()
    page.wait_for_selector("#model-population:not(:empty)")
    accuracy = page.inner_text("#model-accuracy")
    c = details["performance"]["uno_c"]
    assert f"C-index {c['estimate']:.2f} (95% CI {c['low']:.2f} to {c['high']:.2f})" in accuracy
    assert "calibration slope at 2 years" in accuracy
    population = page.inner_text("#model-population")
    dev = details["development"]
    assert f"Developed on {dev['patients']:,} patients" in population
    assert f"{dev['bone_metastases']} first bone metastases" in population
    # The card as a page, as a browser asks for it.
    page.goto(f"{server}/model/card")
    assert page.locator("h1").inner_text().startswith(
        f"Model card: bone-metastasis-risk version {details['version']}"
    )
    text = page.inner_text("body")
    assert f"Version: {details['version']}" in text and "not available" not in text.split(
        "Training-data digest"
    )[0]
    assert "Data contract version: 1.2" in text
    assert page.locator("table").count() >= 1
    markdown = requests.get(
        f"{server}/model/card", headers={"Accept": "text/markdown"}, timeout=10
    )
    assert markdown.text.startswith("# Model card") and f"**Version**: {details['version']}" in markdown.text
