/* certgate serve | check | reload */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"
#include "loop/server.h"

/* Parses "-c FILE" (also --config); prints usage on error. */
static const char *
config_arg(int argc, char **argv, const char *usage)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *path = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            printf("%s", usage);
            exit(0);
        default:
            fprintf(stderr, "%s", usage);
            return NULL;
        }
    }
    if (path == NULL || optind != argc) {
        fprintf(stderr, "%s", usage);
        return NULL;
    }
    return path;
}

int
cli_serve(int argc, char **argv)
{
    const char *path = config_arg(
        argc, argv,
        "usage: certgate serve -c FILE\n"
        "  Runs the gateway in the foreground. SIGHUP reloads FILE,\n"
        "  SIGTERM drains open requests and exits.\n");
    return path ? server_run(path) : 2;
}

int
cli_check(int argc, char **argv)
{
    const char *path = config_arg(
        argc, argv,
        "usage: certgate check -c FILE\n"
        "  Validates FILE completely (certificates and keys included) and\n"
        "  prints each problem as 'json.path: message'. Exit 0 valid, 2 "
        "not.\n");
    return path ? server_check(path) : 2;
}

int
cli_reload(int argc, char **argv)
{
    const char *path = config_arg(
        argc, argv,
        "usage: certgate reload -c FILE\n"
        "  Asks the gateway whose pid_file FILE names to reload (SIGHUP).\n"
        "  The gateway validates the new config first and keeps serving the\n"
        "  old one if it is invalid (see its log).\n");
    if (path == NULL)
        return 2;
    struct cg_config *cfg = NULL;
    struct cg_strlist errors = {0};
    if (config_load(path, &cfg, &errors) != 0) {
        for (size_t i = 0; i < errors.n; i++)
            fprintf(stderr, "%s\n", errors.v[i]);
        cg_strlist_clear(&errors);
        return 2;
    }
    int rc = 1;
    if (cfg->pid_file == NULL) {
        fprintf(stderr,
                "certgate: %s has no pid_file: send SIGHUP to the "
                "gateway yourself\n",
                path);
        goto out;
    }
    FILE *f = fopen(cfg->pid_file, "r");
    long pid = 0;
    if (f == NULL || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
        fprintf(stderr, "certgate: cannot read a pid from %s%s%s\n",
                cfg->pid_file, f ? "" : ": ", f ? "" : strerror(errno));
        if (f)
            fclose(f);
        goto out;
    }
    fclose(f);
    if (kill((pid_t)pid, SIGHUP) != 0) {
        fprintf(stderr, "certgate: cannot signal pid %ld: %s\n", pid,
                strerror(errno));
        goto out;
    }
    printf("certgate: reload requested (pid %ld)\n", pid);
    rc = 0;
out:
    config_free(cfg);
    return rc;
}
