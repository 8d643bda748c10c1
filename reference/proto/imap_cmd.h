/*
 * imap_cmd: IMAP4rev1 client commands (RFC 3501 9 grammar, RFC 7888 LITERAL+, RFC 4959
 * SASL-IR, RFC 4315 UID EXPUNGE, RFC 2177 IDLE, RFC 2971 ID, RFC 5161 ENABLE, RFC 5258 LIST
 * selection/return options SUBSCRIBED REMOTE RECURSIVEMATCH CHILDREN and RFC 6154 SPECIAL-USE;
 * other LIST options are refused; RFC 7162 CONDSTORE and QRESYNC parameters), pure.
 *
 * DESCRIPTION
 *   Two stages, both free of sockets and globals:
 *
 *   imap_reader frames commands from a byte stream fed in chunks of any size. A command is a
 *   line, or lines joined by literals: a line ending in {n} (synchronizing) or {n+} (LITERAL+)
 *   is followed by exactly n bytes of any value and then the rest of the command. When a
 *   synchronizing literal is announced, imap_reader_feed returns IMAP_READ_CONTINUE and the
 *   caller must send "+ " before the client sends the bytes. A complete command comes back as
 *   IMAP_READ_COMMAND with its raw bytes (lines without CRLF joined as received, literals
 *   verbatim) in reader->cmd, its length in reader->cmd_len.
 *
 *   imap_cmd_parse parses one framed command: tag, command name (with UID prefix), and its
 *   arguments for every command the server knows, into struct imap_cmd (free it with
 *   imap_cmd_free). Sequence sets keep '*' as IMAP_SEQ_STAR; the server resolves it.
 *   FETCH macros ALL/FAST/FULL are expanded; BODY[section]<partial> and BODY.PEEK are parsed
 *   into section paths (numbers), the text part (HEADER, HEADER.FIELDS [.NOT], TEXT, MIME) and
 *   the partial range. SEARCH keys become a tree in prefix order (see imap_search_key).
 *   Failures come back as the text of a tagged BAD reply, static.
 *
 * SECURITY
 *   Everything is untrusted. Limits: IMAP_LINE_MAX bytes per line (a longer line is reported
 *   once, then discarded up to its LF), a literal at most the reader's literal_max bytes
 *   (a synchronizing one over it gets IMAP_READ_ERROR before any byte of it is sent; a
 *   LITERAL+ one over it is IMAP_READ_FATAL: the bytes are coming and the caller closes),
 *   IMAP_COMMAND_MAX bytes per command besides one literal's worth (APPEND's message),
 *   IMAP_LITERALS_MAX literals per command,
 *   IMAP_SEQ_RANGES_MAX ranges in a sequence set, IMAP_FETCH_ATTS_MAX fetch items,
 *   IMAP_SEARCH_KEYS_MAX search keys nested at most IMAP_SEARCH_DEPTH_MAX deep,
 *   IMAP_FLAGS_MAX flags, IMAP_SECTION_DEPTH_MAX section numbers. Numbers are 32-bit
 *   non-zero where RFC 3501 says nz-number; anything larger is refused, not wrapped.
 *   QRESYNC's known-uids and sequence match sets are kept as ranges (IMAP_SEQ_RANGES_MAX
 *   each), never expanded: "1:4294967295" costs one range; the match sets' element counts
 *   are compared by arithmetic on the ranges.
 */
#ifndef ZOLDER_IMAP_CMD_H
#define ZOLDER_IMAP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define IMAP_LINE_MAX 8192
#define IMAP_COMMAND_MAX (1024UL * 1024)
#define IMAP_LITERALS_MAX 64
#define IMAP_TAG_MAX 64
#define IMAP_STRING_MAX 65536
#define IMAP_SEQ_RANGES_MAX 1024
#define IMAP_FETCH_ATTS_MAX 64
#define IMAP_HEADER_FIELDS_MAX 64
#define IMAP_SECTION_DEPTH_MAX 16
#define IMAP_SEARCH_KEYS_MAX 256
#define IMAP_SEARCH_DEPTH_MAX 16
#define IMAP_FLAGS_MAX 64
#define IMAP_ITEMS_MAX 32
#define IMAP_SEQ_STAR 0u   /* '*' in a sequence set: the largest number in use */

/* ---- framing -------------------------------------------------------------------------------- */

enum imap_read_result {
    IMAP_READ_MORE,      /* everything fed was taken; feed more */
    IMAP_READ_CONTINUE,  /* a synchronizing literal was announced: send "+ ...", feed on */
    IMAP_READ_COMMAND,   /* reader->cmd holds a complete command; feed the rest after it */
    IMAP_READ_ERROR,     /* this command is refused (reader->error); the reader went on */
    IMAP_READ_FATAL,     /* the stream cannot be framed any more (reader->error): close */
};

