"""The open object set: six procedurally built objects, four articulated and two rigid.

Canonical frames: hinge = z axis through the origin, closed at theta = 0, a positive theta opens. Up
is +y (box, laptop, book, bottle, mug) or +z for the scissors, which lie flat with their pivot on z.
Each object draws its textures from its own fixed seed, so every build gives the same bytes.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from hogsa.articulated import ArticulatedObject
from hogsa.open_objects.atlas import TILE_PX, TILES, compose_atlas, tile_row
from hogsa.open_objects.meshing import BOX_SIDES, Part, assemble, grid_box, lathe, prism, ring, wall_arc
from hogsa.open_objects.textures import barcode, cardboard, disc, flat, noise, shade, text_block


def _box() -> ArticulatedObject:
    """Cardboard box (22 x 9 x 15 cm) with a hinged lid along its back top edge (x = 0)."""
    rng = np.random.default_rng(1)
    side = cardboard(rng)
    side[200:226] = (0.62, 0.12, 0.10)  # printed red band
    text_block(side, rng, (30, 80, 24, 150), (0.12, 0.08, 0.05), 12)
    for cx in (190, 222):  # 'this way up' arrows
        for k in range(22):
            side[110 + k, cx - k // 2 : cx + k // 2 + 1] = (0.12, 0.08, 0.05)
        side[132:160, cx - 4 : cx + 5] = (0.12, 0.08, 0.05)
    lid = cardboard(rng)
    lid[:, 108:148] = lid[:, 108:148] * 0.85 + 0.12  # packing tape
    lid[40:150, 30:200] = (0.96, 0.96, 0.93)  # shipping label
    text_block(lid, rng, (50, 110, 40, 190), (0.1, 0.1, 0.1), 7, gap=5)
    barcode(lid, rng, (118, 142, 44, 150))
    lid[170:200, 180:236] = (0.15, 0.35, 0.70)
    plain_tile, side_tile, lid_tile = TILES[:3]
    depth, height, width, lid_t, lip = 0.22, 0.09, 0.15, 0.012, 0.003
    base = grid_box((-depth, -height, -width / 2), (0.0, 0.0, width / 2), 0.015,
                    {"+x": side_tile, "-x": side_tile, "+z": side_tile, "-z": side_tile,
                     "+y": plain_tile, "-y": plain_tile})
    top = grid_box((-depth - lip, 0.0, -width / 2 - lip), (0.0, lid_t, width / 2 + lip), 0.015,
                   {"+x": plain_tile, "-x": plain_tile, "+z": plain_tile, "-z": plain_tile,
                    "+y": lid_tile, "-y": plain_tile})
    return assemble("box", [top], [base], compose_atlas([cardboard(rng, 0.85), side, lid]))


def _laptop() -> ArticulatedObject:
    """Laptop (26 x 18 cm): base with keyboard, screen lid hinged along the back edge (x = 0)."""
    rng = np.random.default_rng(2)
    shell = shade(flat((0.74, 0.75, 0.78)), noise(rng, (0.5, 12.0)), 0.03)
    deck = shell.copy()  # base top: up = +x (hinge), right = +z
    deck[14:150, 14:242] = (0.16, 0.16, 0.18)
    key_w, key_h = 228 / 14, 136 / 6
    for row in range(6):
        col = 0
        for span in [1] * 14 if row < 5 else [1, 1, 1, 1, 6, 1, 1, 1, 1]:  # bottom row: space bar
            y, x, x_end = int(14 + row * key_h + 2), int(14 + col * key_w + 2), int(14 + (col + span) * key_w - 2)
            deck[y : int(y + key_h - 4), x:x_end] = (0.05, 0.05, 0.06)
            deck[y : y + 2, x:x_end] = (0.30, 0.30, 0.33)
            col += span
    deck[175:245, 78:178] = (0.64, 0.65, 0.69)  # touchpad
    screen = flat((0.03, 0.03, 0.04))  # lid inside: up = far edge, right = +z
    rows = np.linspace(0.0, 1.0, 220)[:, None, None]
    screen[12:232, 12:244] = (1 - rows) * np.array([0.10, 0.35, 0.75]) + rows * np.array([0.55, 0.20, 0.60])
    screen[215:232, 12:244] = (0.12, 0.12, 0.15)  # task bar
    for y, x, h, w, c in ((40, 40, 110, 120, (0.95, 0.95, 0.95)), (80, 120, 100, 100, (0.98, 0.94, 0.80))):
        screen[y : y + h, x : x + w] = c
        screen[y : y + 10, x : x + w] = (0.2, 0.45, 0.85)
        text_block(screen, rng, (y + 16, y + h - 6, x + 6, x + w - 6), (0.3, 0.3, 0.3), 4)
    back = shade(flat((0.32, 0.33, 0.36)), noise(rng, (0.5, 12.0)), 0.03)
    disc(back, 128, 128, 22, (0.80, 0.82, 0.86))
    shell_tile, deck_tile, screen_tile, back_tile = TILES
    depth, width, base_t, lid_t = 0.18, 0.26, 0.016, 0.006
    sides = {"+x": shell_tile, "-x": shell_tile, "+z": shell_tile, "-z": shell_tile}
    base = grid_box((-depth, -base_t, -width / 2), (0.0, 0.0, width / 2), 0.01,
                    {**sides, "+y": deck_tile, "-y": shell_tile})
    lid = grid_box((-depth, 0.0, -width / 2), (0.0, lid_t, width / 2), 0.01,
                   {**sides, "+y": back_tile, "-y": screen_tile})
    return assemble("laptop", [lid], [base], compose_atlas([shell, deck, screen, back]))


def _book() -> ArticulatedObject:
    """Hard-cover book (16 x 23 x 3 cm) lying flat; the front cover is hinged at the spine (x = 0)."""
    rng = np.random.default_rng(3)
    red = (0.55, 0.07, 0.10)
    gold = (0.85, 0.68, 0.25)
    leather = shade(flat(red), noise(rng, 2.0), 0.06)
    cover = leather.copy()  # drawn upright (spine on the left), then turned to tile axes
    cover[10:14, 16:246] = cover[242:246, 16:246] = gold
    cover[10:246, 16:20] = cover[10:246, 242:246] = gold
    text_block(cover, rng, (40, 90, 44, 220), gold, 18, gap=8)
    disc(cover, 160, 130, 28, gold)
    disc(cover, 160, 130, 20, red)
    text_block(cover, rng, (205, 225, 70, 190), gold, 8)
    cover = np.rot90(cover, k=-1)  # tile: up = +x (spine), right = +z
    spine = shade(flat((0.08, 0.14, 0.38)), noise(rng, 2.0), 0.06)  # long axis along s
    for x in (20, 28, 228, 236):
        spine[:, x : x + 3] = gold
    text_block(spine, rng, (100, 156, 60, 200), gold, 16, gap=8)
    pages = flat((0.95, 0.92, 0.82))
    pages[::3] *= 0.88
    pages = shade(pages, noise(rng, (0.3, 20.0)), 0.03)
    cover_tile, plain_tile, spine_tile, pages_tile = TILES
    depth, width, pages_t, cover_t = 0.16, 0.23, 0.025, 0.003
    z_lo, z_hi = -width / 2 - 0.003, width / 2 + 0.003
    plain = {side: plain_tile for side in BOX_SIDES}
    front = grid_box((-depth, 0.0, z_lo), (0.0, cover_t, z_hi), 0.01, {**plain, "+y": cover_tile})
    back = grid_box((-depth, -pages_t - cover_t, z_lo), (0.0, -pages_t, z_hi), 0.01, plain)
    block = grid_box((-depth + 0.004, -pages_t, -width / 2), (-0.001, 0.0, width / 2), 0.01,
                     {side: pages_tile for side in BOX_SIDES})
    spine_part = grid_box((0.0, -pages_t - cover_t, z_lo), (cover_t, cover_t, z_hi), 0.01,
                          {**plain, "+x": spine_tile})
    return assemble("book", [front], [back, block, spine_part], compose_atlas([cover, leather, spine, pages]))


def _scissors() -> ArticulatedObject:
    """Scissors (20 cm) lying flat (up = +z), pivot on the z axis; blades point along +x.

    The bottom part is the lower blade with its handle on the -y side and the
    pivot screw; the top part is the mirrored upper blade.
    """
    rng = np.random.default_rng(4)
    steel = shade(flat((0.70, 0.72, 0.76)), noise(rng, (0.4, 30.0)), 0.10)
    steel *= np.linspace(1.12, 0.82, TILE_PX)[:, None, None]
    handle = shade(flat((0.95, 0.42, 0.06)), noise(rng, 3.0), 0.05)
    handle[::32] = handle[1::32] = (0.70, 0.25, 0.03)
    steel_tile, handle_tile = TILES[0], TILES[1]
    thickness = 0.0025
    blade = np.array([(-0.012, -0.0075), (0.0, -0.0095), (0.04, -0.0085), (0.085, -0.0045), (0.112, 0.0),
                      (0.108, 0.0012), (0.03, 0.0055), (-0.012, 0.0075)])
    shank = np.array([(-0.046, -0.027), (-0.010, -0.009), (-0.006, 0.0), (-0.044, -0.011)])

    def half(mirror: bool, z0: float, z1: float) -> list[Part]:
        """Blade + shank + handle ring with the handle on -y, or on +y if ``mirror``."""
        flip = np.array([1.0, -1.0 if mirror else 1.0])
        return [
            prism(blade * flip, z0, z1, steel_tile, steel_tile),
            prism(shank * flip, z0, z1, steel_tile, steel_tile),
            ring((-0.064, -0.021 * flip[1], (z0 + z1) / 2), (0.021, 0.013), 0.0035, handle_tile),
        ]

    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    screw = prism(0.0042 * np.column_stack([np.cos(angles), np.sin(angles)]), -thickness - 0.001,
                  thickness + 0.001, steel_tile, steel_tile)
    return assemble("scissors", half(True, 0.0, thickness), half(False, -thickness, 0.0) + [screw],
                    compose_atlas([steel, handle]), up_axis=2)  # lies flat: its hinge (z) points up


def _bottle() -> ArticulatedObject:
    """Rigid plastic bottle (23.5 cm tall, 7 cm wide) with a labelled body and a red cap."""
    rng = np.random.default_rng(5)
    body_profile = np.array([(0.0, 0.0), (0.030, 0.0), (0.034, 0.003), (0.035, 0.008), (0.035, 0.150),
                             (0.032, 0.165), (0.024, 0.178), (0.016, 0.188), (0.0135, 0.195), (0.0135, 0.215),
                             (0.0, 0.215)])
    label_lo, label_hi = wall_arc(body_profile, 0.035, (0.035, 0.125))
    body = shade(flat((0.10, 0.42, 0.28)), noise(rng, 4.0), 0.08)
    body[:, 40:56] = body[:, 40:56] * 0.6 + 0.4  # specular streak
    row_hi, row_lo = tile_row(label_hi), tile_row(label_lo)
    body[row_hi:row_lo] = (0.97, 0.95, 0.88)
    body[row_hi : row_hi + 6] = body[row_lo - 6 : row_lo] = (0.80, 0.10, 0.12)
    mid = (row_hi + row_lo) // 2
    for x in (64, 192):  # logo + text on both sides of the bottle
        disc(body, mid - 8, x, 14, (0.80, 0.10, 0.12))
        text_block(body, rng, (mid + 12, row_lo - 10, x - 40, x + 40), (0.15, 0.15, 0.2), 4, gap=3)
    cap = shade(flat((0.85, 0.12, 0.10)), noise(rng, 2.0), 0.05)
    cap[:, ::8] *= 0.7  # grip ridges
    body_tile, cap_tile = TILES[0], TILES[1]
    cap_profile = np.array([(0.0, 0.205), (0.0158, 0.205), (0.0158, 0.232), (0.0145, 0.235), (0.0, 0.235)])
    return assemble("bottle", [], [lathe(body_profile, body_tile), lathe(cap_profile, cap_tile, max_step=0.004)],
                    compose_atlas([body, cap]))


def _mug() -> ArticulatedObject:
    """Rigid ceramic mug (10 cm tall, 8.4 cm wide) with a hollow inside and a handle on +x."""
    rng = np.random.default_rng(6)
    profile = np.array([(0.0, 0.0), (0.040, 0.0), (0.042, 0.003), (0.042, 0.098), (0.041, 0.100), (0.039, 0.100),
                        (0.038, 0.098), (0.038, 0.012), (0.036, 0.010), (0.0, 0.010)])
    band_lo, band_hi = wall_arc(profile, 0.042, (0.025, 0.080))
    ceramic = shade(flat((0.94, 0.93, 0.90)), noise(rng, 3.0), 0.02)
    body = ceramic.copy()
    row_hi, row_lo = tile_row(band_hi), tile_row(band_lo)
    body[row_hi:row_lo] = (0.12, 0.25, 0.60)
    for k, y in enumerate(range(row_hi + 8, row_lo - 4, 14)):  # polka dots
        for x in range(8 + 7 * (k % 2), TILE_PX, 14):
            disc(body, y, x, 3.5, (0.95, 0.85, 0.30))
    body[row_hi - 5 : row_hi - 2] = body[row_lo + 2 : row_lo + 5] = (0.12, 0.25, 0.60)
    body_tile, handle_tile = TILES[0], TILES[1]
    handle = ring((0.064, 0.052, 0.0), (0.020, 0.030), 0.0055, handle_tile)
    return assemble("mug", [], [lathe(profile, body_tile), handle], compose_atlas([body, ceramic]))


_BUILDERS: dict[str, Callable[[], ArticulatedObject]] = {
    "box": _box,
    "laptop": _laptop,
    "book": _book,
    "scissors": _scissors,
    "bottle": _bottle,
    "mug": _mug,
}
OPEN_OBJECTS: tuple[str, ...] = tuple(_BUILDERS)


def open_object(name: str) -> ArticulatedObject:
    """Build one object of the open procedural set (deterministic; metres).

    Articulated: ``box``, ``laptop``, ``book``, ``scissors``; rigid: ``bottle``, ``mug``.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown open object {name!r}; valid names: {', '.join(OPEN_OBJECTS)}")
    return _BUILDERS[name]()
