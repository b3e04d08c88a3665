"""A whole listing reads a pool's cache in one pass: the same fragments, in id order, as asking
for each object, whether cached, never cached or changed since (issue 18)."""

from __future__ import annotations

from dataclasses import dataclass

from oned.pools import Pool


@dataclass
class Thing:
    id: int
    name: str


def render(thing: Thing) -> str:
    return f"<THING><ID>{thing.id}</ID><NAME>{thing.name}</NAME></THING>"


def render_short(thing: Thing) -> str:
    return f"<T>{thing.name}</T>"


def pool_of(count: int) -> Pool:
    pool: Pool = Pool(render, render_short)  # type: ignore[arg-type]
    for oid in range(count):
        pool.put(Thing(oid, f"t{oid}"))  # type: ignore[arg-type]
    return pool


def test_fragments_are_each_objects_xml_in_id_order() -> None:
    pool = pool_of(5)
    assert pool.fragments() == [pool.xml_short(t) for t in pool]
    assert pool.fragments(full=True) == [pool.xml(t) for t in pool]
    assert pool.fragments()[0] == b"&lt;T&gt;t0&lt;/T&gt;"


def test_fragments_render_what_is_not_cached_and_cache_it() -> None:
    pool = pool_of(4)
    pool.xml_short(pool.get(2))  # only one cached
    found = pool.fragments()
    assert found == [f"&lt;T&gt;t{oid}&lt;/T&gt;".encode() for oid in range(4)]
    assert all(pool.fragments()[i] is found[i] for i in range(4))  # now from the cache


def test_a_changed_object_is_rendered_again_in_its_place() -> None:
    pool = pool_of(3)
    pool.fragments()
    pool.get(0).name = "renamed"
    pool.changed(0)  # cached again after the others: the listing keeps id order
    assert pool.fragments() == [b"&lt;T&gt;renamed&lt;/T&gt;", b"&lt;T&gt;t1&lt;/T&gt;",
                                b"&lt;T&gt;t2&lt;/T&gt;"]  # fmt: skip
    assert pool_of(0).fragments() == []
