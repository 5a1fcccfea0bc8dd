"""The sample run's page in headless Chromium: run page, list, trajectory page, colouring, tooltips, traces.

Colours and tooltips read from the page are compared with `tapes.token_colour` and
`tapes.tooltip`, so the page's script and the Python rules cannot drift apart.
Screenshots go to each test's tmp_path.
"""

from __future__ import annotations

import sys

import pytest

from tests.viewer.browser import open_viewer
from tokenroll.viewer import colours
from tokenroll.viewer.colours import MODES, css_rgb
from tokenroll.viewer.tapes import advantage_scale, build_tapes, token_colour, tooltip

CELL_BACKGROUNDS = """sample => Array.from(
    document.querySelectorAll(`.tape[data-sample="${sample}"] .tok`),
    cell => getComputedStyle(cell).backgroundColor)"""


@pytest.fixture()
def viewer(browser, sample_page):
    page, errors = open_viewer(browser, sample_page)
    yield page
    page.close()
    assert errors == []


def open_trajectory(page, trajectory_id: str) -> None:
    page.click(f'.list-row:has-text("{trajectory_id}")')
    page.wait_for_selector("#trajectory-page:not([hidden])")
    page.wait_for_function("document.getElementById('trajectory-page').dataset.ready !== ''")


def list_ids(page) -> list[str]:
    return page.eval_on_selector_all(".list-row", "rows => rows.map(r => r.children[1].textContent)")


def test_run_page_shows_the_config_figures_and_list(viewer, tmp_path):
    page = viewer
    cards = page.inner_text("#cards")
    assert "Qwen/Qwen2.5-0.5B-Instruct" in cards and "of 6 expected" in cards and "0.3750" in cards
    config = page.inner_text("#config")
    assert "rollouts_per_example" in config and "temperature" in config and "tool-loop" in config
    figure_ids = page.eval_on_selector_all("figure.fig", "figs => figs.map(f => f.id)")
    assert figure_ids == ["fig-rewards", "fig-pass-at-k", "fig-stop-reasons", "fig-turns", "fig-tokens",
                          "fig-time-per-turn", "fig-bridge"]
    rewards = page.eval_on_selector_all("#fig-rewards rect.bar", "bars => bars.map(b => [b.dataset.label, +b.dataset.value])")
    assert rewards == [["0", 2], ["0.5", 1], ["1", 1]]
    bridge = page.eval_on_selector_all("#fig-bridge rect.bar", "bars => bars.map(b => b.dataset.label)")
    assert bridge == ["bridged", "length"]
    assert "action_exact_match" in page.inner_text("#metrics")
    assert page.inner_text("#list-count") == "5 of 5 trajectories"
    assert list_ids(page) == ["multi", "single", "errored", "trace", "chat"]
    page.screenshot(path=str(tmp_path / "run.png"), full_page=True)


def test_the_list_filters_and_sorts(viewer):
    page = viewer
    page.select_option("#f-stop", "env_error")
    assert list_ids(page) == ["errored"]
    page.select_option("#f-stop", "")
    page.select_option("#f-error", "no")
    assert list_ids(page) == ["multi", "single", "trace", "chat"]
    page.select_option("#f-error", "")
    page.fill("#f-example", "1")
    assert list_ids(page) == ["errored", "trace"]
    page.fill("#f-example", "")
    page.fill("#f-rmin", "0.5")
    assert list_ids(page) == ["multi", "trace"]
    assert page.inner_text("#list-count") == "2 of 5 trajectories"
    page.fill("#f-rmin", "")
    page.click('button[data-sort="reward"]')  # first click: highest first, missing rewards last
    assert list_ids(page) == ["multi", "trace", "single", "errored", "chat"]
    page.click('button[data-sort="reward"]')
    assert list_ids(page) == ["single", "errored", "trace", "multi", "chat"]
    page.click('button[data-sort="tokens"]')
    assert list_ids(page) == ["multi", "single", "errored", "trace", "chat"]
    page.check("#f-trace")
    assert list_ids(page) == ["trace"]


