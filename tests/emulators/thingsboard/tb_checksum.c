/* Firmware checksums in ThingsBoard's text forms: see tb_checksum.h. */
#include "tb_checksum.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

/* ---- CRC-32 (IEEE 802.3, reflected, as zlib and Guava) -------------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t tb_crc32(const void *data, size_t len) {
    (void)pthread_once(&crc_once, crc_init);
    const uint8_t *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* ---- MurmurHash3 ------------------------------------------------------------ */

static uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint32_t load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t load_le64(const uint8_t *p) {
    return (uint64_t)load_le32(p) | (uint64_t)load_le32(p + 4) << 32;
}

static uint32_t fmix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static uint64_t fmix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

uint32_t tb_murmur3_32(const void *data, size_t len, uint32_t seed) {
    const uint8_t *p = data;
    const uint32_t c1 = 0xcc9e2d51u, c2 = 0x1b873593u;
    uint32_t h = seed;
    size_t blocks = len / 4;
    for (size_t i = 0; i < blocks; i++) {
        uint32_t k = load_le32(p + 4 * i);
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
        h = rotl32(h, 13);
        h = h * 5 + 0xe6546b64u;
    }
    const uint8_t *tail = p + 4 * blocks;
    uint32_t k = 0;
    switch (len & 3) {
    case 3: k ^= (uint32_t)tail[2] << 16; /* fall through */
    case 2: k ^= (uint32_t)tail[1] << 8;  /* fall through */
    case 1:
        k ^= tail[0];
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
        break;
    default: break;
    }
    h ^= (uint32_t)len;
    return fmix32(h);
}

void tb_murmur3_128(const void *data, size_t len, uint32_t seed, uint64_t *out1, uint64_t *out2) {
    const uint8_t *p = data;
    const uint64_t c1 = 0x87c37b91114253d5ull, c2 = 0x4cf5ad432745937full;
    uint64_t h1 = seed, h2 = seed;
    size_t blocks = len / 16;
    for (size_t i = 0; i < blocks; i++) {
        uint64_t k1 = load_le64(p + 16 * i), k2 = load_le64(p + 16 * i + 8);
        k1 *= c1;
        k1 = rotl64(k1, 31);
        k1 *= c2;
        h1 ^= k1;
        h1 = rotl64(h1, 27);
        h1 += h2;
        h1 = h1 * 5 + 0x52dce729u;
        k2 *= c2;
        k2 = rotl64(k2, 33);
        k2 *= c1;
        h2 ^= k2;
        h2 = rotl64(h2, 31);
        h2 += h1;
        h2 = h2 * 5 + 0x38495ab5u;
    }
    const uint8_t *tail = p + 16 * blocks;
    size_t rest = len & 15;
    uint64_t k1 = 0, k2 = 0;
    for (size_t i = rest; i > 8; i--) k2 ^= (uint64_t)tail[i - 1] << (8 * (i - 9));
    if (rest > 8) {
        k2 *= c2;
        k2 = rotl64(k2, 33);
        k2 *= c1;
        h2 ^= k2;
    }
    for (size_t i = rest < 8 ? rest : 8; i > 0; i--) k1 ^= (uint64_t)tail[i - 1] << (8 * (i - 1));
    if (rest > 0) {
        k1 *= c1;
        k1 = rotl64(k1, 31);
        k1 *= c2;
        h1 ^= k1;
    }
    h1 ^= (uint64_t)len;
    h2 ^= (uint64_t)len;
    h1 += h2;
    h2 += h1;
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 += h2;
    h2 += h1;
    *out1 = h1;
    *out2 = h2;
}

/* ---- Text forms ------------------------------------------------------------- */

static void hex(const uint8_t *b, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static void put_le(uint8_t *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * i));
}

static const char *const names[] = { "SHA256", "SHA384", "SHA512", "MD5", "CRC32",
                                     "MURMUR3_32", "MURMUR3_128" };

bool tb_checksum_known(const char *algo) {
    if (!algo) return false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(algo, names[i]) == 0) return true;
    return false;
}

int tb_checksum_hex(const char *algo, const void *data, size_t len, char *out) {
    uint8_t d[64];
    const byte *in = data;
    word32 n = (word32)len;
    out[0] = '\0';
    if (!algo || len > UINT32_MAX) return -1;
    if (strcasecmp(algo, "SHA256") == 0) {
        if (wc_Sha256Hash(in, n, d) != 0) return -1;
        hex(d, 32, out);
    } else if (strcasecmp(algo, "SHA384") == 0) {
        if (wc_Sha384Hash(in, n, d) != 0) return -1;
        hex(d, 48, out);
    } else if (strcasecmp(algo, "SHA512") == 0) {
        if (wc_Sha512Hash(in, n, d) != 0) return -1;
        hex(d, 64, out);
    } else if (strcasecmp(algo, "MD5") == 0) {
        if (wc_Md5Hash(in, n, d) != 0) return -1;
        hex(d, 16, out);
    } else if (strcasecmp(algo, "CRC32") == 0) {
        put_le(d, tb_crc32(data, len), 4);
        hex(d, 4, out);
    } else if (strcasecmp(algo, "MURMUR3_32") == 0) {
        put_le(d, tb_murmur3_32(data, len, 0), 4);
        hex(d, 4, out);
    } else if (strcasecmp(algo, "MURMUR3_128") == 0) {
        uint64_t h1, h2;
        tb_murmur3_128(data, len, 0, &h1, &h2);
        put_le(d, h1, 8);
        put_le(d + 8, h2, 8);
        hex(d, 16, out);
    } else {
        return -1;
    }
    return 0;
}
