/*
 * received: the Received: trace field (see received.h).
 *
 * DESCRIPTION
 *   Writes the field as a sequence of words and folds between words: a line is broken before
 *   "by" and before "for" (or before the date when there is no single recipient), and
 *   anywhere else between words when it would pass RECEIVED_WIDTH columns (a tab counts as
 *   8). Keyword and value ("by HOST") are never split, so a reader always finds them together.
 *
 *   Everything written comes from outside (the client's HELO above all), so each value is
 *   cleaned for its position before it is written:
 *     - words (HELO, reverse name, IP, host, protocol, queue id): printable ASCII except the
 *       bytes that would open or close a comment, literal, quoted string or path, end the
 *       clause list (';'), or split the word (space); each is replaced by '?'. The HELO is
 *       capped at RECEIVED_HELO_MAX bytes, other words at RECEIVED_WORD_MAX; a capped value
 *       ends in "...".
 *     - comment text (software, TLS details): spaces allowed, '(' ')' '\' replaced.
 *     - the recipient inside "for <...>": printable ASCII and space, '<' '>' replaced.
 *   A NULL or empty HELO or reverse name is written "unknown"; other NULL parts are left out
 *   (no "with", "id", software comment, or IP literal).
 *
 *   TLS wording: with tls_info set, the protocol is followed by the comment
 *   "(using TLS <tls_info>)", e.g. "with ESMTPS (using TLS version=TLSv1.3 cipher=...)".
 *
 * STANDARDS
 *   RFC 5321 4.4 (Time-stamp-line: From-domain, By-domain, With, ID, For, date after ';'),
 *   RFC 3848 (ESMTPS/ESMTPA/ESMTPSA protocol names), RFC 5322 2.2.3 (folding) and 3.3 (date).
 *
 * SECURITY
 *   No byte below 0x20 or above 0x7e from any input reaches the output, so a client cannot
 *   end the field early or inject another header. Every value is bounded.
 */
#include "received.h"

#include <string.h>

#include "timefmt.h"

#define RECEIVED_WIDTH 78
#define RECEIVED_TAB_COLS 8
#define RECEIVED_HELO_MAX 63 /* "Received: from " + 63 = 78 columns */
#define RECEIVED_WORD_MAX 255
#define RECEIVED_RCPT_MAX 256

enum received_join {
    RECEIVED_SPACE, /* a space, or a fold when the line would get too long */
    RECEIVED_BREAK, /* always a fold */
    RECEIVED_GLUE,  /* directly after the previous word */
};

struct received_writer {
    struct buf *out;
    size_t col;
    bool has_word; /* a word on this line, so folding before the next one gains room */
};

static void received_fold(struct received_writer *w)
{
    buf_append(w->out, "\r\n\t", 3);
    w->col = RECEIVED_TAB_COLS;
    w->has_word = false;
}

/* Emits prefix + text + suffix as one unbreakable word. */
static void received_emit(struct received_writer *w, enum received_join join, const char *prefix,
                          const char *text, const char *suffix)
{
    size_t n = strlen(prefix) + strlen(text) + strlen(suffix);
    if (join == RECEIVED_BREAK) {
        received_fold(w);
    } else if (join == RECEIVED_SPACE) {
        if (w->col + 1 + n > RECEIVED_WIDTH && w->has_word) {
            received_fold(w);
        } else {
            buf_append_char(w->out, ' ');
            w->col++;
        }
    }
    buf_append_str(w->out, prefix);
    buf_append_str(w->out, text);
    buf_append_str(w->out, suffix);
    w->col += n;
    w->has_word = true;
}

enum received_clean {
    RECEIVED_CLEAN_WORD,
    RECEIVED_CLEAN_COMMENT,
    RECEIVED_CLEAN_PATH,
};

