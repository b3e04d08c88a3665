"""oned.conf: the shipped example, the seed's excerpts, and one ConfigError per kind of mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from oned.config import Config, DbConfig, HookConfig, MadConfig, load_config
from oned.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "oned.conf.example"

# The seed workshop (003), copied literally: trailing blanks included.
SEED_GENERAL = """\
HOST_MONITORING_INTERVAL = 60
VM_POLLING_INTERVAL      = 60

#VM_DIR      = /srv/cloud/one/var

MAC_PREFIX   = "00:01"
NETWORK_SIZE = 254

PORT         = 2633
DEBUG_LEVEL  = 3
"""

SEED_IM_MAD = (
    "IM_MAD = [  \n"
    '    name          = "im_xen",  \n'
    '    executable    = "one_im_ssh",  \n'
    '    arguments     = "im_xen/im_xen.conf" ]\n'
)

SEED_TM_MAD = (
    "TM_MAD = [  \n"
    '    name          = "tm_nfs",  \n'
    '    executable    = "one_tm",  \n'
    '    arguments     = "tm_nfs/tm_nfs.conf" ]\n'
)

SEED_VM_MAD = (
    "VM_MAD = [  \n"
    '  name      = "vmm_xen",  \n'
    '  executable = "one_vmm_xen",  \n'
    '  default   = "vmm_xen/vmm_xen.conf",  \n'
    '  type      = "xen" ]\n'
)

SEED_EC2_DRIVERS = (
    "IM_MAD = [  \n"
    '    name           = "im_ec2",  \n'
    '    executable     = "one_im_ec2",  \n'
    '    arguments      = "im_ec2/im_ec2.conf" ] # No. of instances of each type  \n'
    "  \n"
    "VM_MAD = [  \n"
    '    name           = "vmm_ec2",  \n'
    '    executable     = "one_vmm_ec2",  \n'
    '    arguments      = "vmm_ec2/vmm_ec2.conf", # Defaults, e.g. keypair  \n'
    '    type           = "xml" ]  \n'
    "  \n"
    "TM_MAD = [ #No actual transfers are made by OpenNebula to EC2  \n"
    '    name           = "tm_dummy",  \n'
    '    executable     = "one_tm",  \n'
    '    arguments      = "tm_dummy/tm_dummy.conf" ]\n'
)


def test_shipped_example_loads_without_warnings():
    """oned.conf.example is valid and every attribute in it is known."""
    config = load_config(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE))
    assert config.warnings == ()
    assert config.db == DbConfig("sqlite")
    assert (config.port, config.debug_level, config.mac_prefix) == (2633, 3, "02:00")
    assert [m.name for m in config.im_mads] == ["im_kvm", "im_xen", "im_dummy"]
    assert [(m.name, m.type) for m in config.vm_mads] == [
        ("vmm_kvm", "kvm"),
        ("vmm_xen", "xen"),
        ("vmm_dummy", "xml"),
    ]
    assert [m.arguments for m in config.tm_mads] == [
        "tm_ssh/tm_ssh.conf",
        "tm_nfs/tm_nfs.conf",
        "tm_dummy/tm_dummy.conf",
    ]
    assert config.hm_mad is not None and config.hm_mad.executable == "one_hm"
    assert config.vm_hooks == config.host_hooks == ()


def test_shipped_example_states_the_built_in_defaults():
    """The example sets each single attribute to the value it has when left out."""
    config = load_config(EXAMPLE.read_text(encoding="utf-8"))
    drivers = ("im_mads", "vm_mads", "tm_mads", "hm_mad")
    assert config == Config(**{name: getattr(config, name) for name in drivers})


def _commented_examples(text: str) -> list[str]:
    """Each commented-out setting of the example (a run of # lines starting NAME =), uncommented."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if current is None and re.match(r"#\s?[A-Z][A-Z_]* *=", line):
            current = []
            blocks.append(current)
        if current is not None and line.startswith("#"):
            current.append(line[1:])
        else:
            current = None
    return ["\n".join(block) for block in blocks]


def test_commented_out_examples_in_the_shipped_file_are_valid():
    """Uncommenting any sample (PostgreSQL, EC2 drivers, hooks, TLS...) gives a valid file."""
    examples = _commented_examples(EXAMPLE.read_text(encoding="utf-8"))
    assert len(examples) >= 12
    for example in examples:
        config = load_config(example)
        assert all("AUTH_MAD" in warning for warning in config.warnings), example


def test_seed_general_attributes_load():
    """The workshop's first excerpt, with a 1.4 MAC prefix."""
    config = load_config(SEED_GENERAL)
    assert (config.host_monitoring_interval, config.vm_polling_interval) == (60, 60)
    assert (config.mac_prefix, config.network_size, config.port) == ("00:01", 254, 2633)
    assert config.vm_dir is None
    assert config.warnings == ()


def test_seed_driver_excerpts_load():
    """The workshop's IM_MAD, TM_MAD and VM_MAD blocks, trailing blanks and all."""
    text = SEED_GENERAL + SEED_IM_MAD + SEED_TM_MAD + SEED_VM_MAD + SEED_EC2_DRIVERS
    config = load_config(text)
    assert config.im_mads[0] == MadConfig(
        "IM", "im_xen", "one_im_ssh", arguments="im_xen/im_xen.conf", line=11
    )
    assert config.tm_mads[0] == MadConfig(
        "TM", "tm_nfs", "one_tm", arguments="tm_nfs/tm_nfs.conf", line=15
    )
    assert config.vm_mads[0] == MadConfig(
        "VM", "vmm_xen", "one_vmm_xen", default="vmm_xen/vmm_xen.conf", type="xen", line=19
    )
    assert [m.name for m in config.im_mads + config.vm_mads + config.tm_mads] == [
        "im_xen",
        "im_ec2",
        "vmm_xen",
        "vmm_ec2",
        "tm_nfs",
        "tm_dummy",
    ]
    assert config.warnings == ()


def test_empty_file_gives_the_defaults():
    """Nothing set: every attribute at its default, no drivers."""
    assert load_config("") == Config()


def test_names_are_case_insensitive_and_backends_normalised():
    """Lower-case names read as upper-case ones; postgres is postgresql."""
    config = load_config('port = 2634\ndb = [ backend = "Postgres", port = 5433 ]')
    assert config.port == 2634
    assert config.db == DbConfig("postgresql", port=5433)


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        ("sqlite", "sqlite"),
        ("postgresql", "postgresql"),
        ("postgres", "postgresql"),
        ("MySQL", "mysql"),
        ("mariadb", "mysql"),
    ],
)
def test_db_backend_aliases_are_normalised(backend, expected):
    """Every accepted BACKEND spelling maps to one of three names."""
    assert load_config(f"DB = [ BACKEND = {backend} ]").db.backend == expected


