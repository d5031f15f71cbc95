/* certgate subcommands. Each returns the process exit status:
 * 0 success, 1 refused, 2 bad usage or bad config. */
#ifndef CG_CLI_CLI_H
#define CG_CLI_CLI_H

int cli_serve(int argc, char **argv);
int cli_check(int argc, char **argv);
int cli_reload(int argc, char **argv);
int cli_verify(int argc, char **argv);
int cli_ca(int argc, char **argv);
int cli_user(int argc, char **argv);

int cli_demo(int argc, char **argv);

/* cli_out.c */
#include <stdint.h>
struct cg_buf;
struct store_cert;
/* Appends s for a terminal: control bytes become '?', so a stored value
 * never steers the output. */
void cli_put_text(struct cg_buf *b, const char *s);
/* "valid", "revoked" or "expired" (at now). */
const char *cli_cert_state(const struct store_cert *c, int64_t now);

#endif
