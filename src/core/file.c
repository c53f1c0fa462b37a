// Memory maps, whole-file reads and atomic writes, see file.h.
#include "core/file.h"

#include <errno.h>     // errno
#include <fcntl.h>     // open
#include <ftw.h>       // nftw (remove_tree)
#include <pthread.h>   // pthread_mutex (the umask)
#include <stdint.h>    // uintptr_t
#include <stdlib.h>    // free, mkstemp
#include <string.h>    // strerror, strlen, strrchr
#include <sys/file.h>  // flock (dir_lock)
#include <sys/mman.h>  // mmap
#include <sys/stat.h>  // fstat
#include <unistd.h>    // close, fsync, sysconf

#include "core/alloc.h"
#include "core/error.h"
#include "core/str.h"

int file_map(const char *path, MappedFile *out) {
    out->data = NULL;
    out->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vlm_fail(VLM_ERR_INPUT, path, NULL, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return vlm_fail(VLM_ERR_FAIL, path, NULL, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return vlm_fail(VLM_ERR_INPUT, path, NULL, "not a regular file");
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return vlm_fail(VLM_ERR_FAIL, path, NULL, "cannot mmap: %s", strerror(e));
        }
        out->data = p;
        out->size = (size_t)st.st_size;
    }
    close(fd);  // the mapping keeps the file alive
    return VLM_OK;
}

void file_unmap(MappedFile *m) {
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

void file_release(const void *p, size_t n) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a = ((uintptr_t)p + page - 1) / page * page,
              b = ((uintptr_t)p + n) / page * page;
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);  // advisory: a failure only keeps the pages
}

int file_read_all(const char *path, size_t max_bytes, char **out, size_t *size) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return vlm_fail(VLM_ERR_INPUT, path, NULL, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int rc = vlm_fail_errno(VLM_ERR_FAIL, path, NULL, "cannot stat");
        fclose(f);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        fclose(f);
        return vlm_fail(VLM_ERR_INPUT, path, NULL, "not a regular file");
    }
    if ((size_t)st.st_size > max_bytes) {
        fclose(f);
        return vlm_fail(VLM_ERR_INPUT, path, NULL, "file is %lld bytes, more than the %zu allowed",
                        (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    char *buf = vlm_malloc(n + 1);
    if (!buf) { fclose(f); return VLM_ERR_FAIL; }
    if (fread(buf, 1, n, f) != n) {
        int failed = ferror(f);
        int rc = failed ? vlm_fail_errno(VLM_ERR_FAIL, path, NULL, "read failed")
                        : vlm_fail(VLM_ERR_FAIL, path, NULL, "the file shrank while being read");
        free(buf);
        fclose(f);
        return rc;
    }
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    if (size) *size = n;
    return VLM_OK;
}

bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = vlm_malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t at = a;
    if (a > 0 && dir[a - 1] != '/') p[at++] = '/';
    memcpy(p + at, name, b + 1);
    return p;
}

char *path_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return vlm_strdup(".");
    if (slash == path) return vlm_strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = vlm_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}


// The process's umask, read without changing it: /proc/self/status has it
// (Linux >= 4.7), read at each call since a program may change its umask.
// Elsewhere umask() is set and restored under a lock (racing only with other
// threads' file creation).
mode_t file_default_mode(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    mode_t mask = 0;
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        if (str_has_prefix(line, "Umask:")) mask = (mode_t)strtol(line + 6, NULL, 8), found = true;
    if (f) fclose(f);
    if (!found) {
        static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        pthread_mutex_lock(&lock);
        mask = umask(022);
        umask(mask);
        pthread_mutex_unlock(&lock);
    }
    return 0666 & ~mask;
}

int make_dirs(const char *path) {
    size_t n = strlen(path);
    char *p = vlm_malloc(n + 1);
    if (!p) return VLM_ERR_FAIL;
    memcpy(p, path, n + 1);
    int rc = VLM_OK;
    // each prefix ending before a '/', then the whole path (as os.makedirs)
    for (size_t i = 1; i <= n && rc == VLM_OK; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) rc = vlm_fail_errno(VLM_ERR_FAIL, p, NULL, "cannot create the folder");
        else if (!dir_exists(p)) rc = vlm_fail(VLM_ERR_FAIL, p, NULL, "cannot create the folder: a file of that name exists");
        p[i] = c;
    }
    free(p);
    return rc;
}

