/* Throwaway TLS test certificates, made at test time with the `openssl` command-line
 * tool (Debian package `openssl`) in a fresh temporary directory.
 *
 *   tt_certs c;
 *   if (tt_certs_make(&c) != 0) { ... fail: the reason is on stderr ... }
 *   ... use c.ca, c.server_cert, c.server_key ...
 *   tt_certs_remove(&c);
 *
 * Every key is EC P-256. All leaf certificates are signed by the test CA except the
 * ones under "wrong_ca". Paths are absolute and NUL-terminated. */
#ifndef TT_TEST_CERTS_H
#define TT_TEST_CERTS_H

#define TT_CERTS_PATH 512

typedef struct tt_certs {
    char dir[TT_CERTS_PATH];             /* the temporary directory holding everything */
    char ca[TT_CERTS_PATH];              /* test CA certificate (PEM) */
    char ca_key[TT_CERTS_PATH];          /* its key */
    char ca_dir[TT_CERTS_PATH];          /* directory with the CA as <hash>.0 (for ca_dir) */
    char server_cert[TT_CERTS_PATH];     /* CN=localhost, SAN DNS:localhost IP:127.0.0.1 IP:::1 */
    char server_key[TT_CERTS_PATH];
    char client_cert[TT_CERTS_PATH];     /* CN=tether-test-client, clientAuth */
    char client_key[TT_CERTS_PATH];
    char wrong_ca[TT_CERTS_PATH];        /* an unrelated CA that signed nothing used here */
    char wrong_ca_key[TT_CERTS_PATH];
    char expired_cert[TT_CERTS_PATH];    /* as server_cert, valid 2020-01-01 .. 2020-01-02 */
    char expired_key[TT_CERTS_PATH];     /* same key as server_key */
    char wrong_host_cert[TT_CERTS_PATH]; /* CN=wrong.example, SAN DNS:wrong.example only */
    char wrong_host_key[TT_CERTS_PATH];  /* same key as server_key */
    char other_client_cert[TT_CERTS_PATH]; /* a client certificate signed by wrong_ca */
    char other_client_key[TT_CERTS_PATH];
} tt_certs;

/* Make the directory and every file. Returns 0, or -1 after printing why to stderr
 * (no `openssl` binary, unwritable temporary directory, ...) and removing what it made.
 * The directory is under $TMPDIR, or /tmp. Thread: not thread-safe (runs a shell). */
int tt_certs_make(tt_certs *out);

/* Delete the files and the directory. Safe on a zeroed struct. Set TT_KEEP_CERTS=1 in
 * the environment to keep them for inspection. */
void tt_certs_remove(tt_certs *c);

#endif /* TT_TEST_CERTS_H */
