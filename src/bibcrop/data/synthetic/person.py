"""One procedurally drawn runner, painted into an image and its LIP label map at once.

Every part is a polygon or ellipse drawn with the same coordinates on the RGB canvas
and on the label canvas (no antialiasing on either), so labels match pixels exactly;
later parts cover earlier ones on both. The runner faces the camera, so the person's
left (Left-arm, Left-leg, Left-shoe) is on the image's right. A runner also paints its
index into an ``owner`` map, which race scenes use to tell whether a bib stays visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from bibcrop.data.lip_dataset import CLASS_IDS as C
from bibcrop.data.synthetic.bibs import draw_bib

SKIN = ((255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36))
HAIR = ((20, 20, 20), (70, 45, 20), (120, 80, 40), (200, 170, 100), (150, 150, 150))


@dataclass
class Canvas:
    """The three layers a runner is painted on: RGB image, LIP labels, runner index."""

    image: Image.Image
    labels: Image.Image
    owner: Image.Image | None = None

    def __post_init__(self):
        self.draw_image = ImageDraw.Draw(self.image)
        self.draw_labels = ImageDraw.Draw(self.labels)
        self.draw_owner = ImageDraw.Draw(self.owner) if self.owner is not None else None

    def polygon(self, points, colour, label: int, owner: int = 0):
        pts = [(float(x), float(y)) for x, y in points]
        self.draw_image.polygon(pts, fill=tuple(colour))
        self.draw_labels.polygon(pts, fill=label)
        if self.draw_owner is not None:
            self.draw_owner.polygon(pts, fill=owner)

    def ellipse(self, box, colour, label: int, owner: int = 0):
        self.draw_image.ellipse(box, fill=tuple(colour))
        self.draw_labels.ellipse(box, fill=label)
        if self.draw_owner is not None:
            self.draw_owner.ellipse(box, fill=owner)


def _colour(rng) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _limb(x0, y0, x1, y1, width):
    """A quadrilateral of ``width`` px from (x0, y0) to (x1, y1)."""
    dx, dy = x1 - x0, y1 - y0
    length = max(np.hypot(dx, dy), 1e-6)
    nx, ny = -dy / length * width / 2, dx / length * width / 2
    return [(x0 + nx, y0 + ny), (x1 + nx, y1 + ny), (x1 - nx, y1 - ny), (x0 - nx, y0 - ny)]


def _legs(canvas, rng, cx, hip_y, foot_y, half, garment, skirt, owner):
    """Legs (skin), then pants or skirt over them, socks and shoes; person's left on the right."""
    skin = SKIN[rng.integers(len(SKIN))]
    spread = half * rng.uniform(0.2, 0.9)
    leg_w = half * rng.uniform(0.7, 0.95)
    shoe_colour, sock_colour = _colour(rng), (240, 240, 240)
    for side, label, shoe_label in (
        (-1, C["Right-leg"], C["Right-shoe"]),
        (1, C["Left-leg"], C["Left-shoe"]),
    ):
        top_x = cx + side * half * 0.5
        foot_x = top_x + side * spread * rng.uniform(0.3, 1.0)
        canvas.polygon(_limb(top_x, hip_y, foot_x, foot_y, leg_w), skin, label, owner)
        if garment is not None and not skirt:
            knee = hip_y + (foot_y - hip_y) * rng.uniform(0.75, 0.92)
            gx = top_x + (foot_x - top_x) * (knee - hip_y) / (foot_y - hip_y)
            canvas.polygon(
                _limb(top_x, hip_y, gx, knee, leg_w * 1.15), garment[0], garment[1], owner
            )
        sock_h = (foot_y - hip_y) * 0.06
        if rng.random() < 0.6:
            canvas.polygon(
                _limb(foot_x, foot_y - sock_h * 2, foot_x, foot_y - sock_h * 0.5, leg_w),
                sock_colour,
                C["Socks"],
                owner,
            )
        shoe_w, shoe_h = leg_w * 1.4, sock_h * 1.6
        canvas.ellipse(
            (
                foot_x - shoe_w / 2 + side * shoe_w * 0.2,
                foot_y - shoe_h,
                foot_x + shoe_w / 2 + side * shoe_w * 0.2,
                foot_y + shoe_h * 0.3,
            ),
            shoe_colour,
            shoe_label,
            owner,
        )
    if skirt:
        bottom = hip_y + (foot_y - hip_y) * rng.uniform(0.3, 0.45)
        flare = half * rng.uniform(1.2, 1.6)
        canvas.polygon(
            [(cx - half, hip_y), (cx + half, hip_y), (cx + flare, bottom), (cx - flare, bottom)],
            garment[0],
            C["Skirt"],
            owner,
        )


