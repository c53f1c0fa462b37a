// Training on several processes: `mpirun -np 2 build/vlm train` on localhost
// against one process, the ZeRO stages against each other, resume across
// world sizes, and the faults that must never hang (a rank with bad data, a
// rank killed, a rank that hangs, a second run into a busy output_dir).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <jansson.h>

#include "core/error.h"
#include "core/file.h"
#include "dist/dist.h"
#include "data/sampler.h"
#include "formats/safetensors.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "test_util.h"

#define PHOTOS VLM_SOURCE_DIR "/../shared/assets/images"
enum { OUT_SIZE = 1 << 16 };

// mpirun as root in a container: OpenMPI wants both variables; no CMA (ptrace is often denied)
#define MPIRUN                                                                                              \
    "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none " \
    "mpirun -np 2 --oversubscribe --bind-to none "

static void args_for(char *args, size_t size, const char *dir, const char *output, const char *extra) {
    snprintf(args, size,
             "train --model_name_or_path %s/base --version v1 --data_path %s/data.json --image_folder %s "
             "--output_dir %s/%s --num_train_epochs 1 --learning_rate 2e-3 --warmup_ratio 0.1 --lr_scheduler_type cosine "
             "--weight_decay 0.01 --logging_steps 1 --save_steps 2 --model_max_length 96 --image_aspect_ratio pad "
             "--group_by_modality_length True --seed 5 %s",
             dir, dir, PHOTOS, dir, output, extra);
}

// Runs `mpirun -np 2 vlm ARGS` (ranks > 1) or `vlm --threads 1 ARGS`; stderr to DIR/NAME.log; the exit code.
static int run(const char *dir, const char *name, int ranks, const char *args) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "timeout 300 %s%s %s %s > %s/%s.log 2>&1", ranks > 1 ? MPIRUN : "", VLM_BINARY,
             ranks > 1 ? "-q" : "-q --threads 1", args, dir, name);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *log_of(const char *dir, const char *name) {
    static char text[OUT_SIZE];
    char path[600], *t = NULL;
    size_t n = 0;
    snprintf(path, sizeof path, "%s/%s.log", dir, name);
    text[0] = '\0';
    // the end of the log: libcheck's messages hold at most a few kB
    if (file_read_all(path, 1 << 24, &t, &n) == VLM_OK) snprintf(text, 3000, "%s", n > 2900 ? t + n - 2900 : t);
    free(t);
    return text;
}

// Whether DIR/NAME.log holds needle anywhere.
static bool log_has(const char *dir, const char *name, const char *needle) {
    char path[600], *t = NULL;
    size_t n = 0;
    snprintf(path, sizeof path, "%s/%s.log", dir, name);
    bool found = file_read_all(path, 1 << 24, &t, &n) == VLM_OK && strstr(t, needle);
    free(t);
    return found;
}

// The exit code a shell command left in DIR/NAME.rc (echo $? > NAME.rc).
static int exit_code_of(const char *dir, const char *name) {
    char path[600], *text;
    size_t n;
    snprintf(path, sizeof path, "%s/%s.rc", dir, name);
    ck_assert_int_eq(file_read_all(path, 64, &text, &n), VLM_OK);
    int rc = atoi(text);
    free(text);
    return rc;
}

static bool same_file(const char *dir, const char *a, const char *b) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cmp -s %s/%s %s/%s", dir, a, dir, b);
    return system(cmd) == 0;
}

