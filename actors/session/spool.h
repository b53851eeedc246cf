/* The offline queue's file: a journal of the QoS 1 and 2 publishes a client
 * has accepted and not yet finished, so a process that stops or crashes sends
 * them after it starts again with the same file.
 *
 * The file is a 16-byte header ("TTSPOOL1", the MQTT version) and records:
 *   'A' seq:u64 len:u32 packet[len] crc:u32   a publish, encoded for the wire
 *   'D' seq:u64 crc:u32                       that publish is finished
 * little-endian, each CRC-32 over the record before it. Writes are buffered
 * and leave in one write() per turn, before the packets reach the socket. A
 * torn tail (a crash inside a write) is cut off when the file is opened.
 * When the file is mostly finished records it is rewritten with the live ones
 * (to a temporary file, then renamed). Writes are not synced: the file
 * survives the process, not the machine losing power.
 *
 * One session owns a spool; its loop thread (and tt_client_new before the
 * actor runs) is the only caller. The file is locked (flock) against a second
 * client. */
#ifndef TTI_SPOOL_H
#define TTI_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tether/err.h>

typedef struct tti_spool tti_spool;

/* One live record at open, oldest first. `data` is valid during the call. */
typedef tt_err (*tti_spool_rec_fn)(void *arg, uint64_t seq, const uint8_t *data, uint32_t len);

/* Open or create `path`. Errors: TT_EINVAL (not a queue file, or one written
 * for another MQTT version), TT_EBUSY (another client holds it), TT_EIO (it
 * cannot be read or written; `why` says why), or what `fn` returned. */
tt_err tti_spool_open(const char *path, uint8_t version, tti_spool_rec_fn fn, void *arg, tti_spool **out,
                      char *why, size_t whylen);

/* Record a publish; its sequence number (never 0). Buffered. */
uint64_t tti_spool_add(tti_spool *s, const uint8_t *data, uint32_t len);
/* Record that a publish finished. Buffered. */
void tti_spool_del(tti_spool *s, uint64_t seq, uint32_t len);
/* Write what is buffered. TT_OK, or TT_EIO after a failed write (the buffer
 * is kept and tried again; the error is logged once). */
tt_err tti_spool_flush(tti_spool *s);

/* True when the file is large and mostly finished records. */
bool tti_spool_wants_compact(const tti_spool *s);
/* Rewrite: begin, then every live record oldest first, then end. */
void tti_spool_compact_begin(tti_spool *s);
void tti_spool_compact_put(tti_spool *s, uint64_t seq, const uint8_t *data, uint32_t len);
tt_err tti_spool_compact_end(tti_spool *s);

/* Bytes in the file, and of live records (for tests and statistics). */
uint64_t tti_spool_file_bytes(const tti_spool *s);
size_t tti_spool_live(const tti_spool *s);

/* Flush and close. */
void tti_spool_close(tti_spool *s);

#endif
