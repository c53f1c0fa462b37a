// `vlm convert`: any checkpoint vlm can read -> one safetensors file.
// Streams tensor by tensor, so memory stays at one tensor, and writes
// atomically: OUT is either the complete new file or untouched.
#include <jansson.h>  // metadata
#include <stdlib.h>   // free
#include <string.h>   // strcmp

#include "cli/cli.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/progress.h"
#include "formats/checkpoint.h"
#include "formats/safetensors.h"

static int convert(Checkpoint *ck, const char *out) {
    TensorInfo *infos = vlm_calloc((size_t)ck->count, sizeof *infos);
    if (!infos) return VLM_ERR_FAIL;
    size_t max = 0;
    for (int i = 0; i < ck->count; i++) {
        infos[i] = *ck->tensors[i].info;
        if (infos[i].nbytes > max) max = infos[i].nbytes;
    }
    void *buf = vlm_malloc(max);
    json_t *meta = json_pack("{s:s}", "format", "pt");  // what transformers writes and checks
    SafetensorsWriter w;
    int rc = buf ? safetensors_writer_begin(&w, out, infos, ck->count, meta) : VLM_ERR_FAIL;
    if (rc == VLM_OK) {
        Progress p;
        progress_begin(&p, stderr, "convert", "tensors", (uint64_t)ck->count);
        for (int i = 0; i < ck->count && rc == VLM_OK; i++) {
            rc = checkpoint_read(ck, i, buf);
            if (rc == VLM_OK) rc = safetensors_writer_add(&w, buf);
            progress_update(&p, (uint64_t)i + 1);
        }
        progress_end(&p);
        if (rc == VLM_OK) rc = safetensors_writer_commit(&w);
        else safetensors_writer_abort(&w);
    }
    json_decref(meta);
    free(buf);
    free(infos);
    return rc;
}

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1]) return cli_usage_error("convert", "unknown option '%s'", argv[i]);
        if (!in) in = argv[i];
        else if (!out) out = argv[i];
        else return cli_usage_error("convert", "too many arguments");
    }
    if (!in || !out) return cli_usage_error("convert", "need PATH and OUT.safetensors");
    Checkpoint ck;
    int rc = checkpoint_open(&ck, in);
    if (rc != VLM_OK) return cli_report(rc);
    rc = convert(&ck, out);
    if (rc == VLM_OK) fprintf(stderr, "wrote %s (%d tensors)\n", out, ck.count);
    checkpoint_close(&ck);
    return cli_report(rc);
}
