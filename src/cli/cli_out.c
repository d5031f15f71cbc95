/* Output helpers shared by the subcommands that print stored records. */
#include "cli/cli.h"

#include "core/buf.h"
#include "store/store.h"

void
cli_put_text(struct cg_buf *b, const char *s)
{
    for (; s != NULL && *s != '\0'; s++)
        cg_buf_putc(b, (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

const char *
cli_cert_state(const struct store_cert *c, int64_t now)
{
    if (c->status == STORE_CERT_REVOKED)
        return "revoked";
    return c->not_after < now ? "expired" : "valid";
}
