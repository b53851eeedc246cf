/* examples/mqtt_rpc against a private mosquitto: three answers, each to its
 * own request, and the flush. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "tt_test.h"

static void test_mqtt_rpc(void) {
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    char url[64], out[sizeof b.dir + 16];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", b.port);
    snprintf(out, sizeof out, "%s/example.out", b.dir);      /* goes with the broker's directory */
    char *const argv[] = { (char *)TT_EXAMPLE_RPC, url, NULL };
    TT_CHECK_EQ_INT(tt_broker_run(argv, out, 20000), 0);
    char text[2048] = "";
    FILE *f = fopen(out, "r");
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    TT_CHECK_MSG(strstr(text, "answer: alice: it is ") && strstr(text, "answer: bob: it is ") &&
                     strstr(text, "answer: carol: it is ") && strstr(text, "10 publishes acknowledged"),
                 "output: %s", text);
    tt_broker_free(&b);
}

TT_TEST_LIST = {
    { "mqtt_rpc", test_mqtt_rpc },
    { NULL, NULL },
};
