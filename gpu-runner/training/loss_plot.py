# Draws a loss curve as a PNG with no plotting library (Debian's torch comes without matplotlib): the raw losses
# in light grey, a moving average in blue, log-scaled y with a grid line per decade.
import math
import struct
import zlib


def _png(path, width, height, rgb):
    raw = b"".join(b"\x00" + bytes(rgb[y * width * 3:(y + 1) * width * 3]) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def write_loss_png(path, losses, title="loss", width=640, height=320):
    del title  # no font rasterizer; the model card names each curve
    pix = bytearray([255] * (width * height * 3))
    if not losses:
        _png(path, width, height, pix)
        return
    m = 30
    left, right, top, bottom = m, width - 10, 10, height - m

    def put(x, y, c):
        if 0 <= x < width and 0 <= y < height:
            o = (y * width + x) * 3
            pix[o:o + 3] = bytes(c)

    vals = [max(v, 1e-6) for v in losses]
    lo, hi = math.log10(min(vals)), math.log10(max(vals))
    lo, hi = math.floor(lo), math.ceil(hi) if math.ceil(hi) > math.floor(lo) else math.floor(lo) + 1

    def ymap(v):
        return int(bottom - (math.log10(max(v, 1e-6)) - lo) / (hi - lo) * (bottom - top))

    def xmap(i):
        return int(left + i / max(1, len(vals) - 1) * (right - left))

    for d in range(lo, hi + 1):
        y = ymap(10**d)
        for x in range(left, right):
            put(x, y, (220, 220, 220))
        # a tick mark per decade, longer at 1e0
        for x in range(left - (8 if d == 0 else 4), left):
            put(x, y, (0, 0, 0))
    for y in range(top, bottom + 1):
        put(left, y, (0, 0, 0))
    for x in range(left, right + 1):
        put(x, bottom, (0, 0, 0))

    def line(points, colour):
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            steps = max(abs(x1 - x0), abs(y1 - y0), 1)
            for s in range(steps + 1):
                put(round(x0 + (x1 - x0) * s / steps), round(y0 + (y1 - y0) * s / steps), colour)

    line([(xmap(i), ymap(v)) for i, v in enumerate(vals)], (190, 190, 190))
    window = max(1, len(vals) // 50)
    smooth, acc = [], 0.0
    for i, v in enumerate(vals):
        acc += v
        if i >= window:
            acc -= vals[i - window]
        smooth.append(acc / min(i + 1, window))
    line([(xmap(i), ymap(v)) for i, v in enumerate(smooth)], (30, 70, 230))
    _png(path, width, height, pix)
