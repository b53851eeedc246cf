/* Any protobuf-c message to and from a JSON value, driven by its descriptor (the
 * mapping is described in include/tether/codec_pb.h), plus pack/unpack into tt_buf.
 * Every allocation goes through tti_pb_allocator so that protobuf-c's own
 * free_unpacked releases messages built here as well as unpacked ones. */
#include "codecs/protobuf/pb_internal.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "actors/core/alloc.h"

static void *pb_alloc(void *data, size_t n) {
    (void)data;
    return tti_malloc(n);
}

static void pb_release(void *data, void *p) {
    (void)data;
    tti_free(p);
}

ProtobufCAllocator tti_pb_allocator = { pb_alloc, pb_release, NULL };

#define AT(base, off) ((void *)((char *)(base) + (off)))
#define CAT(base, off) ((const void *)((const char *)(base) + (off)))

static size_t slot_size(ProtobufCType t) {
    switch (t) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 4;   /* 32-bit integers, float, enum */
    }
}

static bool is_pointer_type(ProtobufCType t) {
    return t == PROTOBUF_C_TYPE_STRING || t == PROTOBUF_C_TYPE_MESSAGE;
}

static bool field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
    const void *slot = CAT(m, f->offset);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)CAT(m, f->quantifier_offset) == f->id;
    switch (f->label) {
    case PROTOBUF_C_LABEL_REQUIRED:
        return true;
    case PROTOBUF_C_LABEL_OPTIONAL:
        if (is_pointer_type(f->type)) {
            const void *p = *(const void *const *)slot;
            return p != NULL && p != f->default_value;
        }
        return *(const protobuf_c_boolean *)CAT(m, f->quantifier_offset) != 0;
    case PROTOBUF_C_LABEL_REPEATED:
        return *(const size_t *)CAT(m, f->quantifier_offset) > 0;
    case PROTOBUF_C_LABEL_NONE:
    default:
        if (f->type == PROTOBUF_C_TYPE_STRING) {
            const char *s = *(const char *const *)slot;
            return s && *s;
        }
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) return *(const void *const *)slot != NULL;
        if (f->type == PROTOBUF_C_TYPE_BYTES) return ((const ProtobufCBinaryData *)slot)->len > 0;
        for (size_t i = 0; i < slot_size(f->type); i++)
            if (((const uint8_t *)slot)[i]) return true;
        return false;
    }
}

/* ---- message -> JSON -------------------------------------------------------------- */

static tt_err msg_to_json(const ProtobufCMessage *m, int depth, json_t **out,
                          tt_codec_error *err);

static json_t *u64_json(uint64_t u) {
    if (u <= (uint64_t)INT64_MAX) return json_integer((json_int_t)u);
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%" PRIu64, u);
    return json_stringn_nocheck(digits, (size_t)n);
}

static json_t *float_json(double d) {
    if (isnan(d)) return json_string_nocheck("NaN");
    if (isinf(d)) return json_string_nocheck(d > 0 ? "Infinity" : "-Infinity");
    return json_real(d);
}

static tt_err value_to_json(const ProtobufCMessageDescriptor *md,
                            const ProtobufCFieldDescriptor *f, const void *slot, int depth,
                            json_t **out, tt_codec_error *err) {
    json_t *v = NULL;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
        v = json_integer(*(const int32_t *)slot);
        break;
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
        v = json_integer(*(const uint32_t *)slot);
        break;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        v = json_integer(*(const int64_t *)slot);
        break;
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        v = u64_json(*(const uint64_t *)slot);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        v = float_json(*(const float *)slot);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        v = float_json(*(const double *)slot);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        v = json_boolean(*(const protobuf_c_boolean *)slot);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int num = *(const int *)slot;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, num);
        v = ev ? json_string_nocheck(ev->name) : json_integer(num);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)slot;
        size_t n = s ? strlen(s) : 0, bad;
        if (s && !tti_utf8_valid((const uint8_t *)s, n, &bad))
            return tti_codec_fail(err, TT_EPROTO, 0, "%s.%s: invalid UTF-8", md->short_name,
                                  f->name);
        v = json_stringn_nocheck(s ? s : "", n);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = slot;
        v = tti_b64_json(b->data, b->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)slot;
        if (!sub) {
            v = json_object();
            break;
        }
        return msg_to_json(sub, depth + 1, out, err);
    }
    }
    if (!v) return tti_codec_fail(err, TT_ENOMEM, 0, "out of memory");
    *out = v;
    return TT_OK;
}