def test_full_db_vector_is_read():
    """SERVER, PORT, USER, PASSWD and DB_NAME reach DbConfig."""
    text = """DB = [ BACKEND = mysql, SERVER = db1, PORT = 3306,
                     USER = one, PASSWD = "s e", DB_NAME = c ]"""
    assert load_config(text).db == DbConfig("mysql", "db1", 3306, "one", "s e", "c")


def test_sqlite_synchronous_is_upper_cased():
    """SYNCHRONOUS takes NORMAL or FULL in any case."""
    assert load_config("DB = [ BACKEND = sqlite, SYNCHRONOUS = full ]").db.synchronous == "FULL"


def test_synchronous_on_another_backend_is_a_warning():
    """SYNCHRONOUS means nothing to PostgreSQL: reported, not fatal."""
    config = load_config("\nDB = [ BACKEND = postgresql, SYNCHRONOUS = FULL ]")
    assert config.warnings == (
        "oned.conf line 2: DB[SYNCHRONOUS] applies to sqlite only and is ignored",
    )


def test_unknown_attributes_and_keys_are_warnings():
    """OpenNebula ignores what it does not know; so do we, saying so."""
    text = (
        'AUTH_MAD = [ executable = "one_auth_mad" ]\nIM_MAD = [ name = a, executable = b, x = 1 ]'
    )
    config = load_config(text, "/etc/one/oned.conf")
    assert config.warnings == (
        "/etc/one/oned.conf line 1: unknown attribute AUTH_MAD is ignored",
        "/etc/one/oned.conf line 2: unknown key IM_MAD[X] is ignored",
    )
    assert config.im_mads == (MadConfig("IM", "a", "b", line=2),)


