"""Where each C function the roles' docstrings name is defined, per release tag: the data
behind the explorer's links to the OpenSMTPD source (smtpd_sim/studies/explore_csource.json).

Run by hand with a clone (or bare mirror) of github.com/OpenSMTPD/OpenSMTPD:

    python extras/c-index/make_index.py /path/to/OpenSMTPD.git > model/smtpd_sim/studies/explore_csource.json

It only reads the tree (``git grep`` for a definition: the function name at the start of a
line, OpenBSD style); nothing is built. The names are every ``name()`` the role modules'
text mentions.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TAGS = ("opensmtpd-5.4.2", "opensmtpd-5.7.3", "v6.8.0p2")


def names() -> list[str]:
    """Every ``identifier()`` the role modules mention (docstrings and comments)."""
    found: set[str] = set()
    for py in sorted((ROOT / "model" / "smtpd_sim" / "roles").glob("*.py")):
        found |= set(re.findall(r"\b([a-z][a-z0-9_]{2,})\(\)", py.read_text()))
    return sorted(found)


def index(repo: str, tag: str, wanted: list[str]) -> dict[str, str]:
    """name -> "path:line" of its definition at ``tag`` (the first one, .c files only)."""
    out = subprocess.run(["git", "-C", repo, "grep", "-n", "-E", "^(" + "|".join(wanted) + r")\(",
                          tag, "--", "*.c"], capture_output=True, text=True)
    found: dict[str, str] = {}
    for line in out.stdout.splitlines():
        _tag, path, num, text = line.split(":", 3)
        name = text.split("(", 1)[0]
        if "/compat/" in path or "/regress/" in path:
            continue
        found.setdefault(name, f"{path}:{num}")
    return dict(sorted(found.items()))


def main() -> None:
    repo = sys.argv[1]
    wanted = names()
    json.dump({"source": "git grep '^name(' on each tag of github.com/OpenSMTPD/OpenSMTPD "
                         "(extras/c-index/make_index.py)",
               "tags": {tag: index(repo, tag, wanted) for tag in TAGS}}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
