// Files: read-only memory maps, whole-file reads, and atomic writes.
//
// Atomic write: data goes to a temporary file in the destination's folder,
// is fsync'ed, then renamed over the destination, and the folder is fsync'ed.
// A crash at any point leaves either the old file or the new one, never a mix.
#ifndef VLM_CORE_FILE_H
#define VLM_CORE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>  // mode_t

typedef struct {
    const unsigned char *data;  // NULL for an empty file
    size_t size;
} MappedFile;

int file_map(const char *path, MappedFile *out);  // VLM_OK or error
void file_unmap(MappedFile *m);
// Drops the resident pages wholly inside [p, p + n) of a read-only mapping (file_map's):
// they stop counting in the process's memory and are read from the file again if touched.
// For a loader that has converted a tensor out of the mapping (a 16-bit checkpoint read
// into float32 would otherwise hold both until the file is closed).
void file_release(const void *p, size_t n);

// Reads a whole file into a NUL-terminated buffer (refuses files over max_bytes).
int file_read_all(const char *path, size_t max_bytes, char **out, size_t *size);

bool file_exists(const char *path);
// The mode open(path, O_CREAT, 0666) gives a new file under the process's
// umask (0644 with umask 022): what every file vlm writes gets.
mode_t file_default_mode(void);
// mkdir -p with mode 0777 under the umask (as Python's os.makedirs): every
// missing folder of path is created; an existing folder is fine.
int make_dirs(const char *path);
bool dir_exists(const char *path);
// "DIR/NAME" into a fresh string (NULL on out-of-memory).
char *path_join(const char *dir, const char *name);
// The folder part of a path ("." when there is none), fresh string.
char *path_dirname(const char *path);

typedef struct {
    char *final_path;
    char *temp_path;
    FILE *fp;
} AtomicFile;

// Opens the temporary file; the committed file gets file_default_mode().
int atomic_open(AtomicFile *af, const char *path);
// fsync + rename + fsync(dir). On failure the temporary file is removed.
int atomic_commit(AtomicFile *af);
// Removes the temporary file; the destination is untouched.
void atomic_abort(AtomicFile *af);

// Writes text (plus a newline) to path atomically.
int atomic_write_text(const char *path, const char *text);
// Copies src to dst atomically.
int file_copy_atomic(const char *src, const char *dst);
// fsync's a folder (its entries: renames and creations inside it).
void fsync_dir(const char *dir);
// rm -rf: removes a file or a folder with everything in it (absent: OK).
int remove_tree(const char *path);

// Holds DIR/NAME locked (flock, exclusive) for as long as the process lives
// or until dir_unlock: a second holder fails at once, naming the process that
// holds it (its pid is in the file). The kernel drops the lock of a process
// that dies, so no stale lock survives a crash. *fd receives the lock's fd.
int dir_lock(const char *dir, const char *name, int *fd);
void dir_unlock(int fd);

#endif
