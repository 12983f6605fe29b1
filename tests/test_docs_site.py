"""The built documentation site, opened in headless Chromium: math typeset, images loaded, nothing fetched.

Build the site first (``bash .ci/docs`` does both the build and this test)::

    python -m sphinx -W --keep-going -n docs docs/_build/html
    python -m pytest tests/test_docs_site.py

The site is served from 127.0.0.1 and Chromium resolves no other host, so a
page that would load a script, font or stylesheet from the internet fails here
instead of silently working on a connected machine. For the home page, a
notebook page and the specification page the test checks, from the browser's
own network log (the DevTools protocol), that every request went to the local
server and succeeded; that MathJax typeset every formula; that every image
loaded; and it saves a screenshot of each page in ``docs/_build/screenshots/``
for a person to look at. It skips, saying what is missing, without the built
site, Chromium and its driver (Debian: ``apt-get install chromium
chromium-driver``) or Selenium (``pip install -e ".[docs]"``).

The site's own extensions are tested on small sites that the tests build
(Sphinx and MyST only, no browser): ```dba_ref/FILE.py:NAME``` references
become links to the API or fail the build (``docs/_ext/code_refs.py``), and
the repository's Markdown links resolve from the file that wrote them
(``docs/_ext/repository_links.py``).
"""
from __future__ import annotations

import functools
import http.server
import io
import json
import re
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "docs" / "_build" / "html"
SCREENSHOTS = ROOT / "docs" / "_build" / "screenshots"
PAGES = {                       # page -> whether it must contain typeset math
    "index.html": True,
    "tutorials/02_gram_identity.html": True,
    "spec.html": True,
}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--disable-default-apps", "--window-size=1280,1600",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
MATHJAX_TIMEOUT_S = 60
NETWORK_SCHEMES = {"http", "https", "ws", "wss", "ftp"}


def _require():
    """The browser, its driver and Selenium, or a skip that says which is missing."""
    if not (SITE / "index.html").is_file():
        pytest.skip(f"the site is not built ({SITE} has no index.html): "
                    "python -m sphinx -W --keep-going -n docs docs/_build/html")
    webdriver = pytest.importorskip("selenium.webdriver", reason='Selenium is not installed: pip install -e ".[docs]"')
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("headless Chromium is not installed: apt-get install chromium chromium-driver")
    return webdriver, browser, driver


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    """The built site over HTTP on 127.0.0.1 (a free port), as a browser would read it."""
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    webdriver, binary, driver_path = _require()
    with tempfile.TemporaryDirectory() as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
        try:
            yield driver
        finally:
            driver.quit()


def _network_events(driver) -> list[dict]:
    """The DevTools network events logged since the last call."""
    events = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    return [e for e in events if e["method"].startswith("Network.")]


