/* `tether tb` against mosquitto and the ThingsBoard emulator: every action
 * once, plus a refused token and bad arguments. Each child runs under a
 * 20 s limit; its output goes to a scratch file that the test reads. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tether/tether.h>
#include <unistd.h>

#include "broker.h"
#include "tb_broker.h"
#include "tb_emu.h"
#include "tt_test.h"

#ifndef TT_CLI_PATH
#define TT_CLI_PATH "tether"
#endif

#define CHILD_MS 20000
#define WAIT_MS 10000
#define TOKEN "CLI_TEST_TOKEN"

static tt_runtime *g_rt;
/* {}: the parameters of RPCs that need none */
static json_t *g_empty;
static tb_broker g_tb;
static tb_emu *g_emu;
static char g_dir[256], g_port[16];

static bool up(void) {
    if (!g_empty) g_empty = json_object();
    if (g_emu) return true;
    tt_runtime_opts ro = TT_OPTS_INIT(tt_runtime_opts);
    ro.loop_threads = 1;
    if (tt_runtime_new(&g_rt, &ro) != TT_OK) return false;
    const char *devices[] = { TOKEN };
    tb_broker_opts bo = { .device_tokens = devices, .ndevices = 1 };
    if (tb_broker_start(&g_tb, &bo) != 0) return false;
    snprintf(g_port, sizeof g_port, "%d", g_tb.b.port);
    tb_emu_opts eo = { .host = "127.0.0.1", .port = (uint16_t)g_tb.b.port, .user = TB_BROKER_SERVER_USER,
                       .password = TB_BROKER_SERVER_PASSWORD, .mode = TB_EMU_DEVICE };
    g_emu = tb_emu_start(g_rt, &eo);
    const char *t = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/tt-tbcli-XXXXXX", t && *t ? t : "/tmp");
    return g_emu && mkdtemp(g_dir);
}

static void out_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", g_dir, name); }

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = calloc(1, (size_t)n + 1);
    if (n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) b[0] = 0;
    fclose(f);
    return b;
}

/* Run `tether tb ACTION -h 127.0.0.1 -p PORT -P pswd <extra...>`. */
static int run(const char *out, const char *action, const char *const *extra) {
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)TT_CLI_PATH;
    argv[n++] = (char *)"tb";
    argv[n++] = (char *)action;
    argv[n++] = (char *)"-h";
    argv[n++] = (char *)"127.0.0.1";
    argv[n++] = (char *)"-p";
    argv[n++] = g_port;
    argv[n++] = (char *)"-P";
    argv[n++] = (char *)TB_BROKER_TOKEN_PASSWORD;
    for (; extra && *extra && n < 38; extra++) argv[n++] = (char *)*extra;
    argv[n] = NULL;
    unlink(out);
    return tt_broker_run(argv, out, CHILD_MS);
}

static void test_telemetry_and_attributes(void) {
    TT_REQUIRE(up());
    char out[300];
    out_path(out, sizeof out, "t.out");
    const char *a[] = { "-t", TOKEN, "-m", "{\"temp\":21.5,\"mode\":\"eco\"}", NULL };
    TT_CHECK_EQ_INT(run(out, "telemetry", a), 0);
    TT_REQUIRE(tb_emu_wait(g_emu, "telemetry", NULL, 1, WAIT_MS) == 0);
    json_t *t = tb_emu_telemetry(g_emu, NULL);
    TT_CHECK(json_real_value(json_object_get(json_array_get(t, 0), "temp")) == 21.5);
    json_decref(t);
    const char *b[] = { "-t", TOKEN, "-m", "{\"fw\":\"1.0\"}", NULL };
    TT_CHECK_EQ_INT(run(out, "attributes", b), 0);
    TT_REQUIRE(tb_emu_wait(g_emu, "attributes", NULL, 1, WAIT_MS) == 0);
    json_t *sa = json_pack("{s:s}", "color", "blue");
    tb_emu_set_shared_attrs(g_emu, NULL, sa);
    json_decref(sa);
    const char *c[] = { "-t", TOKEN, "--client-keys", "fw", "--shared-keys", "color", NULL };
    TT_CHECK_EQ_INT(run(out, "attributes", c), 0);
    char *s = slurp(out);
    TT_CHECK_MSG(strstr(s, "\"blue\"") && strstr(s, "\"1.0\""), "output: %s", s);
    free(s);
}

static void test_claim_and_rpc_call(void) {
    TT_REQUIRE(up());
    char out[300];
    out_path(out, sizeof out, "c.out");
    const char *a[] = { "-t", TOKEN, "--secret", "abc", "--duration", "5000", NULL };
    TT_CHECK_EQ_INT(run(out, "claim", a), 0);
    TT_REQUIRE(tb_emu_wait(g_emu, "claims", NULL, 1, WAIT_MS) == 0);
    json_t *rr = json_pack("{s:i}", "answer", 42);
    tb_emu_set_rpc_result(g_emu, "ask", rr);
    json_decref(rr);
    const char *b[] = { "-t", TOKEN, "--method", "ask", "-m", "{\"q\":1}", NULL };
    TT_CHECK_EQ_INT(run(out, "rpc-call", b), 0);
    char *s = slurp(out);
    TT_CHECK_MSG(strstr(s, "42") != NULL, "output: %s", s);
    free(s);
}

