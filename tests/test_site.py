"""The docs site, looked at: it builds strictly, every shipped policy has its catalog page, no
internal link is broken, and policy code is highlighted by payrule's own Pygments lexer.

The build (`mkdocs build --strict`, a few seconds) runs once per session, into a temporary folder.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytest.importorskip("mkdocs")
pygments = pytest.importorskip("pygments")

from pygments.lexers import get_lexer_by_name, get_lexer_for_filename  # noqa: E402
from pygments.token import Comment, Error, Keyword, Name, Number, String  # noqa: E402

from payrule.loader import load_workspace  # noqa: E402
from payrule.tools.explain import explain_rule  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
SITE_PATH = "/payrule/"  # the path of site_url in mkdocs.yml


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout}\n{run.stderr}"
    return out


@pytest.fixture(scope="module")
def models():
    ws = load_workspace(dirs=[POLICIES])
    assert not ws.errors
    return ws.policies


class _Page(HTMLParser):
    """The ids a page defines and the links it makes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        for key in ("href", "src"):
            if a.get(key) and tag in ("a", "link", "img", "script"):
                self.links.append(a[key])

    def handle_data(self, data):
        self.text.append(data)


def read(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def _target(site: Path, page: Path, url: str) -> tuple[Path, str] | None:
    """The file an internal link leads to, and its fragment; None for an external link."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith(("mailto:", "javascript:", "data:")):
        return None
    path = unquote(parts.path)
    if path.startswith(SITE_PATH):  # an absolute link (the 404 page's) holds site_url's path
        path = "/" + path[len(SITE_PATH):]
    target = page if not path else (site / path.lstrip("/") if path.startswith("/") else page.parent / path)
    target = Path(os.path.normpath(target))
    if target.is_dir() or path.endswith("/"):
        target = target / "index.html"
    return target, unquote(parts.fragment)


def test_every_shipped_policy_has_its_page(site, models):
    index = read(site / "catalog" / "index.html")
    assert len(models) >= 3
    for model in models.values():
        page = site / "catalog" / model.id / "index.html"
        assert page.is_file(), f"no catalog page for {model.id}"
        html = read(page)
        text = " ".join("".join(html.text).split())  # "".join: an <abbr> splits a sentence's text
        assert model.title in text
        assert f"{model.id}/" in " ".join(index.links), f"the catalog index does not link to {model.id}"
        for rule in model.rules:
            if rule.policy != model.id:
                continue
            assert rule.id in html.ids, f"{model.id}: no anchor for rule {rule.id}"
            assert explain_rule(model, rule) in text, f"{model.id}/{rule.id}: its plain-English text is not on the page"
            assert rule.source in text


def test_no_internal_link_is_broken(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 12
    parsed = {p: read(p) for p in pages}
    broken = []
    checked = 0
    for page, html in parsed.items():
        for url in html.links:
            hit = _target(site, page, url)
            if hit is None:
                continue
            target, fragment = hit
            checked += 1
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {url} (no {target.relative_to(site) if target.is_relative_to(site) else target})")
            elif fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else read(target).ids
                if fragment not in ids:
                    broken.append(f"{page.relative_to(site)}: {url} (no #{fragment})")
    assert checked > 100
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def test_policy_code_on_the_site_is_highlighted(site):
    html = (site / "catalog" / "aetna-tpi" / "index.html").read_text(encoding="utf-8")
    assert "language-policy" in html
    # Pygments' short CSS classes: k keyword, si interpolation, nf function name.
    assert '<span class="k">rule</span>' in html
    assert '<span class="si">{nth}</span>' in html
    assert '<span class="nf">spacing</span>' in html
    language = (site / "language" / "index.html").read_text(encoding="utf-8")
    assert language.count("language-policy") >= 15


def test_console_blocks_mark_prompt_and_output_so_copy_takes_the_commands(site):
    """Pygments' console lexer tags `$ ` as Generic.Prompt (gp) and the output as Generic.Output (go);
    extra.css makes them unselectable and hides them while the copy button copies."""
    html = (site / "cli" / "index.html").read_text(encoding="utf-8")
    assert '<div class="language-console highlight">' in html
    assert '<span class="gp">$ </span>payrule<span class="w"> </span>check<span class="w"> </span>--help' in html
    assert '<span class="go">usage: payrule check' in html
    css = (site / "assets" / "extra.css").read_text(encoding="utf-8")
    assert ".highlight code[data-md-copying] .gp" in css and "user-select: none" in css
    assert 'href="../assets/extra.css"' in html


def test_sitemap_lists_every_page(site):
    sitemap = (site / "sitemap.xml").read_text(encoding="utf-8")
    listed = set(re.findall(r"<loc>https://payrule\.github\.io/payrule/(.*?)</loc>", sitemap))
    built = {p.parent.relative_to(site).as_posix() + "/" for p in site.rglob("index.html")} - {"./", "search/"}
    assert len(listed) >= 20 and built <= listed, sorted(built - listed)


def test_repository_and_edit_links(site):
    glossary = (site / "glossary" / "index.html").read_text(encoding="utf-8")
    assert 'href="https://github.com/payrule/payrule"' in glossary
    assert 'href="https://github.com/payrule/payrule/edit/main/docs/glossary.md"' in glossary
    aetna = (site / "catalog" / "aetna-tpi" / "index.html").read_text(encoding="utf-8")
    assert 'href="https://github.com/payrule/payrule/edit/main/policies/aetna/trigger_points.policy"' in aetna
    changelog = (site / "changelog" / "index.html").read_text(encoding="utf-8")
    assert 'href="https://github.com/payrule/payrule/edit/main/CHANGELOG.md"' in changelog


def test_changelog_page_is_the_changelog(site):
    text = " ".join("".join(read(site / "changelog" / "index.html").text).split())
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    versions = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?", changelog, re.M)
    assert versions[0][0] == "Unreleased" and ("0.1.0", "2026-11-24") in versions
    for version, date in versions:
        assert f"{version} - {date}" in text if date else version in text


def test_abbreviations_hover_everywhere(site):
    """docs/includes/abbreviations.md is appended to every page: a term is explained where it is used."""
    terms = dict(re.findall(r"^\*\[(.+?)\]: (.+)$", (ROOT / "docs" / "includes" / "abbreviations.md").read_text(encoding="utf-8"), re.M))
    assert {"TPI", "E/M", "NCCI", "LCD", "CARC", "RARC", "CPT", "HCPCS", "ICD-10-CM", "modifier 25"} <= set(terms)
    seen = set()
    for page in site.rglob("index.html"):
        seen.update(re.findall(r"<abbr title=\"[^\"]*\">([^<]+)</abbr>", page.read_text(encoding="utf-8")))
    assert {"TPI", "E/M", "NCCI", "CARC", "modifier 25"} <= seen
    common = (site / "catalog" / "common-tpi" / "index.html").read_text(encoding="utf-8")
    assert f'<abbr title="{terms["TPI"]}">TPI</abbr>' in common
    assert not (site / "includes").exists(), "docs/includes/ is published as a page"


def test_glossary_defines_the_terms(site):
    text = " ".join("".join(read(site / "glossary" / "index.html").text).split())
    for term in ("TPI", "E/M", "NCCI", "LCD", "CARC", "RARC", "CPT", "HCPCS", "ICD-10-CM", "Modifier 25",
                 "Modifier 59", "Prior authorization", "X12 837P", "FHIR", "ClaimResponse", "LALR"):
        assert term in text, f"the glossary does not define {term}"


def test_catalog_case_tables_have_a_date_column(site):
    html = (site / "catalog" / "aetna-tpi" / "index.html").read_text(encoding="utf-8")
    assert "<th>Claim</th>\n<th>Line</th>\n<th>Date</th>\n<th>Code</th>" in html
    assert "<td>2025-06-02</td>" in html  # fifth-session-in-calendar-year: C5's line


# ---- the lexer ---------------------------------------------------------------------------------


def tokens(text: str) -> list[tuple]:
    return [(t, v) for t, v in get_lexer_by_name("payrule").get_tokens(text) if v.strip()]


def test_lexer_is_found_by_pygments():
    assert get_lexer_by_name("payrule").name == "payrule"
    assert get_lexer_by_name("policy").__class__.__name__ == "PolicyLexer"
    assert get_lexer_for_filename("medicare.policy").name == "payrule"


@pytest.mark.parametrize("path", sorted(POLICIES.rglob("*.policy")), ids=lambda p: p.relative_to(POLICIES).as_posix())
def test_lexer_reads_shipped_policies_without_errors(path):
    text = path.read_text(encoding="utf-8")
    toks = list(get_lexer_by_name("payrule").get_tokens(text))
    assert [v for t, v in toks if t in Error] == []
    assert "".join(v for _, v in toks).rstrip("\n") == text.rstrip("\n")
    assert any(t in Keyword for t, _ in toks)


def test_lexer_token_kinds():
    text = (
        'policy p-1 "T # not a comment"  # a comment\n'
        '  codes TPI = 20552, 00100..01999\n'
        '  stems S = "pl\\"at"\n'
        '  rule one-per-day: deny line when code in TPI and has modifier 25 and has muscles and units > 1\n'
        '    message "{nth} of {{braces}} \\n" per CPT\n'
    )
    toks = tokens(text)
    kinds = {v: t for t, v in toks}
    assert kinds["policy"] in Keyword and kinds["p-1"] in Name
    assert kinds["# a comment"] in Comment
    assert not any(t in Comment for t, v in toks if "not a comment" in v)
    assert kinds["codes"] in Keyword.Declaration and kinds["TPI"] in Name
    assert kinds["20552"] in Number and kinds["01999"] in Number
    assert kinds['\\"'] in String.Escape
    assert kinds["one-per-day"] in Name.Function  # `per` inside an id is not the keyword
    assert kinds["deny"] in Keyword and kinds["line"] in Keyword
    assert kinds["25"] in Number and kinds["muscles"] in Name
    assert kinds["{nth}"] is String.Interpol
    assert kinds["{{"] in String.Escape and kinds["\\n"] in String.Escape
    assert kinds["CPT"] in Name
    assert not any(t in Error for t, _ in toks)