def _open(driver, url: str) -> list[dict]:
    """Load ``url``, wait until MathJax has finished (where the page loads it), return the network events."""
    _network_events(driver)                         # drop what came before
    driver.get(url)
    driver.set_script_timeout(MATHJAX_TIMEOUT_S)
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const settle = () => (window.MathJax && MathJax.startup && MathJax.startup.promise)
            ? MathJax.startup.promise.then(() => done(true), () => done(false)) : done(false);
        if (document.readyState === "complete") settle(); else window.addEventListener("load", settle);
    """)
    return _network_events(driver)


@pytest.mark.parametrize("page", list(PAGES))
def test_page_is_offline_typeset_and_complete(browser, server, page):
    events = _open(browser, f"{server}/{page}")

    requested = {e["params"]["requestId"]: e["params"]["request"]["url"]
                 for e in events if e["method"] == "Network.requestWillBeSent"}
    assert any(url.startswith(server) for url in requested.values()), "the network log shows no request for the page"
    # Anything a network scheme reaches counts (chrome:// and data: URLs are the browser's own, never fetched).
    outside = sorted({url for url in requested.values()
                      if url.split(":", 1)[0] in NETWORK_SCHEMES and not url.startswith(server + "/")})
    assert not outside, f"{page} asks for resources outside the site: {outside}"
    # The browser probes /favicon.ico on its own; the site has no icon, and the page does not ask for one.
    asked = {request_id: url for request_id, url in requested.items()
             if url.startswith(server + "/") and url != f"{server}/favicon.ico"}
    failed = sorted({asked[e["params"]["requestId"]] + ": " + e["params"].get("errorText", "")
                     for e in events if e["method"] == "Network.loadingFailed" and e["params"]["requestId"] in asked}
                    | {asked[e["params"]["requestId"]] + f": HTTP {e['params']['response']['status']}"
                       for e in events if e["method"] == "Network.responseReceived"
                       and e["params"]["requestId"] in asked and e["params"]["response"]["status"] >= 400})
    assert not failed, f"{page}: requests that failed: {failed}"

    math = browser.execute_script("""
        const nodes = [...document.querySelectorAll("span.math, div.math")];
        return {total: nodes.length,
                typeset: nodes.filter(n => n.querySelector("mjx-container")).length,
                errors: document.querySelectorAll("mjx-merror").length};
    """)
    if PAGES[page]:
        assert math["total"] > 0, f"{page} should contain math and has none"
    assert math["typeset"] == math["total"], f"{page}: MathJax typeset {math['typeset']} of {math['total']} formulas"
    assert math["errors"] == 0, f"{page}: MathJax reports {math['errors']} formulas with TeX errors"

    images = browser.execute_script("""
        return [...document.images].map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0}));
    """)
    broken = [img["src"] for img in images if not img["ok"]]
    assert not broken, f"{page}: images that did not load: {broken}"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOTS / (page.replace("/", "_").removesuffix(".html") + ".png")))


def test_spec_code_references_link_to_the_api(browser, server):
    """Every ``dba_ref/FILE.py:NAME`` reference of docs/spec.md is on the page, as a link to an API entry.

    A reference can go missing without a warning: a ``|`` inside a Markdown table row ends the
    cell, and the rest of the row, references included, is dropped.
    """
    _open(browser, f"{server}/spec.html")
    refs = browser.execute_script(r"""
        const pattern = /^dba_ref\/[\w\/]+\.py:[\w.]+$/;
        return [...document.querySelectorAll("article code")]
            .filter(c => pattern.test(c.textContent.trim()))
            .map(c => ({text: c.textContent.trim(), href: c.closest("a") ? c.closest("a").getAttribute("href") : null}));
    """)
    unlinked = [r["text"] for r in refs if not (r["href"] and "api/generated/dba_ref" in r["href"])]
    assert not unlinked, f"code references on the spec page that do not link to the API: {unlinked}"
    written = set(re.findall(r"`(dba_ref/[\w/]+\.py:[\w.]+)`", (ROOT / "docs" / "spec.md").read_text()))
    missing = sorted(written - {r["text"] for r in refs})
    assert not missing, f"code references of docs/spec.md that the spec page does not show: {missing}"


# --- the `dba_ref/FILE.py:NAME` links (docs/_ext/code_refs.py), on a page of the test's own ----------------
CODE_REFS_PAGE = """# Code references

- `dba_ref/gram.py:gram` and `dba_ref/optimizers/__init__.py:make_optimizer` exist and are documented.
- `dba_ref/search.py:SelectionTrace` is a class; `dba_ref/gram.py` alone is no reference.
- {refs}
"""
API_PAGE = """API
===

.. py:function:: dba_ref.gram.gram(A, D)

.. py:function:: dba_ref.optimizers.make_optimizer(name, **hyperparams)

.. py:class:: dba_ref.search.SelectionTrace
"""


def _sphinx_build(srcdir: Path, builddir: Path, **confoverrides) -> str:
    """Build the HTML of ``srcdir`` into ``builddir/html``; return the warnings, without colours.

    Sphinx's test application puts back what a build changes in the process (``sys.path``,
    registered node classes), so that one test's build does not warn in the next one's.
    """
    testing = pytest.importorskip("sphinx.testing.util", reason='Sphinx is not installed: pip install -e ".[docs]"')
    pytest.importorskip("myst_parser", reason='MyST is not installed: pip install -e ".[docs]"')
    warnings = io.StringIO()
    app = testing.SphinxTestApp("html", srcdir=srcdir, builddir=builddir, freshenv=True, status=io.StringIO(),
                                warning=warnings, confoverrides=confoverrides)
    try:
        app.build()
    finally:
        app.cleanup()
    return re.sub(r"\x1b\[[0-9;]*m", "", warnings.getvalue())      # Sphinx colours its messages


def _build_with_code_refs(tmp_path, refs: str):
    """Build a two-page site with the code_refs extension; return (warnings, HTML of the page)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'docs' / '_ext')!r})\n"
        "extensions = ['myst_parser', 'code_refs']\n")
    (src / "index.md").write_text("# Test\n\n```{toctree}\npage\napi\n```\n")
    (src / "page.md").write_text(CODE_REFS_PAGE.format(refs=refs))
    (src / "api.rst").write_text(API_PAGE)
    warnings = _sphinx_build(src, tmp_path / "build")
    return warnings, (tmp_path / "build" / "html" / "page.html").read_text()


