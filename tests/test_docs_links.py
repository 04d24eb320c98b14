"""Every relative link in README.md and docs/ leads somewhere: the file exists in the
repository, and a ``#anchor`` names a heading of the Markdown file it points to (GitHub's
heading slugs). Web links are not followed (no network in tests)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from testkit import load

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _site_pages() -> dict[Path, Path | None]:
    """The pages docs/hooks.py adds to the site at build time: a docs/ path -> the file it is
    built from (the notebooks) or None (the scenario reference and the explorer, generated
    from the code)."""
    hooks = load("smtpd_sim_docs_hooks", ROOT / "docs" / "hooks.py")
    pages: dict[Path, Path | None] = {(ROOT / "docs" / hooks.SCENARIO_PAGE).resolve(): None,
                                      (ROOT / "docs" / hooks.EXPLORER_PAGE).resolve(): None}
    for name in hooks.NOTEBOOKS:
        pages[(ROOT / "docs" / "notebooks" / name).resolve()] = ROOT / "notebooks" / name
    return pages


SITE_PAGES = _site_pages()

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE = re.compile(r"(`+).+?\1", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|__|\[|\]\([^)]*\)", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(md: Path) -> set[str]:
    """The anchors of a Markdown file's headings (repeats get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    out = set()
    for h in HEADING.findall(FENCE.sub("", md.read_text(encoding="utf-8"))):
        s = slug(h)
        n = seen.get(s, 0)
        out.add(s if n == 0 else f"{s}-{n}")
        seen[s] = n + 1
    return out


def broken_links(md: Path, root: Path = ROOT) -> list[str]:
    """The relative links of ``md`` that lead nowhere, each as ``target: why``."""
    text = CODE.sub("", FENCE.sub("", md.read_text(encoding="utf-8")))
    bad = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        path, _, frag = target.partition("#")
        dest = (md.parent / path).resolve() if path else md
        if dest in SITE_PAGES and root == ROOT:  # written into the site by docs/hooks.py
            source = SITE_PAGES[dest]
            if source is not None and not source.exists():
                bad.append(f"{target}: no such file ({source.relative_to(ROOT)})")
            continue
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif root not in dest.parents and dest != root:
            bad.append(f"{target}: outside the repository")
        elif frag and dest.suffix == ".md" and frag not in anchors(dest):
            bad.append(f"{target}: no heading #{frag} in {dest.name}")
    return bad


@pytest.mark.parametrize("md", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(md: Path) -> None:
    assert broken_links(md) == []


def test_the_docs_are_there() -> None:
    for name in ("README.md", "CHANGELOG.md", "LICENSE", "docs/design.md"):
        assert (ROOT / name).is_file(), name


def test_the_checker_finds_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Top\n\n## The `make run` part (2)\n")
    md = tmp_path / "b.md"
    md.write_text("[ok](a.md) [ok](a.md#the-make-run-part-2) [ok](#here) [web](https://example.org/x)\n"
                  "`[code](nowhere.md)`\n\n```\n[fenced](nowhere.md)\n```\n"
                  "# Here\n[gone](missing.md) ![img](pics/x.png) [bad](a.md#nope)\n")
    assert broken_links(md, tmp_path) == ["missing.md: no such file", "pics/x.png: no such file",
                                          "a.md#nope: no heading #nope in a.md"]
