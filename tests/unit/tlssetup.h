/*
 * The cmocka group setup of the unit tests of src/tls that need only its
 * global state: OpenSSL's providers and the listener library context.
 * Included after cmocka.h and tls/tls.h.
 */
#ifndef CG_TESTS_TLSSETUP_H
#define CG_TESTS_TLSSETUP_H

static int
tls_setup(void **state)
{
    (void)state;
    tls_global_init();
    assert_non_null(tls_libctx());
    return 0;
}

#endif
