"""The course website: built offline from the notebooks, a page per notebook, no missing image or link.

CI builds the whole site but executes only lesson 00 (the full execution is what nbval already does
for every notebook, and would double CI's time); the browser test opens that lesson in a real
headless Chromium and checks that its plot is on screen.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from course_utils.cli.site import SECTIONS, build, check_site, landing_page, notebook_stems, repo_root

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("site")
    result = build(base / "site", execute=["00_setup"], cache=base / "cache", progress=False)
    assert any("00_setup" in line for line in result.executed) or result.pages > 0
    return result.out


def test_every_notebook_has_a_page_and_nothing_is_broken(site):
    report = check_site(site)
    assert report.problems == []
    stems = notebook_stems(repo_root())
    for folder, _ in SECTIONS:
        assert stems[folder], f"no notebooks found in {folder}/"
        for stem in stems[folder]:
            assert (site / folder / f"{stem}.html").is_file()
    assert report.images_per_page["notebooks/00_setup.html"] >= 1  # the executed lesson shows its plot
    assert (site / "search.html").is_file()


def test_the_landing_page_is_the_readme_learner_part():
    readme = "# Course\n\nlearners read this\n\n## For instructors\n\ngrading manual\n"
    page = landing_page(readme)
    assert "learners read this" in page and "grading manual" not in page


def test_the_checks_fail_on_a_missing_image_and_a_broken_link(site, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(site, broken)
    lesson = broken / "notebooks" / "00_setup.html"
    lesson.write_text(lesson.read_text(encoding="utf-8") + '<a href="../nowhere.html">x</a><a href="#no-such-anchor">y</a>',
                      encoding="utf-8")
    for image in (broken / "_images").glob("*.png"):
        image.unlink()
    (broken / "notebooks" / "01_what_is_fine_tuning.html").unlink()
    problems = "\n".join(check_site(broken).problems)
    assert "image" in problems and "does not exist" in problems
    assert "nowhere.html points to a missing file" in problems
    assert "no-such-anchor points to a missing anchor" in problems
    assert "no page for notebooks/01_what_is_fine_tuning.ipynb" in problems


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


PROBE = """<!doctype html><html><body><div id="result">pending</div>
<iframe id="f" src="/notebooks/00_setup.html" width="1200" height="3000"></iframe>
<script>
document.getElementById('f').addEventListener('load', function () {
  var doc = this.contentDocument, imgs = Array.from(doc.images);
  var shown = imgs.filter(function (i) { return i.complete && i.naturalWidth > 100; }).length;
  document.getElementById('result').textContent = 'images ' + shown + ' of ' + imgs.length +
      ' title ' + doc.title;
});
</script></body></html>"""


def test_a_real_browser_shows_the_lesson_plot(site, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium on this machine: install Debian's `chromium` (apt-get install chromium) "
                    "to run the browser test; .ci/run installs it where apt is available")
    (site / "probe.html").write_text(PROBE, encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 f"--user-data-dir={tmp_path / 'profile'}"]
        dom = subprocess.run([browser, *flags, "--virtual-time-budget=15000", "--dump-dom", f"{url}/probe.html"],
                             capture_output=True, text=True, timeout=120).stdout
        shot = tmp_path / "lesson00.png"
        subprocess.run([browser, *flags, "--window-size=1280,1600", f"--screenshot={shot}", f"{url}/notebooks/00_setup.html"],
                       capture_output=True, timeout=120)
    finally:
        server.shutdown()
    assert "images " in dom, f"the probe page did not run in Chromium: {dom[-500:]!r}"
    result = dom.split('<div id="result">', 1)[1].split("</div>", 1)[0]
    shown = int(result.split()[1])
    assert shown >= 1, f"Chromium shows no plot on lesson 00: {result}"
    assert shot.is_file() and shot.stat().st_size > 10_000  # a rendered page, not a blank one
