/* Request/response over MQTT 5: the table of requests waiting for an
 * answer (platforms/mqtt/request.c). */
#ifndef TTI_MQTT_REQUEST_H
#define TTI_MQTT_REQUEST_H

#include <tether/mqtt.h>

typedef struct tti_reqtab tti_reqtab;

/* A table for a client whose responses come back on `topic` (copied). */
tti_reqtab *tti_reqtab_new(const char *topic);

/* The response topic's subscription handler; `arg` is the table. */
void tti_reqtab_on_response(tt_client *c, const tt_msg *m, void *arg);

/* Fail what waits with TT_ECLOSED and take no more (the client stopped). */
void tti_reqtab_close(tti_reqtab *t);

void tti_reqtab_free(tti_reqtab *t);

/* A call's deadline in ms: opts->timeout_ms, else the client's op_timeout_ms,
 * else `dflt` (0: none). In client.c. */
uint32_t tti_client_deadline(const tt_client *c, const tt_call_opts *opts, uint32_t dflt);

#endif
