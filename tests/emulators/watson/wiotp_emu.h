/* A private mosquitto that plays IBM Watson IoT Platform, for one test.
 *
 *   #include "wiotp_emu.h"
 *
 *   tt_broker b;
 *   if (tt_wiotp_emu_start(&b,
 *           "device myorg sensor dev1 tok-dev1\n"
 *           "gateway myorg gw gw1 tok-gw1\n"
 *           "apikey a-myorg-key1 tok-app1\n") != 0) {
 *       tt_broker_dump_log(&b, stderr);  ... fail ...
 *   }
 *   ... connect to mqtt://127.0.0.1:<b.port> as
 *       d:myorg:sensor:dev1 / use-token-auth / tok-dev1,
 *       a:myorg:someapp    / a-myorg-key1   / tok-app1, ...
 *   tt_broker_restart(&b);            same credentials, same port
 *   tt_broker_free(&b);
 *
 * The broker loads the emulator plugin (tests/emulators/watson/wiotp_plugin.c;
 * README.md there says what it emulates: logins, ACLs, topic rewriting,
 * status messages, device management, control topics). `credentials_text`
 * is the credentials file itself, one entry a line:
 *
 *   device  <org> <type> <id> <token>
 *   gateway <org> <type> <id> <token>
 *   apikey  a-<org>-<x> <token>
 *   # a comment
 *
 * NULL or "" allows Quickstart clients only. The text is written to a file
 * in a fresh temporary directory (under $TMPDIR or /tmp), which must outlive
 * the broker (a restart reads it again), so it is removed at exit() rather
 * than by tt_broker_free() (kept when TT_BROKER_KEEP is set, like the
 * broker's own directory).
 *
 * tt_wiotp_emu_start_opts() takes broker options as well (TLS listener,
 * persistence, limits, ...); its extra_conf comes after the plugin's lines.
 *
 * Both return 0, or -1 after printing why to stderr; `b` is then safe to
 * tt_broker_dump_log() and tt_broker_free(). Start brokers from the main
 * thread (see broker.h).
 *
 * Build: the test needs tests/support/broker.c among its sources, this
 * directory on its include path, and the plugin's path compiled in. In a
 * tests/integration/<name>_tests.cmake:
 *
 *   include(${PROJECT_SOURCE_DIR}/tests/integration/wiotp_emu_tests.cmake)  # include_guard'ed
 *   if(TARGET tt_wiotp_plugin)                 # mosquitto's plugin headers were found
 *     tt_add_test(my_test LABEL integration SOURCES ${CMAKE_CURRENT_LIST_DIR}/my_test.c
 *                 ${PROJECT_SOURCE_DIR}/tests/support/broker.c)
 *     target_include_directories(my_test PRIVATE ${PROJECT_SOURCE_DIR}/tests/emulators/watson)
 *     target_compile_definitions(my_test PRIVATE TT_WIOTP_PLUGIN_PATH="$<TARGET_FILE:tt_wiotp_plugin>")
 *     add_dependencies(my_test tt_wiotp_plugin)
 *   endif()
 */
#ifndef TT_WIOTP_EMU_H
#define TT_WIOTP_EMU_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"

#ifndef TT_WIOTP_PLUGIN_PATH
#error "TT_WIOTP_PLUGIN_PATH: the path of the tt_wiotp_plugin module (see wiotp_emu.h)"
#endif

#define TT_WIOTP_EMU_MAX_DIRS 256

/* The credentials directories made by this test program, removed at exit. */
typedef struct tt_wiotp_emu_dirs_ {
    int n;
    bool hooked;
    char dir[TT_WIOTP_EMU_MAX_DIRS][256];
} tt_wiotp_emu_dirs_;

static inline tt_wiotp_emu_dirs_ *tt_wiotp_emu_dirs_get_(void) {
    static tt_wiotp_emu_dirs_ dirs;
    return &dirs;
}

static inline void tt_wiotp_emu_cleanup_(void) {
    tt_wiotp_emu_dirs_ *d = tt_wiotp_emu_dirs_get_();
    const char *keep = getenv("TT_BROKER_KEEP");
    for (int i = 0; i < d->n; i++) {
        if (keep && *keep) {
            fprintf(stderr, "wiotp_emu: kept %s\n", d->dir[i]);
            continue;
        }
        char path[300];
        snprintf(path, sizeof path, "%s/credentials.txt", d->dir[i]);
        (void)unlink(path);
        (void)rmdir(d->dir[i]);
    }
    d->n = 0;
}

static inline int tt_wiotp_emu_start_opts(tt_broker *b, const char *credentials_text, const tt_broker_opts *o) {
    memset(b, 0, sizeof *b);
    b->slot = -1;
    tt_wiotp_emu_dirs_ *d = tt_wiotp_emu_dirs_get_();
    if (d->n == TT_WIOTP_EMU_MAX_DIRS) {
        fprintf(stderr, "wiotp_emu: more than %d emulators in one program\n", TT_WIOTP_EMU_MAX_DIRS);
        return -1;
    }
    char *dir = d->dir[d->n];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof d->dir[0], "%s/tt-wiotp-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "wiotp_emu: mkdtemp %s: %s\n", dir, strerror(errno));
        return -1;
    }
    d->n++;
    if (!d->hooked) {
        d->hooked = true;
        (void)atexit(tt_wiotp_emu_cleanup_);
    }

    char path[300];
    snprintf(path, sizeof path, "%s/credentials.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "wiotp_emu: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    const char *text = credentials_text ? credentials_text : "";
    size_t len = strlen(text);
    bool ok = fwrite(text, 1, len, f) == len;
    if (len && text[len - 1] != '\n') ok = ok && fputc('\n', f) != EOF;
    if (fclose(f) != 0) ok = false;
    if (!ok) {
        fprintf(stderr, "wiotp_emu: cannot write %s\n", path);
        return -1;
    }

    const char *extra = o && o->extra_conf ? o->extra_conf : "";
    size_t cap = strlen(TT_WIOTP_PLUGIN_PATH) + strlen(path) + strlen(extra) + 64;
    char *conf = malloc(cap);
    if (!conf) {
        fprintf(stderr, "wiotp_emu: out of memory\n");
        return -1;
    }
    snprintf(conf, cap, "plugin %s\nplugin_opt_credentials %s\n%s", TT_WIOTP_PLUGIN_PATH, path, extra);
    tt_broker_opts bo;
    if (o)
        bo = *o;
    else
        memset(&bo, 0, sizeof bo);
    bo.extra_conf = conf;
    int rc = tt_broker_start(b, &bo);
    free(conf);
    return rc;
}

static inline int tt_wiotp_emu_start(tt_broker *b, const char *credentials_text) {
    return tt_wiotp_emu_start_opts(b, credentials_text, NULL);
}

#endif /* TT_WIOTP_EMU_H */
