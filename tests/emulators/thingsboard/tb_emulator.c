/* tb_emulator: the ThingsBoard server emulator as a program, for trying a
 * device or gateway by hand against a running mosquitto. Prints one line per
 * request it answers and runs until SIGINT or SIGTERM.
 *
 *   tb_emulator -h 127.0.0.1 -p 1883 [--gateway] [--user U -P PASS]
 *               [--firmware FILE --fw-title T --fw-version V --fw-algo A]
 *               [--shared JSON] [--client JSON] [--rpc METHOD=JSON]
 *               [--provision KEY:SECRET:TOKEN] [--silent]
 *
 * The broker must let the emulator's login read and write every topic (see
 * tb_broker.h for an ACL file that does). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/runtime.h>

#include "tb_emu.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: tb_emulator -h HOST -p PORT [--gateway] [--user U -P PASS]\n"
            "                   [--firmware FILE --fw-title T --fw-version V --fw-algo A]\n"
            "                   [--shared JSON] [--client JSON] [--rpc METHOD=JSON]\n"
            "                   [--provision KEY:SECRET:TOKEN] [--silent]\n"
            "Answers ThingsBoard device (and with --gateway, gateway) requests through the\n"
            "broker at HOST:PORT and prints each one, until Ctrl-C.\n"
            "  --shared/--client  shared/client attributes the server holds (a JSON object)\n"
            "  --rpc              the answer to a client-side RPC method (repeatable)\n"
            "  --provision        a provisioning key/secret and the token it hands out\n"
            "  --fw-algo          SHA256 (default), SHA384, SHA512, MD5, CRC32, MURMUR3_32,\n"
            "                     MURMUR3_128\n");
}

static void *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 65536, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        unsigned char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    if (ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

static json_t *json_arg(const char *what, const char *text) {
    json_error_t err;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &err);
    if (!v) fprintf(stderr, "tb_emulator: %s: not JSON: %s\n", what, err.text);
    return v;
}

int main(int argc, char **argv) {
    tb_emu_opts o = { .host = NULL, .port = 0, .mode = TB_EMU_DEVICE };
    const char *fw_file = NULL, *fw_title = "firmware", *fw_version = "1.0", *fw_algo = "SHA256";
    const char *shared = NULL, *client = NULL;
    const char *rpcs[32], *provs[32];
    size_t nrpcs = 0, nprovs = 0;
    bool silent = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (strcmp(a, "-h") == 0 && v) o.host = v;
        else if (strcmp(a, "-p") == 0 && v) o.port = (uint16_t)atoi(v);
        else if ((strcmp(a, "--user") == 0 || strcmp(a, "-u") == 0) && v) o.user = v;
        else if (strcmp(a, "-P") == 0 && v) o.password = v;
        else if (strcmp(a, "--firmware") == 0 && v) fw_file = v;
        else if (strcmp(a, "--fw-title") == 0 && v) fw_title = v;
        else if (strcmp(a, "--fw-version") == 0 && v) fw_version = v;
        else if (strcmp(a, "--fw-algo") == 0 && v) fw_algo = v;
        else if (strcmp(a, "--shared") == 0 && v) shared = v;
        else if (strcmp(a, "--client") == 0 && v) client = v;
        else if (strcmp(a, "--rpc") == 0 && v && nrpcs < 32) rpcs[nrpcs++] = v;
        else if (strcmp(a, "--provision") == 0 && v && nprovs < 32) provs[nprovs++] = v;
        else {
            takes = false;
            if (strcmp(a, "--gateway") == 0) o.mode = TB_EMU_GATEWAY;
            else if (strcmp(a, "--silent") == 0) silent = true;
            else if (strcmp(a, "--help") == 0) {
                usage(stdout);
                return 0;
            } else {
                fprintf(stderr, "tb_emulator: unknown or incomplete option '%s'\n", a);
                usage(stderr);
                return 2;
            }
        }
        if (takes) i++;
    }
    if (!o.host || !o.port) {
        usage(stderr);
        return 2;
    }

    /* Signals go to sigwait() below: block them before any thread starts. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    tt_runtime *rt;
    tt_runtime_opts ro = TT_OPTS_INIT(tt_runtime_opts);
    ro.loop_threads = 1;
    if (tt_runtime_new(&rt, &ro) != TT_OK) {
        fprintf(stderr, "tb_emulator: cannot start the runtime\n");
        return 1;
    }
    tb_emu *e = tb_emu_start(rt, &o);
    if (!e) {
        tt_runtime_free(rt);
        return 1;
    }
    tb_emu_set_trace(e, stdout);
    int rc = 0;
    json_t *v;
    if (shared && (v = json_arg("--shared", shared)) != NULL) {
        tb_emu_set_shared_attrs(e, NULL, v);
        json_decref(v);
    } else if (shared) rc = 2;
    if (client && (v = json_arg("--client", client)) != NULL) {
        tb_emu_set_client_attrs(e, NULL, v);
        json_decref(v);
    } else if (client) rc = 2;
    for (size_t i = 0; i < nrpcs && rc == 0; i++) {
        const char *eq = strchr(rpcs[i], '=');
        char method[128];
        if (!eq || (size_t)(eq - rpcs[i]) >= sizeof method || !(v = json_arg("--rpc", eq + 1))) {
            fprintf(stderr, "tb_emulator: --rpc wants METHOD=JSON\n");
            rc = 2;
            break;
        }
        snprintf(method, sizeof method, "%.*s", (int)(eq - rpcs[i]), rpcs[i]);
        tb_emu_set_rpc_result(e, method, v);
        json_decref(v);
    }
    for (size_t i = 0; i < nprovs && rc == 0; i++) {
        char key[128], secret[128], token[256];
        if (sscanf(provs[i], "%127[^:]:%127[^:]:%255s", key, secret, token) != 3) {
            fprintf(stderr, "tb_emulator: --provision wants KEY:SECRET:TOKEN\n");
            rc = 2;
            break;
        }
        v = json_string(token);
        tb_emu_add_provision(e, key, secret, 0, v);
        json_decref(v);
    }
    if (rc == 0 && fw_file) {
        size_t len = 0;
        void *img = read_file(fw_file, &len);
        if (!img) {
            fprintf(stderr, "tb_emulator: cannot read %s\n", fw_file);
            rc = 1;
        } else if (tb_emu_set_firmware(e, fw_title, fw_version, img, len, fw_algo, false, true) != 0) {
            rc = 1;
        }
        free(img);
    }
    tb_emu_set_silent(e, silent);
    if (rc == 0) {
        printf("tb_emulator: serving %s on %s:%u; Ctrl-C stops\n",
               o.mode == TB_EMU_GATEWAY ? "a gateway" : "a device", o.host, (unsigned)o.port);
        fflush(stdout);
        int sig;
        sigwait(&sigs, &sig);
    }
    tb_emu_free(e);
    tt_runtime_free(rt);
    return rc;
}
