"""TLS for ``smtpd-sim serve``: the server's certificate and its ``ssl.SSLContext``.

The real daemon loads ``pki <name> cert/key`` (smtpd.conf) and builds one SSL_CTX per
pki in ``smtp.c:smtp_setup_events()`` → ``ssl.c:ssl_setup()``.  Here ``--cert/--key``
play that part; without them a self-signed pair for the listener's hostname is made at
start (the ``cryptography`` package) so STARTTLS and SMTPS work out of the box.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
from pathlib import Path

from smtpd_sim.errors import SmtpdSimError

SELF_SIGNED_DAYS = 30  # validity of a generated certificate (a test pki, not a real one)
SELF_SIGNED_KEY_BITS = 2048  # RSA, as `openssl req -newkey rsa:2048` in the research's test pki


class TlsConfigError(SmtpdSimError):
    """A certificate or key that cannot be loaded (one line)."""


def make_self_signed(hostname: str, directory: Path | None = None) -> tuple[Path, Path]:
    """Write a self-signed certificate for ``hostname`` (plus localhost, 127.0.0.1, ::1)
    and its RSA key as PEM files in ``directory`` (a new temporary one if None); return
    (cert, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    out = Path(tempfile.mkdtemp(prefix="smtpd-sim-tls-")) if directory is None else directory
    out.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=SELF_SIGNED_KEY_BITS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    alt = x509.SubjectAlternativeName([
        x509.DNSName(hostname), x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1")),
    ])
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
            .add_extension(alt, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = out / "server.crt", out / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """The server's context (``ssl.c:ssl_setup()``): the pair loaded, TLS 1.2 or newer."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except FileNotFoundError as e:
        raise TlsConfigError(f"--cert/--key: {e.filename}: no such file") from None
    except ssl.SSLError as e:
        raise TlsConfigError(f"--cert {cert} / --key {key}: cannot load the pair "
                             f"({e.reason or e})") from None
    return ctx