static tt_err msg_to_json(const ProtobufCMessage *m, int depth, json_t **out,
                          tt_codec_error *err) {
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (depth >= TT_CODEC_MAX_DEPTH)
        return tti_codec_fail(err, TT_EINVAL, 0, "%s: nested deeper than %d levels",
                              d->short_name, TT_CODEC_MAX_DEPTH);
    json_t *obj = json_object();
    if (!obj) return tti_codec_fail(err, TT_ENOMEM, 0, "out of memory");
    tt_err rc = TT_OK;
    for (unsigned i = 0; i < d->n_fields && rc == TT_OK; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!field_present(m, f)) continue;
        json_t *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)CAT(m, f->quantifier_offset);
            const char *arr = *(const char *const *)CAT(m, f->offset);
            size_t sz = slot_size(f->type);
            v = json_array();
            if (!v) rc = tti_codec_fail(err, TT_ENOMEM, 0, "out of memory");
            for (size_t k = 0; k < n && rc == TT_OK; k++) {
                json_t *item = NULL;
                rc = value_to_json(d, f, arr + k * sz, depth, &item, err);
                if (rc == TT_OK && json_array_append_new(v, item) != 0)
                    rc = tti_codec_fail(err, TT_ENOMEM, 0, "out of memory");
            }
        } else {
            rc = value_to_json(d, f, CAT(m, f->offset), depth, &v, err);
        }
        if (rc == TT_OK && json_object_set_new_nocheck(obj, f->name, v) != 0)
            rc = tti_codec_fail(err, TT_ENOMEM, 0, "out of memory");
        else if (rc != TT_OK)
            json_decref(v);
    }
    if (rc != TT_OK) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return TT_OK;
}

tt_err tt_codec_pb_to_json(const ProtobufCMessage *msg, json_t **out, tt_codec_error *err) {
    if (!msg || !out) return tti_codec_fail(err, TT_EINVAL, 0, "bad argument");
    return msg_to_json(msg, 0, out, err);
}

/* ---- JSON -> message -------------------------------------------------------------- */

static tt_err msg_from_json(const ProtobufCMessageDescriptor *d, const json_t *obj, int depth,
                            ProtobufCMessage **out, tt_codec_error *err);

#define BAD(what) \
    tti_codec_fail(err, TT_EINVAL, 0, "%s.%s: %s", md->short_name, f->name, what)

static bool json_to_i64(const json_t *v, int64_t *out) {
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    return json_is_string(v) && tti_parse_i64(json_string_value(v), json_string_length(v), out);
}

static bool json_to_u64(const json_t *v, uint64_t *out) {
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0) return false;
        *out = (uint64_t)json_integer_value(v);
        return true;
    }
    return json_is_string(v) && tti_parse_u64(json_string_value(v), json_string_length(v), out);
}

static bool json_to_double(const json_t *v, double *out) {
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    const char *s = json_string_value(v);
    if (!s) return false;
    if (strcmp(s, "NaN") == 0) *out = NAN;
    else if (strcmp(s, "Infinity") == 0) *out = INFINITY;
    else if (strcmp(s, "-Infinity") == 0) *out = -INFINITY;
    else return false;
    return true;
}

