#include "core/quiet.h"

#include <stddef.h>

void
quiet_touch(struct quiet_list *l, struct quiet_node *n, double now)
{
    n->active_at = now;
    if (n->listed)
        return;
    n->prev = NULL;
    n->next = l->head;
    if (l->head != NULL)
        l->head->prev = n;
    l->head = n;
    n->listed = true;
}

void
quiet_remove(struct quiet_list *l, struct quiet_node *n)
{
    if (!n->listed)
        return;
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    n->prev = n->next = NULL;
    n->listed = false;
}

void
quiet_sweep(struct quiet_list *l, double before,
            bool (*release)(struct quiet_node *n))
{
    struct quiet_node *n = l->head, *next;
    for (; n != NULL; n = next) {
        next = n->next;
        if (n->active_at < before && release(n))
            quiet_remove(l, n);
    }
}
