"""Vectorized numpy drawing for the procedural benchmark: primitives, textures and 16 categories.

Every category is drawn in its own object frame: `u` points right, `v` points down, one unit is
`px` pixels, and the object spans roughly [-1, 1] in both. A `Canvas` holds the full-image
coordinate grids of that frame, so every primitive is one boolean expression over the whole
image (no per-pixel Python loops). Categories of a family share one layout (body + wheels, body +
four legs, body + wings, pole + head) and differ in colour, texture and parts, so a classifier
can tell them apart while class-agnostic foreground transfers within the family.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Colour = tuple[int, int, int]


def value_noise(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, cells: int) -> np.ndarray:
    """Smooth random field in [0, 1] at coordinates x, y in [0, 1] (bilinear on a cells² grid)."""
    g = rng.random((cells + 1, cells + 1), dtype=np.float32)
    fx, fy = np.clip(x, 0, 1) * cells, np.clip(y, 0, 1) * cells
    ix, iy = np.minimum(fx.astype(np.int32), cells - 1), np.minimum(fy.astype(np.int32), cells - 1)
    tx, ty = fx - ix, fy - iy
    tx, ty = tx * tx * (3 - 2 * tx), ty * ty * (3 - 2 * ty)  # smoothstep: no grid artefacts
    top = g[iy, ix] * (1 - tx) + g[iy, ix + 1] * tx
    bottom = g[iy + 1, ix] * (1 - tx) + g[iy + 1, ix + 1] * tx
    return top * (1 - ty) + bottom * ty


class Canvas:
    """One object's frame over the whole image, with its mask and colours painted so far."""

    def __init__(self, rng: np.random.Generator, u: np.ndarray, v: np.ndarray, px: float) -> None:
        self.rng, self.u, self.v, self.px = rng, u, v, px
        self.mask = np.zeros(u.shape, bool)
        self.rgb = np.zeros((*u.shape, 3), np.float32)
        self.light = rng.uniform(0.7, 1.15)  # per-instance lighting and colour shift
        self.shift = rng.normal(0, 12, 3)

    def col(self, base: Colour) -> np.ndarray:
        return np.clip(np.asarray(base, np.float32) * self.light + self.shift, 0, 255)

    def paint(self, m: np.ndarray, base: Colour, alt: Colour | None = None, where: np.ndarray | None = None):
        """Paint region m with `base`, or with `alt` where the texture mask `where` is set."""
        self.rgb[m] = self.col(base)
        if alt is not None and where is not None:
            self.rgb[m & where] = self.col(alt)
        self.mask |= m

    def width(self, w: float) -> float:
        return max(w, 1.4 / self.px)  # thin parts stay at least ~1.4 px wide

    # primitives, in object units ------------------------------------------------------------
    def ellipse(self, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
        return ((self.u - cx) / rx) ** 2 + ((self.v - cy) / ry) ** 2 <= 1

    def box(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        return (self.u >= x0) & (self.u <= x1) & (self.v >= y0) & (self.v <= y1)

    def segment(self, x0: float, y0: float, x1: float, y1: float, w: float) -> np.ndarray:
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((self.u - x0) * dx + (self.v - y0) * dy) / (dx * dx + dy * dy + 1e-9), 0, 1)
        d2 = (self.u - x0 - t * dx) ** 2 + (self.v - y0 - t * dy) ** 2
        return d2 <= (self.width(w) / 2) ** 2

    def triangle(self, p: tuple, q: tuple, r: tuple) -> np.ndarray:
        def side(a: tuple, b: tuple) -> np.ndarray:
            return (b[0] - a[0]) * (self.v - a[1]) - (b[1] - a[1]) * (self.u - a[0])

        s1, s2, s3 = side(p, q), side(q, r), side(r, p)
        return ((s1 >= 0) & (s2 >= 0) & (s3 >= 0)) | ((s1 <= 0) & (s2 <= 0) & (s3 <= 0))

    # textures ---------------------------------------------------------------------------------
    def stripes(self, freq: float, along_v: bool = False, duty: float = 0.5) -> np.ndarray:
        x = self.v if along_v else self.u
        return np.mod(x * freq + self.rng.random(), 1.0) < duty

    def spots(self, cells: int, thresh: float) -> np.ndarray:
        return value_noise(self.rng, (self.u + 1.5) / 3, (self.v + 1.5) / 3, cells) > thresh


# ---- family 1: wheeled vehicles (body box, cabin, two wheels) --------------------------------
def _wheels(c: Canvas, r_back: float = 0.24, r_front: float = 0.24) -> None:
    for x, r in ((-0.55, r_back), (0.55, r_front)):
        y = 0.62 - r
        c.paint(c.ellipse(x, y, r, r), (28, 28, 30))
        c.paint(c.ellipse(x, y, r * 0.45, r * 0.45), (165, 165, 170))


def draw_car(c: Canvas) -> None:
    c.paint(c.box(-0.9, -0.05, 0.9, 0.3), (200, 30, 35))
    c.paint(c.box(-0.45, -0.4, 0.4, -0.05), (200, 30, 35), (150, 200, 235), c.box(-0.38, -0.33, 0.33, -0.1))
    _wheels(c)


def draw_bus(c: Canvas) -> None:
    win = c.box(-0.85, -0.4, 0.85, -0.15) & c.stripes(4.5, duty=0.6)
    c.paint(c.box(-0.95, -0.5, 0.95, 0.35), (235, 190, 40), (55, 65, 90), win)
    _wheels(c, 0.2, 0.2)


def draw_tractor(c: Canvas) -> None:
    c.paint(c.box(-0.4, -0.05, 0.9, 0.25), (40, 140, 50))
    c.paint(c.box(-0.75, -0.6, -0.2, 0.0), (40, 140, 50), (200, 225, 230), c.box(-0.65, -0.5, -0.3, -0.2))
    c.paint(c.segment(0.55, -0.05, 0.55, -0.45, 0.08), (40, 40, 40))  # exhaust pipe
    _wheels(c, 0.4, 0.2)


def draw_van(c: Canvas) -> None:
    band = c.box(-1, 0.0, 1, 0.1)
    c.paint(c.box(-0.9, -0.45, 0.9, 0.3), (40, 80, 190), (235, 235, 235), band)
    c.paint(c.box(0.45, -0.35, 0.8, -0.1), (150, 200, 235))
    _wheels(c)


# ---- family 2: four-legged animals (body ellipse, head, four thin legs, tail) ----------------
def _quadruped(c: Canvas, body: Colour, legs: Colour, head: Colour, tail: float, alt=None, tex=None) -> None:
    for x in (-0.45, -0.3, 0.3, 0.45):
        c.paint(c.segment(x, 0.05, x + c.rng.uniform(-0.08, 0.08), 0.7, 0.09), legs)
    c.paint(c.segment(-0.55, -0.05, -0.55 - tail, -0.05 - tail, 0.07), body)
    c.paint(c.ellipse(0.0, 0.0, 0.62, 0.3), body, alt, tex)
    c.paint(c.segment(0.5, -0.1, 0.68, -0.35, 0.18), body, alt, tex)  # neck
    c.paint(c.ellipse(0.75, -0.4, 0.2, 0.17), head)


def draw_cat(c: Canvas) -> None:
    c.paint(c.triangle((0.6, -0.5), (0.68, -0.72), (0.75, -0.5)), (225, 130, 40))
    c.paint(c.triangle((0.78, -0.5), (0.88, -0.7), (0.92, -0.45)), (225, 130, 40))
    _quadruped(c, (225, 130, 40), (225, 130, 40), (225, 130, 40), 0.4, (110, 55, 20), c.stripes(7, duty=0.35))


def draw_dog(c: Canvas) -> None:
    _quadruped(c, (135, 88, 45), (135, 88, 45), (135, 88, 45), 0.25)
    c.paint(c.ellipse(0.68, -0.33, 0.07, 0.16), (70, 45, 22))  # floppy ear
    c.paint(c.ellipse(0.95, -0.35, 0.1, 0.07), (40, 30, 25))  # snout


def draw_cow(c: Canvas) -> None:
    c.paint(c.segment(0.68, -0.55, 0.62, -0.7, 0.06), (230, 220, 190))  # horns
    c.paint(c.segment(0.82, -0.55, 0.88, -0.7, 0.06), (230, 220, 190))
    _quadruped(c, (235, 235, 228), (235, 235, 228), (235, 235, 228), 0.15, (25, 25, 25), c.spots(5, 0.6))
    c.paint(c.ellipse(0.92, -0.33, 0.09, 0.08), (230, 150, 160))  # pink muzzle


def draw_sheep(c: Canvas) -> None:
    fluff = c.spots(14, 0.5)
    _quadruped(c, (222, 212, 182), (35, 35, 35), (35, 35, 35), 0.08, (180, 168, 140), fluff)


# ---- family 3: flying things (body, two wings, tail, head) -----------------------------------
def _flyer(c: Canvas, body: Colour, wing: Colour, tip: Colour | None, head: Colour, beak: Colour | None):
    c.paint(c.triangle((-0.15, 0), (0.2, 0), (-0.3, -0.85)), wing, tip, c.v < -0.55)
    c.paint(c.triangle((-0.75, 0), (-0.45, 0.0), (-0.95, -0.25)), wing)  # tail
    c.paint(c.ellipse(-0.1, 0.0, 0.62, 0.17), body)
    c.paint(c.triangle((-0.1, 0.05), (0.25, 0.05), (-0.2, 0.6)), wing, tip, c.v > 0.4)
    c.paint(c.ellipse(0.52, -0.08, 0.16, 0.14), head)
    if beak is not None:
        c.paint(c.triangle((0.64, -0.12), (0.64, -0.02), (0.85, -0.05)), beak)


def draw_sparrow(c: Canvas) -> None:
    _flyer(c, (150, 110, 70), (100, 70, 40), None, (150, 110, 70), (235, 140, 30))
    c.paint(c.spots(9, 0.55) & c.ellipse(-0.1, 0.0, 0.6, 0.15), (90, 60, 35))


def draw_parrot(c: Canvas) -> None:
    _flyer(c, (40, 170, 60), (40, 170, 60), (40, 80, 200), (210, 40, 40), (240, 215, 40))


def draw_plane(c: Canvas) -> None:
    _flyer(c, (185, 190, 200), (150, 155, 165), None, (185, 190, 200), None)
    c.paint(c.ellipse(0.6, -0.03, 0.25, 0.1), (185, 190, 200))  # nose
    c.paint(c.triangle((-0.75, -0.05), (-0.55, -0.05), (-0.85, -0.5)), (200, 40, 40))  # tail fin
    c.paint(c.box(-0.5, -0.07, 0.6, -0.01) & c.stripes(9, duty=0.4), (40, 50, 70))  # windows


def draw_gull(c: Canvas) -> None:
    _flyer(c, (242, 242, 242), (140, 145, 155), (20, 20, 20), (242, 242, 242), (240, 200, 30))


# ---- family 4: poles (a thin vertical pole carrying a head) ----------------------------------
def draw_lamp(c: Canvas) -> None:
    c.paint(c.segment(0, -0.5, 0, 1.0, 0.07), (70, 70, 75))
    c.paint(c.ellipse(0, -0.55, 0.28, 0.14) & (c.v < -0.55), (40, 40, 40))
    c.paint(c.ellipse(0, -0.5, 0.16, 0.12), (250, 232, 120))


def draw_stopsign(c: Canvas) -> None:
    c.paint(c.segment(0, -0.3, 0, 1.0, 0.07), (160, 160, 165))
    au, av = np.abs(c.u), np.abs(c.v + 0.55)
    octo = np.maximum(np.maximum(au, av), (au + av) / 1.41)
    c.paint(octo <= 0.38, (200, 25, 30), (245, 245, 245), (octo > 0.29) & (octo < 0.33))


def draw_tree(c: Canvas) -> None:
    c.paint(c.segment(0, -0.3, 0, 1.0, 0.14), (110, 70, 35))
    crown = (
        c.ellipse(0, -0.55, 0.45, 0.35) | c.ellipse(-0.3, -0.35, 0.3, 0.25) | c.ellipse(0.3, -0.4, 0.3, 0.25)
    )
    c.paint(crown, (50, 130, 40), (25, 85, 25), c.spots(8, 0.55))


def draw_flag(c: Canvas) -> None:
    c.paint(c.segment(0, -0.85, 0, 1.0, 0.06), (30, 30, 30))
    c.paint(c.box(0.03, -0.8, 0.75, -0.3), (30, 60, 170), (240, 240, 240), c.stripes(8, along_v=True))


# name -> (family, draw function); class index = position + 1 (0 is background)
CATEGORIES: dict[str, tuple[str, Callable[[Canvas], None]]] = {
    "car": ("vehicle", draw_car),
    "bus": ("vehicle", draw_bus),
    "tractor": ("vehicle", draw_tractor),
    "van": ("vehicle", draw_van),
    "cat": ("quadruped", draw_cat),
    "dog": ("quadruped", draw_dog),
    "cow": ("quadruped", draw_cow),
    "sheep": ("quadruped", draw_sheep),
    "sparrow": ("flyer", draw_sparrow),
    "parrot": ("flyer", draw_parrot),
    "plane": ("flyer", draw_plane),
    "gull": ("flyer", draw_gull),
    "lamp": ("pole", draw_lamp),
    "stopsign": ("pole", draw_stopsign),
    "tree": ("pole", draw_tree),
    "flag": ("pole", draw_flag),
}

# colours that also appear in the background and on distractors, so colour alone is no cue
OBJECT_COLOURS: tuple[Colour, ...] = (
    (200, 30, 35), (235, 190, 40), (40, 140, 50), (40, 80, 190), (225, 130, 40), (135, 88, 45),
    (235, 235, 228), (222, 212, 182), (150, 110, 70), (40, 170, 60), (185, 190, 200), (70, 70, 75),
    (110, 70, 35), (28, 28, 30), (50, 130, 40),
)  # fmt: skip
