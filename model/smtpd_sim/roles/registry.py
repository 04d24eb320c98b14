"""The roles a topology may name: the daemon's, then those installed packages add."""

from __future__ import annotations

from smtpd_sim.errors import ModelError
from smtpd_sim.roles.base import Role
from smtpd_sim.roles.ca import CaRole
from smtpd_sim.roles.control import ControlRole
from smtpd_sim.roles.lka import LkaRole
from smtpd_sim.roles.mda import MdaRole
from smtpd_sim.roles.mfa import MfaRole
from smtpd_sim.roles.mta import MtaRole
from smtpd_sim.roles.parent import ParentRole
from smtpd_sim.roles.queue import QueueRole
from smtpd_sim.roles.scheduler import SchedulerRole
from smtpd_sim.roles.smtp import SmtpRole
from smtpd_sim.spec.plugins import plugin_roles

ROLE_CLASSES: dict[str, type[Role]] = {
    "parent": ParentRole, "smtp": SmtpRole, "mta": MtaRole, "mda": MdaRole, "mfa": MfaRole,
    "lka": LkaRole, "queue": QueueRole, "scheduler": SchedulerRole, "control": ControlRole,
    "ca": CaRole,
}


def role_class(name: str) -> type[Role]:
    """The class of a role: the daemon's, or one an installed package adds (``smtpd_sim.roles``
    entry points, :mod:`smtpd_sim.spec.plugins`)."""
    cls = ROLE_CLASSES.get(name)
    if cls is not None:
        return cls
    cls = plugin_roles().get(name)
    if not (isinstance(cls, type) and issubclass(cls, Role)):
        raise ModelError(f"role plugin {name!r}: {cls!r} is not a Role subclass")
    return cls
