#!/usr/bin/env python3
"""Renders a tmux pane captured with `tmux capture-pane -p -e` to a PNG.

Usage: tmux capture-pane -p -e -t SESSION | python3 docs/screenshot.py OUT.png [--light]
--light draws it as a terminal with a light background would (dark default
foreground on white, the same ANSI palette).
Needs Pillow and the DejaVu Sans Mono font (Debian: fonts-dejavu-core).
"""
import re
import sys

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
# Braille (the charts) is not in the mono face.
WIDE = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
BASE = [(0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16), (36, 114, 200),
        (188, 63, 188), (17, 168, 205), (204, 204, 204)]
BRIGHT = [(102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67),
          (59, 142, 234), (214, 112, 214), (41, 184, 219), (242, 242, 242)]
DEFAULT_FG, DEFAULT_BG = (204, 204, 204), (24, 24, 28)
if "--light" in sys.argv:
    DEFAULT_FG, DEFAULT_BG = (30, 30, 30), (252, 252, 250)


def xterm256(n):
    if n < 8:
        return BASE[n]
    if n < 16:
        return BRIGHT[n - 8]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    v = 8 + (n - 232) * 10
    return (v, v, v)


def parse(line):
    """Yields (char, fg, bg, bold, reverse) for one captured line."""
    fg, bg, bold, rev = None, None, False, False
    pos = 0
    for m in re.finditer(r"\x1b\[([0-9;]*)m", line + "\x1b[m"):
        for ch in line[pos:m.start()]:
            yield ch, fg, bg, bold, rev
        pos = m.end()
        codes = [int(c) if c else 0 for c in m.group(1).split(";")] if m.group(1) else [0]
        i = 0
        while i < len(codes):
            c = codes[i]
            if c == 0:
                fg, bg, bold, rev = None, None, False, False
            elif c == 1:
                bold = True
            elif c == 7:
                rev = True
            elif c == 22:
                bold = False
            elif c == 27:
                rev = False
            elif 30 <= c <= 37:
                fg = BASE[c - 30]
            elif 90 <= c <= 97:
                fg = BRIGHT[c - 90]
            elif 40 <= c <= 47:
                bg = BASE[c - 40]
            elif 100 <= c <= 107:
                bg = BRIGHT[c - 100]
            elif c in (38, 48) and i + 1 < len(codes):
                if codes[i + 1] == 5 and i + 2 < len(codes):
                    col = xterm256(codes[i + 2])
                    i += 2
                elif codes[i + 1] == 2 and i + 4 < len(codes):
                    col = tuple(codes[i + 2:i + 5])
                    i += 4
                else:
                    col = None
                if c == 38:
                    fg = col
                else:
                    bg = col
            elif c == 39:
                fg = None
            elif c == 49:
                bg = None
            i += 1


def main():
    out = sys.argv[1]
    lines = sys.stdin.read().rstrip("\n").split("\n")
    font, bold_font = ImageFont.truetype(FONT, 15), ImageFont.truetype(BOLD, 15)
    braille = ImageFont.truetype(WIDE, 15)
    cw, ch = 9, 19
    cols = max(len(list(parse(l))) for l in lines)
    img = Image.new("RGB", (cols * cw + 16, len(lines) * ch + 16), DEFAULT_BG)
    d = ImageDraw.Draw(img)
    for y, line in enumerate(lines):
        for x, (c, fg, bg, b, rev) in enumerate(parse(line)):
            fg, bg = fg or DEFAULT_FG, bg or DEFAULT_BG
            if rev:
                fg, bg = bg, fg
            px, py = 8 + x * cw, 8 + y * ch
            if bg != DEFAULT_BG:
                d.rectangle([px, py, px + cw - 1, py + ch - 1], fill=bg)
            if c != " ":
                f = braille if 0x2800 <= ord(c) <= 0x28FF else (bold_font if b else font)
                d.text((px, py), c, font=f, fill=fg)
    img.save(out)


if __name__ == "__main__":
    main()
