/*
 * The connections of a worker that were active lately, so that memory an
 * idle connection does not need (cipher contexts, parser storage) can be
 * given back once it has been quiet for a while, without a timer per
 * connection and without walking the connections that are quiet already:
 * a connection joins the list on activity (O(1), nothing when it is on
 * it), a periodic sweep releases and drops the ones quiet since before a
 * given time. With a million idle connections the list is empty.
 */
#ifndef CG_CORE_QUIET_H
#define CG_CORE_QUIET_H

#include <stdbool.h>

struct quiet_node {
    struct quiet_node *prev, *next;
    double active_at; /* last activity (the caller's clock) */
    bool listed;
};

struct quiet_list {
    struct quiet_node *head;
};

/* Notes activity of n at now (joins the list). */
void quiet_touch(struct quiet_list *l, struct quiet_node *n, double now);
/* Takes n off the list (a closing connection); no-op when not on it. */
void quiet_remove(struct quiet_list *l, struct quiet_node *n);
/* Calls release on every node last active before `before`; a node is
 * dropped from the list when release returns true (released; it joins
 * again on its next activity). release must not touch other nodes. */
void quiet_sweep(struct quiet_list *l, double before,
                 bool (*release)(struct quiet_node *n));

#endif
