/* MQTT 3.1.1 (protocol level 4) and 5.0 (level 5) control packet codec.
 *
 * Pure C: no I/O, no libevent, no TLS. Decoding never allocates and never copies:
 * strings, payloads, property blocks and lists in a decoded tti_mqtt_pkt are views
 * into the input buffer, valid as long as that buffer is. Lists (subscriptions,
 * user properties, subscription identifiers) are validated up front and read
 * back with the iterators below.
 *
 * The same structs drive the encoder: a caller fills a tti_mqtt_pkt (lists as
 * plain arrays) and encodes it into its own buffer. A decoded packet can be
 * encoded again as is (its lists are then read from the raw views).
 *
 * Return convention: bytes (>= 0) or a negative tt_err from <tether/err.h>:
 *   TT_EPROTO  malformed or forbidden input (decode),
 *   TT_EINVAL  a packet that cannot be encoded, or a bad argument,
 *   TT_ENOMEM  the output buffer is too small (encode).
 * Every rejection also yields a static English reason through `why`.
 *
 * Thread: all functions are reentrant; they only touch their arguments. */
#ifndef TTI_CODECS_MQTT_CODEC_H
#define TTI_CODECS_MQTT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tether/err.h>

/* ---- Protocol constants ------------------------------------------------ */

#define TTI_MQTT_V311 4u /* protocol level of MQTT 3.1.1 */
#define TTI_MQTT_V5   5u /* protocol level of MQTT 5.0 */

#define TTI_MQTT_MAX_REMAINING 268435455u /* largest Variable Byte Integer */
#define TTI_MQTT_MAX_PACKET    (TTI_MQTT_MAX_REMAINING + 5u)
#define TTI_MQTT_MAX_FIXED_HDR 5u /* type byte + up to 4 length bytes */
#define TTI_MQTT_MAX_SUB_ID    268435455u

typedef enum tti_mqtt_type {
    TTI_MQTT_CONNECT     = 1,
    TTI_MQTT_CONNACK     = 2,
    TTI_MQTT_PUBLISH     = 3,
    TTI_MQTT_PUBACK      = 4,
    TTI_MQTT_PUBREC      = 5,
    TTI_MQTT_PUBREL      = 6,
    TTI_MQTT_PUBCOMP     = 7,
    TTI_MQTT_SUBSCRIBE   = 8,
    TTI_MQTT_SUBACK      = 9,
    TTI_MQTT_UNSUBSCRIBE = 10,
    TTI_MQTT_UNSUBACK    = 11,
    TTI_MQTT_PINGREQ     = 12,
    TTI_MQTT_PINGRESP    = 13,
    TTI_MQTT_DISCONNECT  = 14,
    TTI_MQTT_AUTH        = 15 /* MQTT 5 only */
} tti_mqtt_type;

