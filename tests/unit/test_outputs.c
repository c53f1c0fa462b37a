// What vlm leaves on disk: files with the mode a plain open() gives under the
// user's umask, folders created as os.makedirs does, and write failures that
// say why (strerror) while the checkpoint already on disk stays intact.
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"
#include "model/llava.h"
#include "test_util.h"
#include "train/optimizer.h"
#include "train/train_checkpoint.h"

#define OUT_SIZE (1 << 16)
static char out[OUT_SIZE], err[OUT_SIZE];

// ---- modes

static mode_t g_want_file, g_want_dir;
static int g_checked, g_wrong;
static char g_wrong_path[600];

static int check_mode(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)ftw;
    mode_t want = flag == FTW_D ? g_want_dir : g_want_file, got = st->st_mode & 07777;
    g_checked++;
    if (got != want && !g_wrong++) snprintf(g_wrong_path, sizeof g_wrong_path, "%s is %04o, not %04o", path, got, want);
    return 0;
}

// Every file and folder under root (root itself excluded when skip_root) has the umask's mode.
static void assert_modes(const char *root, mode_t mask) {
    g_want_file = 0666 & ~mask, g_want_dir = 0777 & ~mask;
    g_checked = g_wrong = 0;
    ck_assert_int_eq(nftw(root, check_mode, 16, FTW_PHYS), 0);
    ck_assert_int_gt(g_checked, 2);
    ck_assert_msg(g_wrong == 0, "%d wrong modes, e.g. %s", g_wrong, g_wrong_path);
}

static void open_tiny(LlavaModel *m, Optimizer *o) {
    LlavaParams p;
    ck_assert_msg(llava_load_hf(&p, fixture("model/tiny_gqa")) == VLM_OK, "%s", vlm_last_error());
    ck_assert_int_eq(llava_model_init(m, &p, &(LlavaPlan){1, 1, 8, 8 + llava_image_tokens(&p.cfg), false, false}), VLM_OK);
    OptimizerConfig oc = {.lr = 1e-3, .projector_lr = -1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .max_grad_norm = 1};
    ck_assert_int_eq(optimizer_init(o, m, &oc), VLM_OK);
}

// Checkpoints, the saved model and atomic writes get 0666 / 0777 under the
// umask (they were 0600: mkstemp's mode kept through the rename), with the
// umasks of a personal machine (022) and of a group-shared cluster (002).
START_TEST(outputs_get_the_umask_mode) {
    static const mode_t masks[] = {022, 002, 077};
    LlavaModel m;
    Optimizer o;
    open_tiny(&m, &o);
    for (int k = 0; k < 3; k++) {
        mode_t old = umask(masks[k]);
        char dir[] = "/tmp/vlm-modes-XXXXXX", path[700], ck[700];
        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(chmod(dir, 0777 & ~masks[k]), 0);  // mkdtemp's own 0700
        // a nested output folder that does not exist yet (HF Trainer makes it with os.makedirs)
        snprintf(path, sizeof path, "%s/checkpoints/llava-pt", dir);
        TrainState st = {.step = 3, .total_steps = 9, .seed = 1};
        ck_assert_msg(train_checkpoint_save(path, &m, &o, &st, NULL, NULL, ck, sizeof ck) == VLM_OK, "%s", vlm_last_error());
        snprintf(path, sizeof path, "%s/checkpoints/final", dir);
        ck_assert_msg(llava_save_hf(&m.params, path) == VLM_OK, "%s", vlm_last_error());
        snprintf(path, sizeof path, "%s/note.txt", dir);
        ck_assert_int_eq(atomic_write_text(path, "hello"), VLM_OK);
        ck_assert_int_eq(file_default_mode(), 0666 & ~masks[k]);
        umask(old);
        assert_modes(dir, masks[k]);
        remove_tree(dir);
    }
    optimizer_free(&o);
    llava_model_free(&m);
}
END_TEST

// The same through the CLI: `vlm init` into a folder two levels deep.
START_TEST(cli_outputs_get_the_umask_mode) {
    char dir[] = "/tmp/vlm-modes-XXXXXX", args[2048];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(chmod(dir, 0755), 0);
    mode_t old = umask(022);
    snprintf(args, sizeof args, "init --config %s %s/a/b", fixture("model/tiny_gqa/config.json"), dir);
    int rc = run_vlm(args, out, OUT_SIZE, err, OUT_SIZE);
    umask(old);
    ck_assert_msg(rc == 0, "%s", err);
    assert_modes(dir, 022);
    remove_tree(dir);
}
END_TEST

// ---- write failures

// The checkpoint's sizes on disk: the folder's files added up.
static long long g_bytes;
static int add_size(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)path, (void)ftw;
    if (flag == FTW_F) g_bytes += st->st_size;
    return 0;
}

static long long tree_bytes(const char *dir) {
    g_bytes = 0;
    ck_assert_int_eq(nftw(dir, add_size, 16, FTW_PHYS), 0);
    return g_bytes;
}