/* Copies in into out (outsize > max), replacing what the position cannot carry. */
static void received_clean(const char *in, enum received_clean kind, size_t max, char *out)
{
    static const char *const unsafe[] = {
        [RECEIVED_CLEAN_WORD] = " ()<>[]\\\";",
        [RECEIVED_CLEAN_COMMENT] = "()\\",
        [RECEIVED_CLEAN_PATH] = "<>",
    };
    size_t len = strlen(in);
    bool capped = len > max;
    size_t n = capped ? max - 3 : len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 32 || c > 126 || strchr(unsafe[kind], c) != NULL)
            c = '?';
        out[i] = (char)c;
    }
    if (capped) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* Emits comment text word by word (so it can fold), wrapped in prefix and ")". */
static void received_comment(struct received_writer *w, const char *prefix, const char *text)
{
    char clean[RECEIVED_WORD_MAX + 1];
    received_clean(text, RECEIVED_CLEAN_COMMENT, RECEIVED_WORD_MAX, clean);
    char *p = clean;
    bool first = true;
    for (;;) {
        while (*p == ' ')
            p++;
        char *word = p;
        while (*p && *p != ' ')
            p++;
        bool last = true;
        for (const char *q = p; *q; q++)
            if (*q != ' ')
                last = false;
        char saved = *p;
        *p = '\0';
        received_emit(w, RECEIVED_SPACE, first ? prefix : "", word, last ? ")" : "");
        *p = saved;
        first = false;
        if (last)
            break;
    }
}

static bool received_empty(const char *s) { return s == NULL || s[0] == '\0'; }

void received_write(struct buf *out, const struct received_info *ri)
{
    struct received_writer w = {.out = out, .col = 0, .has_word = false};
    char word[RECEIVED_WORD_MAX + 1];

    buf_append_str(out, "Received:");
    w.col = strlen("Received:");

    received_clean(received_empty(ri->helo) ? "unknown" : ri->helo, RECEIVED_CLEAN_WORD,
                   RECEIVED_HELO_MAX, word);
    received_emit(&w, RECEIVED_SPACE, "from ", word, "");
    received_clean(received_empty(ri->rdns) ? "unknown" : ri->rdns, RECEIVED_CLEAN_WORD,
                   RECEIVED_WORD_MAX, word);
    if (received_empty(ri->ip)) {
        received_emit(&w, RECEIVED_SPACE, "(", word, ")");
    } else {
        received_emit(&w, RECEIVED_SPACE, "(", word, "");
        received_clean(ri->ip, RECEIVED_CLEAN_WORD, RECEIVED_WORD_MAX, word);
        received_emit(&w, RECEIVED_SPACE, "[", word, "])");
    }

    received_clean(received_empty(ri->by_host) ? "unknown" : ri->by_host, RECEIVED_CLEAN_WORD,
                   RECEIVED_WORD_MAX, word);
    received_emit(&w, RECEIVED_BREAK, "by ", word, "");
    if (!received_empty(ri->software))
        received_comment(&w, "(", ri->software);
    if (!received_empty(ri->with)) {
        received_clean(ri->with, RECEIVED_CLEAN_WORD, RECEIVED_WORD_MAX, word);
        received_emit(&w, RECEIVED_SPACE, "with ", word, "");
        if (!received_empty(ri->tls_info))
            received_comment(&w, "(using TLS ", ri->tls_info);
    }
    if (!received_empty(ri->queue_id)) {
        received_clean(ri->queue_id, RECEIVED_CLEAN_WORD, RECEIVED_WORD_MAX, word);
        received_emit(&w, RECEIVED_SPACE, "id ", word, "");
    }

    char date[TIMEFMT_RFC5322_LEN];
    timefmt_rfc5322(ri->when, date, sizeof date);
    if (!received_empty(ri->for_rcpt)) {
        char rcpt[RECEIVED_RCPT_MAX + 1];
        received_clean(ri->for_rcpt, RECEIVED_CLEAN_PATH, RECEIVED_RCPT_MAX, rcpt);
        received_emit(&w, RECEIVED_BREAK, "for <", rcpt, ">;");
        received_emit(&w, RECEIVED_SPACE, "", date, "");
    } else {
        received_emit(&w, RECEIVED_GLUE, "", ";", "");
        received_emit(&w, RECEIVED_BREAK, "", date, "");
    }
    buf_append(out, "\r\n", 2);
}
