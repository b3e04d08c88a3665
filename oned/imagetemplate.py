"""Images, pure: an image template (reference §4.3, §5.2) to the Image it registers.

A template names at most one source of content: PATH (a file on the front end or an http(s)
URL, copied into the repository), SOURCE (a file already in place: READY at once), or, for a
DATABLOCK, SIZE (MB) and FSTYPE (an empty file system made in the repository). With none of
them the image stays INIT until a VM saves a disk into it (``one.vm.savedisk``). Whether a
PATH exists, and whether a user may name it, is the API's business (it touches files); here
only the words are judged, each problem naming its attribute.
"""

from __future__ import annotations

import re

from drivers.tm_script import FORMATS
from oned.records import Image
from oned.states import ImageState, ImageType
from oned.template import Template

TYPES = {"OS": ImageType.OS, "CDROM": ImageType.CDROM, "DATABLOCK": ImageType.DATABLOCK}
TYPE_NAMES = {number: name for name, number in TYPES.items()}
# What an empty DATABLOCK may be made with: the TM's MKIMAGE formats (raw is a sparse file).
FSTYPES = FORMATS
MAX_SIZE_MB = 2**31 - 1  # ids and sizes are 32-bit columns
_URL = re.compile(r"^https?://[^\s\0-\x1f\x7f]+$", re.I)
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)
_CONTROL = re.compile(r"[\0-\x1f\x7f]")
_NUMBER = re.compile(r"[0-9]{1,10}")


class ImageTemplateError(ValueError):
    """An image template that cannot be registered; each of ``problems`` names its attribute."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def build(
    tmpl: Template, *, oid: int, uid: int, regtime: int, default_type: str, dev_prefix: str
) -> Image:
    """The image ``tmpl`` registers for ``uid``; ``tmpl`` itself is not changed.

    The state says what must happen next: READY (SOURCE in place), LOCKED with ``path`` set
    (to be copied), LOCKED with ``size`` and ``fstype`` (to be made), INIT (nothing yet). The
    API sets ``source`` of a LOCKED image (its file in the repository). Raises
    ImageTemplateError listing every problem.

    NOTE: as OpenNebula 2.0's Image::insert, PUBLIC and PERSISTENT (YES/NO, default NO) leave
    the template for the image's flags, and DEV_PREFIX is written in when missing."""
    tmpl = tmpl.copy()
    problems: list[str] = []
    name = check_name(tmpl.get("NAME"), problems)
    kind = _type(tmpl.get("TYPE"), default_type, problems)
    public = _flag(tmpl, "PUBLIC", problems)
    persistent = _flag(tmpl, "PERSISTENT", problems)
    image = Image(oid, uid, name, kind, public, persistent, regtime, tmpl)
    _content(image, tmpl, problems)
    if problems:
        raise ImageTemplateError(problems)
    if "DEV_PREFIX" not in tmpl:
        tmpl.set("DEV_PREFIX", dev_prefix)
    return image


def check_name(value: object, problems: list[str]) -> str:
    """NAME: 1-128 characters on one line, without blanks around it."""
    if not isinstance(value, str) or not value.strip():
        problems.append('NAME is missing: name the image (NAME = "ttylinux")')
        return ""
    if len(value) > 128 or _CONTROL.search(value) or value != value.strip():
        shown = value[:40].encode("unicode_escape").decode()
        problems.append(f'NAME = "{shown}": must be 1-128 characters on one line, no blanks around')
    return value


def may_use(image: Image, uid: int) -> bool:
    """OpenNebula 2.0's IMAGE USE: oneadmin, the owner, or anyone when the image is public."""
    return uid == 0 or image.uid == uid or image.public


def public_after_chmod(public: bool, group_u: int, other_u: int) -> bool:
    """Modern one.image.chmod on onecloud's one flag: public when GROUP_U or OTHER_U is 1
    (-1 keeps the current value, which a public image shows as 1 in both)."""
    group = int(public) if group_u == -1 else group_u
    other = int(public) if other_u == -1 else other_u
    return group == 1 or other == 1


