"""oned serves XML-RPC over HTTPS directly when oned.conf names a certificate and key."""

from __future__ import annotations

import subprocess

import pyone
import urllib3

from tests.functional.oned_process import OnedProcess


def test_oned_serves_https_with_tls_cert_and_key(tmp_path):
    """pyone over https:// lists users; plain http on the same port is not XML-RPC."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    oned = OnedProcess(tmp_path / "one", conf_extra=f'TLS_CERT = "{cert}"\nTLS_KEY = "{key}"')
    oned.start()
    try:
        urllib3.disable_warnings()
        endpoint = oned.endpoint.replace("http://", "https://")
        one = pyone.OneServer(endpoint, session="oneadmin:onecloud", https_verify=False)
        assert [u.NAME for u in one.userpool.info().USER] == ["oneadmin"]
        assert "https://127.0.0.1:" in oned.log
    finally:
        oned.stop()