def test_code_references_become_links_to_the_api_entries(tmp_path):
    warnings, html = _build_with_code_refs(tmp_path, "nothing else")
    assert warnings == "", warnings
    assert 'href="api.html#dba_ref.gram.gram"' in html
    assert 'href="api.html#dba_ref.optimizers.make_optimizer"' in html
    assert 'href="api.html#dba_ref.search.SelectionTrace"' in html
    assert "<code" in html and "dba_ref/gram.py</span>" in html.replace("<span class=\"pre\">", "")


@pytest.mark.parametrize("ref, complaint", [
    ("`dba_ref/gram.py:no_such_function`", "dba_ref.gram has no attribute 'no_such_function'"),
    ("`dba_ref/no_such_module.py:gram`", "no module dba_ref.no_such_module"),
    ("`dba_ref/search.py:SelectionTrace.no_such_field`", "has no attribute 'no_such_field'"),
    ("`dba_ref/_validation.py:check_choice`", "dba_ref._validation.check_choice is private"),
])
def test_a_code_reference_to_nothing_fails_the_build(tmp_path, ref, complaint):
    """A renamed function leaves a warning (an error under -W) naming the reference."""
    warnings, _ = _build_with_code_refs(tmp_path, ref)
    assert complaint in warnings, warnings


# --- the repository's own links (docs/_ext/repository_links.py), on a checkout of the test's own -----------
def _build_checkout(tmp_path, guide_links: str):
    """Build a site whose Markdown links the way the repository's does; return (warnings, {page: HTML}).

    The checkout has ``README.md`` (included by ``docs/index.md``, its links relative to the root),
    ``guide/README.md`` (copied to ``docs/guide/`` as ``tutorials/`` is, its links relative to
    ``guide/``), a page ``docs/spec.md`` and a package file ``pkg/stub.py`` that is no page.
    """
    repo = tmp_path / "checkout"
    docs, guide, pkg = repo / "docs", repo / "guide", repo / "pkg"
    for folder in (docs, guide, pkg):
        folder.mkdir(parents=True)
    (docs / "conf.py").write_text(
        "import shutil, sys\n"
        f"sys.path.insert(0, {str(ROOT / 'docs' / '_ext')!r})\n"
        "extensions = ['myst_parser', 'repository_links']\n"
        "exclude_patterns = ['_build']\n"
        "repository_copies = {'guide': 'guide'}\n"
        f"shutil.copytree({str(guide)!r}, {str(docs / 'guide')!r}, dirs_exist_ok=True)\n")
    (docs / "index.md").write_text("# Home\n\n```{include} ../README.md\n```\n\n```{toctree}\nspec\nguide/README\n```\n")
    (docs / "spec.md").write_text("# Spec\n\n## Section two\n\nText.\n")
    (repo / "README.md").write_text("See [the spec](docs/spec.md#section-two) and [the guide](guide/).\n")
    (guide / "README.md").write_text(f"# Guide\n\n{guide_links}\n")
    (pkg / "stub.py").write_text("print('a stub')\n")
    warnings = _sphinx_build(docs, tmp_path / "build", myst_heading_anchors=2)
    return warnings, {page: (tmp_path / "build" / "html" / page).read_text() for page in ("index.html", "guide/README.html")}


def test_repository_links_resolve_from_the_file_that_wrote_them(tmp_path):
    warnings, html = _build_checkout(tmp_path, "[The spec](../docs/spec.md), [the stub](../pkg/stub.py), "
                                               "[the package](../pkg/).")
    assert warnings == "", warnings
    assert 'href="spec.html#section-two"' in html["index.html"]                 # included README: from the root
    assert '<span class="pre">guide/</span>' in html["index.html"]              # a folder: its path
    assert 'href="../spec.html"' in html["guide/README.html"]                   # copied page: from guide/
    assert re.search(r'href="\.\./_downloads/\w+/stub\.py"', html["guide/README.html"])
    assert any((tmp_path / "build" / "html" / "_downloads").rglob("stub.py")), "the stub was not copied into the site"
    assert '<span class="pre">pkg/</span>' in html["guide/README.html"]


def test_a_repository_link_to_nothing_fails_the_build(tmp_path):
    warnings, _ = _build_checkout(tmp_path, "[Gone](../docs/no_such_page.md)")
    assert "cross-reference target not found: '../docs/no_such_page.md'" in warnings, warnings