int atomic_open(AtomicFile *af, const char *path) {
    af->fp = NULL;
    af->temp_path = NULL;
    af->final_path = vlm_strdup(path);
    if (!af->final_path) return VLM_ERR_FAIL;
    size_t n = strlen(path);
    af->temp_path = vlm_malloc(n + 16);
    if (!af->temp_path) { free(af->final_path); return VLM_ERR_FAIL; }
    snprintf(af->temp_path, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(af->temp_path);
    if (fd < 0) {
        int e = errno;
        free(af->temp_path);
        free(af->final_path);
        af->temp_path = af->final_path = NULL;
        return vlm_fail(VLM_ERR_FAIL, path, NULL, "cannot create temporary file: %s", strerror(e));
    }
    // mkstemp creates the file 0600; the result gets the mode a plain open()
    // would give it under the user's umask (0644 with umask 022)
    if (fchmod(fd, file_default_mode()) != 0) {
        int rc = vlm_fail_errno(VLM_ERR_FAIL, af->temp_path, NULL, "cannot set the file's mode");
        close(fd);
        atomic_abort(af);
        return rc;
    }
    af->fp = fdopen(fd, "wb");
    if (!af->fp) {
        int rc = vlm_fail_errno(VLM_ERR_FAIL, path, NULL, "fdopen failed");
        close(fd);
        atomic_abort(af);
        return rc;
    }
    return VLM_OK;
}

void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;  // some filesystems refuse; the rename already happened
    fsync(fd);
    close(fd);
}

static int fsync_dir_of(const char *path) {
    char *dir = path_dirname(path);
    if (!dir) return VLM_ERR_FAIL;
    fsync_dir(dir);
    free(dir);
    return VLM_OK;
}

int atomic_commit(AtomicFile *af) {
    const char *why = NULL;
    if (fflush(af->fp) != 0) why = "write failed";
    else if (ferror(af->fp)) why = "write failed";
    else if (fsync(fileno(af->fp)) != 0) why = "fsync failed";
    int e = errno;
    if (fclose(af->fp) != 0 && !why) { why = "close failed"; e = errno; }
    af->fp = NULL;
    if (!why && rename(af->temp_path, af->final_path) != 0) { why = "rename failed"; e = errno; }
    if (why) {
        int rc = vlm_fail(VLM_ERR_FAIL, af->final_path, NULL, "%s: %s", why, strerror(e));
        atomic_abort(af);
        return rc;
    }
    fsync_dir_of(af->final_path);
    free(af->temp_path);
    free(af->final_path);
    af->temp_path = af->final_path = NULL;
    return VLM_OK;
}

void atomic_abort(AtomicFile *af) {
    if (af->fp) fclose(af->fp);
    af->fp = NULL;
    if (af->temp_path) unlink(af->temp_path);
    free(af->temp_path);
    free(af->final_path);
    af->temp_path = af->final_path = NULL;
}

int atomic_write_text(const char *path, const char *text) {
    AtomicFile af;
    int rc = atomic_open(&af, path);
    if (rc != VLM_OK) return rc;
    if (fputs(text, af.fp) < 0 || fputc('\n', af.fp) < 0) {
        int rc2 = vlm_fail_errno(VLM_ERR_FAIL, path, NULL, "write failed");
        atomic_abort(&af);
        return rc2;
    }
    return atomic_commit(&af);
}

int file_copy_atomic(const char *src, const char *dst) {
    MappedFile in;
    int rc = file_map(src, &in);
    if (rc != VLM_OK) return rc;
    AtomicFile af;
    rc = atomic_open(&af, dst);
    if (rc == VLM_OK) {
        if (in.size && fwrite(in.data, 1, in.size, af.fp) != in.size) {
            rc = vlm_fail_errno(VLM_ERR_FAIL, dst, NULL, "write failed");
            atomic_abort(&af);
        } else {
            rc = atomic_commit(&af);
        }
    }
    file_unmap(&in);
    return rc;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return VLM_OK;
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return vlm_fail_errno(VLM_ERR_FAIL, path, NULL, "cannot remove");
    return VLM_OK;
}

int dir_lock(const char *dir, const char *name, int *fd) {
    *fd = -1;
    char *path = path_join(dir, name);
    if (!path) return VLM_ERR_FAIL;
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0) {
        int rc = vlm_fail_errno(VLM_ERR_FAIL, path, NULL, "cannot create the lock file");
        free(path);
        return rc;
    }
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        char holder[32] = "?";
        ssize_t n = pread(f, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        close(f);
        errno = err;
        int rc = err == EWOULDBLOCK
                     ? vlm_fail(VLM_ERR_INPUT, dir, NULL, "another run is using this output_dir (process %s holds %s)",
                                holder, path)
                     : vlm_fail_errno(VLM_ERR_FAIL, path, NULL, "cannot lock");
        free(path);
        return rc;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)len, 0) != len) {
        int rc = vlm_fail_errno(VLM_ERR_FAIL, path, NULL, "cannot write the lock file");
        close(f);
        free(path);
        return rc;
    }
    free(path);
    *fd = f;
    return VLM_OK;
}

void dir_unlock(int fd) {
    if (fd >= 0) close(fd);
}