struct imap_reader {
    size_t literal_max;     /* the caller may change it between commands (0 at init: IMAP_STRING_MAX) */
    char *cmd;              /* the framed command when IMAP_READ_COMMAND, NUL-terminated */
    size_t cmd_len;
    const char *error;
    char error_tag[IMAP_TAG_MAX + 1]; /* the tag of the refused command, or "*" */
    /* internal */
    size_t cap;
    size_t line_start;      /* where the current line starts in cmd */
    unsigned long long literal_left;
    unsigned nliterals;
    bool in_literal;
    bool discarding;        /* dropping a too-long line up to its LF */
    bool complete;          /* cmd holds a command that the next feed discards */
};

void imap_reader_init(struct imap_reader *r, size_t literal_max);
/*
 * Takes bytes up to the first event; *used_r says how many. Call again with the rest
 * (IMAP_READ_MORE always means all were used).
 */
enum imap_read_result imap_reader_feed(struct imap_reader *r, const char *data, size_t len, size_t *used_r);
void imap_reader_free(struct imap_reader *r);

/* ---- commands ------------------------------------------------------------------------------- */

enum imap_verb {
    IMAP_VERB_UNKNOWN = 0,
    IMAP_VERB_CAPABILITY,
    IMAP_VERB_NOOP,
    IMAP_VERB_LOGOUT,
    IMAP_VERB_STARTTLS,
    IMAP_VERB_AUTHENTICATE,
    IMAP_VERB_LOGIN,
    IMAP_VERB_SELECT,
    IMAP_VERB_EXAMINE,
    IMAP_VERB_CREATE,
    IMAP_VERB_DELETE,
    IMAP_VERB_RENAME,
    IMAP_VERB_SUBSCRIBE,
    IMAP_VERB_UNSUBSCRIBE,
    IMAP_VERB_LIST,
    IMAP_VERB_LSUB,
    IMAP_VERB_STATUS,
    IMAP_VERB_APPEND,
    IMAP_VERB_CHECK,
    IMAP_VERB_CLOSE,
    IMAP_VERB_UNSELECT,
    IMAP_VERB_EXPUNGE,
    IMAP_VERB_SEARCH,
    IMAP_VERB_FETCH,
    IMAP_VERB_STORE,
    IMAP_VERB_COPY,
    IMAP_VERB_MOVE,
    IMAP_VERB_IDLE,
    IMAP_VERB_ID,
    IMAP_VERB_ENABLE,
    IMAP_VERB_NAMESPACE,
    IMAP_VERB_COUNT_,
};

struct imap_seq_range {
    uint32_t lo, hi;   /* as written (lo may be > hi); IMAP_SEQ_STAR for '*' */
};

struct imap_seqset {
    struct imap_seq_range *ranges;
    size_t n;
    bool saved;        /* "$" (RFC 5182): not supported, never set */
};

/* A range's bounds with '*' as star, low first ("5:2" is 2:5, RFC 3501 9 seq-range). */
static inline void imap_seq_range_bounds(const struct imap_seq_range *r, uint32_t star, uint32_t *lo_r,
                                         uint32_t *hi_r)
{
    uint32_t lo = r->lo == IMAP_SEQ_STAR ? star : r->lo, hi = r->hi == IMAP_SEQ_STAR ? star : r->hi;
    *lo_r = lo < hi ? lo : hi;
    *hi_r = lo < hi ? hi : lo;
}

enum imap_fetch_kind {
    IMAP_FETCH_FLAGS,
    IMAP_FETCH_UID,
    IMAP_FETCH_INTERNALDATE,
    IMAP_FETCH_RFC822_SIZE,
    IMAP_FETCH_ENVELOPE,
    IMAP_FETCH_BODYSTRUCTURE,
    IMAP_FETCH_BODY,          /* BODY without section: the non-extensible structure */
    IMAP_FETCH_RFC822,        /* = BODY[] (sets \Seen) */
    IMAP_FETCH_RFC822_HEADER, /* = BODY.PEEK[HEADER] */
    IMAP_FETCH_RFC822_TEXT,   /* = BODY[TEXT] (sets \Seen) */
    IMAP_FETCH_SECTION,       /* BODY[...] or BODY.PEEK[...] */
    IMAP_FETCH_MODSEQ,        /* RFC 7162 */
};

enum imap_section_text {
    IMAP_SECTION_ALL,          /* BODY[] or BODY[1.2] */
    IMAP_SECTION_HEADER,
    IMAP_SECTION_HEADER_FIELDS,
    IMAP_SECTION_HEADER_FIELDS_NOT,
    IMAP_SECTION_TEXT,
    IMAP_SECTION_MIME,
};

struct imap_fetch_att {
    enum imap_fetch_kind kind;
    bool peek;
    uint32_t part[IMAP_SECTION_DEPTH_MAX];
    size_t nparts;
    enum imap_section_text text;
    char **fields;             /* HEADER.FIELDS names as given */
    size_t nfields;
    bool partial;
    uint32_t partial_offset, partial_length;
};

enum imap_store_mode { IMAP_STORE_REPLACE, IMAP_STORE_ADD, IMAP_STORE_REMOVE };

