/* Timers owned by an actor: created, armed, cancelled and freed on the
 * actor's loop thread only; the callback runs there too. */
#ifndef TTI_TIMER_H
#define TTI_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "actors/actor.h"

typedef struct tti_timer tti_timer;
typedef void (*tti_timer_fn)(tti_timer *t, void *arg);

tti_timer *tti_timer_new(tti_actor *a, tti_timer_fn fn, void *arg);
/* (Re)arm to fire once after `ms` milliseconds. */
void tti_timer_arm(tti_timer *t, uint32_t ms);
void tti_timer_cancel(tti_timer *t);
bool tti_timer_armed(const tti_timer *t);
void tti_timer_free(tti_timer *t);

#endif
