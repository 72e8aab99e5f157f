"""Server-side SVG pictures of machines: every board a hexagon in its real place.

A board's Ethernet chip ``(X, Y)`` (from :func:`pyspalloc.geometry.ethernet_chip`) is
mapped onto the plane of the SpiNNaker hexagonal chip lattice, where the six chip links
are 60 degrees apart: ``u = X - Y / 2``, ``v = Y * sqrt(3) / 2``. In that plane the
boards' centres form a triangular lattice with spacing ``4 * sqrt(3)`` chips, so each
board is drawn as the regular hexagon of circumradius 4 around the centre of its 48
chips; the hexagons tile the plane exactly. Board ``z = 1`` then sits right of and half
a board above ``z = 0``, and ``z = 2`` directly above ``z = 0``.

Text in the picture is escaped here (the SVG is handed to templates as markup).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

from pyspalloc.geometry import BOARD_CHIPS, Triad, ethernet_chip

_ROOT3 = math.sqrt(3.0)
#: circumradius of a board hexagon, in chip spacings
HEX_RADIUS = 4.0
#: pixels per chip spacing at natural size
SCALE = 9.0
_MARGIN = 1.0

# centre of a board's 48 chips relative to its Ethernet chip, in the lattice plane
_CENTRE_U = sum(c.x - c.y / 2.0 for c in BOARD_CHIPS) / len(BOARD_CHIPS)
_CENTRE_V = sum(c.y * _ROOT3 / 2.0 for c in BOARD_CHIPS) / len(BOARD_CHIPS)

#: job colours: distinct, light enough for dark text
PALETTE: tuple[str, ...] = (
    "#8dd3c7",
    "#fdb462",
    "#bebada",
    "#fb8072",
    "#80b1d3",
    "#b3de69",
    "#fccde5",
    "#ffed6f",
    "#bc80bd",
    "#ccebc5",
    "#e5c494",
    "#a6cee3",
)
FREE_COLOUR = "#ffffff"
DEAD_COLOUR = "#4d4d4d"
OTHER_JOB_COLOUR = "#d9d9d9"


def job_colour(job_id: int) -> str:
    """Return the colour in which a job's boards are drawn."""
    return PALETTE[job_id % len(PALETTE)]


@dataclass(frozen=True)
class PictureBoard:
    """What the picture shows of one board."""

    triad: Triad
    physical: tuple[int, int, int]
    ip: str | None
    functioning: bool
    job_id: int | None = None
    #: owner shown in the hover title; None when the viewer may not see it
    owner: str | None = None


@dataclass(frozen=True)
class LegendEntry:
    """One line of a picture's legend."""

    label: str
    colour: str
    css_class: str
    href: str | None = None


@dataclass(frozen=True)
class MachinePicture:
    """An SVG picture and the legend that explains its colours."""

    svg: Markup
    legend: tuple[LegendEntry, ...] = field(default_factory=tuple)


def board_centre(triad: Triad) -> tuple[float, float]:
    """Return a board's centre in the lattice plane (``v`` grows upwards)."""
    chip = ethernet_chip(triad)
    return (chip.x - chip.y / 2.0 + _CENTRE_U, chip.y * _ROOT3 / 2.0 + _CENTRE_V)


def hexagon(centre: tuple[float, float], radius: float = HEX_RADIUS) -> list[tuple[float, float]]:
    """Return the six corners of a flat-topped hexagon, counter-clockwise from the right."""
    u, v = centre
    return [
        (u + radius * math.cos(math.radians(a)), v + radius * math.sin(math.radians(a)))
        for a in range(0, 360, 60)
    ]


