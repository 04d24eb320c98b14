"""The C function behind each hop of a recorded run: who composed the imsg and who handles
it, read from the roles' handler docstrings, with a link to the OpenSMTPD source at the
era's release tag (the explorer's links).

The handler of a hop is the receiving role's ``@handles`` method; its docstring names the C
function it mirrors (``smtp_session.c:smtp_mfa_response()``). The sender is the handler run
that composed the imsg (the recorder's ``cause``): an imsg handler, or for runs a world event
started (a client's line, a timer) the role method that event posts (``INTERNAL_RUNS``).
Where each C function is defined, per tag, is data recorded from the OpenSMTPD tree
(``explore_csource.json``, written by ``extras/c-index/make_index.py``).
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from smtpd_sim.roles.registry import role_class
from smtpd_sim.spec.topology import Topology

# the model's imsg vocabulary of an era (topology `vocabulary`) -> the release tag its links
# point at and the folder of smtpd in that tree; 5.4 without MFA never was released: its
# nearest tree is 5.4.2's (era-pony.md §4.2 reconstructs it from e485cfce/1a1f1ae5)
SOURCE_TAGS: dict[str, tuple[str, str]] = {
    "5.4.2": ("opensmtpd-5.4.2", "smtpd/"),
    "5.7.3": ("opensmtpd-5.7.3", "smtpd/"),
    "6.8": ("v6.8.0p2", "usr.sbin/smtpd/"),
}
REPO_URL = "https://github.com/OpenSMTPD/OpenSMTPD"

# run keys of world events and timers (the ``key=`` of ``proc.post``/``proc.timer`` in the
# roles) -> the role method that runs: its docstring names the C function
INTERNAL_RUNS: dict[str, tuple[str, str]] = {
    "smtp.accept": ("smtp", "_accept"),
    "smtp.io": ("smtp", "_data"),
    "scheduler.timeout": ("scheduler", "_timeout"),
    "parent.sigchld": ("parent", "_sigchld"),
    "mta.flush": ("mta", "_flush_event"),
}

_FUNC = re.compile(r"``(?:([A-Za-z0-9_]+\.c):)?([a-z][a-z0-9_]*)\(\)")


@dataclass(frozen=True)
class CFunction:
    """One C function as the page shows it: name, file, link (empty when not found)."""

    name: str
    file: str
    url: str
    doc: str  # the model method's docstring, first paragraph (what it does)

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "file": self.file, "url": self.url, "doc": self.doc}


@lru_cache(maxsize=1)
def _index() -> dict[str, dict[str, str]]:
    data = json.loads(files("smtpd_sim.studies").joinpath("explore_csource.json").read_text())
    return data["tags"]


def source_tag(topo: Topology) -> tuple[str, str]:
    """(tag, smtpd folder) of the era's release tree."""
    return SOURCE_TAGS[topo.spec.vocabulary]


def source_url(topo: Topology, path: str) -> str:
    """A link to ``path`` (relative to smtpd's folder, e.g. ``smtp_session.c``) at the era's tag."""
    tag, folder = source_tag(topo)
    return f"{REPO_URL}/blob/{tag}/{folder}{path}"


def _first_paragraph(doc: str) -> str:
    """The docstring's first paragraph as plain text (reST's ````code```` marks dropped)."""
    return " ".join(inspect.cleandoc(doc).split("\n\n", 1)[0].split()).replace("``", "")


@cache
def _source_docs(module: str) -> dict[str, str]:
    """``{"Class": doc, "Class.method": doc, "function": doc}`` read from the module's .py
    source: the compiled (mypyc) build keeps no docstrings on its functions."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return {}
    path = Path(spec.origin).with_name(module.rsplit(".", 1)[-1] + ".py")
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError):
        return {}
    docs: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            docs[node.name] = ast.get_docstring(node) or ""
        elif isinstance(node, ast.ClassDef):
            docs[node.name] = ast.get_docstring(node) or ""
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    docs[f"{node.name}.{sub.name}"] = ast.get_docstring(sub) or ""
    return docs


def _doc(obj: Any, owner: type) -> str:
    """The docstring of ``obj`` (a method of ``owner`` or its bases, or ``owner`` itself) as
    the source has it, whether or not the module is compiled."""
    name = getattr(obj, "__name__", "")
    for klass in owner.__mro__:
        key = klass.__name__ if obj is owner else f"{klass.__name__}.{name}"
        doc = _source_docs(klass.__module__).get(key)
        if doc:
            return doc
        if obj is owner:
            break
    return getattr(obj, "__doc__", None) or ""


def c_function(topo: Topology, fn: Any, role: str) -> CFunction:
    """The C function a model method mirrors: the first one its docstring names, else the
    role's dispatcher (the class docstring's first); its definition at the era's tag."""
    cls = role_class(role)
    doc = _doc(fn, cls)
    m = _FUNC.search(doc) or _FUNC.search(_doc(cls, cls))
    if m is None:
        return CFunction("", "", "", _first_paragraph(doc))
    file, name = m.group(1) or "", m.group(2)
    tag, folder = source_tag(topo)
    where = _index().get(tag, {}).get(name)
    if where:
        path, line = where.rsplit(":", 1)
        return CFunction(name, path.removeprefix(folder), f"{REPO_URL}/blob/{tag}/{path}#L{line}",
                         _first_paragraph(doc))
    return CFunction(name, file, source_url(topo, file) if file else "", _first_paragraph(doc))


def handler_of(topo: Topology, proc: str, kind: str) -> tuple[str, Any] | None:
    """(role, method) of ``proc`` that handles imsg ``kind`` (the first role hosting one)."""
    for role in topo.processes[proc].roles:
        fn = role_class(role).handlers.get(kind)
        if fn is not None:
            return role, fn
    return None


def internal_run(topo: Topology, proc: str, key: str) -> tuple[str, Any] | None:
    """(role, method) a world event or timer run of ``key`` executes in ``proc``."""
    hit = INTERNAL_RUNS.get(key)
    if hit is None or hit[0] not in topo.processes[proc].roles:
        return None
    return hit[0], getattr(role_class(hit[0]), hit[1])


def describe(topo: Topology, proc: str, key: str, is_hop: bool) -> dict[str, Any]:
    """The C function of one handler run (an imsg ``key`` received, or an internal event)."""
    found = handler_of(topo, proc, key) if is_hop else internal_run(topo, proc, key)
    if found is None:
        return {"name": "", "file": "", "url": "", "doc": "", "role": "", "event": key}
    role, fn = found
    return {**c_function(topo, fn, role).to_dict(), "role": role, "event": "" if is_hop else key}