// Every tensor of two model files within `tol` of its norm; returns the worst relative difference.
static double model_diff(const char *dir, const char *a, const char *b, double tol) {
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/%s", dir, a), snprintf(pb, sizeof pb, "%s/%s", dir, b);
    SafetensorsFile x, y;
    ck_assert_int_eq(safetensors_open(&x, pa), VLM_OK);
    ck_assert_int_eq(safetensors_open(&y, pb), VLM_OK);
    ck_assert_int_eq(x.count, y.count);
    double worst = 0;
    for (int i = 0; i < x.count; i++) {
        const TensorInfo *ti;
        const float *u = safetensors_tensor_data(&x, i), *v = ref_tensor(&y, x.tensors[i].name, &ti);
        ck_assert_uint_eq(ti->nbytes, x.tensors[i].nbytes);
        double diff = 0, norm = 0;
        for (size_t k = 0; k < ti->nbytes / sizeof(float); k++)
            diff += ((double)u[k] - v[k]) * ((double)u[k] - v[k]), norm += (double)v[k] * v[k];
        double rel = norm > 0 ? sqrt(diff / norm) : sqrt(diff);
        ck_assert_msg(rel <= tol, "%s: %s and %s differ by %g of its norm", x.tensors[i].name, a, b, rel);
        worst = fmax(worst, rel);
    }
    safetensors_close(&x), safetensors_close(&y);
    return worst;
}

// loss and grad_norm of each metrics.jsonl line
static int read_metrics(const char *dir, const char *run_name, double (*m)[2], int max) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", dir, run_name);
    char *text;
    size_t size;
    ck_assert_int_eq(file_read_all(path, 1 << 20, &text, &size), VLM_OK);
    int n = 0;
    for (char *p = text; (p = strstr(p, "\"loss\": ")) && n < max; n++) {
        m[n][0] = strtod(p + 8, NULL);
        char *g = strstr(p, "\"grad_norm\": ");
        ck_assert_ptr_nonnull(g);
        m[n][1] = strtod(g + 13, NULL);
        p = g;
    }
    free(text);
    return n;
}

