"""The thank-you certificate a donor can share: the programme's name, the donor's name and what they gave — nothing
of the resident. A PNG drawn with Pillow in a CJK font found on the system (Debian's fonts-noto-cjk, else
WenQuanYi or Droid); when Pillow or every CJK font is missing, an SVG with the same words, which the phone's browser
draws in its own fonts."""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from xml.sax.saxutils import escape

log = logging.getLogger(__name__)

#: CJK fonts in the order tried (Debian package paths)
FONT_CANDIDATES: tuple[str, ...] = (
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
WIDTH, HEIGHT = 1080, 1350
RED, INK, PAPER, MUTED = (176, 32, 32), (40, 32, 28), (255, 250, 240), (110, 96, 88)


@dataclass(frozen=True, slots=True)
class Certificate:
    programme: str
    donor: str
    gave: str
    town: str
    day: str  # the day the wish was fulfilled, China time


def lines_of(cert: Certificate) -> dict[str, str]:
    """The certificate's words, shared by the PNG and the SVG."""
    return {
        "title": "感 谢 信",
        "to": f"致 {cert.donor}：",
        "body": f"感谢您通过{cert.programme}圆梦墙，在{cert.town}帮助一位有困难的居民实现了微心愿，您送出的是：{cert.gave}。"
        "点滴善意，温暖莞邑。特发此信，以表谢忱。",
        "sign": f"{cert.programme}",
        "day": cert.day,
    }


def find_font() -> str | None:
    for path in FONT_CANDIDATES:
        if os.path.exists(path):
            return path
    return None


@lru_cache(maxsize=8)
def _font(path: str, size: int) -> Any:
    from PIL import ImageFont  # heavy optional dependency: loaded only when a certificate is drawn

    return ImageFont.truetype(path, size)


def _wrap(draw: Any, text: str, font: Any, width: int) -> list[str]:
    lines, line = [], ""
    for ch in text:
        if draw.textlength(line + ch, font=font) > width and line:
            lines.append(line)
            line = ch
        else:
            line += ch
    return [*lines, line] if line else lines


def render_png(cert: Certificate, font_path: str) -> bytes:
    from PIL import Image, ImageDraw  # heavy optional dependency: loaded only when a certificate is drawn

    words = lines_of(cert)
    img = Image.new("RGB", (WIDTH, HEIGHT), PAPER)
    draw = ImageDraw.Draw(img)
    draw.rectangle((30, 30, WIDTH - 30, HEIGHT - 30), outline=RED, width=8)
    draw.rectangle((52, 52, WIDTH - 52, HEIGHT - 52), outline=RED, width=2)
    title, big, body, small = (_font(font_path, s) for s in (96, 46, 42, 36))
    draw.text((WIDTH / 2, 190), words["title"], font=title, fill=RED, anchor="mm")
    draw.text((WIDTH / 2, 290), f"{cert.programme} · 圆梦墙", font=small, fill=MUTED, anchor="mm")
    y = 400
    for line in _wrap(draw, words["to"], big, WIDTH - 220):
        draw.text((110, y), line, font=big, fill=INK)
        y += 70
    y += 30
    for line in _wrap(draw, "　　" + words["body"], body, WIDTH - 220):
        draw.text((110, y), line, font=body, fill=INK)
        y += 68
    draw.text((WIDTH - 110, HEIGHT - 250), words["sign"], font=big, fill=INK, anchor="rm")
    draw.text((WIDTH - 110, HEIGHT - 175), words["day"], font=small, fill=INK, anchor="rm")
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def render_svg(cert: Certificate) -> bytes:
    words = {k: escape(v) for k, v in lines_of(cert).items()}
    body = lines_of(cert)["body"]
    rows = [escape(body[i : i + 20]) for i in range(0, len(body), 20)]
    spans = "".join(f'<tspan x="110" dy="{0 if i == 0 else 64}">{r}</tspan>' for i, r in enumerate(rows))
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'font-family="Noto Serif CJK SC, Noto Sans CJK SC, PingFang SC, Microsoft YaHei, serif">'
        f'<rect width="100%" height="100%" fill="#fffaf0"/>'
        f'<rect x="30" y="30" width="{WIDTH - 60}" height="{HEIGHT - 60}" fill="none" stroke="#b02020" stroke-width="8"/>'
        f'<text x="{WIDTH // 2}" y="220" font-size="96" fill="#b02020" text-anchor="middle">{words["title"]}</text>'
        f'<text x="{WIDTH // 2}" y="300" font-size="36" fill="#6e6058" text-anchor="middle">'
        f"{escape(cert.programme)} · 圆梦墙</text>"
        f'<text x="110" y="420" font-size="46" fill="#28201c">{words["to"]}</text>'
        f'<text x="110" y="520" font-size="42" fill="#28201c">{spans}</text>'
        f'<text x="{WIDTH - 110}" y="{HEIGHT - 250}" font-size="46" text-anchor="end">{words["sign"]}</text>'
        f'<text x="{WIDTH - 110}" y="{HEIGHT - 175}" font-size="36" text-anchor="end">{words["day"]}</text>'
        "</svg>"
    )
    return svg.encode("utf-8")


def render_certificate(cert: Certificate, *, prefer: str = "png") -> tuple[bytes, str]:
    """(body, content type): a PNG when asked for and possible, else the SVG."""
    if prefer == "png":
        font = find_font()
        if font is None:
            log.warning("certificate: no CJK font found (install fonts-noto-cjk); sending the SVG")
        else:
            try:
                return render_png(cert, font), "image/png"
            except ImportError:
                log.warning("certificate: Pillow is not installed; sending the SVG")
    return render_svg(cert), "image/svg+xml"