def _arms(canvas, rng, cx, shoulder_y, half, arm_len, sleeve, owner, sleeve_frac=0.35):
    skin = SKIN[rng.integers(len(SKIN))]
    width = half * rng.uniform(0.35, 0.5)
    glove = _colour(rng) if rng.random() < 0.15 else None
    for side, label in ((-1, C["Right-arm"]), (1, C["Left-arm"])):
        sx = cx + side * half * 0.95
        angle = np.deg2rad(rng.uniform(5, 50))  # 0 = hanging down, positive = outwards
        hx = sx + side * np.sin(angle) * arm_len
        hy = shoulder_y + np.cos(angle) * arm_len
        canvas.polygon(_limb(sx, shoulder_y, hx, hy, width), skin, label, owner)
        if sleeve is not None:
            ex = sx + (hx - sx) * sleeve_frac
            ey = shoulder_y + (hy - shoulder_y) * sleeve_frac
            canvas.polygon(_limb(sx, shoulder_y, ex, ey, width * 1.2), sleeve[0], sleeve[1], owner)
        if glove is not None:
            canvas.ellipse(
                (hx - width * 0.6, hy - width * 0.6, hx + width * 0.6, hy + width * 0.6),
                glove,
                C["Glove"],
                owner,
            )


def _head(canvas, rng, cx, top, head_h, owner):
    head_w = head_h * rng.uniform(0.7, 0.85)
    box = (cx - head_w / 2, top, cx + head_w / 2, top + head_h)
    canvas.ellipse(box, HAIR[rng.integers(len(HAIR))], C["Hair"], owner)
    face = (
        box[0] + head_w * 0.08,
        top + head_h * rng.uniform(0.22, 0.32),
        box[2] - head_w * 0.08,
        box[3],
    )
    canvas.ellipse(face, SKIN[rng.integers(len(SKIN))], C["Face"], owner)
    if rng.random() < 0.3:
        canvas.polygon(
            [
                (box[0] - head_w * 0.1, top + head_h * 0.28),
                (box[2] + head_w * 0.1, top + head_h * 0.28),
                (box[2], top - head_h * 0.05),
                (box[0], top - head_h * 0.05),
            ],
            _colour(rng),
            C["Hat"],
            owner,
        )
    if rng.random() < 0.3:
        gy = face[1] + (face[3] - face[1]) * 0.3
        canvas.polygon(
            [
                (face[0] + 1, gy),
                (face[2] - 1, gy),
                (face[2] - 1, gy + head_h * 0.12),
                (face[0] + 1, gy + head_h * 0.12),
            ],
            (15, 15, 25),
            C["Sunglasses"],
            owner,
        )


