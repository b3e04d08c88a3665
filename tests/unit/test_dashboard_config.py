"""dashboard.conf: every key optional, an unknown key or a value of the wrong kind named in one
line; relative files under <etc>; `one start` asks `enabled`."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard import config
from dashboard.config import Settings
from oned.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "share" / "etc" / "dashboard.conf.example"


def test_an_empty_file_gives_the_defaults():
    assert config.parse("") == Settings()
    assert Settings().port == 9869 and Settings().enabled is False


def test_every_key_of_the_contract_is_read():
    text = (
        "enabled: true\nhost: 0.0.0.0\nport: 8443\none_xmlrpc: http://one:2633/RPC2\n"
        "ssl_cert: d.crt\nssl_key: d.key\nsession_lifetime: 60\nmax_sessions: 5\n"
        "max_body: 1000\ntemplates_dir: /srv/t\n"
    )
    s = config.parse(text)
    assert (s.enabled, s.host, s.port, s.one_xmlrpc) == (
        True,
        "0.0.0.0",
        8443,
        "http://one:2633/RPC2",
    )
    assert (s.ssl_cert, s.ssl_key, s.session_lifetime) == ("d.crt", "d.key", 60)
    assert (s.max_sessions, s.max_body, s.templates_dir, s.scheme) == (5, 1000, "/srv/t", "https")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prot: 1", "unknown setting 'prot'"),
        ("port: '80'", "port must be an integer"),
        ("port: true", "port must be an integer"),
        ("enabled: 1", "enabled must be true or false"),
        ("enabled: yes please", "enabled must be true or false"),
        ("port: 0", "port must be 1 to 65535"),
        ("port: 70000", "port must be 1 to 65535"),
        ("session_lifetime: 0", "session_lifetime must be positive"),
        ("max_body: -1", "max_body must be positive"),
        ("ssl_cert: a.crt", "ssl_cert and ssl_key go together"),
        ("one_xmlrpc: ftp://x/", "one_xmlrpc must be an http:// or https:// URL"),
        ("- a\n- b", "expected a mapping"),
        ("port: [", "not valid YAML"),
        ("1: 2", "unknown setting '1'"),
    ],
)
def test_a_wrong_file_is_one_line_naming_the_key(text, message):
    with pytest.raises(ConfigError) as err:
        config.parse(text, "/etc/one/dashboard.conf")
    assert message in str(err.value)
    assert str(err.value).startswith("/etc/one/dashboard.conf: ")
    assert "\n" not in str(err.value)


def test_relative_files_are_under_etc_and_the_examples_default_to_etc_templates():
    s = config.resolved(config.parse("ssl_cert: d.crt\nssl_key: /k/d.key"), "/etc/one")
    assert (s.ssl_cert, s.ssl_key) == ("/etc/one/d.crt", "/k/d.key")
    assert s.templates_dir == "/etc/one/templates"


def test_enabled_only_with_a_file_that_says_so(tmp_path):
    assert not config.enabled(str(tmp_path))
    (tmp_path / "dashboard.conf").write_text("port: 9000\n")
    assert not config.enabled(str(tmp_path))
    (tmp_path / "dashboard.conf").write_text("enabled: true\n")
    assert config.enabled(str(tmp_path))
    # a broken file: one start tries, and one-dashboard says what is wrong
    (tmp_path / "dashboard.conf").write_text("enabled: [\n")
    assert config.enabled(str(tmp_path))


def test_read_names_a_missing_file_only_when_it_was_asked_for(tmp_path):
    assert config.read(str(tmp_path / "none.conf")) == Settings()
    with pytest.raises(ConfigError, match="no such file"):
        config.read(str(tmp_path / "none.conf"), explicit=True)


def test_the_shipped_example_documents_every_key_with_its_default():
    text = EXAMPLE.read_text()
    assert config.parse(text) == Settings()  # all commented out
    uncommented = "\n".join(
        line[1:]
        for line in text.splitlines()
        if line.startswith("#") and ":" in line and not line.startswith("# ")
    )
    shown = config.parse(uncommented)
    for key, value in Settings().__dict__.items():
        if value is not None:
            assert getattr(shown, key) == value, key
    for key in Settings.__dataclass_fields__:
        assert f"#{key}:" in text, key
