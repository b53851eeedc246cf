/* tether — the umbrella header: include only this one. */
#ifndef TETHER_H
#define TETHER_H

#include <tether/common.h>
#include <tether/version.h>
#include <tether/err.h>
#include <tether/log.h>
#include <tether/future.h>
#include <tether/runtime.h>
#include <tether/codec.h>
#include <tether/codec_pool.h>
#include <tether/thingsboard.h>
#include <tether/watson.h>

#endif /* TETHER_H */
