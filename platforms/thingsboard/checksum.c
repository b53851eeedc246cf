/* Firmware checksums as ThingsBoard prints them: SHA-256/384/512 and MD5
 * through wolfCrypt (hex digest), CRC-32 (IEEE, reflected) and MurmurHash3
 * (x86_32 and x64_128, seed 0) written here. The 32-bit and 128-bit hashes
 * are printed the way the server's hash codes print: bytes in little-endian
 * order (so the CRC-32 0x12345678 reads "78563412"). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/md5.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/sha512.h>

#include "actors/core/crc32.h"
#include "platforms/thingsboard/tb_internal.h"

uint32_t tti_tb_crc32(const void *data, size_t len) { return tti_crc32(0, data, len); }

static inline uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint32_t load32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t load64(const uint8_t *p) {
    return (uint64_t)load32(p) | (uint64_t)load32(p + 4) << 32;
}

static inline uint32_t fmix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static inline uint64_t fmix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

uint32_t tti_tb_murmur3_32(const void *data, size_t len, uint32_t seed) {
    const uint8_t *p = data;
    const uint32_t c1 = 0xcc9e2d51u, c2 = 0x1b873593u;
    uint32_t h = seed;
    size_t blocks = len / 4;
    for (size_t i = 0; i < blocks; i++) {
        uint32_t k = load32(p + i * 4);
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
        h = rotl32(h, 13);
        h = h * 5 + 0xe6546b64u;
    }
    const uint8_t *tail = p + blocks * 4;
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
    }
    h ^= (uint32_t)len;
    return fmix32(h);
}

void tti_tb_murmur3_128(const void *data, size_t len, uint32_t seed, uint64_t out[2]) {
    const uint8_t *p = data;
    const uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
    uint64_t h1 = seed, h2 = seed;
    size_t blocks = len / 16;
    for (size_t i = 0; i < blocks; i++) {
        uint64_t k1 = load64(p + i * 16), k2 = load64(p + i * 16 + 8);
        k1 *= c1;
        k1 = rotl64(k1, 31);
        k1 *= c2;
        h1 ^= k1;
        h1 = rotl64(h1, 27);
        h1 += h2;
        h1 = h1 * 5 + 0x52dce729;
        k2 *= c2;
        k2 = rotl64(k2, 33);
        k2 *= c1;
        h2 ^= k2;
        h2 = rotl64(h2, 31);
        h2 += h1;
        h2 = h2 * 5 + 0x38495ab5;
    }
    const uint8_t *tail = p + blocks * 16;
    uint64_t k1 = 0, k2 = 0;
    size_t rest = len & 15;
    for (size_t i = rest; i > 8; i--) k2 ^= (uint64_t)tail[i - 1] << ((i - 9) * 8);
    if (rest > 8) {
        k2 *= c2;
        k2 = rotl64(k2, 33);
        k2 *= c1;
        h2 ^= k2;
    }
    for (size_t i = rest < 8 ? rest : 8; i > 0; i--) k1 ^= (uint64_t)tail[i - 1] << ((i - 1) * 8);
    if (rest) {
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
    out[0] = h1;
    out[1] = h2;
}

static void hex_of(const uint8_t *b, size_t n, char *hex) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[b[i] >> 4];
        hex[2 * i + 1] = digits[b[i] & 15];
    }
    hex[2 * n] = '\0';
}

static void le32(uint32_t v, uint8_t *b) {
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
}

tt_err tt_tb_checksum(const char *algo, const void *data, size_t len, char *hex, size_t cap) {
    if (!algo || (!data && len) || !hex) return TT_EINVAL;
    if (len > UINT32_MAX) return TT_EINVAL;
    if (!data) data = "";
    uint8_t d[64];
    size_t n;
    int rc = 0;
    word32 wl = (word32)len;
    if (!strcasecmp(algo, "sha256")) {
        n = WC_SHA256_DIGEST_SIZE;
        rc = wc_Sha256Hash(data, wl, d);
    } else if (!strcasecmp(algo, "sha384")) {
        n = WC_SHA384_DIGEST_SIZE;
        rc = wc_Sha384Hash(data, wl, d);
    } else if (!strcasecmp(algo, "sha512")) {
        n = WC_SHA512_DIGEST_SIZE;
        rc = wc_Sha512Hash(data, wl, d);
    } else if (!strcasecmp(algo, "md5")) {
        n = WC_MD5_DIGEST_SIZE;
        rc = wc_Md5Hash(data, wl, d);
    } else if (!strcasecmp(algo, "crc32")) {
        n = 4;
        le32(tti_tb_crc32(data, len), d);
    } else if (!strcasecmp(algo, "murmur3_32")) {
        n = 4;
        le32(tti_tb_murmur3_32(data, len, 0), d);
    } else if (!strcasecmp(algo, "murmur3_128")) {
        uint64_t h[2];
        n = 16;
        tti_tb_murmur3_128(data, len, 0, h);
        for (int i = 0; i < 8; i++) {
            d[i] = (uint8_t)(h[0] >> (8 * i));
            d[8 + i] = (uint8_t)(h[1] >> (8 * i));
        }
    } else {
        return TT_ENOTSUP;
    }
    if (rc != 0) return TT_EINTERNAL;
    if (cap < 2 * n + 1) return TT_EINVAL;
    hex_of(d, n, hex);
    return TT_OK;
}
