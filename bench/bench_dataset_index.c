// Dataset indexing: opens a LLaVA-format JSON file (one pass, no parsing),
// parses one record, and prints {"records", "seconds", "peak_rss_mb"}.
// Usage: bench_dataset_index DATA.json
#include <stdio.h>
#include <sys/resource.h>

#include "core/error.h"
#include "core/timer.h"
#include "data/dataset.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: bench_dataset_index DATA.json\n");
        return 2;
    }
    double t0 = timer_now_s();
    DatasetFile f;
    if (dataset_file_open(&f, argv[1], NULL) != VLM_OK) {
        fprintf(stderr, "bench_dataset_index: %s\n", vlm_last_error());
        return 1;
    }
    json_t *last;
    if (f.count && dataset_file_record(&f, f.count - 1, &last) == VLM_OK) json_decref(last);
    double dt = timer_now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"records\": %zu, \"seconds\": %.3f, \"peak_rss_mb\": %.1f}\n", f.count, dt, (double)ru.ru_maxrss / 1024.0);
    dataset_file_close(&f);
    return 0;
}