enum imap_search_type {
    IMAP_SK_ALL, IMAP_SK_AND,            /* AND: a parenthesised list of nchildren keys */
    IMAP_SK_NOT, IMAP_SK_OR,             /* followed by 1 / 2 keys */
    IMAP_SK_SEQSET, IMAP_SK_UID,
    IMAP_SK_FLAG, IMAP_SK_UNFLAG,        /* str: \Seen, \Deleted, ... or a keyword */
    IMAP_SK_NEW, IMAP_SK_OLD, IMAP_SK_RECENT,
    IMAP_SK_HEADER,                      /* str field name, str2 value; FROM/TO/... too */
    IMAP_SK_BODY, IMAP_SK_TEXT,
    IMAP_SK_BEFORE, IMAP_SK_ON, IMAP_SK_SINCE,            /* INTERNALDATE, date only */
    IMAP_SK_SENTBEFORE, IMAP_SK_SENTON, IMAP_SK_SENTSINCE, /* Date: header */
    IMAP_SK_LARGER, IMAP_SK_SMALLER,
    IMAP_SK_MODSEQ,                      /* RFC 7162: modseq (an entry name and type are read, ignored) */
};

struct imap_search_key {
    enum imap_search_type type;
    size_t nchildren;          /* AND */
    char *str, *str2;
    struct imap_seqset set;
    uint32_t number;
    time_t date;               /* 00:00 UTC of the day given */
    unsigned long long modseq; /* MODSEQ */
};

struct imap_cmd {
    char tag[IMAP_TAG_MAX + 1];
    enum imap_verb verb;
    bool uid;                  /* UID FETCH/STORE/SEARCH/COPY/MOVE/EXPUNGE */
    /* strings: LOGIN user, password; mailbox names; AUTHENTICATE mechanism, initial response */
    char *arg1, *arg2;
    size_t arg1_len, arg2_len; /* astrings may hold NUL bytes from literals */
    bool has_arg2;
    struct imap_seqset set;    /* FETCH STORE COPY MOVE, UID EXPUNGE */
    struct imap_fetch_att *atts;
    size_t natts;
    enum imap_store_mode store_mode;
    bool silent;
    char **flags;              /* STORE flags, APPEND flags */
    size_t nflags;
    char **items;              /* STATUS items, ENABLE capabilities (upper-cased) */
    size_t nitems;
    struct imap_search_key *keys; /* prefix order; keys[0] is the root (an AND) */
    size_t nkeys;
    /* LIST (RFC 5258): arg1 reference, arg2 the first pattern, items the others */
    bool list_extended;        /* a selection or return option, or a pattern list, was given */
    unsigned list_select;      /* IMAP_LIST_SEL_* */
    unsigned list_return;      /* IMAP_LIST_RET_* */
    /* RFC 7162 CONDSTORE */
    bool condstore;                 /* SELECT/EXAMINE ... (CONDSTORE) */
    unsigned long long changedsince; /* FETCH ... (CHANGEDSINCE n); 0: none */
    bool has_unchangedsince;        /* STORE ... (UNCHANGEDSINCE n) ... */
    unsigned long long unchangedsince;
    /*
     * RFC 7162 QRESYNC: SELECT/EXAMINE ... (QRESYNC (uidvalidity modseq [known-uids]
     * [(known-sequence-set known-uid-set)])). No '*' in any of the sets; the two match sets
     * hold the same number of values, each strictly ascending. A set not given has n == 0.
     */
    bool qresync;
    uint32_t qresync_uidvalidity;
    unsigned long long qresync_modseq;   /* 0 is accepted (everything changed) */
    struct imap_seqset qresync_known_uids;
    struct imap_seqset qresync_match_seqs, qresync_match_uids;
    bool vanished;                  /* UID FETCH ... (CHANGEDSINCE n VANISHED); only with both */
};

/* LIST selection options (RFC 5258 3.1, RFC 6154 3) and return options (RFC 5258 3.2). */
#define IMAP_LIST_SEL_SUBSCRIBED 0x1u
#define IMAP_LIST_SEL_REMOTE 0x2u
#define IMAP_LIST_SEL_RECURSIVEMATCH 0x4u
#define IMAP_LIST_SEL_SPECIAL_USE 0x8u
#define IMAP_LIST_RET_SUBSCRIBED 0x1u
#define IMAP_LIST_RET_CHILDREN 0x2u
#define IMAP_LIST_RET_SPECIAL_USE 0x4u

/* Parses a framed command. On false, *error_r is the BAD text and cmd->tag is the tag or "*". */
bool imap_cmd_parse(const char *data, size_t len, struct imap_cmd *cmd, const char **error_r);
void imap_cmd_free(struct imap_cmd *cmd);

const char *imap_verb_name(enum imap_verb verb);

/* Parses an IMAP date (d-Mon-yyyy) as 00:00 UTC of that day. */
bool imap_parse_date(const char *s, size_t len, time_t *date_r);

/* Parses an APPEND date-time ("dd-Mon-yyyy hh:mm:ss +zzzz", day space-padded or not). */
bool imap_parse_datetime(const char *s, size_t len, time_t *t_r);

/* True when flag (as the client wrote it) is one of the system flags, case-insensitively. */
bool imap_flag_is_system(const char *flag);

#endif
