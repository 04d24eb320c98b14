"""The platform data of the privsep analysis (issue 23): pledge per era, process and stage,
what each system call needs, the fds passed over imsg channels, and the imsg trust model.

Three files under ``scenarios/platform/`` (``pledge.toml``, ``fds.toml``, ``trust.toml``),
each fact with the C function it was read from. Errors are one line naming the file and key.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from smtpd_sim.errors import SmtpdSimError
from smtpd_sim.spec.files import Strict, read_toml, scenario_dir, validate
from smtpd_sim.spec.topology import FILE_ITEMS


class PlatformError(SmtpdSimError):
    """A platform data file is invalid, or a platform name is unknown; one line."""


# ---- pledge.toml ---------------------------------------------------------------------------

# pledge(2) promises of OpenBSD 6.8 (a closed vocabulary: a typo is an error)
PROMISES = ("stdio", "rpath", "wpath", "cpath", "dpath", "tmppath", "inet", "mcast", "fattr",
            "chown", "flock", "unix", "dns", "getpw", "sendfd", "recvfd", "tape", "tty", "proc",
            "exec", "prot_exec", "settime", "ps", "vminfo", "id", "pf", "route", "wroute",
            "audio", "video", "bpf", "unveil", "error")


def _vocab(v: str) -> str:
    from smtpd_sim import imsg  # here, not at the top: compiled, see native.prepare()
    if v not in imsg.VOCABULARIES:
        raise ValueError(f"unknown vocabulary {v!r} (expected one of {', '.join(imsg.VOCABULARIES)})")
    return v


def _promises(v: list[str]) -> list[str]:
    for p in v:
        if p not in PROMISES:
            raise ValueError(f"unknown pledge promise {p!r}")
    return v


class PlatformSpec(Strict):
    """A build target: does it enforce the code's pledge() calls?"""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    title: str
    enforces_pledge: bool
    source: str = Field(min_length=1)


class PledgeEra(Strict):
    """Whether a code era's tree has any pledge() call."""

    vocabulary: str
    tag: str
    pledge_in_tree: bool
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _v(self) -> PledgeEra:
        _vocab(self.vocabulary)
        return self


class PledgeStage(Strict):
    """The promises one process holds from one stage on (``setup`` before its configuration,
    ``serving`` while it handles mail)."""

    vocabulary: str
    process: str
    roles: list[str] = Field(min_length=1)  # the roles its C process hosts (to match merged topologies)
    stage: Literal["setup", "serving"]
    promises: list[str]
    when: str
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _v(self) -> PledgeStage:
        _vocab(self.vocabulary)
        _promises(self.promises)
        return self