/* MQTT 5 property identifiers (section 2.2.2.2). */
typedef enum tti_mqtt_prop_id {
    TTI_MQTT_PROP_PAYLOAD_FORMAT         = 0x01, /* byte    PUBLISH, will */
    TTI_MQTT_PROP_MESSAGE_EXPIRY         = 0x02, /* u32     PUBLISH, will */
    TTI_MQTT_PROP_CONTENT_TYPE           = 0x03, /* string  PUBLISH, will */
    TTI_MQTT_PROP_RESPONSE_TOPIC         = 0x08, /* string  PUBLISH, will */
    TTI_MQTT_PROP_CORRELATION_DATA       = 0x09, /* binary  PUBLISH, will */
    TTI_MQTT_PROP_SUBSCRIPTION_ID        = 0x0B, /* varint  PUBLISH (repeatable), SUBSCRIBE */
    TTI_MQTT_PROP_SESSION_EXPIRY         = 0x11, /* u32     CONNECT, CONNACK, DISCONNECT */
    TTI_MQTT_PROP_ASSIGNED_CLIENT_ID     = 0x12, /* string  CONNACK */
    TTI_MQTT_PROP_SERVER_KEEP_ALIVE      = 0x13, /* u16     CONNACK */
    TTI_MQTT_PROP_AUTH_METHOD            = 0x15, /* string  CONNECT, CONNACK, AUTH */
    TTI_MQTT_PROP_AUTH_DATA              = 0x16, /* binary  CONNECT, CONNACK, AUTH */
    TTI_MQTT_PROP_REQUEST_PROBLEM_INFO   = 0x17, /* byte    CONNECT */
    TTI_MQTT_PROP_WILL_DELAY             = 0x18, /* u32     will */
    TTI_MQTT_PROP_REQUEST_RESPONSE_INFO  = 0x19, /* byte    CONNECT */
    TTI_MQTT_PROP_RESPONSE_INFO          = 0x1A, /* string  CONNACK */
    TTI_MQTT_PROP_SERVER_REFERENCE       = 0x1C, /* string  CONNACK, DISCONNECT */
    TTI_MQTT_PROP_REASON_STRING          = 0x1F, /* string  acks, DISCONNECT, AUTH */
    TTI_MQTT_PROP_RECEIVE_MAX            = 0x21, /* u16     CONNECT, CONNACK */
    TTI_MQTT_PROP_TOPIC_ALIAS_MAX        = 0x22, /* u16     CONNECT, CONNACK */
    TTI_MQTT_PROP_TOPIC_ALIAS            = 0x23, /* u16     PUBLISH */
    TTI_MQTT_PROP_MAX_QOS                = 0x24, /* byte    CONNACK */
    TTI_MQTT_PROP_RETAIN_AVAILABLE       = 0x25, /* byte    CONNACK */
    TTI_MQTT_PROP_USER_PROPERTY          = 0x26, /* pair    all but PINGs (repeatable) */
    TTI_MQTT_PROP_MAX_PACKET_SIZE        = 0x27, /* u32     CONNECT, CONNACK */
    TTI_MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28, /* byte    CONNACK */
    TTI_MQTT_PROP_SUB_ID_AVAILABLE       = 0x29, /* byte    CONNACK */
    TTI_MQTT_PROP_SHARED_SUB_AVAILABLE   = 0x2A  /* byte    CONNACK */
} tti_mqtt_prop_id;

/* Bit of a property in tti_mqtt_props.present. */
#define TTI_MQTT_PBIT(id) (UINT64_C(1) << (id))

/* MQTT 5 reason codes (section 2.4). Several share a value: 0x00 is Success,
 * Normal disconnection and Granted QoS 0. */