def test_hooks_default_their_name_to_the_command():
    """ON is upper-cased, REMOTE is yes/no, NAME falls back to COMMAND."""
    text = (
        'VM_HOOK = [ on = "running", command = "ebtables-kvm", arguments = "one-$VMID",'
        ' remote = "YES" ]\n'
        "HOST_HOOK = [ name = err, on = error, command = host_error.rb, arguments = $HID ]"
    )
    config = load_config(text)
    assert config.vm_hooks == (
        HookConfig("VM", "ebtables-kvm", "RUNNING", "ebtables-kvm", "one-$VMID", True, 1),
    )
    assert config.host_hooks == (
        HookConfig("HOST", "err", "ERROR", "host_error.rb", "$HID", False, 2),
    )


def test_hm_mad_needs_no_name():
    """The hook manager is one driver; NAME is optional."""
    assert load_config('HM_MAD = [ executable = "one_hm" ]').hm_mad == MadConfig(
        "HM", "hm", "one_hm", line=1
    )


def test_zero_vm_polling_interval_turns_polling_off():
    """0 is a valid interval."""
    assert load_config("VM_POLLING_INTERVAL = 0").vm_polling_interval == 0


def test_tls_certificate_and_key_are_read_together():
    """Both given: both kept."""
    config = load_config("TLS_CERT = /etc/one/c.pem\nTLS_KEY = /etc/one/k.pem")
    assert (config.tls_cert, config.tls_key) == ("/etc/one/c.pem", "/etc/one/k.pem")


def test_value_normalisation():
    """Choices and the MAC prefix are stored in one canonical case."""
    text = 'MAC_PREFIX = "0A:BC"\nDEFAULT_IMAGE_TYPE = cdrom\nDEFAULT_DEVICE_PREFIX = VD'
    config = load_config(text)
    assert (config.mac_prefix, config.default_image_type, config.default_device_prefix) == (
        "0a:bc",
        "CDROM",
        "vd",
    )


def test_syntax_error_becomes_a_config_error_with_line_and_column():
    """A file that does not parse names the place of the error."""
    with pytest.raises(ConfigError) as caught:
        load_config("PORT = 2633\nIM_MAD = [ name = im_kvm\n executable = x ]", "oned.conf")
    assert str(caught.value) == (
        "oned.conf line 3, column 2: syntax error, unexpected VARIABLE, expecting COMMA or CBRACKET"
    )


WRONG_VALUES = [
    ('PORT = "abc"', 'PORT = "abc" is not an integer between 1 and 65535'),
    ("PORT = 0", 'PORT = "0" is not an integer between 1 and 65535'),
    ("PORT = 65536", 'PORT = "65536" is not an integer between 1 and 65535'),
    ("PORT = " + "9" * 5000, 'PORT = "999999'),
    ("DEBUG_LEVEL = 4", 'DEBUG_LEVEL = "4" is not an integer between 0 and 3'),
    ("HOST_MONITORING_INTERVAL = -1", 'HOST_MONITORING_INTERVAL = "-1" is not an integer'),
    ("VM_POLLING_INTERVAL = 1.5", 'VM_POLLING_INTERVAL = "1.5" is not an integer'),
    ("MANAGER_TIMER = 0", 'MANAGER_TIMER = "0" is not an integer between 1 and 3600'),
    ("NETWORK_SIZE = 0", 'NETWORK_SIZE = "0" is not an integer between 1 and 16777216'),
    ("NETWORK_SIZE = 16777217", 'NETWORK_SIZE = "16777217" is not an integer between 1'),
    ("VNC_BASE_PORT = x", 'VNC_BASE_PORT = "x" is not an integer between 1 and 65535'),
    ("MAX_REQUEST_SIZE = 10", 'MAX_REQUEST_SIZE = "10" is not an integer between 1024'),
    ('MAC_PREFIX = "02:00:00"', 'MAC_PREFIX = "02:00:00" is not two hexadecimal bytes "hh:hh"'),
    ('MAC_PREFIX = "zz:00"', 'MAC_PREFIX = "zz:00" is not two hexadecimal bytes "hh:hh"'),
    ('MAC_PREFIX = "01:00"', 'MAC_PREFIX = "01:00" is a multicast prefix'),
    ('LISTEN_ADDRESS = "any host"', 'LISTEN_ADDRESS = "any host" is not an IP address or a host'),
    ("VM_DIR = var/one", 'VM_DIR = "var/one" is not an absolute path'),
    ('SCRIPTS_REMOTE_DIR = ""', 'SCRIPTS_REMOTE_DIR = "" is not an absolute path'),
    ("DEFAULT_IMAGE_TYPE = FLOPPY", 'DEFAULT_IMAGE_TYPE = "FLOPPY" is not one of OS, CDROM, DATA'),
    ("DEFAULT_DEVICE_PREFIX = xd", 'DEFAULT_DEVICE_PREFIX = "xd" is not one of hd, sd, xvd, vd'),
    ("PORT = [ value = 1 ]", "PORT must be a single value, not a vector"),
    ('DB = "sqlite"', "DB must be a vector: DB = [ ... ]"),
    ('IM_MAD = "im_kvm"', "IM_MAD must be a vector: IM_MAD = [ ... ]"),
    ("DB = [ BACKEND = oracle ]", 'DB[BACKEND] = "oracle" is not one of sqlite, postgresql'),
    ("DB = [ SERVER = localhost ]", "DB has no BACKEND"),
    ("DB = [ BACKEND = mysql, PORT = x ]", 'DB[PORT] = "x" is not an integer between 0 and 65535'),
    ("DB = [ BACKEND = sqlite, SYNCHRONOUS = OFF ]", 'DB[SYNCHRONOUS] = "OFF" is not one of'),
    ("IM_MAD = [ executable = one_im_ssh ]", "IM_MAD has no NAME"),
    ("TM_MAD = [ name = tm_ssh ]", "TM_MAD has no EXECUTABLE"),
    ('IM_MAD = [ name = im, executable = "" ]', 'IM_MAD[EXECUTABLE] = "" is empty'),
    ("VM_MAD = [ name = v, executable = e, type = vbox ]", 'VM_MAD[TYPE] = "vbox" is not one of'),
    ("HM_MAD = [ arguments = x ]", "HM_MAD has no EXECUTABLE"),
    ("VM_HOOK = [ command = /bin/true ]", "VM_HOOK has no ON"),
    ("VM_HOOK = [ on = create ]", "VM_HOOK has no COMMAND"),
    ("VM_HOOK = [ on = boot, command = x ]", 'VM_HOOK[ON] = "boot" is not one of CREATE, RUNNING'),
    ("HOST_HOOK = [ on = running, command = x ]", 'HOST_HOOK[ON] = "running" is not one of'),
    ("VM_HOOK = [ on = done, command = x, remote = maybe ]", 'VM_HOOK[REMOTE] = "maybe" is not'),
    ("TLS_CERT = /etc/one/cert.pem", "TLS_CERT is set but TLS_KEY is not; give both or neither"),
    ("TLS_KEY = /etc/one/key.pem", "TLS_KEY is set but TLS_CERT is not; give both or neither"),
]


