// The world of mpirun's processes, see dist.h.
#ifdef VLM_HAVE_MPI
#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "dist/dist.h"

static bool g_mpi;  // MPI_Init ran (a launcher started more than one process)
static int g_rank, g_world = 1, g_thread_level;
static double g_timeout = 1800.0;  // HF's ddp_timeout default

// ---- the watchdog: a collective that waits longer than the timeout stops the world

static atomic_llong g_deadline_ms;        // 0: no collective in progress
static const char *_Atomic g_what;        // the collective in progress
static atomic_bool g_stop;
static pthread_t g_watchdog;
static bool g_watchdog_started;

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void *watchdog(void *arg) {
    (void)arg;
    while (!atomic_load(&g_stop)) {
        usleep(100 * 1000);
        long long d = atomic_load(&g_deadline_ms);
        if (d == 0 || now_ms() < d) continue;
        fprintf(stderr, "vlm: error: rank %d of %d: %s waited more than %g s for the other ranks (one of them died, "
                        "hangs or is much slower: --ddp_timeout sets the limit); stopping every rank\n",
                g_rank, g_world, atomic_load(&g_what), g_timeout);
        fflush(stderr);
        if (g_thread_level >= MPI_THREAD_MULTIPLE) MPI_Abort(MPI_COMM_WORLD, 1);
        _exit(1);  // mpirun stops the others when a rank exits without MPI_Finalize
    }
    return NULL;
}

static void begin(const char *what) {
    atomic_store(&g_what, what);
    atomic_store(&g_deadline_ms, now_ms() + (long long)(g_timeout * 1000.0));
}

static void end(void) { atomic_store(&g_deadline_ms, 0); }

static int mpi_fail(int err, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(err, msg, &len);
    return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "rank %d of %d: %s failed: %.*s", g_rank, g_world, what, len, msg);
}

#define CALL(what, expr)                           \
    do {                                           \
        begin(what);                               \
        int err_ = (expr);                         \
        end();                                     \
        if (err_ != MPI_SUCCESS) return mpi_fail(err_, what); \
    } while (0)

// ---- the world

bool dist_built_with_mpi(void) { return true; }

int dist_init(void) {
    if (g_mpi || dist_env_world() <= 1) return VLM_OK;  // no launcher: a world of one, MPI never started
    int err = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &g_thread_level);
    if (err != MPI_SUCCESS) return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "MPI_Init_thread failed (code %d)", err);
    g_mpi = true;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);  // errors come back as messages
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_world);
    g_watchdog_started = pthread_create(&g_watchdog, NULL, watchdog, NULL) == 0;
    if (!g_watchdog_started) return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "cannot start the collectives' watchdog thread");
    return VLM_OK;
}

void dist_finalize(void) {
    if (!g_mpi) return;
    atomic_store(&g_stop, true);
    if (g_watchdog_started) pthread_join(g_watchdog, NULL);
    MPI_Finalize();
    g_mpi = false;
}

int dist_rank(void) { return g_rank; }
int dist_world(void) { return g_world; }
void dist_set_timeout(double seconds) { g_timeout = seconds > 0 ? seconds : 1800.0; }

// ---- collectives

int dist_agree(int rc, int *failed) {
    if (failed) *failed = rc == VLM_OK ? -1 : g_rank;
    if (!g_mpi) return rc;
    int *all = malloc(sizeof(int) * (size_t)g_world);
    if (!all) return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "rank %d: out of memory", g_rank);
    begin("agreeing on every rank's status");
    int err = MPI_Allgather(&rc, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD);
    end();
    int out = rc;
    if (err != MPI_SUCCESS) {
        out = mpi_fail(err, "agreeing on every rank's status");
    } else {
        for (int r = 0; r < g_world; r++)
            if (all[r] != VLM_OK) {
                if (failed) *failed = r;
                // the failing rank keeps its own message; the others say whose it is
                out = rc != VLM_OK ? rc : vlm_fail(all[r], NULL, NULL, "rank %d of %d failed (see its message)", r, g_world);
                break;
            }
    }
    free(all);
    return out;
}

int dist_sum_long(long *x, int n) {
    if (g_mpi) CALL("a sum of counts", MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_LONG, MPI_SUM, MPI_COMM_WORLD));
    return VLM_OK;
}

int dist_allgather_f64(const double *mine, int n, double *all) {
    if (!g_mpi) {
        memcpy(all, mine, sizeof(double) * (size_t)n);
        return VLM_OK;
    }
    CALL("gathering values", MPI_Allgather(mine, n, MPI_DOUBLE, all, n, MPI_DOUBLE, MPI_COMM_WORLD));
    return VLM_OK;
}

enum { CHUNK = 1 << 20 };  // floats per piece: the counts stay ints, the staging stays small