def _fmt(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _title(board: PictureBoard) -> str:
    x, y, z = board.triad
    c, f, b = board.physical
    parts = [f"Board ({x}, {y}, {z})", f"physical [{c}, {f}, {b}]"]
    parts.append(f"IP {board.ip}" if board.ip else "no IP")
    if board.job_id is not None:
        owner = f" owned by {board.owner}" if board.owner else ""
        parts.append(f"job {board.job_id}{owner}")
    else:
        parts.append("free")
    if not board.functioning:
        parts.append("out of service")
    return "\n".join(parts)


def render_machine(
    boards: Sequence[PictureBoard],
    *,
    highlight: int | None = None,
    job_href: Callable[[int], str | None] | None = None,
    label: str = "machine",
) -> MachinePicture:
    """Draw boards as hexagons in their triad layout, coloured by job.

    Parameters
    ----------
    boards:
        The boards that exist (absent board slots are not drawn).
    highlight:
        A job to emphasise: its boards get its colour, other jobs' boards are grey.
        Without it every job has its own colour.
    job_href:
        Returns the link of a job's page, or None if the viewer may not open it.
    label:
        Accessible name of the picture.

    Returns
    -------
    MachinePicture
        Inline SVG (one ``polygon.board`` per board, carrying ``data-triad`` and, when
        allocated, ``data-job`` and class ``job-N``) and the legend.
    """
    if not boards:
        return MachinePicture(Markup('<p class="empty">This machine has no boards.</p>'))
    centres = {b.triad: board_centre(b.triad) for b in boards}
    us = [u for u, _ in centres.values()]
    vs = [v for _, v in centres.values()]
    reach = HEX_RADIUS + _MARGIN
    min_u, max_u = min(us) - reach, max(us) + reach
    min_v, max_v = min(vs) - reach, max(vs) + reach
    width, height = (max_u - min_u) * SCALE, (max_v - min_v) * SCALE

    def point(u: float, v: float) -> str:
        return f"{_fmt((u - min_u) * SCALE)},{_fmt((max_v - v) * SCALE)}"

    jobs_seen: dict[int, str | None] = {}
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="machine-picture" role="img" '
        f'viewBox="0 0 {_fmt(width)} {_fmt(height)}" width="{_fmt(width)}" '
        f'height="{_fmt(height)}" aria-label="{escape(label)}">'
    ]
    font = _fmt(1.5 * SCALE)
    stroke = _fmt(0.12 * SCALE)
    any_dead = any_free = False
    for board in sorted(boards, key=lambda b: (b.triad[1], b.triad[0], b.triad[2])):
        classes = ["board"]
        job = board.job_id
        if job is not None:
            jobs_seen.setdefault(job, board.owner)
            classes += ["job", f"job-{job}"]
            if highlight is None or job == highlight:
                fill = job_colour(job)
                if highlight is not None:
                    classes.append("highlight")
            else:
                fill = OTHER_JOB_COLOUR
                classes.append("other-job")
        else:
            fill = FREE_COLOUR
            classes.append("free")
            any_free = True
        if not board.functioning:
            classes.append("dead")
            any_dead = True
            if job is None:
                fill = DEAD_COLOUR
        x, y, z = board.triad
        u, v = centres[board.triad]
        corners = " ".join(point(cu, cv) for cu, cv in hexagon((u, v)))
        job_attr = "" if job is None else f' data-job="{job}"'
        href = None if job is None or job_href is None else job_href(job)
        parts.append(f"<g><title>{escape(_title(board))}</title>")
        if href is not None:
            parts.append(f'<a href="{escape(href)}">')
        parts.append(
            f'<polygon class="{" ".join(classes)}" points="{corners}" fill="{fill}" '
            f'stroke="#333333" stroke-width="{stroke}" '
            f'data-triad="{x},{y},{z}"{job_attr}/>'
        )
        tx, ty = point(u, v).split(",")
        text_fill = "#ffffff" if (not board.functioning and job is None) else "#1a1a1a"
        text = "\u2620" if not board.functioning else f"{x},{y},{z}"
        size = font if board.functioning else _fmt(3.0 * SCALE)
        parts.append(
            f'<text x="{tx}" y="{ty}" font-size="{size}" fill="{text_fill}" '
            f'text-anchor="middle" dominant-baseline="central">{escape(text)}</text>'
        )
        if href is not None:
            parts.append("</a>")
        parts.append("</g>")
    parts.append("</svg>")
    legend = _legend(jobs_seen, highlight, job_href, any_free, any_dead)
    return MachinePicture(Markup("".join(parts)), legend)


def _legend(
    jobs: dict[int, str | None],
    highlight: int | None,
    job_href: Callable[[int], str | None] | None,
    any_free: bool,
    any_dead: bool,
) -> tuple[LegendEntry, ...]:
    entries: list[LegendEntry] = []
    if highlight is None:
        shown: Iterable[int] = sorted(jobs)
    else:
        shown = [highlight] if highlight in jobs else []
    for job in shown:
        owner = jobs.get(job)
        text = f"Job {job}" + (f" ({owner})" if owner else "")
        href = None if job_href is None else job_href(job)
        entries.append(LegendEntry(text, job_colour(job), f"job-{job}", href))
    if highlight is not None and any(j != highlight for j in jobs):
        entries.append(LegendEntry("Other jobs", OTHER_JOB_COLOUR, "other-job"))
    if any_free:
        entries.append(LegendEntry("Free", FREE_COLOUR, "free"))
    if any_dead:
        entries.append(LegendEntry("Out of service \u2620", DEAD_COLOUR, "dead"))
    return tuple(entries)