def _type(value: object, default: str, problems: list[str]) -> int:
    """NOTE: OpenNebula 2.0 upper-cases TYPE; an empty one is DEFAULT_IMAGE_TYPE."""
    if value is None:
        value = default
    word = value.strip().upper() if isinstance(value, str) else "[...]"
    word = word or default.upper()
    if word in TYPES:
        return TYPES[word]
    shown = value if isinstance(value, str) else word
    problems.append(f'TYPE = "{shown}": must be OS, CDROM or DATABLOCK')
    return ImageType.OS


def _flag(tmpl: Template, attribute: str, problems: list[str]) -> bool:
    values = tmpl.remove(attribute)
    if not values:
        return False
    word = values[-1].strip().upper() if isinstance(values[-1], str) else ""
    if word not in ("YES", "NO"):
        problems.append(f'{attribute} = "{values[-1]}": must be YES or NO')
    return word == "YES"


def _content(image: Image, tmpl: Template, problems: list[str]) -> None:
    """Where the content comes from: PATH, SOURCE, SIZE (+FSTYPE) or nothing yet."""
    path = _single(tmpl, "PATH", problems)
    source = _single(tmpl, "SOURCE", problems)
    size = _single(tmpl, "SIZE", problems)
    fstype = _single(tmpl, "FSTYPE", problems)
    given = [a for a, v in (("PATH", path), ("SOURCE", source), ("SIZE", size)) if v is not None]
    if len(given) > 1:
        problems.append(f"{' and '.join(given)}: an image has one source of content, name one")
        return
    if path is not None:
        _check_path(path, problems)
        image.path, image.state = path, ImageState.LOCKED
    elif source is not None:
        _check_source(source, problems)
        image.source, image.state = source, ImageState.READY
    if size is not None or fstype is not None:
        _datablock(image, size, fstype, problems)


def _single(tmpl: Template, attribute: str, problems: list[str]) -> str | None:
    value = tmpl.get(attribute)
    if value is None or isinstance(value, str):
        return value
    problems.append(f"{attribute} must be a single value, not a vector")
    return None


def _check_path(path: str, problems: list[str]) -> None:
    if _URL.match(path) or (path.startswith("/") and not _CONTROL.search(path)):
        return
    problems.append(
        f'PATH = "{path[:80]}": must be an absolute path on the front end or an http(s) URL'
    )


def _check_source(source: str, problems: list[str]) -> None:
    if _CONTROL.search(source) or not (source.startswith("/") or _SCHEME.match(source)):
        problems.append(f'SOURCE = "{source[:80]}": must be an absolute path or a URL')


def _datablock(image: Image, size: str | None, fstype: str | None, problems: list[str]) -> None:
    """An empty DATABLOCK of SIZE MB, made with FSTYPE (default raw)."""
    if image.type != ImageType.DATABLOCK:
        attribute = "SIZE" if size is not None else "FSTYPE"
        problems.append(f"{attribute}: only a DATABLOCK image is made empty (TYPE = DATABLOCK)")
        return
    if size is None:
        problems.append("FSTYPE: an empty DATABLOCK needs its SIZE in MB (SIZE = 1024)")
        return
    word = size.strip()
    if not _NUMBER.fullmatch(word) or not 0 < int(word) <= MAX_SIZE_MB:
        problems.append(f'SIZE = "{size[:40]}": must be a whole number of MB, 1 or more')
        return
    kind = (fstype or "raw").strip().lower()
    if kind not in FSTYPES:
        problems.append(
            f'FSTYPE = "{(fstype or "")[:40]}": must be one of {", ".join(sorted(FSTYPES))}'
        )
        return
    image.size, image.fstype, image.state = int(word), kind, ImageState.LOCKED