// Two ranks x 2 samples against one process accumulating 2 micro-batches of 2 (the same
// micro-batches): bitwise (every gradient is formed per micro-batch and added once, and the
// ranks sum in rank order: the same additions); against one process with batches of 4 (the
// same samples per step, one product over all their rows: another rounding): losses and
// gradient norms to 1e-6, parameters to 1e-5 of each tensor's norm.
START_TEST(two_ranks_as_one_process) {
    ck_assert_msg(dist_built_with_mpi(), "this build has no MPI: make installs libopenmpi-dev (scripts/install-deps.sh)");
    char dir[] = "/tmp/vlm-dist-XXXXXX", args[4096];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_run_inputs(dir, NULL);
    args_for(args, sizeof args, dir, "w2", "--per_device_train_batch_size 2 --max_steps 6");
    ck_assert_msg(run(dir, "w2", 2, args) == 0, "%s", log_of(dir, "w2"));
    ck_assert(log_has(dir, "w2", "data parallel: 2 ranks, global batch 4"));
    args_for(args, sizeof args, dir, "acc2", "--per_device_train_batch_size 2 --gradient_accumulation_steps 2 --max_steps 6");
    ck_assert_msg(run(dir, "acc2", 1, args) == 0, "%s", log_of(dir, "acc2"));
    args_for(args, sizeof args, dir, "b4", "--per_device_train_batch_size 4 --max_steps 6");
    ck_assert_msg(run(dir, "b4", 1, args) == 0, "%s", log_of(dir, "b4"));
    double w2[8][2], acc2[8][2], b4[8][2];
    ck_assert_int_eq(read_metrics(dir, "w2", w2, 8), 6);
    ck_assert_int_eq(read_metrics(dir, "acc2", acc2, 8), 6);
    ck_assert_int_eq(read_metrics(dir, "b4", b4, 8), 6);
    for (int s = 0; s < 6; s++)
        for (int k = 0; k < 2; k++) {
            ck_assert_msg(w2[s][k] == acc2[s][k], "step %d %s: %.17g vs %.17g", s + 1, k ? "grad_norm" : "loss", w2[s][k],
                          acc2[s][k]);
            ck_assert_msg(fabs(w2[s][k] - b4[s][k]) <= 1e-6 * fabs(b4[s][k]), "step %d %s: %.9g vs %.9g (batch 4)",
                          s + 1, k ? "grad_norm" : "loss", w2[s][k], b4[s][k]);
        }
    ck_assert_msg(w2[0][0] != w2[5][0], "the loss never moved");
    ck_assert_msg(same_file(dir, "w2/model.safetensors", "acc2/model.safetensors"), "2 ranks and 1 accumulating differ");
    char cmd0[1400];  // metrics.jsonl to the last digit it writes, but the time fields
    snprintf(cmd0, sizeof cmd0, "cmp -s <(jq -c '[.loss, .grad_norm, .lr]' %s/w2/metrics.jsonl) "
                                "<(jq -c '[.loss, .grad_norm, .lr]' %s/acc2/metrics.jsonl)", dir, dir);
    char shell[1500];
    snprintf(shell, sizeof shell, "bash -c \"%s\"", cmd0);
    ck_assert_msg(system(shell) == 0, "metrics.jsonl differ");
    model_diff(dir, "w2/model.safetensors", "b4/model.safetensors", 1e-5);

    // bitwise repeatable; ZeRO-1 gives ZeRO-0's bits and writes one moment shard per rank
    args_for(args, sizeof args, dir, "again", "--per_device_train_batch_size 2 --max_steps 6");
    ck_assert_msg(run(dir, "again", 2, args) == 0, "%s", log_of(dir, "again"));
    ck_assert(same_file(dir, "w2/model.safetensors", "again/model.safetensors"));
    args_for(args, sizeof args, dir, "z1", "--per_device_train_batch_size 2 --max_steps 6 --zero 1");
    ck_assert_msg(run(dir, "z1", 2, args) == 0, "%s", log_of(dir, "z1"));
    ck_assert(same_file(dir, "w2/model.safetensors", "z1/model.safetensors"));
    // a sharded checkpoint with a rank's file missing stops the resume naming that file
    char cmd0b[2048];
    snprintf(cmd0b, sizeof cmd0b, "mkdir %s/broken && cp -r %s/z1/checkpoint-2 %s/broken/ && "
             "rm %s/broken/checkpoint-2/optimizer.rank-1-of-2.safetensors", dir, dir, dir, dir);
    ck_assert_int_eq(system(cmd0b), 0);
    args_for(args, sizeof args, dir, "broken", "--per_device_train_batch_size 2 --max_steps 6 --zero 1");
    ck_assert_int_ne(run(dir, "broken", 2, args), 0);
    ck_assert_msg(log_has(dir, "broken", "optimizer.rank-1-of-2.safetensors"), "%s", log_of(dir, "broken"));
    // ZeRO-2 / 3 (gradients, then parameters sharded, one layer at a time): the same bits with one
    // micro-batch per step, also through batches where one rank has images and the other text only
    args_for(args, sizeof args, dir, "z2", "--per_device_train_batch_size 2 --max_steps 6 --zero 2");
    ck_assert_msg(run(dir, "z2", 2, args) == 0, "%s", log_of(dir, "z2"));
    ck_assert(same_file(dir, "w2/model.safetensors", "z2/model.safetensors"));
    args_for(args, sizeof args, dir, "z3", "--per_device_train_batch_size 2 --max_steps 6 --zero 3");
    ck_assert_msg(run(dir, "z3", 2, args) == 0, "%s", log_of(dir, "z3"));
    ck_assert(same_file(dir, "w2/model.safetensors", "z3/model.safetensors"));
    ck_assert(same_file(dir, "w2/checkpoint-4/model.safetensors", "z3/checkpoint-4/model.safetensors"));
    char cmd3[1400];  // a ZeRO-3 run resumed from its checkpoint: bitwise
    snprintf(cmd3, sizeof cmd3, "mkdir %s/r3 && cp -r %s/z3/checkpoint-4 %s/r3/", dir, dir, dir);
    ck_assert_int_eq(system(cmd3), 0);
    args_for(args, sizeof args, dir, "r3", "--per_device_train_batch_size 2 --max_steps 6 --zero 3");
    ck_assert_msg(run(dir, "r3", 2, args) == 0, "%s", log_of(dir, "r3"));
    ck_assert(log_has(dir, "r3", "resuming from"));
    ck_assert(same_file(dir, "z3/model.safetensors", "r3/model.safetensors"));
    // with accumulation each micro-batch is summed over the ranks before the next is added (DeepSpeed's
    // order): stage 3 against stage 0 within rounding
    args_for(args, sizeof args, dir, "a0", "--per_device_train_batch_size 2 --gradient_accumulation_steps 2 --max_steps 3");
    ck_assert_msg(run(dir, "a0", 2, args) == 0, "%s", log_of(dir, "a0"));
    args_for(args, sizeof args, dir, "a3",
             "--per_device_train_batch_size 2 --gradient_accumulation_steps 2 --max_steps 3 --zero 3");
    ck_assert_msg(run(dir, "a3", 2, args) == 0, "%s", log_of(dir, "a3"));
    model_diff(dir, "a0/model.safetensors", "a3/model.safetensors", 1e-5);
    char path[600];
    snprintf(path, sizeof path, "%s/z1/checkpoint-4/optimizer.rank-1-of-2.safetensors", dir);
    ck_assert(file_exists(path));
    snprintf(path, sizeof path, "%s/z1/checkpoint-4/optimizer.safetensors", dir);
    ck_assert(!file_exists(path));

    // resume: ZeRO-1 from its own checkpoint, bitwise; the same checkpoint in one process accumulating 2
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir %s/r1 %s/r0 && cp -r %s/z1/checkpoint-2 %s/r1/ && cp -r %s/z1/checkpoint-2 %s/r0/",
             dir, dir, dir, dir, dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    args_for(args, sizeof args, dir, "r1", "--per_device_train_batch_size 2 --max_steps 6 --zero 1");
    ck_assert_msg(run(dir, "r1", 2, args) == 0, "%s", log_of(dir, "r1"));
    ck_assert(log_has(dir, "r1", "resuming from"));
    ck_assert(same_file(dir, "z1/model.safetensors", "r1/model.safetensors"));
    args_for(args, sizeof args, dir, "r0", "--per_device_train_batch_size 2 --gradient_accumulation_steps 2 --max_steps 6");
    ck_assert_msg(run(dir, "r0", 1, args) == 0, "%s", log_of(dir, "r0"));
    ck_assert(log_has(dir, "r0", "was saved by 2 rank(s), this run has 1"));
    // here the data order is the same (accumulation 2 keeps the global batch and the sampler's megabatches)
    ck_assert_msg(same_file(dir, "z1/model.safetensors", "r0/model.safetensors"), "resumed on 1 rank: another model");
    remove_tree(dir);
}
END_TEST

