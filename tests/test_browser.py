"""The docs site in a real browser: built with `mkdocs build --strict`, served with `python -m http.server`,
and driven with Playwright through every page of the sitemap in Chromium, at desktop (1280 px) and phone
(390 px) width.

Every page: no console errors and no uncaught exceptions, every image loaded, every same-site link,
stylesheet and script answering 200, and at phone width no sideways scrolling of the page (a wide table,
code block or picture scrolls inside its own box). And: the search box finds "modifier 25", the timeline
picture renders (at a readable size on a phone), and the copy button of a console block copies the
commands alone.

It uses the system's Chromium (`/usr/bin/chromium`, `chromium` on PATH, or PAYRULE_CHROMIUM) and skips,
saying why, when there is none or Playwright for Python is missing. Requests that leave the machine (web
fonts, the repository's star count) are answered with stand-ins, so the test needs no network.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urldefrag, urlsplit
from xml.etree import ElementTree

import pytest

pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[test]')")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (pip install playwright)")

ROOT = Path(__file__).resolve().parents[1]
SITE_PATH = "/payrule/"  # the path of site_url in mkdocs.yml: the site is served under it, as it is published
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
# Hosts the pages may ask for, answered here with stand-ins: Material's web fonts and the repository facts
# it shows beside the repository link.
OUTSIDE = {
    "fonts.googleapis.com": ("text/css", ""),
    "fonts.gstatic.com": ("font/woff2", ""),
    "api.github.com": ("application/json", json.dumps({"stargazers_count": 0, "forks_count": 0, "tag_name": "v0.1.0"})),
}


def _chromium() -> str | None:
    for candidate in (os.environ.get("PAYRULE_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium",
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium: none at /usr/bin/chromium or on PATH (apt-get install chromium), "
                             "and PAYRULE_CHROMIUM is not set")


# ---- the site, served --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The built site, in a folder that serves it under SITE_PATH."""
    served = tmp_path_factory.mktemp("served")
    out = served / SITE_PATH.strip("/")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout}\n{run.stderr}"
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base(site) -> str:
    """`http://127.0.0.1:PORT/payrule/`, served by `python -m http.server` until the module is done."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(site.parent)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}{SITE_PATH}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"python -m http.server did not answer on {url}")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _pages(site: Path, base: str) -> list[str]:
    """Every page of the sitemap, as a local URL; the sitemap must list every page that was built."""
    tree = ElementTree.parse(site / "sitemap.xml")
    locs = [e.text or "" for e in tree.iter() if e.tag.endswith("loc")]
    site_url = "https://payrule.github.io" + SITE_PATH
    assert locs and all(loc.startswith(site_url) for loc in locs), f"the sitemap lists no pages of {site_url}"
    built = {p.parent.relative_to(site).as_posix() for p in site.rglob("index.html")} - {"search", "."}
    listed = {loc[len(site_url):].strip("/") for loc in locs}
    assert built <= listed | {""}, f"pages missing from the sitemap: {sorted(built - listed)}"
    return [base + loc[len(site_url):] for loc in locs]


# ---- the browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _context(browser, width: str):
    phone = width == "phone"
    ctx = browser.new_context(viewport=WIDTHS[width], is_mobile=phone, has_touch=phone,
                              permissions=["clipboard-read", "clipboard-write"])
    outside: set[str] = set()

    def route(r):
        host = urlsplit(r.request.url).hostname or ""
        if host in ("127.0.0.1", "localhost"):
            return r.continue_()
        outside.add(host)
        kind, body = OUTSIDE.get(host, ("text/plain", ""))
        return r.fulfill(status=200, content_type=kind, body=body, headers={"access-control-allow-origin": "*"})

    ctx.route("**/*", route)
    return ctx, outside


@dataclass
class Visit:
    url: str
    errors: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    links: set[str] = field(default_factory=set)
    overflow: dict | None = None


_LOOK = """() => {
  const links = [...document.querySelectorAll('a[href], link[href]')].map(a => a.href)
    .concat([...document.querySelectorAll('img[src], script[src]')].map(e => e.src));
  const broken = [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src);
  const html = document.documentElement, width = html.clientWidth;
  const scrolls = e => { for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; }
    return false; };
  const wide = [...document.body.querySelectorAll('*')].filter(e => {
      const r = e.getBoundingClientRect(); return r.width > 0 && r.right > width + 1 && !scrolls(e); })
    .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).split(' ').join('.') : '')
      + ': ' + (e.textContent || '').trim().slice(0, 60));
  return {links, broken, scrollWidth: html.scrollWidth, width, wide};
}"""


@pytest.fixture(scope="module")
def visits(browser, site, base) -> dict[str, dict[str, Visit]]:
    """Every page at each width: what the console said and what the page holds."""
    pages = _pages(site, base)
    assert len(pages) >= 20, f"only {len(pages)} pages in the sitemap"
    out: dict[str, dict[str, Visit]] = {}
    for width in WIDTHS:
        ctx, outside = _context(browser, width)
        page = ctx.new_page()
        current: list[Visit] = []
        page.on("console", lambda m: m.type == "error" and current[-1].errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: current[-1].errors.append(f"uncaught: {e}"))
        out[width] = {}
        for url in pages:
            v = Visit(url)
            current.append(v)
            response = page.goto(url, wait_until="networkidle")
            if response is None or response.status != 200:
                v.errors.append(f"the page answered {response.status if response else 'nothing'}")
            look = page.evaluate(_LOOK)
            v.links = {urldefrag(link)[0] for link in look["links"] if link.startswith(base)}
            v.broken_images = look["broken"]
            v.overflow = look
            out[width][url] = v
        unexpected = outside - set(OUTSIDE)
        assert not unexpected, f"pages ask for hosts outside the site: {sorted(unexpected)}"
        ctx.close()
    return out


# ---- every page ----------------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_no_console_errors(visits, width):
    bad = [f"{v.url}: {e}" for v in visits[width].values() for e in v.errors]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("width", WIDTHS)
def test_every_image_loads(visits, width):
    bad = [f"{v.url}: {src}" for v in visits[width].values() for src in v.broken_images]
    assert not bad, "images that did not load:\n" + "\n".join(bad)


def test_every_same_site_link_answers_200(visits):
    links: dict[str, str] = {}
    for by_url in visits.values():
        for v in by_url.values():
            for link in v.links:
                links.setdefault(link, v.url)
    assert len(links) > len(visits["desktop"]), "fewer links than pages: the page reader is broken"
    bad = []
    for link, on in sorted(links.items()):
        try:
            with urllib.request.urlopen(link, timeout=10) as r:
                status = r.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        if status != 200:
            bad.append(f"{on}: {link} answered {status}")
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_no_page_scrolls_sideways_on_a_phone(visits):
    bad = []
    for v in visits["phone"].values():
        o = v.overflow or {}
        if o.get("scrollWidth", 0) > o.get("width", 0) or o.get("wide"):
            bad.append(f"{v.url}: {o.get('scrollWidth')} px wide in a {o.get('width')} px screen; "
                       f"too wide: {o.get('wide')}")
    assert not bad, "pages wider than a 390 px phone:\n" + "\n".join(bad)


# ---- particular pages ----------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_search_finds_modifier_25(browser, base, width):
    ctx, _ = _context(browser, width)
    page = ctx.new_page()
    page.goto(base, wait_until="networkidle")
    if width == "phone":
        page.click("label.md-header__button[for=__search]")
    box = page.locator("input.md-search__input")
    box.click()
    box.press_sequentially("modifier 25", delay=20)  # typed: Material searches on key presses
    results = page.locator(".md-search-result__item")
    results.first.wait_for(timeout=15000)
    found = results.all_inner_texts()
    ctx.close()
    text = " ".join(" ".join(found).lower().split())
    assert found and "modifier 25" in text, f"search for 'modifier 25' found: {text[:300]!r}"


@pytest.mark.parametrize("width", WIDTHS)
def test_timeline_renders(browser, base, width):
    ctx, _ = _context(browser, width)
    page = ctx.new_page()
    page.goto(base + "claims-and-decisions/", wait_until="networkidle")
    img = page.locator('img[src$="timeline.svg"]')
    img.scroll_into_view_if_needed()
    natural = img.evaluate("i => i.complete ? i.naturalWidth : 0")
    box = img.bounding_box()
    frame = page.locator(".timeline").bounding_box()
    screen = page.evaluate("() => document.documentElement.clientWidth")
    ctx.close()
    assert natural > 0, "the timeline did not load"
    assert box and box["width"] > 0 and box["height"] > 0, "the timeline has no size"
    # Readable: at least 600 px wide (its text at three quarters of its size or more), inside a box that
    # fits the screen and scrolls.
    assert box["width"] >= 600, f"the timeline is shrunk to {box['width']:.0f} px"
    assert frame and frame["x"] >= 0 and frame["x"] + frame["width"] <= screen + 1


def test_copy_button_copies_the_commands_only(browser, base):
    ctx, _ = _context(browser, "desktop")
    page = ctx.new_page()
    page.goto(base + "policy-tests/", wait_until="networkidle")
    # The first console block with two commands and their output.
    block = page.locator("div.language-console", has_text="$ sed").first
    shown = block.locator("code").inner_text()
    block.hover()
    block.locator("button.md-code__button[data-md-type=copy], button.md-clipboard").first.click()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    ctx.close()
    commands = [line[2:] for line in shown.split("\n") if line.startswith("$ ")]
    assert len(commands) == 2 and len(shown.split("\n")) > 5
    assert [line for line in copied.split("\n") if line.strip()] == commands, f"copied: {copied!r}"
    assert not re.search(r"^\$ ", copied, re.M)