def draw_runner(
    canvas: Canvas,
    rng: np.random.Generator,
    box,
    owner: int = 1,
    bib_number: str | None = None,
    bib: bool = True,
    bib_text: tuple[str | None, str | None] = (None, None),
):
    """Paint a runner filling ``box`` = (x0, y0, x1, y1); returns ``(bib box (x0, y0, x1,
    y1), number)``, or ``(None, None)`` for a bystander drawn with ``bib=False``.

    ``bib_text`` is the bib's (sponsor line, chip code), see
    :func:`bibcrop.data.synthetic.bibs.draw_bib`; the defaults draw what LIP images have."""
    x0, y0, x1, y1 = box
    h, cx = y1 - y0, (x0 + x1) / 2 + (x1 - x0) * rng.uniform(-0.05, 0.05)
    half = min((x1 - x0) * 0.3, h * 0.11)
    head_h = h * rng.uniform(0.11, 0.14)
    shoulder_y = y0 + head_h * 1.05
    hip_y = y0 + h * rng.uniform(0.47, 0.53)
    kind = rng.choice(["shirt", "shirt", "shirt", "coat", "dress", "jumpsuit"])
    top_label = {
        "shirt": C["UpperClothes"],
        "coat": C["Coat"],
        "dress": C["Dress"],
        "jumpsuit": C["Jumpsuits"],
    }[kind]
    top_colour = _colour(rng)
    lower = (
        None
        if kind == "dress"
        else (
            top_colour if kind == "jumpsuit" else _colour(rng),
            C["Jumpsuits"] if kind == "jumpsuit" else C["Pants"],
        )
    )
    skirt = kind == "shirt" and rng.random() < 0.15
    _legs(
        canvas,
        rng,
        cx,
        hip_y,
        y1 - h * 0.02,
        half,
        lower or (top_colour, top_label),
        skirt or kind == "dress",
        owner,
    )
    torso_bottom = hip_y + (h * 0.18 if kind in ("dress", "coat") else h * 0.02)
    flare = half * (1.5 if kind == "dress" else 1.1)
    canvas.polygon(
        [
            (cx - half, shoulder_y),
            (cx + half, shoulder_y),
            (cx + flare, torso_bottom),
            (cx - flare, torso_bottom),
        ],
        top_colour,
        top_label,
        owner,
    )
    if kind == "coat":  # worn open, as most LIP coats: the shirt underneath shows in front
        inner = half * rng.uniform(0.25, 0.45)
        canvas.polygon(
            [
                (cx - inner, shoulder_y),
                (cx + inner, shoulder_y),
                (cx + inner * 0.8, torso_bottom),
                (cx - inner * 0.8, torso_bottom),
            ],
            _colour(rng),
            C["UpperClothes"],
            owner,
        )
    # The bib goes on before the arms, so an arm may cover it in pixels and labels alike.
    bib_box, number = None, None
    if bib:
        bw, bh = half * rng.uniform(1.0, 1.4), (hip_y - shoulder_y) * rng.uniform(0.3, 0.4)
        by = shoulder_y + (hip_y - shoulder_y) * rng.uniform(0.3, 0.45)
        bib_box = (int(round(cx - bw / 2)), int(round(by)), int(round(cx + bw / 2)),
                   int(round(by + bh)))  # fmt: skip
        number = bib_number or str(int(rng.integers(1, 10000)))
        # printed on the garment: labels unchanged
        draw_bib(canvas.draw_image, bib_box, number, rng, *bib_text)
    _arms(
        canvas,
        rng,
        cx,
        shoulder_y + head_h * 0.15,
        half,
        h * 0.33,
        (top_colour, top_label) if kind == "coat" or rng.random() < 0.6 else None,
        owner,
        sleeve_frac=0.9 if kind == "coat" else 0.35,  # coats have long sleeves
    )
    if rng.random() < 0.15:
        canvas.polygon(
            _limb(cx - half * 0.8, shoulder_y, cx + half * 0.8, shoulder_y, head_h * 0.3),
            _colour(rng),
            C["Scarf"],
            owner,
        )
    _head(canvas, rng, cx, y0, head_h, owner)
    return bib_box, number


def draw_person(
    rng: np.random.Generator, height: int, width: int, background=None, clutter: bool = False
):
    """A LIP-like person-centric image: (uint8 [H,W,3], uint8 labels [H,W]).

    With ``clutter`` the image is as busy as a race photo: the race scenes' background
    (10-30 coloured blobs, label 0), 0-2 bystanders cut by the left or right border
    behind the person, the person itself sometimes cut by the border, and 0-2 occluders
    (coloured shapes in front, label 0 where they cover). Every person drawn is labelled,
    as in the race photos' truth, so coloured shapes are background and people are people.
    """
    from bibcrop.data.synthetic.background import paint_background

    image = Image.new("RGB", (width, height))
    labels = Image.new("L", (width, height), 0)
    paint_background(image, rng, blobs=int(rng.integers(10, 30)) if clutter else None)
    canvas = Canvas(image, labels)
    if clutter:
        for _ in range(int(rng.integers(0, 3))):
            bh = height * rng.uniform(0.5, 1.0)
            bw = bh * rng.uniform(0.4, 0.55)
            bx = rng.uniform(-0.7 * bw, -0.2 * bw)
            if rng.random() < 0.5:
                bx = width - bw - bx
            by = rng.uniform(-0.15 * bh, max(height - 0.7 * bh, -0.1 * bh))
            draw_runner(canvas, rng, (bx, by, bx + bw, by + bh))
    cut = clutter and rng.random() < 0.3
    person_h = height * (rng.uniform(1.0, 1.25) if cut else rng.uniform(0.8, 0.97))
    top = rng.uniform(-0.2 * person_h, 0.0) if cut else rng.uniform(0, height - person_h)
    person_w = min(width * rng.uniform(0.7, 0.95), person_h * 0.6)
    left = rng.uniform(0, max(width - person_w, 0.0))
    draw_runner(canvas, rng, (left, top, left + person_w, top + person_h))
    if clutter:
        for _ in range(int(rng.integers(0, 3))):
            cx, cy = rng.uniform(0, width), rng.uniform(0.3 * height, height)
            rx, ry = rng.uniform(0.04, 0.15) * width, rng.uniform(0.03, 0.12) * height
            box = (cx - rx, cy - ry, cx + rx, cy + ry)
            if rng.random() < 0.5:
                canvas.ellipse(box, _colour(rng), 0)
            else:
                canvas.polygon([(box[0], box[1]), (box[2], box[1]), (box[2], box[3]),
                                (box[0], box[3])], _colour(rng), 0)  # fmt: skip
    return np.asarray(image), np.asarray(labels)
