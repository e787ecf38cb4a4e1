"""The web page in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium).

The page is served by the same `mprl serve` as tests/test_serve.py. The test opens it,
checks the runs, the paradigm panels with phase boundaries and the lineage graph, clicks a
checkpoint that has no video yet, sees the recording's progress, and waits for a playing
<video>. The screenshot is saved under artifacts/test_web/ (printed).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from test_serve import REPO, release_app, served_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = REPO / "artifacts" / "test_web"


@pytest.fixture(scope="module")
def app(request, ray_local, tmp_path_factory):
    yield served_app(ray_local, tmp_path_factory)
    release_app(request)


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), "install Debian's chromium and chromium-driver (see .ci/run)"
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1400,1300",
                 "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(driver, script: str, timeout: float = 60.0, what: str = ""):
    """Poll a JavaScript expression until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return ({script});")
        if value:
            return value
        if time.monotonic() > deadline:
            status = driver.execute_script("const s = document.querySelector('#video-status'); return s ? s.textContent : null;")
            raise AssertionError(f"timed out waiting for {what or script} (video status: {status!r})")
        time.sleep(0.2)


def test_page_shows_runs_curves_lineage_and_plays_a_checkpoint_video(app, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{app['url']}/#run={app['run_id']}")
    wait_for(browser, f"document.querySelector('#runs li[data-run-id=\"{app['run_id']}\"].active')", what="the run list")
    wait_for(browser, "document.querySelectorAll('#curves button.ck').length === 3", what="three checkpoints on the curves")

    # Phases, and one panel per paradigm axis (both phases online: environment steps) with a boundary per phase run.
    assert [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#phases tbody tr td:first-child")] == ["■ pretrain", "■ finetune"]
    panels = browser.find_elements(By.CSS_SELECTOR, "#curves .panel")
    assert [p.get_attribute("data-axis") for p in panels] == ["num_env_steps"]
    assert "environment steps" in panels[0].text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#curves div.boundary")) == 2
    assert len(browser.find_elements(By.CSS_SELECTOR, "#curves [data-series]")) == 2  # one curve per trial

    # Lineage graph: two phase runs, three checkpoints, the finetune phase seeded from pretrain's last checkpoint.
    assert len(browser.find_elements(By.CSS_SELECTOR, "#lineage g.gnode.phase")) == 2
    assert len(browser.find_elements(By.CSS_SELECTOR, "#lineage g.gnode.checkpoint")) == 3
    seed_edge = browser.find_elements(By.CSS_SELECTOR, "#lineage path.edge.initialises")
    assert [(e.get_attribute("data-from"), e.get_attribute("data-to")) for e in seed_edge] == [(app["checkpoints"][1], "finetune")]

    # Click the finetune checkpoint (no video yet): a progress indication, then a playing video.
    browser.execute_script("""
        window.__sawProgress = false;
        new MutationObserver(() => {
          const bar = document.querySelector('#video-progress');
          if (!bar.hidden && /Recording/.test(document.querySelector('#video-status').textContent)) window.__sawProgress = true;
        }).observe(document.querySelector('#video-section'), {attributes: true, childList: true, subtree: true, characterData: true});
    """)
    target = app["checkpoints"][2]
    browser.find_element(By.CSS_SELECTOR, f"#curves button.ck[data-checkpoint-id='{target}']").click()
    wait_for(browser, "window.__sawProgress", timeout=60, what="the recording progress bar")
    wait_for(browser, "(() => { const v = document.querySelector('#video'); return !v.hidden && !v.paused && v.readyState >= 2 && v.currentTime > 0.2; })()",
             timeout=180, what="a playing video")
    video = browser.find_element(By.CSS_SELECTOR, "#video")
    assert video.get_attribute("data-checkpoint-id") == target
    assert "/api/v1/videos/vid-" in video.get_attribute("src")
    assert browser.execute_script("return document.querySelector('#video').videoWidth") == 320
    assert browser.find_elements(By.CSS_SELECTOR, f"#curves button.ck.has-video[data-checkpoint-id='{target}']")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "page.png"
    assert browser.save_screenshot(str(shot))
    print(f"\n[test_web] screenshot: {shot}")
    assert shot.stat().st_size > 10_000


def test_launch_a_phase_from_a_checkpoint_with_the_form_then_compare_it_with_its_parent(app, browser):
    """The workbench's workflow by hand: a checkpoint → "Continue with…" → the form (an error
    shown at its field, then a valid check with its transfer report) → Start → the new run
    followed live to the end → "Compare with its parent"."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    token = (Path(app["storage"]) / "control-token").read_text().strip()
    browser.get(f"{app['url']}/#token={token}&run={app['run_id']}")
    wait_for(browser, "document.querySelectorAll('#curves button.ck').length === 3", what="the demo run's checkpoints")
    assert "token" not in browser.execute_script("return location.hash"), "the token leaves the address bar"
    parent = app["checkpoints"][2]
    browser.find_element(By.CSS_SELECTOR, f"#curves button.ck[data-checkpoint-id='{parent}']").click()
    browser.execute_script("document.querySelector('#checkpoint-continue').click()")
    wait_for(browser, "!document.querySelector('#launch-backdrop').hidden && document.querySelector('#launch select[name=algorithm]').options.length > 3",
             what="the launch form")
    assert parent in browser.find_element(By.ID, "launch-from").text

    form = browser.find_element(By.ID, "launch")
    Select(form.find_element(By.NAME, "mode")).select_by_value("new_run")
    fill = lambda name, value: browser.execute_script(  # noqa: E731
        "const i = document.querySelector(arguments[0]); i.value = arguments[1]; i.dispatchEvent(new Event('change'));", name, value)
    fill("#launch input[name=name]", "from-browser")
    fill("#launch input[name=budget]", "-5")
    browser.find_element(By.ID, "launch-check").click()
    wait_for(browser, "document.querySelector('#launch [data-field=budget] .field-error').textContent.length > 0", what="the budget's error at its field")
    fill("#launch input[name=budget]", "400")
    fill("#launch input[name=eval_interval]", "200")
    fill("#launch input[name=eval_episodes]", "2")
    fill("#launch input[data-setting=hidden]", "[64, 64]")
    browser.find_element(By.ID, "launch-check").click()
    wait_for(browser, "/^valid/.test(document.querySelector('#launch-status').textContent)", what="a valid check")
    assert "copied" in browser.find_element(By.ID, "launch-transfer").text  # the transfer check, before anything starts
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "launch-form.png"))

    browser.find_element(By.ID, "launch-start").click()
    run_id = wait_for(browser, "(() => { const r = new URLSearchParams(location.hash.slice(1)).get('run'); return r && r.startsWith('from-browser') ? r : null; })()",
                      timeout=180, what="the new run selected")
    wait_for(browser, "document.querySelector('#run-status').dataset.status === 'succeeded'", timeout=420, what="the launched run to succeed")
    wait_for(browser, "document.querySelectorAll('#curves button.ck').length >= 1", timeout=60, what="the new run's checkpoints on its curve")
    assert browser.save_screenshot(str(ARTIFACTS / "launched-run.png"))

    wait_for(browser, "!document.querySelector('#run-compare-parent').hidden", timeout=30, what="Compare with its parent")
    browser.find_element(By.ID, "run-compare-parent").click()
    wait_for(browser, "document.querySelectorAll('#compare-table tbody tr').length === 2", timeout=60, what="the comparison table")
    keys = [tr.get_attribute("data-key") for tr in browser.find_elements(By.CSS_SELECTOR, "#compare-table tbody tr")]
    assert keys[0].startswith(f"{run_id}/") and keys[1] == f"{app['run_id']}/finetune", keys
    assert browser.find_elements(By.CSS_SELECTOR, "#compare-curves .panel[data-axis=num_env_steps]")
    assert browser.save_screenshot(str(ARTIFACTS / "compare.png"))
    print(f"\n[test_web] screenshots: {ARTIFACTS}/launch-form.png, launched-run.png, compare.png")
