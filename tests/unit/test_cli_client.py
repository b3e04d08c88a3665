"""OneClient against a real stdlib XML-RPC server on loopback: keep-alive, errors, ONE_AUTH."""

import socket
import socketserver
import threading
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

import pytest

from oned.client import OneCallError, OneClient, OneClientError, read_session


class KeepAliveHandler(SimpleXMLRPCRequestHandler):
    protocol_version = "HTTP/1.1"
    rpc_paths = ("/RPC2",)

    def setup(self):
        super().setup()
        self.server.connections += 1
        self.server.sockets.append(self.connection)


class Oned(socketserver.ThreadingMixIn, SimpleXMLRPCServer):
    """A fake oned answering OpenNebula-shaped replies; counts the TCP connections it accepts."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), KeepAliveHandler, logRequests=False, allow_none=True)
        self.connections = 0
        self.sockets = []
        self.register_function(lambda session, hid: [True, f"{session}|{hid}", 0], "one.host.info")
        self.register_function(
            lambda session, hid: [False, f"[one.host.info] Error getting host [{hid}].", 0x400],
            "one.host.delete",
        )
        self.register_function(lambda session, hid, on: [False], "one.host.enable")
        self.register_function(lambda session: [True], "one.hostpool.info")

    def handle_error(self, request, client_address):
        """A connection the test shut down is expected; keep the output clean."""


@pytest.fixture
def serve():
    """Start servers in threads; stop them all after the test."""
    started = []

    def start(server):
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture
def oned(serve):
    return serve(Oned())


def endpoint(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/RPC2"


def test_calls_reuse_one_kept_alive_connection_and_send_the_session_verbatim(oned):
    with OneClient(endpoint(oned), session="oneadmin:secret") as client:
        assert [client.call("one.host.info", i) for i in range(3)] == [
            "oneadmin:secret|0",
            "oneadmin:secret|1",
            "oneadmin:secret|2",
        ]
    assert oned.connections == 1


def test_a_connection_dropped_by_the_server_is_reopened_once(oned):
    client = OneClient(endpoint(oned), session="u:p")
    assert client.call("one.host.info", 1) == "u:p|1"
    oned.sockets[0].shutdown(socket.SHUT_RDWR)
    assert client.call("one.host.info", 2) == "u:p|2"
    assert oned.connections == 2
    client.close()


def test_a_failure_reply_raises_with_message_and_code(oned):
    with OneClient(endpoint(oned), session="u:p") as client, pytest.raises(OneCallError) as info:
        client.call("one.host.delete", 9)
    assert (info.value.message, info.value.code) == (
        "[one.host.info] Error getting host [9].",
        0x400,
    )


def test_a_bare_1_4_failure_reply_gets_a_message_naming_the_method(oned):
    client = OneClient(endpoint(oned), session="u:p")
    with client, pytest.raises(OneCallError, match=r"one\.host\.enable failed") as info:
        client.call("one.host.enable", 0, True)
    assert info.value.code == 0


def test_a_success_without_value_returns_none(oned):
    assert OneClient(endpoint(oned), session="u:p").call("one.hostpool.info") is None


def test_an_unknown_method_fault_is_a_call_error(oned):
    with pytest.raises(OneCallError, match=r"one\.nothing"):
        OneClient(endpoint(oned), session="u:p").call("one.nothing")


def test_a_closed_port_is_reported_as_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/RPC2"
    with pytest.raises(OneClientError) as info:
        OneClient(url, session="u:p").call("one.hostpool.info")
    assert info.value.message == f"cannot reach oned at {url}: Connection refused"


def test_a_missing_auth_file_is_named(monkeypatch, tmp_path):
    missing = tmp_path / "one_auth"
    monkeypatch.setenv("ONE_AUTH", str(missing))
    with pytest.raises(OneClientError) as info:
        OneClient("http://127.0.0.1:1/RPC2")
    assert info.value.message == f"ONE_AUTH file {missing} not found: No such file or directory"


def test_the_session_is_the_first_line_of_one_auth(monkeypatch, tmp_path):
    auth = tmp_path / "one_auth"
    auth.write_text("helen:mypass\nignored\n")
    monkeypatch.setenv("ONE_AUTH", str(auth))
    monkeypatch.setenv("ONE_XMLRPC", "http://oned.example:2633/RPC2")
    client = OneClient()
    assert (client.session, client.endpoint) == ("helen:mypass", "http://oned.example:2633/RPC2")


def test_an_auth_file_without_a_colon_is_rejected(tmp_path):
    auth = tmp_path / "one_auth"
    auth.write_text("helen\n")
    with pytest.raises(OneClientError, match="must be <username>:<password>"):
        read_session(str(auth))


def test_a_non_http_endpoint_is_rejected():
    with pytest.raises(OneClientError, match="bad XML-RPC endpoint"):
        OneClient("ftp://localhost/RPC2", session="u:p")


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1 and its key, written as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def test_https_endpoints_are_verified_and_kept_alive(serve, tmp_path):
    import ssl

    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    oned = Oned()
    oned.socket = server_ctx.wrap_socket(oned.socket, server_side=True)
    serve(oned)
    url = f"https://127.0.0.1:{oned.server_address[1]}/RPC2"

    client_ctx = ssl.create_default_context(cafile=cert)
    with OneClient(url, session="u:p", ssl_context=client_ctx) as client:
        assert client.call("one.host.info", 1) == "u:p|1"
        assert client.call("one.host.info", 2) == "u:p|2"
    assert oned.connections == 1

    with pytest.raises(OneClientError, match=r"cannot reach oned at https://.*CERTIFICATE_VERIFY"):
        OneClient(url, session="u:p").call("one.host.info", 3)
