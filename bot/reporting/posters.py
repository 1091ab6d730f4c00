"""Printable posters of a community's WeChat QR code, for community notice boards and 党群服务中心: an A4 page
(PNG at 150 dpi, or the same page as a PDF) with the programme's name, the community's and town's names, the QR
code and how to use it. Pillow draws it; the ``qrcode`` package encodes the URL WeChat gave for the code."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

PROGRAMME = "民生大莞家"
#: CJK fonts looked for, in order (Debian's fonts-noto-cjk first; scripts/setup.sh --browser installs it)
FONT_PATHS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",
)
A4 = (1240, 1754)  # 210 × 297 mm at 150 dpi
RED, DARK, WHITE, GREY = (178, 34, 34), (33, 33, 33), (255, 255, 255), (90, 90, 90)
FORMATS = {"png": "image/png", "pdf": "application/pdf"}


class PosterError(Exception):
    """The poster cannot be drawn here (no CJK font); the message is for staff."""


@dataclass(frozen=True, slots=True)
class Poster:
    body: bytes
    content_type: str
    filename: str


def _font_path() -> str:
    for path in FONT_PATHS:
        if Path(path).is_file():
            return path
    raise PosterError("服务器缺少中文字体（请安装 fonts-noto-cjk），暂时不能生成海报")


def render_poster(*, town: str, community: str, qr_content: str, fmt: str) -> Poster:
    """The poster as PNG or PDF bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown poster format {fmt!r}")
    import qrcode  # lazy: Pillow and qrcode load only when a poster is drawn
    from PIL import Image, ImageDraw, ImageFont  # lazy: as above

    path = _font_path()

    def font(size: int) -> ImageFont.FreeTypeFont:
        return ImageFont.truetype(path, size)

    page = Image.new("RGB", A4, WHITE)
    draw = ImageDraw.Draw(page)
    width = A4[0]

    def centred(y: int, text: str, size: int, fill: tuple[int, int, int]) -> int:
        f = font(size)
        while draw.textlength(text, font=f) > width - 120 and size > 24:  # long names shrink to fit
            size -= 4
            f = font(size)
        draw.text(((width - draw.textlength(text, font=f)) / 2, y), text, font=f, fill=fill)
        return y + int(size * 1.35)

    draw.rectangle((0, 0, width, 300), fill=RED)
    centred(60, PROGRAMME, 120, WHITE)
    centred(210, "群众点单 · 社会认领 · 件件有回音", 44, WHITE)
    y = centred(360, community, 96, DARK)
    y = centred(y + 4, town, 56, GREY)

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=2)
    code.add_data(qr_content)
    code.make(fit=True)
    image = code.make_image(fill_color="black", back_color="white").get_image().convert("RGB")
    side = 680
    image = image.resize((side, side), Image.Resampling.NEAREST)
    top = y + 30
    page.paste(image, ((width - side) // 2, top))

    y = top + side + 40
    y = centred(y, "微信扫一扫，说出您的困难和需要", 56, DARK)
    y = centred(y + 6, "微心愿（轮椅、助听器、学习用品……）", 40, GREY)
    y = centred(y, "微实事（路灯、下水道、楼梯扶手……）", 40, GREY)
    centred(y + 20, f"登记后由{community}工作人员跟进，进度在微信里通知您", 36, DARK)
    draw.rectangle((0, A4[1] - 90, width, A4[1]), fill=RED)
    centred(A4[1] - 70, f"{PROGRAMME} · {town} · {community}", 36, WHITE)

    buf = io.BytesIO()
    if fmt == "png":
        page.save(buf, "PNG", optimize=True)
    else:
        page.save(buf, "PDF", resolution=150.0, title=f"{PROGRAMME} {town}{community}")
    return Poster(buf.getvalue(), FORMATS[fmt], f"poster-{fmt}")
