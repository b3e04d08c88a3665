"""one_image's pieces without a process: confinement to the repository, extents, progress pace."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from drivers.image import Context, Lines
from drivers.image_copy import Extent, Fetcher, Progress, extents
from drivers.protocol import DriverFailure

MB = 1 << 20


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    repo = tmp_path / "images"
    (tmp_path / "outside").mkdir()
    repo.mkdir()
    (repo / "sub").mkdir()
    (repo / "out").symlink_to(tmp_path / "outside")
    return Context(os.path.realpath(repo), Fetcher(5.0), Lines(io.BytesIO()))


@pytest.mark.parametrize("relative", ["7", "sub/7", "./7", "sub/../7", "7.part"])
def test_paths_inside_the_repository_are_taken_with_their_folder_resolved(ctx, relative):
    path = f"{ctx.repository}/{relative}"
    assert ctx.inside(path) == os.path.join(ctx.repository, os.path.normpath(relative))


@pytest.mark.parametrize(
    "relative", ["", ".", "..", "../7", "out/7", "sub/../../7", "../images2/7"]
)
def test_paths_outside_the_repository_are_refused_naming_them(ctx, relative):
    path = f"{ctx.repository}/{relative}"
    with pytest.raises(DriverFailure, match="is not inside the image repository"):
        ctx.inside(path)


def test_a_relative_path_is_refused(ctx):
    with pytest.raises(DriverFailure, match=r"^images/7 is not an absolute path$"):
        ctx.inside("images/7")


def test_extents_tell_data_from_holes(tmp_path):
    path = tmp_path / "sparse"
    with open(path, "wb") as file:
        file.truncate(64 * MB)
        file.seek(8 * MB)
        file.write(b"x" * MB)
    fd = os.open(path, os.O_RDONLY)
    try:
        found = extents(fd, 64 * MB)
    finally:
        os.close(fd)
    data = [span for span in found if span.data]
    assert sum(span.length for span in found) == 64 * MB
    assert len(data) == 1 and data[0].offset <= 8 * MB < 9 * MB <= data[0].offset + data[0].length
    assert found[0] == Extent(0, data[0].offset, False)


def test_progress_reports_at_most_every_half_second_and_only_when_the_count_moved():
    now, seen = [0.0], []
    progress = Progress(lambda done, total: seen.append((done, total)), 100, lambda: now[0])
    for when, done in [(0.1, 10), (0.6, 20), (1.5, 20), (1.6, 30), (1.8, 40), (2.2, 40)]:
        now[0] = when
        progress.tick(done)
    assert seen == [(20, 100), (30, 100), (40, 100)]