// A record only one rank reads is bad: every rank stops at that step, the failing one
// naming the file and the record, the others naming the rank; nothing is saved after it.
START_TEST(a_rank_with_bad_data_stops_every_rank) {
    char dir[] = "/tmp/vlm-dist-XXXXXX", args[4096], path[600];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_run_inputs(dir, NULL);
    // every image record's file exists but one
    snprintf(path, sizeof path, "%s/data.json", dir);
    char *text;
    size_t n;
    ck_assert_int_eq(file_read_all(path, 1 << 20, &text, &n), VLM_OK);
    char *at = strstr(text, "\"image\": \"sausage.jpg\"");
    ck_assert_ptr_nonnull(at);
    memcpy(at, "\"image\": \"missing.jpg\"", 22);
    write_text_file(path, text);
    free(text);
    args_for(args, sizeof args, dir, "bad", "--per_device_train_batch_size 2 --save_steps 1");
    int rc = run(dir, "bad", 2, args);
    const char *log = log_of(dir, "bad");
    ck_assert_msg(rc != 0 && rc != 124, "exit %d (124: it hung)\n%s", rc, log);
    ck_assert_msg(strstr(log, "missing.jpg") && strstr(log, "of 2: "), "%s", log);
    ck_assert_msg(strstr(log, "failed (see its message)"), "the other rank does not say who failed:\n%s", log);
    snprintf(path, sizeof path, "%s/bad/model.safetensors", dir);
    ck_assert(!file_exists(path));
    remove_tree(dir);
}
END_TEST