static void test_rpc_serve(void) {
    TT_REQUIRE(up());
    char out[300];
    out_path(out, sizeof out, "r.out");
    char *argv[] = { (char *)TT_CLI_PATH, (char *)"tb", (char *)"rpc-serve", (char *)"-h", (char *)"127.0.0.1",
                     (char *)"-p", g_port, (char *)"-P", (char *)TB_BROKER_TOKEN_PASSWORD, (char *)"-t",
                     (char *)TOKEN, (char *)"-n", (char *)"1", NULL };
    unlink(out);
    pid_t pid = tt_broker_spawn(argv, out);
    TT_REQUIRE(pid > 0);
    /* retry until the server's subscription is up */
    tt_future *f = NULL;
    for (int i = 0; i < 40; i++) {
        f = tb_emu_rpc(g_emu, NULL, "ping", g_empty, 500);
        if (tt_future_wait(f, WAIT_MS) == TT_OK) break;
        tt_future_free(f);
        f = NULL;
    }
    TT_CHECK(f != NULL);
    if (f) {
        TT_CHECK_EQ_STR(json_string_value(json_object_get(tt_future_get_ptr(f), "method")), "ping");
        tt_future_free(f);
    }
    TT_CHECK_EQ_INT(tt_broker_waitpid(pid, CHILD_MS), 0);
    char *s = slurp(out);
    TT_CHECK_MSG(strstr(s, "ping") != NULL, "output: %s", s);
    free(s);
}

static void test_provision(void) {
    TT_REQUIRE(up());
    json_t *tok = json_string("PROVISIONED_TOKEN");
    tb_emu_add_provision(g_emu, "pkey", "psecret", 0, tok);
    json_decref(tok);
    char out[300];
    out_path(out, sizeof out, "p.out");
    const char *a[] = { "--provision-key", "pkey", "--provision-secret", "psecret", "--name", "cli-dev", NULL };
    TT_CHECK_EQ_INT(run(out, "provision", a), 0);
    char *s = slurp(out);
    TT_CHECK_MSG(strstr(s, "PROVISIONED_TOKEN") != NULL, "output: %s", s);
    free(s);
    const char *b[] = { "--provision-key", "wrong", "--provision-secret", "psecret", NULL };
    TT_CHECK_EQ_INT(run(out, "provision", b), 1);
    s = slurp(out);
    TT_CHECK_MSG(strstr(s, "not found") != NULL, "output: %s", s);
    free(s);
}

static void test_fw(void) {
    TT_REQUIRE(up());
    unsigned char img[3000];
    for (size_t i = 0; i < sizeof img; i++) img[i] = (unsigned char)(i * 7 % 256);
    TT_REQUIRE(tb_emu_set_firmware(g_emu, "cli-fw", "3.1", img, sizeof img, "CRC32", false, false) == 0);
    char out[300], bin[300];
    out_path(out, sizeof out, "f.out");
    out_path(bin, sizeof bin, "image.bin");
    const char *a[] = { "-t", TOKEN, "--title", "cli-fw", "--version", "3.0", "--chunk", "512", "-o", bin, NULL };
    TT_CHECK_EQ_INT(run(out, "fw", a), 0);
    FILE *f = fopen(bin, "rb");
    TT_REQUIRE(f);
    unsigned char back[4000];
    size_t n = fread(back, 1, sizeof back, f);
    fclose(f);
    unlink(bin);
    TT_CHECK_EQ_INT(n, sizeof img);
    TT_CHECK(memcmp(back, img, sizeof img) == 0);
    TT_REQUIRE(tb_emu_wait(g_emu, "fw_states", NULL, 4, WAIT_MS) == 0);
    json_t *st = tb_emu_fw_states(g_emu);
    TT_CHECK_EQ_STR(json_string_value(json_array_get(st, 3)), "UPDATED");
    json_decref(st);
}

static void test_errors(void) {
    TT_REQUIRE(up());
    char out[300];
    out_path(out, sizeof out, "e.out");
    const char *a[] = { "-t", "BAD_TOKEN", "-m", "{\"x\":1}", NULL };
    TT_CHECK_EQ_INT(run(out, "telemetry", a), 1);
    char *s = slurp(out);
    TT_CHECK_MSG(strstr(s, "connect") != NULL, "output: %s", s);
    free(s);
    const char *b[] = { "-t", TOKEN, "-m", "not json", NULL };
    TT_CHECK_EQ_INT(run(out, "telemetry", b), 2);
    const char *c[] = { "-t", TOKEN, NULL };
    TT_CHECK_EQ_INT(run(out, "nosuch", c), 2);
    TT_CHECK_EQ_INT(run(out, "telemetry", c), 2);
}

static void test_done(void) {
    json_decref(g_empty);
    g_empty = NULL;
    tb_emu_free(g_emu);
    g_emu = NULL;
    tb_broker_free(&g_tb);
    if (g_rt) tt_runtime_free(g_rt);
    g_rt = NULL;
    if (g_dir[0]) rmdir(g_dir);
}

TT_TEST_LIST = {
    { "telemetry_and_attributes", test_telemetry_and_attributes },
    { "claim_and_rpc_call", test_claim_and_rpc_call },
    { "rpc_serve", test_rpc_serve },
    { "provision", test_provision },
    { "fw", test_fw },
    { "errors", test_errors },
    { "done", test_done },
    { NULL, NULL },
};