typedef enum tti_mqtt_reason {
    TTI_MQTT_RC_SUCCESS                 = 0x00,
    TTI_MQTT_RC_NORMAL_DISCONNECTION    = 0x00,
    TTI_MQTT_RC_GRANTED_QOS0            = 0x00,
    TTI_MQTT_RC_GRANTED_QOS1            = 0x01,
    TTI_MQTT_RC_GRANTED_QOS2            = 0x02,
    TTI_MQTT_RC_DISCONNECT_WITH_WILL    = 0x04,
    TTI_MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
    TTI_MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
    TTI_MQTT_RC_CONTINUE_AUTH           = 0x18,
    TTI_MQTT_RC_REAUTHENTICATE          = 0x19,
    TTI_MQTT_RC_UNSPECIFIED_ERROR       = 0x80,
    TTI_MQTT_RC_MALFORMED_PACKET        = 0x81,
    TTI_MQTT_RC_PROTOCOL_ERROR          = 0x82,
    TTI_MQTT_RC_IMPL_SPECIFIC_ERROR     = 0x83,
    TTI_MQTT_RC_UNSUPPORTED_VERSION     = 0x84,
    TTI_MQTT_RC_CLIENT_ID_NOT_VALID     = 0x85,
    TTI_MQTT_RC_BAD_USERNAME_PASSWORD   = 0x86,
    TTI_MQTT_RC_NOT_AUTHORIZED          = 0x87,
    TTI_MQTT_RC_SERVER_UNAVAILABLE      = 0x88,
    TTI_MQTT_RC_SERVER_BUSY             = 0x89,
    TTI_MQTT_RC_BANNED                  = 0x8A,
    TTI_MQTT_RC_SERVER_SHUTTING_DOWN    = 0x8B,
    TTI_MQTT_RC_BAD_AUTH_METHOD         = 0x8C,
    TTI_MQTT_RC_KEEP_ALIVE_TIMEOUT      = 0x8D,
    TTI_MQTT_RC_SESSION_TAKEN_OVER      = 0x8E,
    TTI_MQTT_RC_TOPIC_FILTER_INVALID    = 0x8F,
    TTI_MQTT_RC_TOPIC_NAME_INVALID      = 0x90,
    TTI_MQTT_RC_PACKET_ID_IN_USE        = 0x91,
    TTI_MQTT_RC_PACKET_ID_NOT_FOUND     = 0x92,
    TTI_MQTT_RC_RECEIVE_MAX_EXCEEDED    = 0x93,
    TTI_MQTT_RC_TOPIC_ALIAS_INVALID     = 0x94,
    TTI_MQTT_RC_PACKET_TOO_LARGE        = 0x95,
    TTI_MQTT_RC_MESSAGE_RATE_TOO_HIGH   = 0x96,
    TTI_MQTT_RC_QUOTA_EXCEEDED          = 0x97,
    TTI_MQTT_RC_ADMINISTRATIVE_ACTION   = 0x98,
    TTI_MQTT_RC_PAYLOAD_FORMAT_INVALID  = 0x99,
    TTI_MQTT_RC_RETAIN_NOT_SUPPORTED    = 0x9A,
    TTI_MQTT_RC_QOS_NOT_SUPPORTED       = 0x9B,
    TTI_MQTT_RC_USE_ANOTHER_SERVER      = 0x9C,
    TTI_MQTT_RC_SERVER_MOVED            = 0x9D,
    TTI_MQTT_RC_SHARED_SUB_NOT_SUPPORTED = 0x9E,
    TTI_MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
    TTI_MQTT_RC_MAXIMUM_CONNECT_TIME    = 0xA0,
    TTI_MQTT_RC_SUB_ID_NOT_SUPPORTED    = 0xA1,
    TTI_MQTT_RC_WILDCARD_SUB_NOT_SUPPORTED = 0xA2
} tti_mqtt_reason;

/* MQTT 3.1.1 CONNACK return codes (section 3.2.2.3) and SUBACK failure. */
typedef enum tti_mqtt_connack_rc {
    TTI_MQTT_CONNACK_ACCEPTED              = 0x00,
    TTI_MQTT_CONNACK_BAD_PROTOCOL_VERSION  = 0x01,
    TTI_MQTT_CONNACK_IDENTIFIER_REJECTED   = 0x02,
    TTI_MQTT_CONNACK_SERVER_UNAVAILABLE    = 0x03,
    TTI_MQTT_CONNACK_BAD_USERNAME_PASSWORD = 0x04,
    TTI_MQTT_CONNACK_NOT_AUTHORIZED        = 0x05
} tti_mqtt_connack_rc;
#define TTI_MQTT_SUBACK_FAILURE 0x80u

/* ---- Views ------------------------------------------------------------- */

/* A UTF-8 string: not NUL-terminated. ptr may be NULL when len is 0. */
typedef struct tti_mqtt_str {
    const char *ptr;
    size_t      len;
} tti_mqtt_str;

/* Binary data (payloads, passwords, correlation data, raw blocks). */
typedef struct tti_mqtt_bin {
    const uint8_t *ptr;
    size_t         len;
} tti_mqtt_bin;

typedef struct tti_mqtt_user_prop {
    tti_mqtt_str key;
    tti_mqtt_str value;
} tti_mqtt_user_prop;

