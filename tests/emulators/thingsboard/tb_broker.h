/* A private mosquitto set up like ThingsBoard's MQTT front door, for tests
 * of the ThingsBoard emulator and adapter (on top of tests/support/broker.h).
 *
 *   const char *devices[] = { "A1_TEST_TOKEN" }, *gateways[] = { "GW_TOKEN" };
 *   tb_broker tb;
 *   tb_broker_opts o = { .device_tokens = devices, .ndevices = 1,
 *                        .gateway_tokens = gateways, .ngateways = 1 };
 *   if (tb_broker_start(&tb, &o) != 0) { tt_broker_dump_log(&tb.b, stderr); ... }
 *   ... devices connect to 127.0.0.1:tb.b.port with username = token ...
 *   tb_broker_free(&tb);
 *
 * Logins (anonymous access is denied):
 *  - each token is a username. mosquitto cannot take a user without a
 *    password (an entry without a hash is dropped at load, and a client that
 *    sends no password for a listed user is refused), so a device logs in
 *    with its token and the password TB_BROKER_TOKEN_PASSWORD (the dummy
 *    password the MicroPython SDK sends; ThingsBoard ignores it);
 *  - TB_BROKER_PROVISION_USER ("provision", same password) for provisioning
 *    (the Python SDK's way; the MicroPython SDK's "client id provision, no
 *    username" would be anonymous and is refused here);
 *  - TB_BROKER_SERVER_USER / TB_BROKER_SERVER_PASSWORD for the emulator.
 * An empty or unknown token, or no username, is refused with CONNACK 5 (MQTT
 * 3.1.1) or 0x86/0x87 (MQTT 5): mosquitto does not give ThingsBoard's 4 for an
 * empty username.
 *
 * ACLs (mosquitto acl_file), unless `no_acl`: device tokens may use
 * v1/devices/me/#, v2/fw/# and v2/sw/#; gateway tokens those and v1/gateway/#;
 * "provision" only /provision/#; the server user everything. mosquitto 2.0
 * grants every SUBSCRIBE but delivers only messages on topics the reader may
 * read, and drops a publish on a topic the sender may not write (acknowledged
 * all the same in MQTT 3.1.1).
 *
 * Return 0 / -1 like broker.h, after a line on stderr. Not thread-safe. */
#ifndef TT_TB_BROKER_H
#define TT_TB_BROKER_H

#include <stdbool.h>
#include <stddef.h>

#include "broker.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TB_BROKER_TOKEN_PASSWORD "pswd"
#define TB_BROKER_PROVISION_USER "provision"
#define TB_BROKER_SERVER_USER "tb-server"
#define TB_BROKER_SERVER_PASSWORD "tb-server-secret"

typedef struct tb_broker_opts {
    const char *const *device_tokens;  /* access tokens of plain devices */
    size_t ndevices;
    const char *const *gateway_tokens; /* access tokens of gateways */
    size_t ngateways;
    bool no_acl;                       /* every login may use every topic */
    const char *extra_conf;            /* appended to mosquitto.conf, may be NULL */
} tb_broker_opts;

typedef struct tb_broker {
    tt_broker b;                       /* port, log, ... */
    char dir[256];                     /* holds the ACL file */
} tb_broker;

int tb_broker_start(tb_broker *tb, const tb_broker_opts *o);
void tb_broker_free(tb_broker *tb);

/* True if the broker's log shows a SUBSCRIBE with exactly this filter (from
 * any client): how a test checks, for instance, that a device asked for
 * v2/fw/response/+/chunk/+ and not the Python SDK's v2/fw/response/+ that a
 * plain broker never matches with chunk topics. */
bool tb_broker_saw_subscription(const tb_broker *tb, const char *filter);

#ifdef __cplusplus
}
#endif

#endif /* TT_TB_BROKER_H */