static tt_err value_from_json(const ProtobufCMessageDescriptor *md,
                              const ProtobufCFieldDescriptor *f, const json_t *v, void *slot,
                              int depth, tt_codec_error *err) {
    int64_t i64;
    uint64_t u64;
    double d;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
        if (!json_is_integer(v)) return BAD("expected an integer");
        i64 = json_integer_value(v);
        if (i64 < INT32_MIN || i64 > INT32_MAX) return BAD("out of int32 range");
        *(int32_t *)slot = (int32_t)i64;
        return TT_OK;
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
        if (!json_is_integer(v)) return BAD("expected an integer");
        i64 = json_integer_value(v);
        if (i64 < 0 || i64 > UINT32_MAX) return BAD("out of uint32 range");
        *(uint32_t *)slot = (uint32_t)i64;
        return TT_OK;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        if (!json_to_i64(v, &i64)) return BAD("expected an int64 (integer or decimal string)");
        *(int64_t *)slot = i64;
        return TT_OK;
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        if (!json_to_u64(v, &u64)) return BAD("expected a uint64 (integer or decimal string)");
        *(uint64_t *)slot = u64;
        return TT_OK;
    case PROTOBUF_C_TYPE_FLOAT:
        if (!json_to_double(v, &d)) return BAD("expected a number");
        if (isfinite(d) && fabs(d) > FLT_MAX) return BAD("out of float range");
        *(float *)slot = (float)d;
        return TT_OK;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!json_to_double(v, &d)) return BAD("expected a number");
        *(double *)slot = d;
        return TT_OK;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v)) return BAD("expected true or false");
        *(protobuf_c_boolean *)slot = json_is_true(v);
        return TT_OK;
    case PROTOBUF_C_TYPE_ENUM: {
        if (json_is_string(v)) {
            const ProtobufCEnumValue *ev =
                protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, json_string_value(v));
            if (!ev) return BAD("unknown enum name");
            *(int *)slot = ev->value;
            return TT_OK;
        }
        if (!json_is_integer(v)) return BAD("expected an enum name or number");
        i64 = json_integer_value(v);
        if (i64 < INT32_MIN || i64 > INT32_MAX) return BAD("enum number out of range");
        *(int *)slot = (int)i64;
        return TT_OK;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v)) return BAD("expected a string");
        size_t n = json_string_length(v);
        if (memchr(json_string_value(v), '\0', n)) return BAD("NUL byte in a string");
        char *s = tti_strndup(json_string_value(v), n);
        if (!s) return tti_codec_fail(err, TT_ENOMEM, 0, "out of memory");
        *(char **)slot = s;
        return TT_OK;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        if (!json_is_string(v)) return BAD("expected a base64 string");
        tt_buf b = TT_BUF_INIT;
        tt_err rc = tti_b64_decode(json_string_value(v), json_string_length(v), &b);
        if (rc != TT_OK) {
            tt_buf_free(&b);
            return rc == TT_ENOMEM ? tti_codec_fail(err, rc, 0, "out of memory")
                                   : BAD("bad base64");
        }
        ProtobufCBinaryData *bd = slot;
        bd->len = b.len;
        bd->data = b.data;   /* tti_realloc'ed: freed through tti_pb_allocator */
        return TT_OK;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage *sub = NULL;
        tt_err rc = msg_from_json(f->descriptor, v, depth + 1, &sub, err);
        if (rc != TT_OK) return rc;
        *(ProtobufCMessage **)slot = sub;
        return TT_OK;
    }
    }
    return BAD("unsupported field type");
}

static tt_err field_from_json(const ProtobufCMessageDescriptor *md, ProtobufCMessage *m,
                              const ProtobufCFieldDescriptor *f, const json_t *v, int depth,
                              tt_codec_error *err) {
    tt_err rc;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (!json_is_array(v)) return BAD("expected an array");
        size_t n = json_array_size(v), sz = slot_size(f->type);
        if (n == 0) return TT_OK;
        char *arr = tti_calloc(n, sz);
        if (!arr) return tti_codec_fail(err, TT_ENOMEM, 0, "out of memory");
        size_t *count = AT(m, f->quantifier_offset);
        *(char **)AT(m, f->offset) = arr;
        /* Count only finished elements: free_unpacked then releases exactly those. */
        for (size_t k = 0; k < n; k++) {
            if ((rc = value_from_json(md, f, json_array_get(v, k), arr + k * sz, depth, err)) !=
                TT_OK)
                return rc;
            (*count)++;
        }
        return TT_OK;
    }
    uint32_t *oneof_case = NULL;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        oneof_case = AT(m, f->quantifier_offset);
        if (*oneof_case != 0 && *oneof_case != f->id) {
            const ProtobufCFieldDescriptor *other =
                protobuf_c_message_descriptor_get_field(md, *oneof_case);
            return tti_codec_fail(err, TT_EINVAL, 0, "%s: %s and %s are members of one oneof",
                                  md->short_name, other ? other->name : "?", f->name);
        }
    }
    if ((rc = value_from_json(md, f, v, AT(m, f->offset), depth, err)) != TT_OK) return rc;
    if (oneof_case)
        *oneof_case = f->id;
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && !is_pointer_type(f->type))
        *(protobuf_c_boolean *)AT(m, f->quantifier_offset) = 1;
    return TT_OK;
}