/* ---- MQTT 5 properties -------------------------------------------------
 *
 * One struct for both directions. A scalar or string property exists when its
 * bit TTI_MQTT_PBIT(id) is set in `present`; fields without their bit are
 * meaningless (zero after decoding).
 *
 * Repeatable properties (user properties; subscription identifiers in PUBLISH):
 *  - decoded: `user_props`/`sub_ids` are NULL, the counts are set, the bits are
 *    set when the count is non-zero, `sub_id` holds the first identifier, and
 *    `raw` views the whole property block; read them with the iterators.
 *  - to encode: point `user_props`/`sub_ids` at arrays of `*_count` entries, or
 *    for a single subscription identifier set its bit and `sub_id`. With NULL
 *    arrays and non-zero counts the encoder reads them from `raw`.
 * The encoder writes properties in identifier order; `present` bits of
 * properties that the packet does not allow make the encoder fail (TT_EINVAL). */
typedef struct tti_mqtt_props {
    uint64_t     present;
    uint32_t     message_expiry;     /* 0x02 */
    uint32_t     sub_id;             /* 0x0B (first one) */
    uint32_t     session_expiry;     /* 0x11 */
    uint32_t     will_delay;         /* 0x18 */
    uint32_t     max_packet_size;    /* 0x27 */
    uint16_t     server_keep_alive;  /* 0x13 */
    uint16_t     receive_max;        /* 0x21 */
    uint16_t     topic_alias_max;    /* 0x22 */
    uint16_t     topic_alias;        /* 0x23 */
    uint8_t      payload_format;     /* 0x01: 0 bytes, 1 UTF-8 */
    uint8_t      request_problem_info;   /* 0x17 */
    uint8_t      request_response_info;  /* 0x19 */
    uint8_t      max_qos;                /* 0x24 */
    uint8_t      retain_available;       /* 0x25 */
    uint8_t      wildcard_sub_available; /* 0x28 */
    uint8_t      sub_id_available;       /* 0x29 */
    uint8_t      shared_sub_available;   /* 0x2A */
    tti_mqtt_str content_type;       /* 0x03 */
    tti_mqtt_str response_topic;     /* 0x08 */
    tti_mqtt_bin correlation_data;   /* 0x09 */
    tti_mqtt_str assigned_client_id; /* 0x12 */
    tti_mqtt_str auth_method;        /* 0x15 */
    tti_mqtt_bin auth_data;          /* 0x16 */
    tti_mqtt_str response_info;      /* 0x1A */
    tti_mqtt_str server_reference;   /* 0x1C */
    tti_mqtt_str reason_string;      /* 0x1F */
    /* Repeatable properties. */
    const tti_mqtt_user_prop *user_props; /* 0x26 */
    size_t                    user_prop_count;
    const uint32_t           *sub_ids;    /* 0x0B */
    size_t                    sub_id_count;
    tti_mqtt_bin              raw;        /* decoded block, without its length */
} tti_mqtt_props;

/* ---- Packets ----------------------------------------------------------- */

typedef struct tti_mqtt_connect {
    uint8_t        level;       /* decoded protocol level; the encoder uses `version` */
    bool           clean_start; /* "clean session" in 3.1.1 */
    uint16_t       keep_alive;  /* seconds */
    tti_mqtt_str   client_id;
    bool           will;
    uint8_t        will_qos;
    bool           will_retain;
    tti_mqtt_props will_props;  /* MQTT 5 */
    tti_mqtt_str   will_topic;
    tti_mqtt_bin   will_payload;
    bool           has_username;
    bool           has_password;
    tti_mqtt_str   username;
    tti_mqtt_bin   password;
} tti_mqtt_connect;

typedef struct tti_mqtt_connack {
    bool session_present; /* the return/reason code is tti_mqtt_pkt.reason */
} tti_mqtt_connack;

typedef struct tti_mqtt_publish {
    uint8_t      qos;
    bool         retain;
    bool         dup;
    tti_mqtt_str topic; /* may be empty in MQTT 5 with a topic alias */
    tti_mqtt_bin payload;
} tti_mqtt_publish;

