// The vlm binary: everything lives in the library; this is only main().
#include "cli/cli.h"
#include "core/threads.h"

int main(int argc, char **argv) {
    threads_choose_blas_kernels(argv);  // may run vlm again with the CPU's OpenBLAS kernels
    return cli_main(argc, argv);
}
