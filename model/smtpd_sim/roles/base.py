"""Role base class: imsg handlers registered by kind, sends routed by the topology.

A role mirrors one C file family; it never calls SimPy. It sends to a *role*
(``self.send("queue", "SMTP_MESSAGE_CREATE", ...)``); the topology decides whether that
crosses a process boundary (a hop on a channel) or is a direct call inside the process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from smtpd_sim.imsg import PAYLOAD_LEN, REPLY_LEN, STAT_FIXED_LEN
from smtpd_sim.kernel.message import Imsg

if TYPE_CHECKING:
    from smtpd_sim.kernel.process import Process
    from smtpd_sim.roles.ports import Ports

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

try:  # mypyc reads the decorator when it compiles this module (model/native.py)
    from mypy_extensions import mypyc_attr
except ImportError:  # no mypy installed: nothing is compiled, the decorator does nothing
    def mypyc_attr(*attrs: str, **kwattrs: object) -> Callable[[T], T]:  # type: ignore[misc]
        return lambda cls: cls

# handler method -> the imsg kinds it handles, filled by @handles. The decorator cannot mark
# the function itself: compiled by mypyc a method is a builtin method_descriptor, which takes
# no attributes. Keys are the very objects the class dict holds (mypyc applies a method's
# decorators, then stores what they return, before the class's __init_subclass__ runs).
_HANDLES: dict[object, tuple[str, ...]] = {}


def handles(*kinds: str) -> Callable[[F], F]:
    """Register a method as the handler of the given imsg kinds."""

    def deco(fn: F) -> F:
        _HANDLES[fn] = kinds
        return fn

    return deco


# allow_interpreted_subclasses: roles from other packages (smtpd_sim.spec.plugins) subclass Role in Python
@mypyc_attr(allow_interpreted_subclasses=True)
class Role:
    """One job of the daemon (parent, smtp, mta, mda, mfa, lka, queue, scheduler, control, ca)."""

    name: ClassVar[str] = ""
    handlers: ClassVar[dict[str, Callable[..., Any]]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        table: dict[str, Callable[..., Any]] = {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                try:
                    kinds = _HANDLES.get(attr, ())
                except TypeError:  # an unhashable class attribute (a dict...): not a handler
                    continue
                for kind in kinds:
                    table[kind] = attr
        cls.handlers = table

    def __init__(self, proc: Process, ports: Ports) -> None:
        """``proc``: the process hosting the role; ``ports``: the services on offer (a
        subclass takes the ones it uses, see :mod:`smtpd_sim.roles.ports`)."""
        self.proc = proc
        self.behaviour = ports.behaviour
        self._name_of = ports.vocab.name
        self._names = ports.vocab.names  # the fast path of _name_of
        self._hosts = ports.hosts

    # ---- sending -------------------------------------------------------------------

    def send(self, role: str, kind: str, payload: Any = None, *, length: int | None = None,
             fd: bool = False) -> Imsg:
        """``m_create()``/``m_close()`` towards the process hosting ``role``."""
        if length is None:
            length = PAYLOAD_LEN.get(kind, 0)
        try:
            name = self._names[kind]
        except KeyError:
            name = self._name_of(kind)  # raises the one-line error
        return self.proc.send(self._hosts[role], role, self.name, kind, name, payload, length, fd)

    def reply(self, m: Imsg, kind: str, payload: Any = None, *, length: int | None = None,
              fd: bool = False) -> Imsg:
        """Answer the role that sent ``m``."""
        if length is None:
            length = REPLY_LEN.get(kind, PAYLOAD_LEN.get(kind, 0))
        try:
            name = self._names[kind]
        except KeyError:
            name = self._name_of(kind)
        return self.proc.send(m.src, m.src_role, self.name, kind, name, payload, length, fd)

    def stat_increment(self, key: str, value: int = 1, *, zero: bool = False) -> None:
        """``stat_backend.c:stat_increment()``: an IMSG_STAT_INCREMENT to control (nothing
        is sent for a count of 0, except with ``zero`` at a call site the C reaches with a
        count of 0 in an era whose stat_backend.c sends it: ``behaviour.stat_zero_counts``)."""
        if value or (zero and self.behaviour.stat_zero_counts):
            self.send("control", "STAT_INCREMENT", (key, value), length=STAT_FIXED_LEN + len(key))

    def stat_decrement(self, key: str, value: int = 1, *, zero: bool = False) -> None:
        """``stat_backend.c:stat_decrement()`` (nothing is sent for a count of 0, except
        as :meth:`stat_increment` says)."""
        if value or (zero and self.behaviour.stat_zero_counts):
            self.send("control", "STAT_DECREMENT", (key, value), length=STAT_FIXED_LEN + len(key))

    # ---- helpers -----------------------------------------------------------------------

    @property
    def now(self) -> float:
        """Virtual time inside the running handler."""
        return self.proc.cursor

    def start(self) -> None:
        """Called once when the simulation is built (before any imsg)."""

    def counters(self) -> dict[str, float]:
        """What the role counted (forks, double bounces, queue gauges...), for reports:
        the one way analysis code reads a role."""
        return {}
