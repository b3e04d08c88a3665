"""The checks every template a user sends goes through before anything is stored.

``parse`` bounds and parses the text (BadCall, for everyone: size, attribute count, value
length, control characters; TemplateParseError, 0x2000 as OpenNebula answers, for a syntax
error); ``refuse_restricted`` and ``refuse_files`` apply oned.conf's restricted attributes
and SAFE_DIRS / RESTRICTED_DIRS to everyone but oneadmin (AuthorizationError naming the
attribute, as OpenNebula answers "VM Template includes a restricted attribute RAW"). The
rules themselves are pure: oned/vmtemplate.py, oned/restricted.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from oned import restricted as rs
from oned.api.cloud import Caller, Cloud
from oned.errors import AuthorizationError, BadCall, TemplateParseError, TemplateSyntaxError
from oned.template import Template
from oned.template_xml import parse_any
from oned.vmtemplate import check_bounds, check_size


def parse(text: str, method: str, kind: str) -> Template:
    """The template of ``text``; BadCall naming the limit or attribute it breaks."""
    too_big = check_size(text)
    if too_big:
        raise BadCall(f"[{method}] Error in {kind} template: {too_big}")
    try:
        tmpl = parse_any(text + "\n")
    except TemplateSyntaxError as exc:
        raise TemplateParseError(f"[{method}] Error parsing {kind} template: {exc}") from None
    problems = check_bounds(tmpl)
    if problems:
        raise BadCall(f"[{method}] Error in {kind} template: {'; '.join(problems)}")
    return tmpl


def refuse_restricted(
    caller: Caller,
    tmpl: Template,
    attributes: Iterable[str],
    method: str,
    kind: str,
    old: Template | None = None,
) -> None:
    """AuthorizationError if a user (not oneadmin) sets one of the restricted ``attributes``."""
    if caller.is_admin:
        return
    found = rs.restricted_attributes(tmpl, attributes, old)
    if found:
        s = "s" if len(found) > 1 else ""
        raise AuthorizationError(
            f"[{method}] {kind} Template includes a restricted attribute{s} {', '.join(found)}"
        )


def refuse_files(
    cloud: Cloud, caller: Caller, tmpl: Template, method: str, old: Template | None = None
) -> None:
    """AuthorizationError if a user (not oneadmin) names a file outside the allowed directories.

    Paths are resolved on the front end (a few stat calls), so a symbolic link is judged by
    what it points to; the template keeps what the user wrote.
    """
    if caller.is_admin:
        return
    problems = rs.path_problems(tmpl, user_dirs(cloud), os.path.realpath, old)
    if problems:
        raise AuthorizationError(
            f"[{method}] VM Template includes a restricted attribute {'; '.join(problems)}"
        )


def refuse_path(
    cloud: Cloud, caller: Caller, attribute: str, path: str, method: str, kind: str
) -> None:
    """AuthorizationError if a user (not oneadmin) names in ``attribute`` a front-end file
    outside the allowed directories (an image's PATH); URLs are not files and pass."""
    if caller.is_admin or "://" in path:
        return
    dirs = rs.resolve_dirs(user_dirs(cloud), os.path.realpath)
    problem = rs.path_refusal(path, dirs, os.path.realpath)
    if problem:
        raise AuthorizationError(
            f"[{method}] {kind} Template includes a restricted attribute {attribute}: {problem}"
        )


def repository(cloud: Cloud) -> str:
    """The image repository: IMAGE_REPOSITORY_PATH, or ``<var>/images``."""
    return cloud.config.image_repository_path or os.path.join(cloud.where.var, "images")


def image_source(cloud: Cloud, iid: int) -> str:
    """The file of image ``iid`` in the repository (the image driver writes nothing else)."""
    return os.path.join(repository(cloud), str(iid))


def user_dirs(cloud: Cloud) -> rs.Dirs:
    """SAFE_DIRS; RESTRICTED_DIRS plus oned's own etc/ and var/ and the image repository.

    The repository holds every user's images: a user reaches them by IMAGE or IMAGE_ID, whose
    owner and PUBLIC flag are checked, never by a path into it."""
    config, where = cloud.config, cloud.where
    return rs.Dirs(
        safe=config.safe_dirs,
        restricted=(*config.restricted_dirs, where.etc, where.var, repository(cloud)),
    )
