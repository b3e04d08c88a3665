"""Images of the repository in SQL on every backend: every field read back as written, names
unique per owner, and a deleted image's id never handed out again (issue 13)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from oned.records import Image
from oned.states import ImageState, ImageType
from oned.store import DuplicateName, Store, StoreError, migrate
from oned.template import Template
from tests.store.targets import Target

pytestmark = pytest.mark.db


def an_image(iid: int, name: str = "ttylinux", uid: int = 1, **fields: object) -> Image:
    template = Template([("NAME", name), ("PATH", "/srv/images/ttylinux.img")])
    return Image(iid, uid, name, ImageType.OS, False, False, 1764637200, template, **fields)  # type: ignore[arg-type]


def every_field_set() -> Image:
    """An image with no field at its default, done/total (memory only) aside."""
    template = Template(
        [
            ("NAME", "data"),
            ("DESCRIPTION", "ünïcode & <markup>"),
            ("DEV_PREFIX", "sd"),
            ("ERROR", "Wed Dec  2 01:00:00 2026 : a reason"),
        ]
    )
    return Image(
        7,
        3,
        "data",
        ImageType.DATABLOCK,
        True,
        True,
        1764637201,
        template,
        source="/var/lib/one/images/7",
        path="https://example.org/data.img",
        size=5 * 1024 * 1024,  # 5 TB in MB: past 32 bits in bytes, BigInteger in MB
        fstype="ext4",
        checksum="sha256:" + "ab" * 32,
        state=ImageState.ERROR,
    )


def test_an_image_reads_back_with_every_field(store: Store) -> None:
    image = every_field_set()
    store.insert_image(image)
    store.insert_image(an_image(8))
    assert store.load_images() == [image, an_image(8)]


def test_a_copy_in_progress_is_not_stored(store: Store) -> None:
    """done/total are the bytes of a copy running now: after a restart there is none."""
    image = an_image(0, state=ImageState.LOCKED, done=512, total=4096)
    store.insert_image(image)
    (loaded,) = store.load_images()
    assert (loaded.state, loaded.done, loaded.total) == (ImageState.LOCKED, 0, 0)


def test_an_update_writes_state_size_checksum_and_template(store: Store) -> None:
    image = an_image(0, state=ImageState.LOCKED)
    store.insert_image(image)
    image.state, image.size, image.checksum = ImageState.READY, 40, "sha256:" + "0" * 64
    image.source, image.public, image.persistent = "/var/lib/one/images/0", True, True
    image.template.add("DESCRIPTION", "updated")
    store.update_image(image)
    assert store.load_images() == [image]


def test_updating_an_image_that_is_not_there_is_an_error(store: Store) -> None:
    with pytest.raises(StoreError, match="no image 4 to update"):
        store.update_image(an_image(4))


def test_a_name_is_unique_per_owner_only(store: Store) -> None:
    """The same user cannot have two images of one name; another user may use the name."""
    store.insert_image(an_image(0, uid=1))
    with pytest.raises(DuplicateName) as refused:
        store.insert_image(an_image(1, uid=1))
    assert (refused.value.kind, refused.value.name) == ("image", "ttylinux")
    assert str(refused.value) == 'image name "ttylinux" is already taken'
    store.insert_image(an_image(2, uid=2))
    assert [(i.id, i.uid) for i in store.load_images()] == [(0, 1), (2, 2)]


def test_renaming_onto_a_taken_name_is_refused_and_changes_nothing(store: Store) -> None:
    store.insert_image(an_image(0, name="a"))
    store.insert_image(an_image(1, name="b"))
    renamed = an_image(1, name="a")
    with pytest.raises(DuplicateName):
        store.update_image(renamed)
    assert [i.name for i in store.load_images()] == ["a", "b"]


def test_a_deleted_image_id_is_never_handed_out_again(target: Target) -> None:
    store = target.open()
    store.insert_image(an_image(0, name="a"))
    store.insert_image(an_image(1, name="b"))
    assert store.next_oids()["image"] == 2
    store.delete_image(1)
    assert [i.id for i in store.load_images()] == [0]
    assert store.next_oids()["image"] == 2
    store.close()
    assert target.open().next_oids()["image"] == 2


def test_revision_0004_downgrades_to_0003_and_back(target: Target) -> None:
    """The downgrade gives back 0001's image_pool (UNIQUE(name), running_vms)."""
    target.open().close()
    engine = target.engine()
    try:
        with engine.connect() as conn, conn.begin():
            command.downgrade(migrate.alembic_config(conn), "0003")
        with engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("image_pool")}
        assert "running_vms" in columns and "checksum" not in columns
    finally:
        engine.dispose()
    store = target.open()
    store.insert_image(every_field_set())
    assert store.load_images() == [every_field_set()]
