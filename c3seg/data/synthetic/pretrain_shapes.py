"""New procedural categories for the pretraining corpus (c3seg.data.synthetic.corpus).

The benchmark's 16 categories (`c3seg.data.synthetic.shapes`) play VOC's part; these play the part of
the rest of ImageNet's classes: the four benchmark layouts (vehicle, quadruped, flyer, pole) with
other colours, textures, proportions and parts, and two new layouts (boat: hull, mast, sail or
cabin; vessel: bottle-like body, neck, cap, handle). Extra category j is drawn from the fixed
stream (CATEGORY_SEED, j) and takes layout LAYOUTS[j % 6], so asking for more categories never
changes the earlier ones and no corpus seed changes any of them. Per-instance variation
(lighting, leg angles, texture phase) comes from the image's RNG through the Canvas, as in the
benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from c3seg.data.synthetic.shapes import CATEGORIES, OBJECT_COLOURS, Canvas, Colour, _flyer, _quadruped

CATEGORY_SEED = 20240611
LAYOUTS = ("vehicle", "quadruped", "flyer", "pole", "boat", "vessel")


@dataclass(frozen=True)
class Look:
    """How one extra category is drawn."""

    name: str
    layout: str  # a LAYOUTS entry
    colours: tuple[Colour, Colour, Colour, Colour]  # main, second (texture), accent, dark
    # (kind, a, b): ("stripes" | "vstripes", frequency, duty) | ("spots", cells, threshold) | ("none", ...)
    texture: tuple[str, float, float]
    stretch: tuple[float, float]  # object width and height factors
    part: int  # 0..3: which optional part the layout adds
    shape: tuple[float, float, float]  # three layout-specific proportions in [0, 1]


def _colour(rng: np.random.Generator, dark: bool = False) -> Colour:
    if dark:
        return tuple(int(x) for x in rng.integers(10, 90, 3))  # type: ignore[return-value]
    if rng.random() < 0.4:  # a benchmark colour: colour alone does not tell the categories apart
        base = np.asarray(OBJECT_COLOURS[rng.integers(len(OBJECT_COLOURS))], float)
        return tuple(int(x) for x in np.clip(base + rng.normal(0, 20, 3), 0, 255))  # type: ignore[return-value]
    return tuple(int(x) for x in rng.integers(0, 256, 3))  # type: ignore[return-value]


def make_look(j: int) -> Look:
    """Extra category j (0-based), the same in every corpus."""
    rng = np.random.default_rng([CATEGORY_SEED, j])
    layout = LAYOUTS[j % len(LAYOUTS)]
    colours = (_colour(rng), _colour(rng), _colour(rng), _colour(rng, dark=True))
    kind = ("none", "stripes", "vstripes", "spots")[int(rng.integers(4))]
    if kind == "spots":
        texture = (kind, float(rng.integers(4, 12)), float(rng.uniform(0.45, 0.65)))
    else:
        texture = (kind, float(rng.uniform(3, 10)), float(rng.uniform(0.3, 0.6)))
    stretch = (float(rng.uniform(0.75, 1.3)), float(rng.uniform(0.75, 1.3)))
    shape = (float(rng.random()), float(rng.random()), float(rng.random()))
    return Look(f"{layout}-{j:02d}", layout, colours, texture, stretch, int(rng.integers(4)), shape)


def _texture(c: Canvas, look: Look) -> np.ndarray | None:
    kind, a, b = look.texture
    if kind == "stripes":
        return c.stripes(a, duty=b)
    if kind == "vstripes":
        return c.stripes(a, along_v=True, duty=b)
    if kind == "spots":
        return c.spots(int(a), b)
    return None


def _vehicle(c: Canvas, k: Look) -> None:
    main, second, accent, dark = k.colours
    a, b, d = k.shape
    top = -0.05 - 0.35 * a  # body top
    c.paint(c.box(-0.95, top, 0.95, 0.3), main, second, _texture(c, k))
    if k.part in (1, 2):  # a cabin with a window
        x0 = -0.7 + 0.6 * b
        c.paint(
            c.box(x0, top - 0.35, x0 + 0.6, top),
            main,
            accent,
            c.box(x0 + 0.07, top - 0.28, x0 + 0.53, top - 0.05),
        )
    if k.part == 2:  # exhaust pipe
        c.paint(c.segment(0.7, top, 0.7, top - 0.4, 0.08), dark)
    if k.part == 3:  # roof rack
        c.paint(c.box(-0.6, top - 0.12, 0.6, top - 0.04), accent)
    r = 0.15 + 0.2 * d
    for x in np.linspace(-0.6, 0.6, 3 if d > 0.7 else 2):
        c.paint(c.ellipse(x, 0.62 - r, r, r), dark)
        c.paint(c.ellipse(x, 0.62 - r, r * 0.45, r * 0.45), accent)


def _quadruped_look(c: Canvas, k: Look) -> None:
    main, second, accent, dark = k.colours
    a, b, d = k.shape
    if k.part == 1:  # pointed ears
        c.paint(c.triangle((0.6, -0.5), (0.68, -0.75), (0.76, -0.5)), main)
        c.paint(c.triangle((0.78, -0.5), (0.88, -0.72), (0.92, -0.45)), main)
    elif k.part == 2:  # antlers
        for x, s in ((0.68, -1), (0.82, 1)):
            c.paint(c.segment(x, -0.5, x + 0.12 * s, -0.9, 0.05), accent)
            c.paint(c.segment(x + 0.06 * s, -0.7, x + 0.2 * s, -0.75, 0.05), accent)
    legs, head = (dark if b > 0.5 else main), (accent if d > 0.7 else main)
    _quadruped(c, main, legs, head, 0.05 + 0.45 * a, second, _texture(c, k))
    if k.part == 3:  # long ear and snout
        c.paint(c.ellipse(0.66, -0.3, 0.06, 0.2), dark)
        c.paint(c.ellipse(0.97, -0.37, 0.12, 0.07), accent)


def _flyer_look(c: Canvas, k: Look) -> None:
    main, second, accent, dark = k.colours
    a, b, d = k.shape
    _flyer(
        c, main, second, accent if a > 0.5 else None, accent if d > 0.6 else main, dark if b > 0.4 else None
    )
    tex = _texture(c, k)
    if k.part == 1:  # tail fin
        c.paint(c.triangle((-0.75, -0.05), (-0.5, -0.05), (-0.85, -0.55)), accent)
    elif k.part == 2:  # crest
        c.paint(c.triangle((0.42, -0.18), (0.6, -0.18), (0.45, -0.45)), accent)
    elif k.part == 3 and tex is not None:  # patterned body
        c.paint(c.ellipse(-0.1, 0.0, 0.6, 0.15) & tex, dark)


def _pole(c: Canvas, k: Look) -> None:
    main, second, accent, dark = k.colours
    a, b, d = k.shape
    r = 0.2 + 0.25 * b  # head size
    c.paint(c.segment(0, -0.5, 0, 1.0, 0.05 + 0.1 * a), dark)
    if d > 0.6:  # a crossbar
        c.paint(c.segment(-0.4, 0.0, 0.4, 0.0, 0.06), dark)
    heads = {
        0: c.ellipse(0, -0.55, r, r * 0.8),
        1: c.box(-r, -0.55 - r * 0.7, r, -0.55 + r * 0.7),
        2: c.triangle((-r, -0.5 + r * 0.5), (r, -0.5 + r * 0.5), (0, -0.5 - r)),
        3: c.ellipse(0, -0.55, r, r) & ~c.ellipse(0, -0.55, r * 0.55, r * 0.55),
    }
    c.paint(heads[k.part], main, second, _texture(c, k))
    if k.part != 3:
        c.paint(c.ellipse(0, -0.55, r * 0.3, r * 0.3), accent)


def _boat(c: Canvas, k: Look) -> None:
    main, second, accent, dark = k.colours
    a, b, d = k.shape
    if k.part < 2:  # mast and sail (and a jib)
        c.paint(c.segment(0, 0.1, 0, -0.9, 0.06), dark)
        c.paint(c.triangle((0.05, -0.85), (0.05, 0.05), (0.55 + 0.35 * a, 0.05)), accent)
        if k.part == 1:
            c.paint(c.triangle((-0.05, -0.75), (-0.05, 0.05), (-0.45 - 0.3 * b, 0.05)), accent)
    else:  # a cabin with windows (and a funnel)
        top = -0.25 - 0.25 * a
        c.paint(
            c.box(-0.45, top, 0.35, 0.1), accent, dark, c.box(-0.4, top + 0.08, 0.3, top + 0.2) & c.stripes(6)
        )
        if k.part == 3:
            c.paint(c.box(-0.05, top - 0.35, 0.12, top), dark)
    low = 0.35 + 0.15 * d  # keel
    hull = c.box(-0.7, 0.1, 0.7, low) | c.triangle((0.7, 0.1), (1.0, 0.1), (0.7, low))
    hull |= c.triangle((-0.7, 0.1), (-0.9, 0.1), (-0.7, low))
    c.paint(hull, main, second, _texture(c, k))


def _vessel(c: Canvas, k: Look) -> None:
    main, second, accent, dark = k.colours
    a, b, _ = k.shape
    rx, w = 0.3 + 0.3 * a, 0.08 + 0.14 * b  # body half-width, neck half-width
    if k.part in (1, 3):  # handle
        c.paint(c.ellipse(rx, 0.15, 0.25, 0.3) & ~c.ellipse(rx, 0.15, 0.13, 0.18), main)
    c.paint(c.box(-w, -0.75, w, 0.0), main)  # neck
    c.paint(c.ellipse(0, 0.3, rx, 0.6), main, second, _texture(c, k))  # body
    if k.part in (0, 1):  # cap
        c.paint(c.box(-w * 1.3, -0.9, w * 1.3, -0.72), dark)
    if k.part == 2:  # label band
        c.paint(c.box(-rx, 0.15, rx, 0.45) & c.ellipse(0, 0.3, rx, 0.6), accent)


DRAWERS: dict[str, Callable[[Canvas, Look], None]] = {
    "vehicle": _vehicle,
    "quadruped": _quadruped_look,
    "flyer": _flyer_look,
    "pole": _pole,
    "boat": _boat,
    "vessel": _vessel,
}


def draw_look(look: Look, c: Canvas) -> None:
    """Draw extra category `look` on canvas `c`, stretched by look.stretch."""
    sx, sy = look.stretch
    c.u, c.v = c.u / sx, c.v / sy  # the object grows sx times wider, sy times taller
    DRAWERS[look.layout](c, look)


def corpus_categories(extra: int) -> dict[str, tuple[str, Callable[[Canvas], None]]]:
    """name -> (family, draw function): the benchmark's 16 categories, then `extra` new ones."""
    out = dict(CATEGORIES)
    for j in range(extra):
        look = make_look(j)
        out[look.name] = (look.layout, partial(draw_look, look))
    return out
