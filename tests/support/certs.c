/* Throwaway TLS test certificates: an openssl config and a shell script are written to a
 * fresh temporary directory, then `sh` runs the script there. The expired certificate
 * comes from `openssl ca -startdate/-enddate`, which OpenSSL 3.0 has (`x509 -not_before`
 * arrived only in 3.4). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "certs.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char certs_cnf[] =
    "[ req ]\n"
    "distinguished_name = req_dn\n"
    "prompt = no\n"
    "[ req_dn ]\n"
    "CN = tether\n"
    "[ v3_ca ]\n"
    "basicConstraints = critical, CA:TRUE\n"
    "keyUsage = critical, keyCertSign, cRLSign\n"
    "subjectKeyIdentifier = hash\n"
    "[ v3_server ]\n"
    "basicConstraints = CA:FALSE\n"
    "keyUsage = critical, digitalSignature\n"
    "extendedKeyUsage = serverAuth\n"
    "subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1\n"
    "subjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid\n"
    "[ v3_wrong_host ]\n"
    "basicConstraints = CA:FALSE\n"
    "keyUsage = critical, digitalSignature\n"
    "extendedKeyUsage = serverAuth\n"
    "subjectAltName = DNS:wrong.example\n"
    "[ v3_client ]\n"
    "basicConstraints = CA:FALSE\n"
    "keyUsage = critical, digitalSignature\n"
    "extendedKeyUsage = clientAuth\n"
    "[ ca ]\n"
    "default_ca = ca_test\n"
    "[ ca_test ]\n"
    "database = index.txt\n"
    "new_certs_dir = newcerts\n"
    "certificate = ca.pem\n"
    "private_key = ca.key\n"
    "serial = serial\n"
    "default_md = sha256\n"
    "policy = policy_any\n"
    "unique_subject = no\n"
    "email_in_dn = no\n"
    "[ policy_any ]\n"
    "commonName = supplied\n";

/* Run from inside the directory with `sh -e`. */
static const char certs_sh[] =
    "K='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes'\n"
    "C='-config openssl.cnf'\n"
    "S='-days 825 -extfile openssl.cnf'\n"
    "openssl req -x509 $C $K -keyout ca.key -out ca.pem -days 3650"
    " -subj '/CN=tether test CA' -extensions v3_ca\n"
    "openssl req -x509 $C $K -keyout wrong_ca.key -out wrong_ca.pem -days 3650"
    " -subj '/CN=tether wrong CA' -extensions v3_ca\n"
    "openssl req -new $C $K -keyout server.key -out server.csr -subj /CN=localhost\n"
    "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 2 $S"
    " -extensions v3_server -out server.pem\n"
    "openssl req -new $C $K -keyout client.key -out client.csr -subj /CN=tether-test-client\n"
    "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -set_serial 3 $S"
    " -extensions v3_client -out client.pem\n"
    "openssl req -new $C -key server.key -out wrong_host.csr -subj /CN=wrong.example\n"
    "openssl x509 -req -in wrong_host.csr -CA ca.pem -CAkey ca.key -set_serial 4 $S"
    " -extensions v3_wrong_host -out wrong_host.pem\n"
    "openssl req -new $C $K -keyout other_client.key -out other_client.csr"
    " -subj /CN=tether-other-client\n"
    "openssl x509 -req -in other_client.csr -CA wrong_ca.pem -CAkey wrong_ca.key"
    " -set_serial 5 $S -extensions v3_client -out other_client.pem\n"
    "mkdir newcerts cadir\n"
    ": > index.txt\n"
    "echo 10 > serial\n"
    "openssl ca $C -batch -notext -startdate 20200101000000Z -enddate 20200102000000Z"
    " -in server.csr -out expired.pem -extensions v3_server\n"
    "cp ca.pem \"cadir/$(openssl x509 -hash -noout -in ca.pem).0\"\n";

static int certs_path(char *dst, const char *dir, const char *name) {
    int n = snprintf(dst, TT_CERTS_PATH, "%s/%s", dir, name);
    return (n < 0 || n >= TT_CERTS_PATH) ? -1 : 0;
}

static int certs_write(const char *dir, const char *name, const char *text) {
    char path[TT_CERTS_PATH];
    if (certs_path(path, dir, name) != 0) return -1;
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int ok = fputs(text, f) >= 0;
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : -1;
}

static void certs_dump_log(const char *dir) {
    char path[TT_CERTS_PATH];
    if (certs_path(path, dir, "make.log") != 0) return;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) fprintf(stderr, "  | %s", line);
    fclose(f);
}

int tt_certs_make(tt_certs *out) {
    memset(out, 0, sizeof *out);
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    int n = snprintf(out->dir, sizeof out->dir, "%s/tether-certs-XXXXXX", tmp);
    if (n < 0 || (size_t)n >= sizeof out->dir - 64 || strchr(out->dir, '\'')) {
        fprintf(stderr, "certs: unusable TMPDIR '%s'\n", tmp);
        out->dir[0] = '\0';
        return -1;
    }
    if (!mkdtemp(out->dir)) {
        perror("certs: mkdtemp");
        out->dir[0] = '\0';
        return -1;
    }
    if (certs_write(out->dir, "openssl.cnf", certs_cnf) != 0 ||
        certs_write(out->dir, "make.sh", certs_sh) != 0) {
        fprintf(stderr, "certs: cannot write to %s\n", out->dir);
        tt_certs_remove(out);
        return -1;
    }
    char cmd[3 * TT_CERTS_PATH];
    snprintf(cmd, sizeof cmd, "cd '%s' && sh -e ./make.sh > make.log 2>&1", out->dir);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "certs: generating test certificates failed (status %d); is the "
                        "`openssl` tool installed (Debian package openssl)?\n", st);
        certs_dump_log(out->dir);
        tt_certs_remove(out);
        return -1;
    }
    struct { char *dst; const char *name; } files[] = {
        { out->ca, "ca.pem" },                 { out->ca_key, "ca.key" },
        { out->ca_dir, "cadir" },              { out->server_cert, "server.pem" },
        { out->server_key, "server.key" },     { out->client_cert, "client.pem" },
        { out->client_key, "client.key" },     { out->wrong_ca, "wrong_ca.pem" },
        { out->wrong_ca_key, "wrong_ca.key" }, { out->expired_cert, "expired.pem" },
        { out->expired_key, "server.key" },    { out->wrong_host_cert, "wrong_host.pem" },
        { out->wrong_host_key, "server.key" }, { out->other_client_cert, "other_client.pem" },
        { out->other_client_key, "other_client.key" },
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (certs_path(files[i].dst, out->dir, files[i].name) != 0 ||
            access(files[i].dst, R_OK) != 0) {
            fprintf(stderr, "certs: %s missing after generation\n", files[i].name);
            certs_dump_log(out->dir);
            tt_certs_remove(out);
            return -1;
        }
    }
    return 0;
}

static int certs_unlink_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

void tt_certs_remove(tt_certs *c) {
    if (!c || !c->dir[0]) return;
    const char *keep = getenv("TT_KEEP_CERTS");
    if (keep && *keep && strcmp(keep, "0") != 0) {
        fprintf(stderr, "certs: kept in %s\n", c->dir);
    } else {
        nftw(c->dir, certs_unlink_cb, 8, FTW_DEPTH | FTW_PHYS);
    }
    memset(c, 0, sizeof *c);
}
