// Image decode + preprocess throughput, one thread: each image decoded from
// its file and preprocessed (pad to square, 336, CLIP), ROUNDS times.
// Prints {"images", "seconds", "images_per_s", "checksum"} where checksum is
// the sum of every pixel_values element (the reference prints the same).
// Usage: bench_image ROUNDS SIZE IMAGE...
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/timer.h"
#include "image/preprocess.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench_image ROUNDS SIZE IMAGE...\n");
        return 2;
    }
    int rounds = atoi(argv[1]), size = atoi(argv[2]);
    Preprocessor p;
    preprocessor_default(&p, size);
    p.pad = true;
    float *pixels = malloc(sizeof(float) * 3 * size * size);
    PreprocessScratch scratch = {0};
    double checksum = 0, t0 = timer_now_s();
    long images = 0;
    for (int r = 0; r < rounds; r++)
        for (int i = 3; i < argc; i++) {
            if (image_preprocess_file(argv[i], &p, pixels, &scratch, NULL, NULL) != VLM_OK) {
                fprintf(stderr, "bench_image: %s\n", vlm_last_error());
                return 1;
            }
            if (r == 0)
                for (int k = 0; k < 3 * size * size; k++) checksum += pixels[k];
            images++;
        }
    double dt = timer_now_s() - t0;
    printf("{\"images\": %ld, \"seconds\": %.3f, \"images_per_s\": %.2f, \"checksum\": %.6f}\n", images, dt,
           images / dt, checksum);
    preprocess_scratch_free(&scratch);
    free(pixels);
    return 0;
}
