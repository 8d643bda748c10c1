/*
 * Fuzz target for reference/proto/imap_cmd. The first byte picks a chunk size; the rest is a
 * client's byte stream, framed by imap_reader in chunks of that size and each framed command
 * parsed. Invariants: framing takes every byte and the same commands come out whatever the
 * chunk size; a failure has an error text; parsed commands are within the header's limits
 * (QRESYNC's sets too, without '*').
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int cond)
{
    if (!cond)
        abort();
}

static void fuzz_parse(const char *cmdtext, size_t len)
{
    struct imap_cmd cmd;
    const char *error = NULL;
    if (!imap_cmd_parse(cmdtext, len, &cmd, &error)) {
        fuzz_check(error != NULL && error[0] != '\0');
    } else {
        fuzz_check(cmd.verb != IMAP_VERB_UNKNOWN && cmd.tag[0] != '\0');
        fuzz_check(cmd.set.n <= IMAP_SEQ_RANGES_MAX && cmd.natts <= IMAP_FETCH_ATTS_MAX);
        fuzz_check(cmd.nflags <= IMAP_FLAGS_MAX && cmd.nkeys <= IMAP_SEARCH_KEYS_MAX);
        for (size_t i = 0; i < cmd.natts; i++)
            fuzz_check(cmd.atts[i].nparts <= IMAP_SECTION_DEPTH_MAX);
        /* QRESYNC (RFC 7162): bounded sets without '*'; VANISHED only in UID FETCH with CHANGEDSINCE */
        fuzz_check(cmd.qresync_known_uids.n <= IMAP_SEQ_RANGES_MAX && cmd.qresync_match_seqs.n <= IMAP_SEQ_RANGES_MAX &&
                   cmd.qresync_match_uids.n <= IMAP_SEQ_RANGES_MAX);
        fuzz_check(!cmd.qresync || cmd.qresync_uidvalidity != 0);
        fuzz_check((cmd.qresync_match_seqs.n == 0) == (cmd.qresync_match_uids.n == 0));
        for (size_t i = 0; i < cmd.qresync_match_seqs.n; i++)
            fuzz_check(cmd.qresync_match_seqs.ranges[i].lo <= cmd.qresync_match_seqs.ranges[i].hi &&
                       cmd.qresync_match_seqs.ranges[i].lo != IMAP_SEQ_STAR);
        for (size_t i = 0; i < cmd.qresync_known_uids.n; i++)
            fuzz_check(cmd.qresync_known_uids.ranges[i].lo != IMAP_SEQ_STAR &&
                       cmd.qresync_known_uids.ranges[i].hi != IMAP_SEQ_STAR);
        fuzz_check(!cmd.vanished || (cmd.uid && cmd.verb == IMAP_VERB_FETCH && cmd.changedsince > 0));
        if (cmd.verb == IMAP_VERB_SEARCH)
            fuzz_check(cmd.nkeys >= 2 && cmd.keys[0].type == IMAP_SK_AND && cmd.keys[0].nchildren >= 1);
    }
    fuzz_check(strlen(cmd.tag) <= IMAP_TAG_MAX);
    imap_cmd_free(&cmd);
}

/* Frames the stream in chunks of step bytes; returns a digest of the events. */
static unsigned long fuzz_frame(const char *s, size_t len, size_t step, int parse)
{
    struct imap_reader r;
    imap_reader_init(&r, 4096);
    unsigned long digest = 0;
    size_t pos = 0;
    while (pos < len) {
        size_t piece = len - pos < step ? len - pos : step;
        size_t off = 0;
        while (off < piece) {
            size_t used = 0;
            enum imap_read_result res = imap_reader_feed(&r, s + pos + off, piece - off, &used);
            fuzz_check(used <= piece - off);
            off += used;
            if (res != IMAP_READ_MORE)
                digest = digest * 31 + (unsigned long)res;
            if (res == IMAP_READ_COMMAND) {
                fuzz_check(r.cmd_len <= IMAP_COMMAND_MAX + r.literal_max);
                for (size_t i = 0; i < r.cmd_len; i++)
                    digest = digest * 131 + (unsigned char)r.cmd[i];
                if (parse)
                    fuzz_parse(r.cmd, r.cmd_len);
            } else if (res == IMAP_READ_ERROR || res == IMAP_READ_FATAL) {
                fuzz_check(r.error != NULL && r.error_tag[0] != '\0');
                if (res == IMAP_READ_FATAL) {
                    imap_reader_free(&r);
                    return digest;
                }
            } else if (res == IMAP_READ_MORE) {
                fuzz_check(off == piece);
            } else {
                fuzz_check(res == IMAP_READ_CONTINUE);
            }
        }
        pos += piece;
    }
    imap_reader_free(&r);
    return digest;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = 1 + data[0] % 16;
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    unsigned long whole = fuzz_frame(s, len, len ? len : 1, 1);
    fuzz_check(fuzz_frame(s, len, step, 0) == whole);
    /* every input also as one command, not framed, and as dates */
    fuzz_parse(s, len);
    time_t t;
    if (imap_parse_date(s, len, &t))
        fuzz_check(len >= 10 && len <= 11);
    if (imap_parse_datetime(s, len, &t))
        fuzz_check(len == 26);
    return 0;
}
