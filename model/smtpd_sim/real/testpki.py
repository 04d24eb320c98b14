"""Throwaway certificate chains for the TLS relay sinks, generated at run time.

Why: the outbound-STARTTLS scenarios relay to sinks whose certificate chain has one
link (leaf signed by the root) or two (leaf signed by an intermediate signed by the
root), and smtpd.conf's ``ca`` directive names the root, so the real daemon's
``cert_verify()`` (6.8 cert.c) has a chain to send and a CA to verify it with.
Nothing here is committed: keys and certificates live in the run's work dir.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 3650


@dataclass(frozen=True)
class Issued:
    """A key and its certificate."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def _issue(cn: str, *, issuer: Issued | None, is_ca: bool, san: str | None = None) -> Issued:
    """An EC P-256 certificate for ``cn``, self-signed when ``issuer`` is None."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    b = (x509.CertificateBuilder()
         .subject_name(name)
         .issuer_name(issuer.cert.subject if issuer else name)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now)
         .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
         .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True))
    if is_ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                          crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
    if san is not None:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    signer = issuer.key if issuer else key
    return Issued(key, b.sign(signer, hashes.SHA256()))


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_sink_pki(certdir: str | Path, hosts: dict[str, int]) -> dict[str, tuple[Path, Path]]:
    """A root CA (``ca.pem``) and, per host, a chain of ``hosts[host]`` (1 or 2) certificates.

    Returns ``{host: (chain.pem, key.pem)}``; ``chain.pem`` holds the leaf then, for a
    chain of 2, the intermediate (what the sink presents). The root is not in the chain.
    """
    d = Path(certdir)
    d.mkdir(parents=True, exist_ok=True)
    root = _issue("smtpd-sim test root CA", issuer=None, is_ca=True)
    (d / "ca.pem").write_bytes(_pem(root.cert))
    out: dict[str, tuple[Path, Path]] = {}
    for host, length in hosts.items():
        if length not in (1, 2):
            raise ValueError(f"chain length {length} for {host}: 1 or 2")
        inter = _issue(f"smtpd-sim test intermediate for {host}", issuer=root, is_ca=True) if length == 2 else None
        leaf = _issue(host, issuer=inter or root, is_ca=False, san=host)
        chain, key = d / f"{host}.chain.pem", d / f"{host}.key.pem"
        chain.write_bytes(_pem(leaf.cert, *([inter.cert] if inter else [])))
        key.write_bytes(_key_pem(leaf.key))
        key.chmod(0o600)
        out[host] = (chain, key)
    return out
