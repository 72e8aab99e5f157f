"""Unit tests of the SVG machine picture: placement, tiling, colours, escaping."""

from __future__ import annotations

import math
import re

import pytest

from pyspalloc.geometry import BOARD_CHIPS, Direction, Triad, builtin_machine, ethernet_chip
from pyspalloc.server.web.machine_picture import (
    DEAD_COLOUR,
    FREE_COLOUR,
    HEX_RADIUS,
    OTHER_JOB_COLOUR,
    PictureBoard,
    board_centre,
    hexagon,
    job_colour,
    render_machine,
)
from tests.server.web.helpers import polygons

ROOT3 = math.sqrt(3.0)
#: distance between the centres of neighbouring boards (twice a hexagon's inradius)
SPACING = HEX_RADIUS * ROOT3


def lattice(x: int, y: int) -> tuple[float, float]:
    """A chip's position in the plane of the hexagonal chip lattice."""
    return (x - y / 2.0, y * ROOT3 / 2.0)


def boards_of(name: str, jobs: dict[Triad, int] | None = None) -> list[PictureBoard]:
    machine = builtin_machine(name)
    jobs = jobs or {}
    return [
        PictureBoard(
            t,
            (b.physical[0], b.physical[1], b.physical[2]),
            b.ip,
            b.functioning,
            jobs.get(t),
            "alice",
        )
        for t, b in machine.boards.items()
    ]


def test_triad_layout() -> None:
    u0, v0 = board_centre(Triad(0, 0, 0))
    u1, v1 = board_centre(Triad(0, 0, 1))
    u2, v2 = board_centre(Triad(0, 0, 2))
    board_height = HEX_RADIUS * ROOT3
    # z=1: right of z=0 and up by half a board
    assert u1 > u0
    assert v1 - v0 == pytest.approx(board_height / 2)
    # z=2: straight above z=0
    assert u2 == pytest.approx(u0)
    assert v2 - v0 == pytest.approx(board_height)


@pytest.mark.parametrize("name", ["spin24", "spinnaker1m"])
def test_hexagons_tile_without_overlap(name: str) -> None:
    machine = builtin_machine(name)
    centres = {t: board_centre(t) for t in machine.boards}
    for t, (u, v) in centres.items():
        for d in Direction:
            n = machine.neighbour(t, d)
            if not (0 < t.x < machine.width - 1 and 0 < t.y < machine.height - 1):
                continue  # links at the edge may wrap around: drawn on the far side
            nu, nv = centres[n]
            assert math.hypot(nu - u, nv - v) == pytest.approx(SPACING), (t, d, n)
    if name == "spin24":
        items = list(centres.values())
        for i, (u, v) in enumerate(items):
            for nu, nv in items[i + 1 :]:
                assert math.hypot(nu - u, nv - v) >= SPACING - 1e-9


def test_each_hexagon_covers_its_chips() -> None:
    inradius = HEX_RADIUS * ROOT3 / 2
    normals = [(math.cos(math.radians(a)), math.sin(math.radians(a))) for a in (30, 90, 150)]
    for triad in (Triad(0, 0, 0), Triad(1, 0, 1), Triad(2, 1, 2)):
        cu, cv = board_centre(triad)
        root = ethernet_chip(triad)
        for chip in BOARD_CHIPS:
            u, v = lattice(root.x + chip.x, root.y + chip.y)
            for nx, ny in normals:
                assert abs((u - cu) * nx + (v - cv) * ny) < inradius, (triad, chip)


def test_hexagon_is_regular() -> None:
    corners = hexagon((0.0, 0.0))
    assert len(corners) == 6
    for (a, b), (c, d) in zip(corners, corners[1:] + corners[:1], strict=True):
        assert math.hypot(c - a, d - b) == pytest.approx(HEX_RADIUS)


def test_render_colours_classes_and_legend() -> None:
    jobs = {Triad(0, 0, 0): 7, Triad(0, 0, 1): 7, Triad(1, 1, 2): 9}
    picture = render_machine(boards_of("spin24", jobs), job_href=lambda j: f"/job/{j}")
    svg = str(picture.svg)
    found = polygons(svg)
    assert len(found) == 24
    by_triad = {p["data-triad"]: p for p in found}
    assert by_triad["0,0,0"]["fill"] == job_colour(7)
    assert "job-7" in by_triad["0,0,1"]["class"].split()
    assert by_triad["1,1,2"]["fill"] == job_colour(9)
    assert by_triad["2,0,0"]["fill"] == FREE_COLOUR
    assert svg.count('<a href="/job/7">') == 2
    labels = [e.label for e in picture.legend]
    assert labels == ["Job 7 (alice)", "Job 9 (alice)", "Free"]


def test_render_highlight_greys_other_jobs() -> None:
    jobs = {Triad(0, 0, 0): 7, Triad(1, 1, 2): 9}
    picture = render_machine(boards_of("spin24", jobs), highlight=7)
    by_triad = {p["data-triad"]: p for p in polygons(str(picture.svg))}
    assert by_triad["0,0,0"]["fill"] == job_colour(7)
    assert "highlight" in by_triad["0,0,0"]["class"].split()
    assert by_triad["1,1,2"]["fill"] == OTHER_JOB_COLOUR
    assert [e.label for e in picture.legend] == ["Job 7 (alice)", "Other jobs", "Free"]


def test_render_marks_dead_boards_and_escapes_text() -> None:
    boards = [
        PictureBoard(Triad(0, 0, 0), (0, 0, 0), "<b>&", False),
        PictureBoard(Triad(0, 0, 1), (0, 0, 1), None, True, 3, 'x"<y>'),
    ]
    picture = render_machine(boards, label='a "machine"')
    svg = str(picture.svg)
    dead = [p for p in polygons(svg) if "dead" in p["class"].split()]
    assert len(dead) == 1 and dead[0]["fill"] == DEAD_COLOUR
    assert "\u2620" in svg
    assert "<b>" not in svg and "&lt;b&gt;&amp;" in svg
    assert 'x"<y>' not in svg and "x&#34;&lt;y&gt;" in svg
    assert 'aria-label="a &#34;machine&#34;"' in svg
    assert re.search(r"out of service</title>", svg)


def test_render_without_boards() -> None:
    assert "no boards" in str(render_machine([]).svg)
