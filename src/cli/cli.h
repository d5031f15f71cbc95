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

#endif
