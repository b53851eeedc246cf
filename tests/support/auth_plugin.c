/* A mosquitto plugin (interface 5) with two enhanced-authentication methods,
 * so the client's AUTH exchange meets a real broker:
 *
 *   "tether-test"  CONNECT data "hello" -> AUTH continue "nonce:<8 hex>"
 *                  -> the client's "proof:<nonce reversed>" -> success with
 *                  "server-proof:<nonce>". Anything else: not authorized.
 *                  The same for a re-authentication.
 *   "tether-none"  no data, accepted at once.
 *
 * Other methods are not supported (CONNACK 0x8C). Built without sanitizers:
 * it runs inside the broker. Loopback tests only. */
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <stdio.h>
#include <string.h>

static mosquitto_plugin_id_t *g_id;

/* The nonce each client was sent, by client pointer (few clients at once). */
#define SLOTS 64
static struct {
    const struct mosquitto *client;
    char nonce[9];
} g_pending[SLOTS];
static unsigned g_counter;

static int reply(struct mosquitto_evt_extended_auth *ed, const char *text) {
    size_t n = strlen(text);
    ed->data_out = mosquitto_malloc(n);
    if (!ed->data_out) return MOSQ_ERR_NOMEM;
    memcpy(ed->data_out, text, n);
    ed->data_out_len = (uint16_t)n;
    return MOSQ_ERR_SUCCESS;
}

static int on_start(int event, void *event_data, void *userdata) {
    (void)event;
    (void)userdata;
    struct mosquitto_evt_extended_auth *ed = event_data;
    if (!ed->auth_method) return MOSQ_ERR_PLUGIN_DEFER;
    if (!strcmp(ed->auth_method, "tether-none")) return MOSQ_ERR_SUCCESS;
    if (strcmp(ed->auth_method, "tether-test")) return MOSQ_ERR_NOT_SUPPORTED;
    if (ed->data_in_len != 5 || memcmp(ed->data_in, "hello", 5)) return MOSQ_ERR_AUTH;
    int slot = -1;
    for (int i = 0; i < SLOTS; i++) {
        if (g_pending[i].client == ed->client || (slot < 0 && !g_pending[i].client)) slot = i;
        if (g_pending[i].client == ed->client) break;
    }
    if (slot < 0) return MOSQ_ERR_AUTH;
    g_pending[slot].client = ed->client;
    snprintf(g_pending[slot].nonce, sizeof g_pending[slot].nonce, "%08x", 0x5eed0000u + ++g_counter);
    char text[32];
    snprintf(text, sizeof text, "nonce:%s", g_pending[slot].nonce);
    int rc = reply(ed, text);
    return rc == MOSQ_ERR_SUCCESS ? MOSQ_ERR_AUTH_CONTINUE : rc;
}

static int on_continue(int event, void *event_data, void *userdata) {
    (void)event;
    (void)userdata;
    struct mosquitto_evt_extended_auth *ed = event_data;
    /* auth_method is not filled in for this event: the pending table says
     * the client is on "tether-test". */
    for (int i = 0; i < SLOTS; i++) {
        if (g_pending[i].client != ed->client) continue;
        g_pending[i].client = NULL;
        char want[32];
        const char *n = g_pending[i].nonce;
        snprintf(want, sizeof want, "proof:%c%c%c%c%c%c%c%c", n[7], n[6], n[5], n[4], n[3], n[2], n[1], n[0]);
        if (ed->data_in_len != strlen(want) || memcmp(ed->data_in, want, ed->data_in_len)) return MOSQ_ERR_AUTH;
        char text[32];
        snprintf(text, sizeof text, "server-proof:%s", n);
        return reply(ed, text);
    }
    return MOSQ_ERR_AUTH;
}

int mosquitto_plugin_version(int count, const int *versions) {
    for (int i = 0; i < count; i++)
        if (versions[i] == 5) return 5;
    return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *id, void **userdata, struct mosquitto_opt *opts, int nopts) {
    (void)userdata;
    (void)opts;
    (void)nopts;
    g_id = id;
    int rc = mosquitto_callback_register(id, MOSQ_EVT_EXT_AUTH_START, on_start, NULL, NULL);
    if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_callback_register(id, MOSQ_EVT_EXT_AUTH_CONTINUE, on_continue, NULL, NULL);
    return rc;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts, int nopts) {
    (void)userdata;
    (void)opts;
    (void)nopts;
    mosquitto_callback_unregister(g_id, MOSQ_EVT_EXT_AUTH_START, on_start, NULL);
    mosquitto_callback_unregister(g_id, MOSQ_EVT_EXT_AUTH_CONTINUE, on_continue, NULL);
    return 0;
}
