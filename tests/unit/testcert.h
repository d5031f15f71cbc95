/* Certificates made in memory for the cmocka suites (test_revoke,
 * test_chaincache): P-256 keys, CA or client leaf, chosen validity and
 * serial. Failures abort the test through cmocka's asserts. */
#ifndef CG_TESTS_UNIT_TESTCERT_H
#define CG_TESTS_UNIT_TESTCERT_H

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>

struct testcert {
    const char *cn;
    EVP_PKEY *key;
    X509 *issuer;   /* NULL: self-signed */
    EVP_PKEY *ikey; /* the issuer's key (NULL: key) */
    bool ca;        /* a CA (keyCertSign), else a clientAuth leaf */
    bool leaf_ca;   /* a leaf that claims basicConstraints CA:TRUE */
    long nb, na;    /* valid from now + nb to now + na, seconds */
    const unsigned char *serial; /* big-endian bytes; NULL: random */
    size_t slen;
};

EVP_PKEY *testcert_key(void);
X509 *testcert_new(const struct testcert *t);

#endif
