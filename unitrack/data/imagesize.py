"""Image width and height from the file header, without decoding the pixels.

Box bounds and the constant-frame-size check need every sequence's frame size; decoding a 960x576 JPEG
costs ~5-15 ms, reading its header one small read (about 4x faster than PIL's lazy `Image.open`, measured
in docs/benchmarks.md). JPEG, PNG and BMP are parsed here; any other
format falls back to PIL.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from unitrack.errors import DatasetError

_HEAD = 1024  # bytes read first; a JPEG whose frame header comes later (EXIF, ICC) is read further
#: JPEG start-of-frame markers (baseline, progressive, lossless, ...); C4 (DHT), C8 (JPG), CC (DAC) are not.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg(fd: int, data: bytes) -> tuple[int, int] | None:
    pos = 2
    while True:
        while pos + 9 > len(data):
            more = os.read(fd, 65536)
            if not more:
                return None
            data += more
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            pos += 2
            continue
        if marker in _SOF:
            h, w = struct.unpack(">HH", data[pos + 5:pos + 9])
            return w, h
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        pos += 2 + length


def image_size(path: Path | str) -> tuple[int, int]:
    """(width, height) of an image file; a DatasetError names the file when it is not a readable image.

    Raw os.open / os.read: a buffered `open` per frame costs 2-3x more, and this runs once a frame.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise DatasetError(path, f"cannot read image ({e.strerror or e})") from None
    try:
        head = os.read(fd, _HEAD)
        if head[:2] == b"\xff\xd8":
            size = _jpeg(fd, head)
        elif head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            size = struct.unpack(">II", head[16:24])
        elif head[:2] == b"BM" and len(head) >= 26:
            w, h = struct.unpack("<ii", head[18:26])
            size = (w, abs(h))  # negative height: a top-down bitmap
        else:
            size = _pil_size(Path(path))
    except OSError as e:
        raise DatasetError(path, f"cannot read image ({e.strerror or e})") from None
    finally:
        os.close(fd)
    if size is None or size[0] <= 0 or size[1] <= 0:
        raise DatasetError(path, "cannot read image size (truncated or not an image file)")
    return int(size[0]), int(size[1])


def _pil_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError):
        return None
