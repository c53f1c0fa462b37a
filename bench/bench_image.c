// Image decode + preprocess throughput, one thread: each image decoded from
// its file and preprocessed (pad to square, 336, CLIP), ROUNDS times.
// Prints {"images", "seconds", "images_per_s", "checksum", "peak_rss_mb"}
// where checksum is the sum of every pixel_values element (the reference
// prints the same).
// Usage: bench_image ROUNDS SIZE IMAGE...
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

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
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"images\": %ld, \"seconds\": %.3f, \"images_per_s\": %.2f, \"checksum\": %.6f, \"peak_rss_mb\": %.1f}\n",
           images, dt, images / dt, checksum, ru.ru_maxrss / 1024.0);
    preprocess_scratch_free(&scratch);
    free(pixels);
    return 0;
}
