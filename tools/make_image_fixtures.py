"""Reference data for image decoding and preprocessing (tests/fixtures/image).

Decoding: Pillow's Image.open(path).convert("RGB"), as LLaVA's and
mPLUG-Owl2's datasets call it. Preprocessing: LLaVA's expand2square (copied
from llava/train/train.py, ten lines of Pillow) then transformers 4.37.2's
CLIPImageProcessor, slow Pillow path. For every image, size (224/336/448) and
pad setting we record the uint8 crop the processor produces (its FNV-1a 64
hash and sum: identical bytes are required) and, for a few, the whole float
tensor. The float stage is pointwise, so a 3 x 256 table of the processor's
output for every uint8 value pins it exactly for every image.

Edge cases are generated here (seeded) with Pillow, plus a small PNG writer
for the layouts Pillow cannot write (16-bit RGB, 16-bit gray+alpha, Adam7
interlacing).
"""
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image
from transformers import CLIPImageProcessor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "image")
SHARED = os.path.join(ROOT, "..", "shared", "assets", "images")
SIZES = (224, 336, 448)
rng = np.random.default_rng(20261122)
# unpadded, a 1 x 15360 image resizes to 448 x 6881280 in Pillow (9 GB) before the crop: padded only
PADS = {"panorama_1x15360.png": (True,)}


