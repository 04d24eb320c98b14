"""smtpd_sim.real.testpki: certificate chains of 1 and 2 under one throwaway root (no root)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from smtpd_sim.real.testpki import write_sink_pki


def _certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def test_chains_of_one_and_two_below_one_root(tmp_path: Path) -> None:
    issued = write_sink_pki(tmp_path, {"tls1.sink.test": 1, "tls2.sink.test": 2})
    (root,) = _certs(tmp_path / "ca.pem")
    one, two = _certs(issued["tls1.sink.test"][0]), _certs(issued["tls2.sink.test"][0])
    assert len(one) == 1 and len(two) == 2
    assert one[0].issuer == root.subject
    assert two[0].issuer == two[1].subject and two[1].issuer == root.subject
    for leaf, host in ((one[0], "tls1.sink.test"), (two[0], "tls2.sink.test")):
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == [host]  # what 6.8 ssl_check_name() matches
        leaf.verify_directly_issued_by(root if leaf is one[0] else two[1])
    assert (issued["tls1.sink.test"][1].stat().st_mode & 0o777) == 0o600


def test_only_chains_of_one_or_two(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1 or 2"):
        write_sink_pki(tmp_path, {"x.test": 3})