// A rank killed (SIGKILL) mid-run stops every rank within seconds; every checkpoint on disk
// is complete and the run resumes from the newest. A rank that hangs (SIGSTOP) is noticed by
// the others' collective timeout (--ddp_timeout), which stops every rank.
START_TEST(a_killed_or_hung_rank_never_hangs_the_run) {
    char dir[] = "/tmp/vlm-dist-XXXXXX", args[4096], cmd[12288], path[600];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_run_inputs(dir, NULL);
    const char *signals[] = {"KILL", "STOP"};
    for (int i = 0; i < 2; i++) {
        char name[16];
        snprintf(name, sizeof name, "sig%s", signals[i]);
        args_for(args, sizeof args, dir, name, "--per_device_train_batch_size 2 --save_steps 1 --save_total_limit 2 --num_train_epochs 20 --max_steps 60 --ddp_timeout 4");
        // rank 1 is the process whose environment says so
        snprintf(cmd, sizeof cmd,
                 "cd %s && (timeout 120 " MPIRUN "%s -q %s > %s.log 2>&1; echo $? > %s.rc) & "
                 "i=0; while [ ! -d %s/%s/checkpoint-2 ] && [ $i -lt 1500 ]; do sleep 0.02; i=$((i+1)); done; "
                 "for p in $(pgrep -f 'output_dir %s/%s '); do "
                 "  if tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1; then kill -%s $p; fi; "
                 "done; wait; exit 0",
                 dir, VLM_BINARY, args, name, name, dir, name, dir, name, signals[i]);
        double t0 = (double)time(NULL);
        ck_assert_int_eq(system(cmd), 0);
        double took = (double)time(NULL) - t0;
        int rc = exit_code_of(dir, name);
        const char *log = log_of(dir, name);
        ck_assert_msg(rc != 0 && rc != 124, "SIG%s: exit %d (124: it hung)\n%s", signals[i], rc, log);
        ck_assert_msg(took < 60, "SIG%s: the run took %.0f s to stop", signals[i], took);
        if (i == 1) ck_assert_msg(strstr(log, "waited more than 4 s"), "no timeout message:\n%s", log);
        snprintf(path, sizeof path, "%s/%s/model.safetensors", dir, name);
        ck_assert_msg(!file_exists(path), "the run finished before the signal: the test proves nothing");
        // the checkpoints that exist are whole
        snprintf(cmd, sizeof cmd,
                 "cd %s/%s && for c in checkpoint-*; do [ -f $c/trainer_state.json ] && [ -f $c/model.safetensors ] && "
                 "[ -f $c/optimizer.safetensors ] || exit 1; done",
                 dir, name);
        ck_assert_msg(system(cmd) == 0, "a partial checkpoint is in place in %s/%s", dir, name);
    }
    // the killed run resumes from its newest checkpoint and finishes
    args_for(args, sizeof args, dir, "sigKILL",
             "--per_device_train_batch_size 2 --save_steps 1 --save_total_limit 2 --num_train_epochs 20 --max_steps 60 --ddp_timeout 4");
    ck_assert_msg(run(dir, "resumed", 2, args) == 0, "%s", log_of(dir, "resumed"));
    ck_assert(log_has(dir, "resumed", "resuming from"));
    snprintf(path, sizeof path, "%s/sigKILL/model.safetensors", dir);
    ck_assert(file_exists(path));
    remove_tree(dir);
}
END_TEST