def fnv64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def expand2square(pil_img, background_color):  # llava/train/train.py (LLaVA-1.5)
    width, height = pil_img.size
    if width == height:
        return pil_img
    elif width > height:
        result = Image.new(pil_img.mode, (width, width), background_color)
        result.paste(pil_img, (0, (width - height) // 2))
        return result
    else:
        result = Image.new(pil_img.mode, (height, height), background_color)
        result.paste(pil_img, ((height - width) // 2, 0))
        return result


# ---- a minimal PNG writer for what Pillow cannot write
def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(pixels: np.ndarray, color_type: int, depth: int, interlace=False, plte=None, trns=None):
    """pixels: (h, w, channels) uint8 or >u2 array, byte-aligned depths only."""
    h, w = pixels.shape[:2]
    dtype = ">u2" if depth == 16 else np.uint8
    raw_pixels = pixels.astype(dtype)

    def scanlines(img):
        return b"".join(b"\x00" + img[y].tobytes() for y in range(img.shape[0]))

    if not interlace:
        raw = scanlines(raw_pixels)
    else:
        raw = b""
        for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
            sub = raw_pixels[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += scanlines(sub)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    if plte is not None:
        out += png_chunk(b"PLTE", plte)
    if trns is not None:
        out += png_chunk(b"tRNS", trns)
    return out + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b"")


def photo_like(w, h):
    """Smooth gradients plus noise: exercises the filters better than pure noise."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 7) % 256], -1)
    noise = rng.integers(-20, 21, size=(h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def save(name, data: bytes):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    return name


def pil_bytes(im, fmt, **kw):
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def make_edge_cases():
    made = []
    rgb = lambda w, h: Image.fromarray(photo_like(w, h), "RGB")
    made.append(save("tiny_1x1.png", pil_bytes(rgb(1, 1), "PNG")))
    made.append(save("tall_1x2000.jpg", pil_bytes(rgb(1, 2000), "JPEG", quality=90)))
    made.append(save("wide_2000x1.png", pil_bytes(rgb(2000, 1), "PNG")))
    made.append(save("odd_333x97.jpg", pil_bytes(rgb(333, 97), "JPEG", quality=85, subsampling=2)))
    made.append(save("subsampling_422_301x203.jpg", pil_bytes(rgb(301, 203), "JPEG", quality=92, subsampling=1)))
    made.append(save("subsampling_444_257x259.jpg", pil_bytes(rgb(257, 259), "JPEG", quality=95, subsampling=0)))
    made.append(save("progressive_401x299.jpg", pil_bytes(rgb(401, 299), "JPEG", quality=80, progressive=True)))
    made.append(save("gray_250x190.jpg", pil_bytes(rgb(250, 190).convert("L"), "JPEG", quality=90)))
    made.append(save("cmyk_220x170.jpg", pil_bytes(rgb(220, 170).convert("CMYK"), "JPEG", quality=90)))
    made.append(save("gray_8bit_120x90.png", pil_bytes(rgb(120, 90).convert("L"), "PNG")))
    made.append(save("gray_1bit_67x45.png", pil_bytes(rgb(67, 45).convert("1"), "PNG")))
    g = photo_like(61, 47)[:, :, 0]
    made.append(save("gray_2bit_61x47.png", pil_bytes(Image.fromarray(g).convert("P", palette=Image.ADAPTIVE, colors=4), "PNG", bits=2)))
    # Pillow writes L;2 / L;4 only through palettes; write true gray 2/4-bit with packed rows ourselves
    for depth, name in ((2, "gray_2bit_true_53x31.png"), (4, "gray_4bit_true_53x31.png")):
        vals = (photo_like(53, 31)[:, :, 1] >> (8 - depth)).astype(np.uint8)
        rows = []
        per = 8 // depth
        for y in range(31):
            row = bytearray()
            for x0 in range(0, 53, per):
                b = 0
                for k in range(per):
                    v = vals[y, x0 + k] if x0 + k < 53 else 0
                    b = (b << depth) | int(v)
                row.append(b)
            rows.append(b"\x00" + bytes(row))
        ihdr = struct.pack(">IIBBBBB", 53, 31, depth, 0, 0, 0, 0)
        data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"".join(rows))) + png_chunk(b"IEND", b"")
        made.append(save(name, data))
    g16 = (photo_like(80, 60)[:, :, :1].astype(np.uint32) * 257).astype(np.uint16)
    g16[::7, ::5] = 100  # values below 256 stay, the rest clip to 255
    made.append(save("gray_16bit_80x60.png", png_bytes(g16, 0, 16)))
    made.append(save("rgb_16bit_90x70.png", png_bytes(photo_like(90, 70).astype(np.uint16) * 257 + 3, 2, 16)))
    la16 = np.concatenate([photo_like(50, 40)[:, :, :1], photo_like(50, 40)[:, :, 1:2]], -1).astype(np.uint16) * 250
    made.append(save("gray_alpha_16bit_50x40.png", png_bytes(la16, 4, 16)))
    made.append(save("gray_alpha_70x50.png", pil_bytes(rgb(70, 50).convert("LA"), "PNG")))
    rgba = np.concatenate([photo_like(130, 110), rng.integers(0, 256, (110, 130, 1), dtype=np.uint8)], -1)
    made.append(save("rgba_130x110.png", pil_bytes(Image.fromarray(rgba, "RGBA"), "PNG")))
    made.append(save("palette_150x100.png", pil_bytes(rgb(150, 100).convert("P", palette=Image.ADAPTIVE, colors=200), "PNG")))
    made.append(save("palette_4bit_77x66.png", pil_bytes(rgb(77, 66).convert("P", palette=Image.ADAPTIVE, colors=16), "PNG", bits=4)))
    pt = rgb(64, 48).convert("P", palette=Image.ADAPTIVE, colors=32)
    made.append(save("palette_trns_64x48.png", pil_bytes(pt, "PNG", transparency=3)))
    made.append(save("interlaced_97x83.png", png_bytes(photo_like(97, 83), 2, 8, interlace=True)))
    made.append(save("animated_90x60.gif", pil_bytes(rgb(90, 60).convert("P", palette=Image.ADAPTIVE, colors=64), "GIF",
                                                       save_all=True, append_images=[rgb(90, 60).convert("P")], duration=100)))
    made.append(save("gray_120x80.gif", pil_bytes(rgb(120, 80).convert("L"), "GIF")))
    made.append(save("transparent_75x55.gif", pil_bytes(rgb(75, 55).convert("P", palette=Image.ADAPTIVE, colors=50), "GIF", transparency=7)))
    # damaged files: Pillow refuses them, so must we
    good_jpg = pil_bytes(rgb(160, 120), "JPEG", quality=90)
    made.append(save("truncated.jpg", good_jpg[: len(good_jpg) * 2 // 3]))
    good_png = pil_bytes(rgb(160, 120), "PNG")
    made.append(save("truncated.png", good_png[: len(good_png) // 2]))
    made.append(save("truncated.gif", pil_bytes(rgb(160, 120).convert("P"), "GIF")[:300]))
    made.append(save("not_an_image.jpg", b"<html>404 Not Found</html>\n"))
    # extreme panoramas, padded to squares of 15360 (the resize must cost what the image costs, not the square)
    for w, h in ((90, 15360), (15360, 90), (1, 15360)):
        made.append(save(f"panorama_{w}x{h}.png", pil_bytes(Image.fromarray(panorama(w, h), "RGB"), "PNG", optimize=True)))
    made.append(save("screen_90x15360.gif", tall_screen_gif()))
    return made


def panorama(w, h):
    """A ramp along the long side and 64-pixel tiles: varied pixels that deflate to a few KB."""
    y, x = np.mgrid[0:h, 0:w]
    r = (x if w >= h else y) * 255 // max(max(w, h) - 1, 1)
    return np.stack([r, ((x * 37 + y * 11) % 64) * 4, ((x ^ y) & 63) * 4], -1).astype(np.uint8)


def tall_screen_gif():
    """2 KB declaring 90 x 15360 pixels: a 90 x 80 frame in the middle of a taller logical screen
    (the fuzzer found this shape; padded, it is a 15360 x 15360 square). Also a fuzz seed."""
    frame = Image.fromarray(panorama(90, 80), "RGB").convert("P", palette=Image.ADAPTIVE, colors=16)
    data = bytearray(pil_bytes(frame, "GIF"))
    data[8:10] = struct.pack("<H", 15360)  # the logical screen's height
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # past the global colour table
    while data[pos] == 0x21:  # extensions: label, then sub-blocks up to a zero length
        pos += 2
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    assert data[pos] == 0x2C, "image descriptor expected"
    data[pos + 3:pos + 5] = struct.pack("<H", (15360 - 80) // 2)  # the frame's top
    with open(os.path.join(ROOT, "tests", "fuzz", "corpus", "image", "regression-screen-90x15360.gif"), "wb") as f:
        f.write(data)
    return bytes(data)


def decode(path):
    with Image.open(path) as im:
        return im.convert("RGB")


def main():
    os.makedirs(OUT, exist_ok=True)
    edge = make_edge_cases()
    photos = sorted(os.listdir(SHARED))
    entries = [("tests/fixtures/image/" + n, os.path.join(OUT, n)) for n in edge]
    entries += [("../shared/assets/images/" + n, os.path.join(SHARED, n)) for n in photos]
    processors = {s: CLIPImageProcessor(size={"shortest_edge": s}, crop_size={"height": s, "width": s}) for s in SIZES}
    bg = tuple(int(x * 255) for x in processors[224].image_mean)
    images, tensors, lut_check = [], [], []
    for rel, path in entries:
        rec = {"path": rel}
        try:
            im = decode(path)
        except Exception as e:  # Pillow's refusal is the expected result
            rec["error"] = f"{type(e).__name__}: {e}"
            images.append(rec)
            print(f"{rel}: error {rec['error']}", file=sys.stderr)
            continue
        rec.update(width=im.width, height=im.height, rgb_fnv64=fnv64(im.tobytes()), rgb_sum=int(np.asarray(im).sum()))
        crops = []
        for size in SIZES:
            proc = processors[size]
            for pad in PADS.get(os.path.basename(rel), (False, True)):
                src = expand2square(im, bg) if pad else im
                # channels_last is given because transformers 4.37 guesses the channel axis from the
                # shape and takes an image 1 or 3 pixels high for channels-first (upstream garbles or
                # crashes on those; for every other image the guess is right and this changes nothing)
                kw = dict(return_tensors="np", input_data_format="channels_last")
                u8 = proc.preprocess(src, do_rescale=False, do_normalize=False, **kw)["pixel_values"][0]
                assert np.all(u8 == np.round(u8)), "the unnormalised output must hold integers"
                u8 = u8.astype(np.uint8).transpose(1, 2, 0)  # CHW -> HWC, the order we hash
                pv = proc.preprocess(src, **kw)["pixel_values"][0]
                lut_check.append((u8, pv))
                crops.append({"size": size, "pad": pad, "fnv64": fnv64(u8.tobytes()), "sum": int(u8.sum())})
                want = f"{os.path.basename(rel)}_{size}_{'pad' if pad else 'nopad'}"
                if want in ("extreme_ironing.jpg_224_pad", "cmyk_220x170.jpg_336_nopad", "tall_1x2000.jpg_224_nopad"):
                    name = want.replace(".", "_") + ".safetensors"
                    write_safetensors(os.path.join(OUT, name), {"pixel_values": pv.astype(np.float32)})
                    tensors.append({"path": rel, "size": size, "pad": pad, "file": name})
        rec["crops"] = crops
        images.append(rec)
        print(f"{rel}: {im.width}x{im.height}", file=sys.stderr)
    # the float stage for every uint8 value: a 16x16 image holding 0..255 in each channel
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    ramp_img = np.stack([ramp, ramp, ramp], -1)
    lut = processors[224].preprocess(ramp_img, do_resize=False, do_center_crop=False, return_tensors="np",
                                     input_data_format="channels_last")["pixel_values"][0]
    lut = lut.reshape(3, 256).astype(np.float32)
    for u8, pv in lut_check:  # the float stage is the table, pointwise, for every image
        assert np.array_equal(pv, np.stack([lut[c][u8[:, :, c]] for c in range(3)])), "float stage is not pointwise"
    doc = {
        "generator": f"Pillow {Image.__version__}, transformers 4.37.2 CLIPImageProcessor, numpy {np.__version__}",
        "pad_colour": list(bg),
        "images": images,
        "lut": [[float(v) for v in lut[c]] for c in range(3)],
        "pixel_values": tensors,
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(doc, f, indent=1)


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


if __name__ == "__main__":
    main()
