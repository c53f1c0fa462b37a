"""The reference for bench_image: what LLaVA's dataset does per image with
image_aspect_ratio=pad: Image.open(path).convert("RGB"), expand2square with
the mean colour, CLIPImageProcessor.preprocess (transformers 4.37.2, Pillow
path). One thread. Prints the same JSON as bench_image (peak_rss_mb
includes the interpreter and its imports).
Usage: python bench_image_ref.py ROUNDS SIZE IMAGE...
"""
import json
import os
import resource
import sys
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import CLIPImageProcessor  # noqa: E402


def expand2square(pil_img, background_color):  # llava/train/train.py
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


def main():
    rounds, size, paths = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    proc = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    bg = tuple(int(x * 255) for x in proc.image_mean)
    checksum, images, t0 = 0.0, 0, time.perf_counter()
    for r in range(rounds):
        for path in paths:
            image = expand2square(Image.open(path).convert("RGB"), bg)
            pv = proc.preprocess(image, return_tensors="np")["pixel_values"][0]
            if r == 0:
                checksum += float(pv.astype(np.float64).sum())
            images += 1
    dt = time.perf_counter() - t0
    print(json.dumps({"images": images, "seconds": round(dt, 3), "images_per_s": round(images / dt, 2),
                      "checksum": round(checksum, 6),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    main()
