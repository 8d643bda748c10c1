/*
 * clamd: a ClamAV daemon as a virus scanner back-end, over its socket with INSTREAM
 * (clamd(8): "zINSTREAM\0", then chunks of <4-byte big-endian length><data>, a zero length
 * to end; the answer is "stream: OK", "stream: NAME FOUND" or "... ERROR").
 *
 * The whole message goes as one stream: clamd decodes MIME and archives itself (ScanMail,
 * ScanArchive), with its own limits.
 *
 * SECURITY: clamd runs as its own user and never sees the spool or the mailboxes: it gets
 * the bytes over the socket. Every step is bounded by one deadline (connect, send, reply),
 * and the reply by CLAMD_REPLY_MAX bytes. Blocking I/O (poll with the deadline): the caller
 * runs in zolderd's event loop and accepts that stall (clamd_timeout).
 */
#ifndef ZOLDER_CLAMD_H
#define ZOLDER_CLAMD_H

#include <stddef.h>

#define CLAMD_REPLY_MAX 1024
#define CLAMD_CHUNK 65536

enum clamd_result {
    CLAMD_CLEAN,
    CLAMD_FOUND,   /* virus holds the signature name */
    CLAMD_ERROR,   /* error holds why: clamd down, timeout, size limit, bad answer */
};

/*
 * Parses clamd's answer to INSTREAM (without the terminating NUL/newline). Pure.
 * "stream: OK" -> CLEAN; "stream: Eicar-Signature FOUND" -> FOUND; anything else -> ERROR.
 */
enum clamd_result clamd_parse_reply(const char *reply, char *virus, size_t vsize);

/* Scans data with the clamd at spec ("unix:/path" or "ADDR:PORT") within timeout_ms. */
enum clamd_result clamd_scan(const char *spec, const char *data, size_t len, int timeout_ms,
                             char *virus, size_t vsize, char *error, size_t esize);

#endif