int dist_sum_f64_disjoint(double *x, size_t n) {
    for (size_t at = 0; g_mpi && at < n; at += CHUNK) {
        int len = (int)(n - at < CHUNK ? n - at : CHUNK);
        CALL("a sum of partial norms", MPI_Allreduce(MPI_IN_PLACE, x + at, len, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    }
    return VLM_OK;
}

// Copies the packed floats [at, at + len) of v out to buf (out) or in from it.
static void view_copy(const DistView *v, size_t at, size_t len, float *buf, bool out) {
    size_t start = 0;
    for (int i = 0; i < v->n_ranges && len > 0; i++) {
        size_t cnt = v->ranges[2 * i + 1];
        if (at >= start + cnt) {
            start += cnt;
            continue;
        }
        size_t skip = at - start, take = cnt - skip < len ? cnt - skip : len;
        float *p = v->base + v->ranges[2 * i] + skip;
        if (out) memcpy(buf, p, take * sizeof(float));
        else memcpy(p, buf, take * sizeof(float));
        buf += take, at += take, len -= take;
        start += cnt;
    }
}

// The packed floats [at, at + len) of v as one pointer when they lie in one range, else NULL.
static float *view_piece(const DistView *v, size_t at, size_t len) {
    size_t start = 0;
    for (int i = 0; i < v->n_ranges; i++) {
        size_t cnt = v->ranges[2 * i + 1];
        if (at < start + cnt) return at + len <= start + cnt ? v->base + v->ranges[2 * i] + (at - start) : NULL;
        start += cnt;
    }
    return NULL;
}

int dist_reduce_scatter(const DistView *v, const size_t *bounds) {
    if (!g_mpi) return VLM_OK;
    size_t most = 0;
    for (int r = 0; r < g_world; r++)
        if (bounds[r + 1] - bounds[r] > most) most = bounds[r + 1] - bounds[r];
    float *send = malloc(sizeof(float) * CHUNK), *recv = malloc(sizeof(float) * CHUNK * (size_t)g_world);
    int rc = send && recv ? VLM_OK : vlm_fail(VLM_ERR_FAIL, NULL, NULL, "rank %d: out of memory for the reduction", g_rank);
    // piece by piece of each owner's slice: the owner gathers every rank's copy and sums them in rank order
    for (size_t at = 0; rc == VLM_OK && at < most; at += CHUNK) {
        for (int owner = 0; owner < g_world && rc == VLM_OK; owner++) {
            size_t lo = bounds[owner] + at, hi = bounds[owner + 1];
            if (lo >= hi) continue;
            int len = (int)(hi - lo < CHUNK ? hi - lo : CHUNK);
            float *piece = view_piece(v, lo, (size_t)len);  // no staging copy when the piece is one tensor's
            if (!piece) view_copy(v, lo, (size_t)len, piece = send, true);
            begin("the gradients' reduce-scatter");
            int err = MPI_Gather(piece, len, MPI_FLOAT, recv, len, MPI_FLOAT, owner, MPI_COMM_WORLD);
            end();
            if (err != MPI_SUCCESS) {
                rc = mpi_fail(err, "the gradients' reduce-scatter");
                break;
            }
            if (owner != g_rank) continue;
            for (int r = 1; r < g_world; r++) {
                const float *x = recv + (size_t)r * (size_t)len;
                for (int i = 0; i < len; i++) recv[i] += x[i];
            }
            view_copy(v, lo, (size_t)len, recv, false);
        }
    }
    free(send), free(recv);
    return rc;
}

int dist_allgather(const DistView *v, const size_t *bounds) {
    if (!g_mpi) return VLM_OK;
    float *buf = malloc(sizeof(float) * CHUNK);
    if (!buf) return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "rank %d: out of memory for the allgather", g_rank);
    int rc = VLM_OK;
    for (int owner = 0; owner < g_world && rc == VLM_OK; owner++)
        for (size_t lo = bounds[owner]; lo < bounds[owner + 1] && rc == VLM_OK; lo += CHUNK) {
            int len = (int)(bounds[owner + 1] - lo < CHUNK ? bounds[owner + 1] - lo : CHUNK);
            float *piece = view_piece(v, lo, (size_t)len);  // sent and received in place when it is one tensor's
            if (!piece && owner == g_rank) view_copy(v, lo, (size_t)len, buf, true);
            begin("the allgather");
            int err = MPI_Bcast(piece ? piece : buf, len, MPI_FLOAT, owner, MPI_COMM_WORLD);
            end();
            if (err != MPI_SUCCESS) rc = mpi_fail(err, "the allgather");
            else if (!piece && owner != g_rank) view_copy(v, lo, (size_t)len, buf, false);
        }
    free(buf);
    return rc;
}

int dist_broadcast(void *buf, size_t n, int root) {
    for (size_t at = 0; g_mpi && at < n; at += (size_t)CHUNK * 4) {
        int len = (int)(n - at < (size_t)CHUNK * 4 ? n - at : (size_t)CHUNK * 4);
        CALL("a broadcast", MPI_Bcast((char *)buf + at, len, MPI_BYTE, root, MPI_COMM_WORLD));
    }
    return VLM_OK;
}

_Noreturn void dist_abort(const char *why) {
    fprintf(stderr, "vlm: error: rank %d of %d: %s; stopping every rank\n", g_rank, g_world, why);
    fflush(stderr);
    if (g_mpi) MPI_Abort(MPI_COMM_WORLD, 1);
    _exit(1);
}

int dist_barrier(void) {
    if (g_mpi) CALL("waiting for every rank", MPI_Barrier(MPI_COMM_WORLD));
    return VLM_OK;
}
#endif