static tt_err msg_from_json(const ProtobufCMessageDescriptor *d, const json_t *obj, int depth,
                            ProtobufCMessage **out, tt_codec_error *err) {
    if (!json_is_object(obj))
        return tti_codec_fail(err, TT_EINVAL, 0, "%s: expected an object", d->short_name);
    if (depth >= TT_CODEC_MAX_DEPTH)
        return tti_codec_fail(err, TT_EINVAL, 0, "%s: nested deeper than %d levels",
                              d->short_name, TT_CODEC_MAX_DEPTH);
    ProtobufCMessage *m = tti_malloc(d->sizeof_message);
    if (!m) return tti_codec_fail(err, TT_ENOMEM, 0, "out of memory");
    d->message_init(m);

    uint8_t seen_small[64];
    uint8_t *seen = d->n_fields <= sizeof seen_small ? seen_small : tti_calloc(d->n_fields, 1);
    tt_err rc = TT_OK;
    if (!seen) {
        rc = tti_codec_fail(err, TT_ENOMEM, 0, "out of memory");
        goto done;
    }
    memset(seen, 0, d->n_fields);
    for (void *it = json_object_iter((json_t *)obj); it && rc == TT_OK;
         it = json_object_iter_next((json_t *)obj, it)) {
        const char *key = json_object_iter_key(it);
        const json_t *v = json_object_iter_value(it);
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
        if (!f || strlen(key) != json_object_iter_key_len(it)) {
            rc = tti_codec_fail(err, TT_EINVAL, 0, "%s: unknown field \"%.60s\"", d->short_name,
                                key);
            break;
        }
        if (json_is_null(v)) continue;
        seen[f - d->fields] = 1;
        rc = field_from_json(d, m, f, v, depth, err);
    }
    for (unsigned i = 0; i < d->n_fields && rc == TT_OK; i++)
        if (d->fields[i].label == PROTOBUF_C_LABEL_REQUIRED && !seen[i])
            rc = tti_codec_fail(err, TT_EINVAL, 0, "%s: missing required field %s",
                                d->short_name, d->fields[i].name);
done:
    if (seen != seen_small) tti_free(seen);
    if (rc != TT_OK) {
        protobuf_c_message_free_unpacked(m, &tti_pb_allocator);
        return rc;
    }
    *out = m;
    return TT_OK;
}

tt_err tt_codec_pb_from_json(const ProtobufCMessageDescriptor *desc, const json_t *value,
                             ProtobufCMessage **out, tt_codec_error *err) {
    if (!desc || !value || !out) return tti_codec_fail(err, TT_EINVAL, 0, "bad argument");
    return msg_from_json(desc, value, 0, out, err);
}

/* ---- wire ------------------------------------------------------------------------- */

tt_err tt_codec_pb_pack(const ProtobufCMessage *msg, tt_buf *out) {
    if (!out) return TT_EINVAL;
    out->len = 0;
    if (!msg) return TT_EINVAL;
    return tti_pb_pack_append(msg, out);
}

tt_err tti_pb_pack_append(const ProtobufCMessage *msg, tt_buf *out) {
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (n == 0) return TT_OK;
    if (tt_buf_reserve(out, n) != TT_OK) return TT_ENOMEM;
    out->len += protobuf_c_message_pack(msg, out->data + out->len);
    return TT_OK;
}

static bool read_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v) {
    *v = 0;
    for (unsigned shift = 0; shift < 70 && *i < n; shift += 7) {
        uint8_t b = p[(*i)++];
        if (shift < 64) *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

/* protobuf-c reports no position: find the first top-level field that is broken. */
static size_t wire_scan(const uint8_t *p, size_t n, const char **why) {
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        uint64_t key, len;
        if (!read_varint(p, n, &i, &key)) {
            *why = "truncated or overlong field key";
            return start;
        }
        if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff) {
            *why = "invalid field number";
            return start;
        }
        switch (key & 7) {
        case 0:
            if (!read_varint(p, n, &i, &len)) {
                *why = "truncated varint";
                return start;
            }
            break;
        case 1:
        case 5: {
            size_t k = (key & 7) == 1 ? 8 : 4;
            if (n - i < k) {
                *why = "truncated fixed-size field";
                return start;
            }
            i += k;
            break;
        }
        case 2:
            if (!read_varint(p, n, &i, &len) || len > n - i) {
                *why = "length-delimited field runs past the end";
                return start;
            }
            i += (size_t)len;
            break;
        default:
            *why = "unsupported wire type";
            return start;
        }
    }
    *why = "invalid message (wrong wire type, bad nested message or missing required field)";
    return 0;
}

tt_err tt_codec_pb_unpack(const ProtobufCMessageDescriptor *desc, const void *data, size_t len,
                          ProtobufCMessage **out, tt_codec_error *err) {
    static const uint8_t empty[1];
    if (!desc || !out || (!data && len)) return tti_codec_fail(err, TT_EINVAL, 0, "bad argument");
    if (!data) data = empty;
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &tti_pb_allocator, len, data);
    if (!m) {
        const char *why;
        size_t off = wire_scan(data, len, &why);
        return tti_codec_fail(err, TT_EPROTO, off, "%s: %s", desc->short_name, why);
    }
    *out = m;
    return TT_OK;
}

void tt_codec_pb_free(ProtobufCMessage *msg) {
    if (msg) protobuf_c_message_free_unpacked(msg, &tti_pb_allocator);
}