/* One SUBSCRIBE entry; UNSUBSCRIBE uses only `filter`. */
typedef struct tti_mqtt_sub {
    tti_mqtt_str filter;
    uint8_t      qos;               /* requested maximum QoS */
    bool         no_local;          /* MQTT 5 */
    bool         retain_as_published; /* MQTT 5 */
    uint8_t      retain_handling;   /* MQTT 5: 0, 1 or 2 */
} tti_mqtt_sub;

/* SUBSCRIBE / UNSUBSCRIBE. Decoded: subs == NULL, count set, raw = payload.
 * To encode: subs points at `count` entries. */
typedef struct tti_mqtt_subscribe {
    const tti_mqtt_sub *subs;
    size_t              count;
    tti_mqtt_bin        raw;
} tti_mqtt_subscribe;

/* SUBACK / UNSUBACK (MQTT 5; a 3.1.1 UNSUBACK has none): one code per filter. */
typedef struct tti_mqtt_suback {
    const uint8_t *codes;
    size_t         count;
} tti_mqtt_suback;

typedef struct tti_mqtt_pkt {
    uint8_t        type;      /* tti_mqtt_type */
    uint8_t        flags;     /* fixed-header low nibble (decoded; derived on encode) */
    uint8_t        reason;    /* MQTT 5 reason code, or 3.1.1 CONNACK return code */
    uint16_t       packet_id; /* PUBLISH QoS>0, PUB*, (UN)SUB* */
    size_t         len;       /* decode: whole packet size once the header is known */
    tti_mqtt_props props;     /* MQTT 5 */
    union {
        tti_mqtt_connect   connect;
        tti_mqtt_connack   connack;
        tti_mqtt_publish   publish;
        tti_mqtt_subscribe subscribe; /* SUBSCRIBE and UNSUBSCRIBE */
        tti_mqtt_suback    suback;    /* SUBACK and UNSUBACK */
    } u;
} tti_mqtt_pkt;

/* The fixed header alone. */
typedef struct tti_mqtt_fixed {
    uint8_t  type;
    uint8_t  flags;
    uint8_t  header_len; /* 2..5 */
    uint32_t remaining;  /* Remaining Length */
    size_t   total;      /* header_len + remaining */
} tti_mqtt_fixed;

/* ---- Decoding ----------------------------------------------------------- */

/**
 * Parse and check the fixed header (type, flags, Remaining Length) so a
 * transport learns the packet size early.
 * version: TTI_MQTT_V311 or TTI_MQTT_V5 (0 accepts either; AUTH is then allowed).
 * max_packet_size: largest whole packet accepted; 0 means the protocol maximum.
 *   A larger declared size is refused as soon as the length bytes are read.
 * Returns: header length (2..5), 0 if more bytes are needed, or TT_EPROTO.
 */
int tti_mqtt_decode_fixed(const uint8_t *data, size_t size, uint8_t version,
                          uint32_t max_packet_size, tti_mqtt_fixed *out, const char **why);

/**
 * Decode one control packet from the start of `data`.
 * version: the connection's protocol level (4 or 5). For CONNECT, 0 accepts
 *   either level; the level found is in out->u.connect.level.
 * max_packet_size: as for tti_mqtt_decode_fixed().
 * out: filled with views into `data`. When 0 is returned, out->len is the
 *   whole packet size if the fixed header is complete, else 0.
 * why: optional; set to a static English reason on error.
 * Returns: bytes consumed (> 0), 0 when incomplete, TT_EPROTO (malformed or
 *   forbidden) or TT_EINVAL (bad arguments).
 * Checks everything a packet shows on its own. Left to the session, which
 * knows the connection state: topic alias against Topic Alias Maximum,
 * packet direction (e.g. a client must not send Subscription Identifiers in
 * PUBLISH), a UTF-8 payload when Payload Format Indicator is 1 (see
 * tti_mqtt_utf8_valid), reason-code counts against the request, and a 3.1.1
 * empty client id without clean session. Shortened MQTT 5 forms are accepted
 * (acks with Remaining Length 2 or 3, DISCONNECT and AUTH with 0 or 1).
 */
