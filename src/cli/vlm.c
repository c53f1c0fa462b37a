// The vlm binary: everything lives in the library; this is only main().
#include "cli/cli.h"

int main(int argc, char **argv) { return cli_main(argc, argv); }