def test_trajectory_page_tapes_in_every_colouring_mode(viewer, by_id, tmp_path):
    page = viewer
    open_trajectory(page, "multi")
    tapes = build_tapes(by_id("multi"))
    scale = advantage_scale(tapes)
    assert page.eval_on_selector_all(".sample h4", "hs => hs.map(h => h.textContent)") == [t.title for t in tapes]
    for k, tape in enumerate(tapes):
        assert page.locator(f'.tape[data-sample="{k}"] .tok').count() == len(tape) == [231, 284][k]
    marks = page.eval_on_selector_all('.tape[data-sample="0"] .mark', "ms => ms.map(m => [m.className, m.textContent])")
    assert marks == [["mark mark-step", "step 0 · first turn"], ["mark mark-bridge", "step 1 · bridged"],
                     ["mark mark-truncated", "✂ truncated (length)"]]
    assert page.inner_text('.tape[data-sample="1"] .mark') == "step 2 · re-rendered: length"

    for mode in MODES:
        page.click(f'#modes button[data-mode="{mode}"]')
        assert page.inner_text("#modes button.on") == colours.MODE_LABELS[mode]
        for k, tape in enumerate(tapes):
            shown = page.evaluate(CELL_BACKGROUNDS, k)
            assert shown == [css_rgb(token_colour(tape, i, mode, scale)) for i in range(len(tape))], mode
        page.screenshot(path=str(tmp_path / f"trajectory-multi-{mode}.png"), full_page=True)

    page.click('#modes button[data-mode="loss"]')
    shown = page.evaluate(CELL_BACKGROUNDS, 0)
    masked, trained = css_rgb(colours.FALSE), css_rgb(colours.TRUE)
    assert shown[0] == shown[182] == shown[208] == masked == "rgb(230, 230, 230)"
    assert shown[183] == shown[207] == shown[227] == trained == "rgb(143, 209, 138)"
    assert shown.count(trained) == 25 + 4


def test_hovering_a_token_shows_its_tooltip(viewer, by_id, sample_run):
    page = viewer
    open_trajectory(page, "multi")
    tape = build_tapes(by_id("multi"))[0]
    for position in (230, 216, 0):
        page.hover(f'.tape[data-sample="0"] .tok[data-i="{position}"]')
        page.wait_for_selector("#tip:not([hidden])")
        text = page.inner_text("#tip")
        assert text == tooltip(tape, position, sample_run.vocab)
    page.hover('.tape[data-sample="0"] .tok[data-i="230"]')
    text = page.inner_text("#tip")
    assert "id 606" in text and "role: assistant" in text and "logprob: -0.5000" in text
    assert "advantage: -0.2500" in text and "message: 3" in text
    page.mouse.move(2, 2)
    page.wait_for_selector("#tip", state="hidden")


def test_trace_frames_side_by_side_with_differences_highlighted(viewer, tmp_path):
    page = viewer
    open_trajectory(page, "trace")
    assert page.locator("#trace-table tr[data-row]").count() == 6
    assert page.eval_on_selector_all("#trace-table tr[data-row]", "rows => rows.map(r => r.className)") == [
        "ok", "bad", "bad", "bad", "bad", "bad",
    ]
    assert page.locator("#trace-table td.act-bad").count() == 3  # row 2 on both sides, row 5's extra frame
    assert page.eval_on_selector_all("#trace-table .key-extra", "ks => ks.map(k => k.dataset.key)") == ["y"]
    assert page.eval_on_selector_all("#trace-table .key-missing", "ks => ks.map(k => k.dataset.key)") == ["x"]
    assert page.locator("#trace-table .val-bad").count() == 4  # `total` and the return value, both sides
    metrics = page.inner_text("#trace-metrics")
    assert "state_exact_match" in metrics and "0.25" in metrics
    # A raw-token step: the tape has no attribution, its completion is still the assistant's.
    assert page.locator('.tape[data-sample="0"] .tok').count() == 19
    page.locator("#trace").screenshot(path=str(tmp_path / "trace.png"))


def test_error_text_only_step_and_navigation(viewer):
    page = viewer
    open_trajectory(page, "errored")
    assert "RuntimeError: the tool exploded" in page.inner_text("#error")
    page.click("#next")
    page.wait_for_function("document.getElementById('trajectory-page').dataset.ready === '3'")
    page.click("#next")
    page.wait_for_function("document.getElementById('trajectory-page').dataset.ready === '4'")
    assert "no tokens (a text-only step)" in page.inner_text("#tapes")
    assert page.locator("#next").is_disabled()
    page.click("#back")
    page.wait_for_selector("#run-page:not([hidden])")
    assert page.is_hidden("#trajectory-page")
    assert len(list_ids(page)) == 5


# --- finding the browser (no browser needed) ---------------------------------------------------


def test_no_chromium_is_a_clear_error(monkeypatch):
    from tokenroll.viewer import browser as module

    monkeypatch.delenv(module.CHROMIUM_ENV, raising=False)
    monkeypatch.setattr(module, "SYSTEM_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setattr(module.shutil, "which", lambda name: None)
    with pytest.raises(module.BrowserUnavailable, match="no Chromium found at /nonexistent/chromium or on PATH: "
                                                         "install Debian's chromium package"):
        module.find_chromium()


def test_no_playwright_is_a_clear_error(monkeypatch, tmp_path):
    from tokenroll.viewer import browser as module

    fake = tmp_path / "chromium"
    fake.write_text("")
    monkeypatch.setenv(module.CHROMIUM_ENV, str(fake))
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # import fails
    with pytest.raises(module.BrowserUnavailable, match=r"needs Playwright: pip install 'tokenroll\[viewer\]'"):
        with module.chromium_page():
            pass
