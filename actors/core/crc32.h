/* CRC-32 (IEEE 802.3, reflected, as zlib and ThingsBoard compute it). */
#ifndef TTI_CORE_CRC32_H
#define TTI_CORE_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC over more bytes: start with crc = 0. Any thread. */
uint32_t tti_crc32(uint32_t crc, const void *data, size_t len);

#endif
