/* Firmware checksums the way ThingsBoard writes them into `fw_checksum`.
 *
 * SHA256, SHA384, SHA512 and MD5: the digest in lowercase hex. CRC32,
 * MURMUR3_32 and MURMUR3_128 (seed 0; x86_32 and x64_128 variants): the
 * hash's bytes in little-endian order, in lowercase hex, so CRC32 of
 * "123456789" (0xcbf43926) is "2639f4cb" and MURMUR3_128 gives h1 as eight
 * little-endian bytes followed by h2. These are the forms the server and the
 * Python SDK agree on ("byte order reversed" for the non-cryptographic ones).
 *
 * A test fixture shared by the ThingsBoard emulator and its tests; the
 * library's adapter carries its own. Thread: any (no state). */
#ifndef TT_TB_CHECKSUM_H
#define TT_TB_CHECKSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest hex text written by tb_checksum_hex(), with its NUL (SHA512). */
#define TB_CHECKSUM_HEX_MAX 129

/* True if `algo` is one of the names above (case-insensitive). */
bool tb_checksum_known(const char *algo);

/* Write the checksum of data[0..len) with `algo` as NUL-terminated hex into
 * `out` (at least TB_CHECKSUM_HEX_MAX bytes). Returns 0, or -1 for an unknown
 * algorithm (out is then ""). */
int tb_checksum_hex(const char *algo, const void *data, size_t len, char *out);

/* The raw hashes, for tests that pin them to published vectors. */
uint32_t tb_crc32(const void *data, size_t len);
uint32_t tb_murmur3_32(const void *data, size_t len, uint32_t seed);
void tb_murmur3_128(const void *data, size_t len, uint32_t seed, uint64_t *h1, uint64_t *h2);

#ifdef __cplusplus
}
#endif

#endif /* TT_TB_CHECKSUM_H */