// A second run into an output_dir that a live run holds stops at once, naming the holder.
START_TEST(a_busy_output_dir_is_refused) {
    char dir[] = "/tmp/vlm-dist-XXXXXX", args[4096], cmd[12288];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_run_inputs(dir, NULL);
    args_for(args, sizeof args, dir, "busy", "--per_device_train_batch_size 2 --num_train_epochs 20 --save_strategy no");
    snprintf(cmd, sizeof cmd,
             "%s -q --threads 1 %s > %s/first.log 2>&1 & pid=$!; i=0; while [ ! -s %s/busy/metrics.jsonl ] && [ $i -lt 1500 ]; "
             "do sleep 0.02; i=$((i+1)); done; %s -q --threads 1 %s > %s/second.log 2>&1; echo $? > %s/second.rc; "
             "kill -9 $pid; wait $pid 2>/dev/null; exit 0",
             VLM_BINARY, args, dir, dir, VLM_BINARY, args, dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    const char *log = log_of(dir, "second");
    ck_assert_msg(strstr(log, "another run is using this output_dir (process "), "%s", log);
    ck_assert_int_eq(exit_code_of(dir, "second"), 2);
    remove_tree(dir);
}
END_TEST


// ---------------------------------------------------------------- against HF Trainer on 2 processes

// `mpirun -np 2 vlm_tests --dist-worker OUT.json`: each rank replays transformers 4.37.2's Trainer
// under torchrun (tools/make_dist_trainer_fixtures.py: the tiny LLaVA, 10 samples in order,
// 2 per device, accumulation 2, micro_mean) with this rank's micro-batches as vlm's loader
// shards them (sampler_shard_batch), the step's collectives over MPI; rank 0 writes per step
// the samples of each micro-batch, loss, lr, gradient norm, and per trained tensor its
// distance to Trainer's after 5 steps (relative to the norm and to the update).
int dist_trainer_worker(const char *out_path) {
    if (dist_init() != VLM_OK) return fprintf(stderr, "%s\n", vlm_last_error()), 1;
    int rank = dist_rank(), world = dist_world();
    SafetensorsFile ref;
    LlavaParams params;
    if (safetensors_open(&ref, fixture("trainer/dist_reference.safetensors")) != VLM_OK ||
        llava_load_hf(&params, fixture("model/tiny_gqa")) != VLM_OK)
        return fprintf(stderr, "%s\n", vlm_last_error()), 1;
    LlavaModel m;
    if (llava_model_init(&m, &params, &(LlavaPlan){2, 2, 16, 48, false, false}) != VLM_OK) return 1;
    m.trainable[MODULE_VISION] = false;  // as the fixture's IFT-like run
    static char line[] = "--output_dir o --per_device_train_batch_size 2 --gradient_accumulation_steps 2 --learning_rate 1e-3 "
                         "--weight_decay 0.1 --warmup_ratio 0.2 --lr_scheduler_type cosine --max_steps 5 --max_grad_norm 1.0 "
                         "--loss_reduction micro_mean";
    char *argv[64];
    int argc = 0;
    for (char *t = strtok(line, " "); t && argc < 64; t = strtok(NULL, " ")) argv[argc++] = t;
    TrainArgs a;
    TrainPlan plan;
    Optimizer o;
    OptimizerConfig oc;
    if (train_args_parse(&a, argc, argv) != VLM_OK) return fprintf(stderr, "%s\n", vlm_last_error()), 1;
    oc = optimizer_config_from_args(&a);
    long per_rank = (long)sampler_shard_batches(10, 2, world);
    if (train_plan(&plan, per_rank, 2, a.num_train_epochs, a.max_steps) != VLM_OK || optimizer_init(&o, &m, &oc) != VLM_OK)
        return fprintf(stderr, "%s\n", vlm_last_error()), 1;
    float *initial = malloc(sizeof(float) * m.params.numel);
    memcpy(initial, m.params.data, sizeof(float) * m.params.numel);
    Schedule sched = schedule_from_args(&a, plan.n_steps);
    StepConfig sc = {LOSS_MICRO_MEAN, 2, 0};
    Collated *c = malloc(sizeof(Collated) * 2);
    json_t *steps = json_array();
    for (long k = 0; k < plan.n_steps; k++) {
        MicroBatch mb[2];
        json_t *micro = json_array();
        for (int i = 0; i < plan.count[k]; i++) {
            long g = plan.first[k] + i;
            uint64_t pos[2];
            int n = sampler_shard_batch(10, 2, world, rank, (uint64_t)train_plan_batch(&plan, g), pos);
            int samples[2] = {(int)pos[0], (int)pos[1]};  // SequentialSampler: the order is the index
            if (collate_samples(&ref, samples, n, &c[i]) != 0) return fprintf(stderr, "samples %d %d\n", samples[0], samples[1]), 1;
            mb[i] = c[i].mb;
            json_array_append_new(micro, json_pack("[i, i]", samples[0], samples[1]));
        }
        StepResult r;
        if (train_step(&m, &o, &sc, mb, plan.count[k], schedule_lambda(&sched, k), &r) != VLM_OK)
            return fprintf(stderr, "%s\n", vlm_last_error()), 1;
        json_array_append_new(steps, json_pack("{s:f, s:f, s:f, s:o}", "loss", r.loss, "lr", r.lr, "grad_norm", r.grad_norm,
                                               "micro_batches", micro));
    }
    json_t *params_diff = json_object();
    for (int i = 0; i < m.params.n_specs; i++) {
        const ParamSpec *s = &m.params.specs[i];
        char key[200];
        snprintf(key, sizeof key, "step5.%s", s->name);
        int t = safetensors_find(&ref, key);
        if (t < 0) continue;
        const float *want = safetensors_tensor_data(&ref, t), *ours = m.params.data + s->offset, *start = initial + s->offset;
        double diff = 0, norm = 0, update = 0;
        for (size_t j = 0; j < s->numel; j++) {
            diff += ((double)ours[j] - want[j]) * ((double)ours[j] - want[j]);
            norm += (double)want[j] * want[j];
            update += ((double)want[j] - start[j]) * ((double)want[j] - start[j]);
        }
        json_object_set_new(params_diff, s->name, json_pack("[f, f]", sqrt(diff / norm), sqrt(diff / update)));
    }
    // every rank's micro-batches, rank-major, for the comparison with Trainer's
    char *mine = json_dumps(steps, JSON_COMPACT);
    int rc = VLM_OK;
    for (int r = 0; r < world && rc == VLM_OK; r++) {
        char path[600];
        snprintf(path, sizeof path, "%s.rank%d", out_path, r);
        if (r == rank) rc = atomic_write_text(path, mine);
    }
    if (rc == VLM_OK && rank == 0) {
        json_t *j = json_pack("{s:o, s:o}", "steps", steps, "parameters", params_diff);
        char *text = json_dumps(j, JSON_INDENT(1));
        rc = atomic_write_text(out_path, text);
        free(text);
        json_decref(j);
    } else {
        json_decref(steps), json_decref(params_diff);
    }
    free(mine), free(c), free(initial);
    optimizer_free(&o), train_plan_free(&plan), llava_model_free(&m), safetensors_close(&ref);
    dist_finalize();
    return rc == VLM_OK ? 0 : 1;
}

START_TEST(two_ranks_like_hf_trainer) {
    char dir[] = "/tmp/vlm-dist-XXXXXX", cmd[2048], path[600];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(cmd, sizeof cmd, "timeout 300 " MPIRUN "%s --dist-worker %s/out.json > %s/worker.log 2>&1", VLM_TEST_BINARY,
             dir, dir);
    ck_assert_msg(system(cmd) == 0, "%s", log_of(dir, "worker"));
    json_t *e = fixture_json("trainer/dist_expected.json");
    snprintf(path, sizeof path, "%s/out.json", dir);
    json_t *got = json_load_file(path, 0, NULL);
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_nonnull(got);
    json_t *want = json_object_get(e, "steps"), *ours = json_object_get(got, "steps");
    ck_assert_int_eq(json_array_size(want), 5);
    ck_assert_int_eq(json_array_size(ours), 5);
    for (size_t k = 0; k < 5; k++) {
        json_t *w = json_array_get(want, k), *o = json_array_get(ours, k);
        double loss = json_number_value(json_object_get(w, "loss")), norm = json_number_value(json_object_get(w, "grad_norm"));
        double lr = json_number_value(json_object_get(w, "lr"));
        double our_loss = json_number_value(json_object_get(o, "loss")), our_norm = json_number_value(json_object_get(o, "grad_norm"));
        if (getenv("VLM_TEST_VERBOSE"))
            fprintf(stderr, "step %zu loss %.9g (%.3g) norm %.9g (%.3g)\n", k + 1, our_loss, fabs(our_loss - loss) / loss,
                    our_norm, fabs(our_norm - norm) / norm);
        // Trainer keeps tr_loss in float32: 1e-5 as the one-process fixture
        ck_assert_msg(fabs(our_loss - loss) <= 1e-5 * loss, "step %zu: loss %.9g, Trainer %.9g", k + 1, our_loss, loss);
        ck_assert_msg(fabs(json_number_value(json_object_get(o, "lr")) - lr) <= 1e-12, "step %zu: lr", k + 1);
        ck_assert_msg(fabs(our_norm - norm) <= 1e-5 * norm, "step %zu: grad norm %.9g, Trainer %.9g", k + 1, our_norm, norm);
        // rank 0's micro-batches (the others' are in out.json.rankN) are Trainer's rank 0's
        json_t *wm = json_object_get(json_array_get(json_object_get(w, "ranks"), 0), "micro_batches");
        ck_assert(json_equal(wm, json_object_get(o, "micro_batches")));
    }
    snprintf(path, sizeof path, "%s/out.json.rank1", dir);
    json_t *r1 = json_load_file(path, 0, NULL);
    ck_assert_ptr_nonnull(r1);
    for (size_t k = 0; k < 5; k++) {
        json_t *wm = json_object_get(json_array_get(json_object_get(json_array_get(want, k), "ranks"), 1), "micro_batches");
        ck_assert_msg(json_equal(wm, json_object_get(json_array_get(r1, k), "micro_batches")),
                      "step %zu: rank 1's micro-batches differ from Trainer's (accelerate's even_batches wrap)", k + 1);
    }
    const char *name;
    json_t *v;
    int n = 0;
    json_object_foreach(json_object_get(got, "parameters"), name, v) {
        double rel = json_number_value(json_array_get(v, 0)), upd = json_number_value(json_array_get(v, 1));
        ck_assert_msg(rel <= 1e-5 || upd <= 1e-3, "%s after 5 steps differs by %g of its norm, %g of its update", name, rel, upd);
        n++;
    }
    ck_assert_int_eq(n, (int)json_array_size(json_object_get(e, "trained_parameters")));
    json_decref(r1), json_decref(got), json_decref(e);
    remove_tree(dir);
}
END_TEST

// What the launcher's environment says (either build), and a build without MPI that mpirun
// started twice: it refuses instead of training two copies into one output_dir. The
// sanitizer build (make test's first stage) is built without MPI, so both sides are run.
START_TEST(a_launcher_without_mpi_is_refused) {
    setenv("OMPI_COMM_WORLD_SIZE", "3", 1), setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1);
    ck_assert_int_eq(dist_env_world(), 3);
    ck_assert_int_eq(dist_env_local_size(), 2);
    setenv("OMPI_COMM_WORLD_SIZE", "x", 1), unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    setenv("PMI_SIZE", "2", 1);  // MPICH's hydra
    ck_assert_int_eq(dist_env_world(), 2);
    ck_assert_int_eq(dist_env_local_size(), 1);
    if (!dist_built_with_mpi()) {
        ck_assert_int_eq(dist_init(), VLM_ERR_INPUT);
        ck_assert_msg(strstr(vlm_last_error(), "a launcher started 2 processes, but this vlm was built without MPI"), "%s",
                      vlm_last_error());
    }
    unsetenv("PMI_SIZE"), unsetenv("OMPI_COMM_WORLD_SIZE");
    ck_assert_int_eq(dist_env_world(), 1);
    ck_assert_int_eq(dist_init(), VLM_OK);  // no launcher: a world of one, MPI never started
    ck_assert_int_eq(dist_world(), 1);
    ck_assert_int_eq(dist_rank(), 0);
}
END_TEST

Suite *dist_env_suite(void) { return SUITE("dist_env", "launch", 0, a_launcher_without_mpi_is_refused); }

Suite *dist_suite(void) {
    return SUITE("dist", "", 900, two_ranks_as_one_process, two_ranks_like_hf_trainer, a_rank_with_bad_data_stops_every_rank,
                 a_killed_or_hung_rank_never_hangs_the_run, a_busy_output_dir_is_refused);
}