// Saves checkpoint-1 (must succeed), then checkpoint-2 (must fail: the disk
// is full or the file limit is reached) and checks the message carries the
// system's reason, the failed save left nothing behind and checkpoint-1 is
// byte-identical to what was saved. Runs in the calling process.
static void second_save_fails(const char *dir, LlavaModel *m, Optimizer *o, const char *reason, void (*arm)(void)) {
    char ck[700], copy[800], cmd[2000];
    TrainState st = {.step = 1, .total_steps = 9, .seed = 1};
    ck_assert_msg(train_checkpoint_save(dir, m, o, &st, NULL, NULL, ck, sizeof ck) == VLM_OK, "%s", vlm_last_error());
    snprintf(copy, sizeof copy, "%s.copy", ck);
    snprintf(cmd, sizeof cmd, "cp -r '%s' /tmp/vlm-ck-before-%d", ck, (int)getpid());
    ck_assert_int_eq(system(cmd), 0);
    if (arm) arm();
    st.step = 2;
    for (size_t i = 0; i < o->adam.n; i++) o->adam.m[i] += 1.0f;  // a different state, so a mix would show
    int rc = train_checkpoint_save(dir, m, o, &st, NULL, NULL, ck, sizeof ck);
    ck_assert_int_eq(rc, VLM_ERR_FAIL);
    ck_assert_msg(strstr(vlm_last_error(), reason), "the reason is missing: %s", vlm_last_error());
    ck_assert_msg(strstr(vlm_last_error(), ".safetensors") || strstr(vlm_last_error(), ".json"),
                  "the file is not named: %s", vlm_last_error());
    char two[700], tmp[700];
    snprintf(two, sizeof two, "%s/checkpoint-2", dir);
    snprintf(tmp, sizeof tmp, "%s/.checkpoint-2.tmp", dir);
    ck_assert_msg(!dir_exists(two) && !dir_exists(tmp), "the failed save left a folder behind");
    ck_assert_int_eq(count_dir_entries(dir), 1);
    snprintf(cmd, sizeof cmd, "diff -r '%s/checkpoint-1' /tmp/vlm-ck-before-%d >&2 && rm -rf /tmp/vlm-ck-before-%d", dir,
             (int)getpid(), (int)getpid());
    ck_assert_msg(system(cmd) == 0, "checkpoint-1 changed");
}

static void limit_file_size(void) {
    // writes past the limit fail with EFBIG (SIGXFSZ ignored, as a shell's `ulimit -f` + trap)
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit r = {.rlim_cur = 64 * 1024, .rlim_max = RLIM_INFINITY};
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &r), 0);
}

// An injected write failure (the kernel's file-size limit) in the middle of a
// checkpoint: the error says "File too large" and names the file; nothing is lost.
START_TEST(checkpoint_write_failure_says_why) {
    LlavaModel m;
    Optimizer o;
    open_tiny(&m, &o);
    char dir[] = "/tmp/vlm-full-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    // check runs each test in its own process, so the limit ends with the test
    second_save_fails(dir, &m, &o, "File too large", limit_file_size);
    struct rlimit r = {.rlim_cur = RLIM_INFINITY, .rlim_max = RLIM_INFINITY};
    setrlimit(RLIMIT_FSIZE, &r);
    remove_tree(dir);
    optimizer_free(&o);
    llava_model_free(&m);
}
END_TEST

// A real full disk: a small tmpfs in a private mount namespace, sized to hold
// one checkpoint and a half. Needs CAP_SYS_ADMIN (root, as CI runs); without it
// the case says so and checks only that the namespace was refused.
START_TEST(checkpoint_on_full_disk_says_why) {
    LlavaModel m;
    Optimizer o;
    open_tiny(&m, &o);
    // one checkpoint's size, measured
    char probe[] = "/tmp/vlm-probe-XXXXXX", ck[700];
    ck_assert_ptr_nonnull(mkdtemp(probe));
    TrainState st = {.step = 1, .total_steps = 9, .seed = 1};
    ck_assert_int_eq(train_checkpoint_save(probe, &m, &o, &st, NULL, NULL, ck, sizeof ck), VLM_OK);
    long long one = tree_bytes(ck);
    remove_tree(probe);
    if (unshare(CLONE_NEWNS) != 0) {
        ck_assert_int_eq(errno, EPERM);
        fprintf(stderr, "checkpoint_on_full_disk_says_why: no mount namespace (%s); the file-size case covers it\n",
                strerror(errno));
    } else {
        ck_assert_int_eq(mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
        char dir[] = "/tmp/vlm-full-XXXXXX", opts[64];
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(opts, sizeof opts, "size=%lldk", (one * 3 / 2 + 8192) / 1024);
        ck_assert_msg(mount("tmpfs", dir, "tmpfs", 0, opts) == 0, "mount: %s", strerror(errno));
        second_save_fails(dir, &m, &o, "No space left on device", NULL);
        umount(dir);
        rmdir(dir);
    }
    optimizer_free(&o);
    llava_model_free(&m);
}
END_TEST

// Output that cannot be written to stdout fails the command, saying why.
START_TEST(stdout_write_failure_fails_the_command) {
    char cmd[2048], err_path[] = "/tmp/vlm-err-XXXXXX";
    close(mkstemp(err_path));
    snprintf(cmd, sizeof cmd, "echo '\"hello world\"' | %s tokenize --tokenizer %s/../shared/assets/tokenizers/llama2/tokenizer.model "
             ">/dev/full 2>%s", VLM_BINARY, VLM_SOURCE_DIR, err_path);
    int status = system(cmd);
    char *text;
    ck_assert_int_eq(file_read_all(err_path, 1 << 16, &text, NULL), VLM_OK);
    unlink(err_path);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d: %s", status, text);
    ck_assert_msg(strstr(text, "stdout: write failed: No space left on device"), "%s", text);
    free(text);
}
END_TEST

Suite *outputs_suite(void) {
    return SUITE("outputs", "", 120, outputs_get_the_umask_mode, cli_outputs_get_the_umask_mode,
                 checkpoint_write_failure_says_why, checkpoint_on_full_disk_says_why,
                 stdout_write_failure_fails_the_command);
}
