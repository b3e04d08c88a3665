"""The directories oned judges a user's files by (oned/api/templates.py): SAFE_DIRS and the
image repository are safe, RESTRICTED_DIRS and oned's own etc/ and var/ are not (issue 10,
finding 2)."""

import logging

import pytest

from oned.api.cloud import Caller, Cloud
from oned.api.templates import parse, refuse_files, user_dirs
from oned.config import Config
from oned.errors import AuthorizationError, BadCall
from oned.locations import locations
from oned.restricted import allowed
from oned.template import parse as parse_text


def cloud_at(root: str, **config: object) -> Cloud:
    where = locations({"ONE_LOCATION": root})
    return Cloud(None, None, Config(**config), logging.getLogger("test"), where=where)


def test_etc_var_and_the_image_repository_are_restricted():
    """Even when SAFE_DIRS holds the whole install and nothing else is restricted: a user
    reaches the repository's files by IMAGE or IMAGE_ID only (issue 13)."""
    dirs = user_dirs(cloud_at("/one", safe_dirs=("/one",), restricted_dirs=()))
    assert allowed("/one/share/x", dirs)
    assert not allowed("/one/var/images/1", dirs)
    assert not allowed("/one/var/one.db", dirs)
    assert not allowed("/one/var/3/images/disk.0", dirs)
    assert not allowed("/one/etc/oned.conf", dirs)


def test_image_repository_path_is_restricted_even_inside_a_safe_dir():
    dirs = user_dirs(cloud_at("/one", safe_dirs=("/srv",), image_repository_path="/srv/repo"))
    assert allowed("/srv/a.img", dirs) and not allowed("/srv/repo/a.img", dirs)


def test_oneadmin_is_not_checked_and_a_user_is(tmp_path):
    """The API passes os.path.realpath: a link in a safe directory is judged by its target."""
    (tmp_path / "safe").mkdir()
    (tmp_path / "safe" / "link").symlink_to("/etc/shadow")
    cloud = cloud_at(str(tmp_path / "one"), safe_dirs=(str(tmp_path / "safe"),))
    tmpl = parse_text(f'DISK = [ SOURCE = "{tmp_path}/safe/link" ]')
    refuse_files(cloud, Caller(0, "oneadmin"), tmpl, "one.vm.allocate")
    with pytest.raises(AuthorizationError, match=r"restricted attribute DISK/SOURCE = .*/link"):
        refuse_files(cloud, Caller(1, "helen"), tmpl, "one.vm.allocate")


def test_parse_names_the_limit_or_the_attribute():
    with pytest.raises(BadCall, match=r"\[one.vm.update\] Error in VM template: .*MAX_TEMPLATE"):
        parse("A = 1\n" * 100_000, "one.vm.update", "VM")
    with pytest.raises(BadCall, match=r"Error in VM template: A contains a control character"):
        parse('A = "\x1b[2J"', "one.vm.allocate", "VM")
