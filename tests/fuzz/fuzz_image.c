// libFuzzer harness: the JPEG, PNG and GIF decoders, then preprocessing of
// whatever decodes, unpadded and padded (small size), to exercise the resize
// on odd shapes and padded panoramas.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "image/preprocess.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static PreprocessScratch scratch;
    static float pixels[3 * 24 * 24];
    Image im;
    image_set_max_pixels(1 << 22);  // memory safety is the point here, not 170M-pixel canvases
    if (image_decode_memory(data, size, "fuzz", &im) == 0) {
        Preprocessor p;
        preprocessor_default(&p, 24);
        for (int pad = 0; pad < 2; pad++) {
            p.pad = pad;
            image_preprocess(&im, &p, pixels, NULL, &scratch, "fuzz");
        }
        image_free(&im);
    }
    return 0;
}