class Action(Strict):
    """A system-call capability of a compromised process and the promises it needs."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    title: str
    needs: list[str] = Field(default_factory=list)
    never_under_pledge: bool = False  # no promise allows it (ptrace)
    limited_by: list[Literal["chroot", "uid"]] = Field(default_factory=list)
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _v(self) -> Action:
        _promises(self.needs)
        if not self.needs and not self.never_under_pledge:
            raise ValueError(f"action {self.name!r} needs at least one promise")
        return self


class PledgeFile(Strict):
    """The whole ``pledge.toml``."""

    platform: list[PlatformSpec] = Field(min_length=1)
    era: list[PledgeEra]
    stage: list[PledgeStage]
    action: list[Action]
    exec_escape_source: str
    exfiltrate_via: list[str]
    exfiltrate_source: str
    file_action: dict[str, str]  # topology file item -> the action that uses it

    @model_validator(mode="after")
    def _consistent(self) -> PledgeFile:
        names = {a.name for a in self.action}
        for item, act in self.file_action.items():
            if item not in FILE_ITEMS:
                raise ValueError(f"file_action: unknown file kind {item!r}")
            if act not in names:
                raise ValueError(f"file_action.{item} names {act!r}, which is not an action")
        for a in self.exfiltrate_via:
            if a not in names:
                raise ValueError(f"exfiltrate_via names {a!r}, which is not an action")
        for s in self.stage:
            era = next((e for e in self.era if e.vocabulary == s.vocabulary), None)
            if era is None or not era.pledge_in_tree:
                raise ValueError(f"stage of {s.process!r} in {s.vocabulary}, an era whose tree has no pledge()")
        return self

    def platform_named(self, name: str) -> PlatformSpec:
        """The platform called ``name`` (``linux`` is short for ``linux-portable``)."""
        alias = {"linux": "linux-portable"}.get(name, name)
        for p in self.platform:
            if p.name == alias:
                return p
        raise PlatformError(f"unknown platform {name!r} (expected one of "
                            f"{', '.join(p.name for p in self.platform)}, or linux)")

    def era_of(self, vocabulary: str) -> PledgeEra:
        for e in self.era:
            if e.vocabulary == vocabulary:
                return e
        raise PlatformError(f"pledge.toml: no era for vocabulary {vocabulary!r}")


# ---- fds.toml ------------------------------------------------------------------------------

OUTSIDE = ("client", "filter")  # programs outside the daemon's processes


class FdPass(Strict):
    """One imsg that carries a file descriptor (SCM_RIGHTS)."""

    vocabularies: list[str] = Field(min_length=1)
    imsg: str = Field(pattern=r"^IMSG_[A-Z_]+$")
    kind: str = ""
    sender: str
    receiver: str  # a role, an OUTSIDE program, or "*" with per_channel
    per_channel: bool = False
    condition: str = ""
    object: str
    mode: Literal["read", "write", "socket"]
    capability: str = Field(pattern=r"^[a-z][a-z-]*$")
    grants: str
    source: str = Field(min_length=1)
    inherited_instead: str = ""
    at_setup: bool = False  # received before the receiver pledges or serves
    needs_filters: bool = False  # only when the topology has filter processors (6.8)
    grant_without_fd: bool = False  # the request's effect happens whether or not the fd is taken

    @model_validator(mode="after")
    def _v(self) -> FdPass:
        for v in self.vocabularies:
            _vocab(v)
        from smtpd_sim import imsg  # here, not at the top: compiled, see native.prepare()
        if self.kind and self.kind not in imsg.KINDS:
            raise ValueError(f"unknown imsg kind {self.kind!r}")
        if self.per_channel != (self.receiver == "*"):
            raise ValueError("receiver '*' goes with per_channel = true, and only with it")
        return self


class FdFile(Strict):
    fd: list[FdPass] = Field(min_length=1)


# ---- trust.toml ----------------------------------------------------------------------------


class Payload(Strict):
    """How an era's handlers decode an imsg, and what a malformed one does."""

    vocabulary: str
    encoding: Literal["typed", "untyped"]
    malformed: Literal["fatalx", "ignored"]
    checks: str
    raw_structs: str
    source: str = Field(min_length=1)


class Trusted(Strict):
    """Data a receiver acts on as its sender chose it."""

    vocabularies: list[str] = Field(min_length=1)
    receiver: str
    sender: str
    kind: str = ""
    field: str
    consequence: str
    check: str
    source: str = Field(min_length=1)


class ControlSocket(Strict):
    vocabulary: str
    socket_mode: str = Field(pattern=r"^0[0-7]{3}$")
    peer_credentials: str
    source: str = Field(min_length=1)


class Commands(Strict):
    """The cases of ``control_dispatch_ext()``: (imsg, root only, line)."""

    vocabulary: str
    source: str
    rows: list[tuple[str, bool, int]] = Field(min_length=1)


class TrustFile(Strict):
    payload: list[Payload]
    trusted: list[Trusted]
    control: list[ControlSocket]
    commands: list[Commands]

    @model_validator(mode="after")
    def _v(self) -> TrustFile:
        for group in (self.payload, self.control, self.commands):
            for x in group:
                _vocab(x.vocabulary)
        for t in self.trusted:
            for v in t.vocabularies:
                _vocab(v)
        return self


# ---- loading -------------------------------------------------------------------------------


def platform_dir() -> Path:
    """``scenarios/platform/``."""
    return scenario_dir() / "platform"


def _load(name: str, model: type[Strict]) -> Strict:
    path = platform_dir() / f"{name}.toml"
    return validate(model, read_toml(path, "platform data", PlatformError), path, PlatformError)


@lru_cache(maxsize=1)
def load_pledge() -> PledgeFile:
    """``scenarios/platform/pledge.toml``, validated."""
    return _load("pledge", PledgeFile)  # type: ignore[return-value]


@lru_cache(maxsize=1)
def load_fds() -> FdFile:
    """``scenarios/platform/fds.toml``, validated."""
    return _load("fds", FdFile)  # type: ignore[return-value]


@lru_cache(maxsize=1)
def load_trust() -> TrustFile:
    """``scenarios/platform/trust.toml``, validated."""
    return _load("trust", TrustFile)  # type: ignore[return-value]
