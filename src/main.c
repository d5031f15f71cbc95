/* certgate: the gateway daemon and its tools in one binary. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "tls/tls.h"

#define CERTGATE_VERSION "0.1.0"

static const char usage[] =
    "usage: certgate COMMAND [OPTIONS]\n"
    "\n"
    "  serve  -c FILE      run the gateway\n"
    "  check  -c FILE      validate a config; print each error with its "
    "JSON path\n"
    "  reload -c FILE      ask the running gateway to reload (SIGHUP)\n"
    "  verify ...          run the gateway's verification on a certificate\n"
    "  ca     init|issue|revoke|crl|list|show|export\n"
    "                      run the built-in certificate authority\n"
    "  user   add|list|show|passwd|disable|enable|delete\n"
    "                      manage the users certificates belong to\n"
    "  demo [--dir DIR]    demo CA, certificates, config and a gateway on "
    ":8443\n"
    "  version             print the version\n"
    "\n"
    "Run 'certgate COMMAND --help' for a command's options.\n";

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
};

int
main(int argc, char **argv)
{
    static const struct command cmds[] = {
        {"serve", cli_serve},   {"check", cli_check}, {"reload", cli_reload},
        {"verify", cli_verify}, {"ca", cli_ca},       {"user", cli_user},
        {"demo", cli_demo}};
    (void)tls_mem_init(); /* before anything allocates through OpenSSL */
    if (argc < 2) {
        fprintf(stderr, "%s", usage);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        printf("%s", usage);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("certgate %s\n", CERTGATE_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(cmd, cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "certgate: unknown command \"%s\"\n%s", cmd, usage);
    return 2;
}