@pytest.mark.parametrize(("line", "message"), WRONG_VALUES)
def test_wrong_values_name_the_file_line_and_attribute(line, message):
    """Each kind of mistake stops the load with a one-line message."""
    with pytest.raises(ConfigError) as caught:
        load_config(
            f"# oned.conf\nIM_MAD = [ name = im_ok, executable = x ]\n{line}\n", "oned.conf"
        )
    text = str(caught.value)
    assert text.startswith(f"oned.conf line 3: {message}")
    assert "\n" not in text


def test_wrong_value_message_is_exactly_one_sentence():
    """The brief's example, word for word."""
    with pytest.raises(ConfigError) as caught:
        load_config("\n" * 11 + 'PORT = "abc"')
    assert (
        str(caught.value) == 'oned.conf line 12: PORT = "abc" is not an integer between 1 and 65535'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("PORT = 1\nPORT = 2", "oned.conf line 2: PORT is already set at line 1"),
        (
            "DB = [ BACKEND = sqlite ]\nDB = [ BACKEND = mysql ]",
            "oned.conf line 2: DB is already set",
        ),
        ("HM_MAD = [ executable = a ]\nHM_MAD = [ executable = b ]", "oned.conf line 2: HM_MAD is"),
        (
            "VM_MAD = [ name = v, executable = a ]\nVM_MAD = [ name = v, executable = b ]",
            'oned.conf line 2: VM_MAD name "v" is already used at line 1',
        ),
    ],
)
def test_repeated_settings_are_refused(text, message):
    """Single settings, DB and HM_MAD appear once; driver names are unique per kind."""
    with pytest.raises(ConfigError, match="^" + message.replace("[", r"\[")):
        load_config(text)


def test_same_name_in_two_driver_kinds_is_fine():
    """Uniqueness is per kind: an IM and a TM driver may share a name."""
    config = load_config(
        "IM_MAD = [ name = d, executable = a ]\nTM_MAD = [ name = d, executable = b ]"
    )
    assert (config.im_mads[0].name, config.tm_mads[0].name) == ("d", "d")