int tti_mqtt_decode(const uint8_t *data, size_t size, uint8_t version,
                    uint32_t max_packet_size, tti_mqtt_pkt *out, const char **why);

/* ---- Encoding ----------------------------------------------------------- */

/**
 * Size of the encoded packet, after checking that it can be encoded.
 * Returns: bytes, or TT_EINVAL (see `why`).
 */
int tti_mqtt_encoded_len(const tti_mqtt_pkt *pkt, uint8_t version, const char **why);

/**
 * Encode `pkt` for protocol `version` into out[0..cap).
 * pkt->flags is ignored: it is derived from the packet fields.
 * Returns: bytes written, TT_EINVAL (not encodable; see `why`) or TT_ENOMEM
 *   (cap too small; nothing useful written).
 */
int tti_mqtt_encode(const tti_mqtt_pkt *pkt, uint8_t version, uint8_t *out, size_t cap,
                    const char **why);

/**
 * PUBLISH without its payload: fixed header (whose Remaining Length counts
 * pkt->u.publish.payload.len), topic, packet id and properties. The caller
 * then sends the payload bytes from wherever they are.
 * Returns: header bytes written, TT_EINVAL or TT_ENOMEM as tti_mqtt_encode().
 */
int tti_mqtt_encode_publish_header(const tti_mqtt_pkt *pkt, uint8_t version, uint8_t *out,
                                   size_t cap, const char **why);

/* ---- Iterators ---------------------------------------------------------- */

typedef struct tti_mqtt_iter {
    const void    *arr; /* caller array (encode side) or NULL */
    size_t         i, n;
    const uint8_t *p, *end; /* raw bytes (decode side) */
    bool           opts;    /* subscription entries carry an options byte */
} tti_mqtt_iter;

/* Subscription entries of a SUBSCRIBE or UNSUBSCRIBE. */
void tti_mqtt_subs_begin(tti_mqtt_iter *it, const tti_mqtt_pkt *pkt);
bool tti_mqtt_subs_next(tti_mqtt_iter *it, tti_mqtt_sub *out);
/* User properties, in wire order. */
void tti_mqtt_user_props_begin(tti_mqtt_iter *it, const tti_mqtt_props *props);
bool tti_mqtt_user_props_next(tti_mqtt_iter *it, tti_mqtt_user_prop *out);
/* Subscription identifiers, in wire order. */
void tti_mqtt_sub_ids_begin(tti_mqtt_iter *it, const tti_mqtt_props *props);
bool tti_mqtt_sub_ids_next(tti_mqtt_iter *it, uint32_t *out);

/* ---- Utilities ---------------------------------------------------------- */

/* MQTT 5 reason code name ("Not authorized"); "Unknown reason code" otherwise. */
const char *tti_mqtt_reason_str(uint8_t code);
/* MQTT 3.1.1 CONNACK return code text. */
const char *tti_mqtt_connack_rc_str(uint8_t code);
/* Packet type name ("PUBLISH"); "?" if unknown. */
const char *tti_mqtt_type_str(uint8_t type);
/* Whether `code` may appear in a packet of `type` under `version`. */
bool tti_mqtt_reason_allowed(uint8_t type, uint8_t version, uint8_t code);

/* MQTT-1.5.4 string rules: well-formed UTF-8, no U+0000, no surrogates. */
bool tti_mqtt_utf8_valid(const char *s, size_t len);
/* Topic Name for PUBLISH: valid string, non-empty, no '+' or '#'. */
bool tti_mqtt_topic_valid(const char *s, size_t len);
/* Topic Filter: valid string, non-empty, '#' last and alone in its level,
 * '+' alone in its level. In MQTT 5 also checks "$share/{name}/{filter}". */
bool tti_mqtt_filter_valid(const char *s, size_t len, uint8_t version);

#endif /* TTI_CODECS_MQTT_CODEC_H */
