"""Klondike, the privsep key engine (``ca.c``): the only holder of private keys from 5.7.3."""

from __future__ import annotations

from smtpd_sim.kernel.message import Imsg
from smtpd_sim.roles.base import Role, handles


class CaRole(Role):
    """``ca.c:ca_imsg()``."""

    name = "ca"

    @handles("CONF_START", "CONF_END")
    def on_conf(self, m: Imsg) -> None:
        """IMSG_CONF_END → ``ca_init()`` parses the private keys; pony is enabled."""

    @handles("CA_PRIVENC", "CA_PRIVDEC", "CA_RSA_PRIVENC", "CA_RSA_PRIVDEC", "CA_ECDSA_SIGN")
    def on_private_op(self, m: Imsg) -> None:
        """``ca.c:ca_imsg()`` IMSG_CA_*: RSA_private_encrypt/decrypt or ECDSA_do_sign with the
        key named in the request, answered with the same imsg type."""
        self.reply(m, m.kind, {"id": m.payload["id"]}, length=m.length)
