/*
 * The gateway process: main thread (config, snapshots, signals, listening
 * sockets) and N worker threads, each with its own libev loop.
 */
#ifndef CG_LOOP_SERVER_H
#define CG_LOOP_SERVER_H

/* Runs `certgate serve -c path` in the foreground; returns the exit
 * status (0 after a clean SIGTERM/SIGINT, 2 for a bad config, 1 when it
 * could not start). */
int server_run(const char *config_path);

/*
 * Validates a config completely, as serve would before starting
 * (including loading certificates and keys). Prints each problem as
 * "<path>: <message>" on stderr. Returns 0 when valid, 2 otherwise.
 */
int server_check(const char *config_path);

#endif
