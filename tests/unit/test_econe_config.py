"""econe.conf parsing: defaults, every key checked, a bad file refused naming what is wrong."""

from __future__ import annotations

import pytest

from econe import config
from oned.errors import ConfigError


def test_an_empty_file_gives_the_defaults():
    settings = config.parse("")
    assert (settings.host, settings.port, settings.region) == ("127.0.0.1", 4567, "one")
    assert settings.endpoint == "http://127.0.0.1:4567/"
    assert settings.terminated_expiration == 900


def test_a_full_file_is_read():
    settings = config.parse(
        """
        one_xmlrpc: http://oned:2633/RPC2
        host: 0.0.0.0
        port: 8773
        ssl_cert: /etc/one/econe.crt
        ssl_key: /etc/one/econe.key
        public_url: https://cloud.example.org/
        region: lab
        zones: [lab-a, lab-b]
        signing_regions: ["*"]
        instance_types: {m1.small: {template: m1.small.erb}}
        public_network: Public EC2
        """
    )
    assert settings.zones == ("lab-a", "lab-b")
    assert settings.endpoint == "https://cloud.example.org/"
    assert settings.scheme == "https"
    assert settings.signing_regions == ("*",)


@pytest.mark.parametrize(
    "text, words",
    [
        ("colour: blue", "unknown setting 'colour'"),
        ("port: http", "port must be an integer"),
        ("port: 70000", "port must be 1 to 65535"),
        ("port: true", "port must be an integer"),
        ("zones: []", "zones must be a list of names"),
        ("max_body: 0", "max_body must be positive"),
        ("ssl_cert: /x", "ssl_cert and ssl_key go together"),
        ("- a\n- b", "expected a mapping"),
        ("a: [", "not valid YAML"),
    ],
)
def test_a_bad_file_is_refused_naming_the_setting(text, words):
    with pytest.raises(ConfigError) as info:
        config.parse(text, "econe.conf")
    assert words in str(info.value)


def test_keys_lines_are_read_and_a_bad_line_named_without_its_secret():
    assert config.parse_keys("# comment\n\nAK1 s1\nAK2 s2\n") == {"AK1": "s1", "AK2": "s2"}
    with pytest.raises(ConfigError) as info:
        config.parse_keys("AK1 s1 extra-secret\n", "keys")
    assert "keys:1" in str(info.value) and "extra-secret" not in str(info.value)


def test_the_shipped_example_is_valid_and_its_relative_names_are_under_etc():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "share/etc/econe/econe.conf.example").read_text()
    settings = config.resolved(config.parse(text), "/srv/one/etc")
    assert settings.server_auth == "/srv/one/etc/econe/server_auth"
    assert settings.templates_dir == "/srv/one/etc/templates/ec2query"
    assert config.resolved(config.Settings(keys_file="/abs/keys"), "/x").keys_file == "/abs/keys"


@pytest.mark.parametrize(
    "text, message",
    [
        ("instance_types: {m1.small: m1.small.one.j2}", "m1.small needs a template file name"),
        ("max_count: 0", "max_count must be positive"),
        ("server_auth: [a]", "server_auth must be a string"),
    ],
)
def test_the_new_settings_are_checked(text, message):
    with pytest.raises(ConfigError, match=message):
        config.parse(text)
