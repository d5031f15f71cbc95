/*
 * Shared pieces of the `certgate ca` subcommands (src/cli/ca*.c): the
 * common options (--data, -c, --help), data directory resolution, store
 * opening, and the one-line error / usage helpers.
 */
#ifndef CG_CLI_CA_CLI_H
#define CG_CLI_CA_CLI_H

#include <getopt.h>
#include <stdbool.h>

#include "store/store.h"

/* getopt_long entries every `ca` subcommand accepts. */
#define CA_CLI_COMMON_OPTS                                                     \
    {"data", required_argument, 0, 'd'},                                       \
        {"config", required_argument, 0, 'c'},                                 \
    {                                                                          \
        "help", no_argument, 0, 'h'                                            \
    }

#define CA_CLI_COMMON_USAGE                                                    \
    "  --data DIR       data directory (default: data_dir of -c, else\n"       \
    "                   ./certgate-data)\n"                                    \
    "  -c FILE          certgate config whose data_dir to use\n"               \
    "  --help           this text\n"

struct ca_cli {
    const char *data_opt; /* --data */
    const char *config;   /* -c */
    char *data_dir;       /* resolved, owned */
    struct store *st;     /* open store, owned */
};

/* Handles a common option (d, c); returns true when opt was one. */
bool ca_cli_common(struct ca_cli *c, int opt, const char *arg);
/*
 * Resolves the data directory and opens the store. Unless create, a data
 * directory without a store is "no CA in DIR: run certgate ca init
 * first" (nothing is created). Returns an exit status (0, 1, 2) after
 * printing any error.
 */
int ca_cli_open(struct ca_cli *c, bool create);
void ca_cli_close(struct ca_cli *c);

/* Prints "certgate: <msg>" on stderr; returns 1. */
int ca_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "certgate: <msg>" on stderr; returns 2 (bad usage). */
int ca_cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reports the option getopt_long just refused (opterr is 0 in every ca
 * parser, so this is the one line printed); returns 2. */
int ca_cli_badopt(char **argv, const char *cmd);
/* Parses a decimal in [min, max]; returns false when it is not one. */
bool ca_cli_int(const char *s, int min, int max, int *out);
/* Reads a secret (first line) from path into *out; returns an exit
 * status after printing any error. */
int ca_cli_secret(const char *path, char **out);

int cli_ca_issue(int argc, char **argv);
int cli_ca_list(int argc, char **argv);
int cli_ca_show(int argc, char **argv);

#endif
