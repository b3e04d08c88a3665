"""Which objects a pool listing holds: the filter flag and the id range or page (reference §4.4).

For pools whose objects are private to their owner unless public (networks, images): -3 the
caller's, -1 the caller's and the public ones, -2 and -4 every one the caller may see (all,
for oneadmin), >= 0 that user's ones the caller may see; anything below -4 is a bad call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from oned.api.cloud import Caller
from oned.errors import BadCall


class Owned(Protocol):
    id: int
    uid: int
    public: bool


T = TypeVar("T", bound=Owned)


def pool_filter(
    caller: Caller, flt: int, method: str, may_use: Callable[[T, int], bool]
) -> Callable[[T], bool]:
    """Which objects a filter flag lists; a user never sees others' private objects."""
    if flt < -4:
        raise BadCall(f"[{method}] wrong filter flag {flt}: -4, -3, -2, -1 or a user id")
    uid = caller.uid
    if flt == -3:
        return lambda obj: obj.uid == uid
    if flt == -1 or (flt in (-2, -4) and not caller.is_admin):
        return lambda obj: obj.uid == uid or obj.public
    if flt in (-2, -4):
        return lambda obj: True
    return lambda obj: obj.uid == flt and may_use(obj, uid)


def page(objects: Sequence[T], start: int, end: int) -> Sequence[T]:
    """NOTE: OpenNebula reads end < -1 as a page: start is then a row offset, -end its size."""
    if start < 0:
        return objects
    if end < -1:
        return objects[start : start - end]
    return [obj for obj in objects if obj.id >= start and (end == -1 or obj.id <= end)]
