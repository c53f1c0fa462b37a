// `vlm train`: upstream's training flags (and --recipe), then the loop.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/log.h"
#include "dist/dist.h"
#include "train/args.h"
#include "train/trainer.h"

int cmd_train(int argc, char **argv) {
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        const char *const *names = train_recipe_names();
        printf("vlm train [--recipe NAME] --model_name_or_path DIR --data_path DATA.json --output_dir DIR [FLAGS]\n\n"
               "recipes:\n");
        for (int i = 0; names[i]; i++) printf("  %-16s %s\n", names[i], train_recipe_description(names[i]));
        return VLM_OK;
    }
    TrainArgs *a = calloc(1, sizeof *a);  // large (paths): not on the stack
    if (!a) return cli_report(VLM_ERR_FAIL);
    int rc = train_args_parse(a, argc - 1, argv + 1);
    if (rc == VLM_OK) rc = dist_init();  // the launcher's world (dist.h); refused by a build without MPI
    if (rc == VLM_OK && dist_world() > 1) {
        dist_set_timeout((double)a->ddp_timeout);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "rank %d of %d: ", dist_rank(), dist_world());
        log_set_prefix(prefix);
        if (dist_rank() != 0 && log_get_level() > LOG_WARN) log_set_level(LOG_WARN);  // rank 0 narrates
    }
    if (rc == VLM_OK) rc = train_run(a);
    free(a);
    rc = cli_report(rc);
    dist_finalize();
    return rc;
}
