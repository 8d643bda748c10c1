/*
 * imap_cmd: framing and parsing of IMAP4rev1 commands (see imap_cmd.h).
 *
 * STANDARDS
 *   RFC 3501 9 (formal syntax: tag, astring, literal, sequence-set, fetch-att, section,
 *   search-key, store-att-flags, flag-list, date), 7.5 (continuation); RFC 7888 (literal+);
 *   RFC 4959 (AUTHENTICATE initial response); RFC 4315 (UID EXPUNGE); RFC 6851 (MOVE);
 *   RFC 7162 7 (modifiers: CHANGEDSINCE, UNCHANGEDSINCE, VANISHED; select-param CONDSTORE
 *   and QRESYNC; mod-sequence-value).
 */
#include "imap_cmd.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

/* ---- framing ------------------------------------------------------------------------------- */

void imap_reader_init(struct imap_reader *r, size_t literal_max)
{
    memset(r, 0, sizeof *r);
    r->literal_max = literal_max ? literal_max : IMAP_STRING_MAX;
}

void imap_reader_free(struct imap_reader *r)
{
    free(r->cmd);
    memset(r, 0, sizeof *r);
}

static void imap_reader_append(struct imap_reader *r, const char *data, size_t len)
{
    if (r->cmd_len + len + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < r->cmd_len + len + 1)
            cap *= 2;
        r->cmd = xrealloc(r->cmd, cap);
        r->cap = cap;
    }
    memcpy(r->cmd + r->cmd_len, data, len);
    r->cmd_len += len;
    r->cmd[r->cmd_len] = '\0';
}

static bool imap_tag_char(unsigned char c)
{
    /* ASTRING-CHAR but '+' (RFC 3501 9: tag) */
    return c > 0x20 && c < 0x7f && !strchr("(){%*\"\\+", c);
}

/* The tag of the command being framed, for a tagged BAD; "*" when there is none. */
static void imap_reader_take_tag(struct imap_reader *r)
{
    size_t n = 0;
    while (n < r->cmd_len && n < IMAP_TAG_MAX && imap_tag_char((unsigned char)r->cmd[n]))
        n++;
    if (n == 0 || (n < r->cmd_len && r->cmd[n] != ' ')) {
        strcpy(r->error_tag, "*");
        return;
    }
    memcpy(r->error_tag, r->cmd, n);
    r->error_tag[n] = '\0';
}

static void imap_reader_reset(struct imap_reader *r)
{
    r->cmd_len = 0;
    r->line_start = 0;
    r->nliterals = 0;
    r->in_literal = false;
    r->literal_left = 0;
    if (r->cmd)
        r->cmd[0] = '\0';
}

/* The literal announced at the end of line [start, cmd_len): {n} or {n+}. */
static bool imap_reader_literal(const struct imap_reader *r, unsigned long long *n_r, bool *sync_r)
{
    const char *line = r->cmd + r->line_start;
    size_t len = r->cmd_len - r->line_start;
    if (len < 3 || line[len - 1] != '}')
        return false;
    size_t end = len - 1;
    *sync_r = true;
    if (line[end - 1] == '+') {
        *sync_r = false;
        end--;
    }
    size_t start = end;
    while (start > 0 && isdigit((unsigned char)line[start - 1]))
        start--;
    if (start == end || start == 0 || line[start - 1] != '{' || end - start > 19)
        return false;
    unsigned long long n = 0;
    for (size_t i = start; i < end; i++)
        n = n * 10 + (unsigned)(line[i] - '0');
    *n_r = n;
    return true;
}

enum imap_read_result imap_reader_feed(struct imap_reader *r, const char *data, size_t len, size_t *used_r)
{
    size_t i = 0;
    r->error = NULL;
    if (r->complete) {
        r->complete = false;
        imap_reader_reset(r);
    }
    while (i < len) {
        if (r->in_literal) {
            size_t take = len - i;
            if (take > r->literal_left)
                take = (size_t)r->literal_left;
            imap_reader_append(r, data + i, take);
            i += take;
            r->literal_left -= take;
            if (r->literal_left == 0) {
                r->in_literal = false;
                r->line_start = r->cmd_len;
            }
            continue;
        }
        const char *lf = memchr(data + i, '\n', len - i);
        size_t chunk = lf ? (size_t)(lf - (data + i)) : len - i;
        if (r->discarding) {
            i += chunk;
            if (lf) {
                i++;
                r->discarding = false;
                imap_reader_reset(r);
            }
            continue;
        }
        if (r->cmd_len - r->line_start + chunk > IMAP_LINE_MAX || r->cmd_len + chunk > IMAP_COMMAND_MAX + r->literal_max) {
            imap_reader_append(r, data + i, chunk < IMAP_TAG_MAX + 1 ? chunk : IMAP_TAG_MAX + 1);
            imap_reader_take_tag(r);
            r->error = "Command line too long.";
            i += chunk;
            if (lf)
                i++;
            else
                r->discarding = true;
            imap_reader_reset(r);
            *used_r = i;
            return IMAP_READ_ERROR;
        }
        imap_reader_append(r, data + i, chunk);
        i += chunk;
        if (!lf)
            break;
        i++; /* the LF */
        if (r->cmd_len > r->line_start && r->cmd[r->cmd_len - 1] == '\r')
            r->cmd[--r->cmd_len] = '\0';
        unsigned long long n;
        bool sync;
        if (imap_reader_literal(r, &n, &sync)) {
            if (n > r->literal_max || r->nliterals >= IMAP_LITERALS_MAX ||
                r->cmd_len + n > IMAP_COMMAND_MAX + (unsigned long long)r->literal_max) {
                imap_reader_take_tag(r);
                r->error = n > r->literal_max ? "Literal too large." : "Command too large.";
                imap_reader_reset(r);
                *used_r = i;
                if (!sync) {
                    r->discarding = false;
                    return IMAP_READ_FATAL;
                }
                return IMAP_READ_ERROR;
            }
            r->nliterals++;
            r->literal_left = n;
            r->in_literal = n > 0;
            r->line_start = r->cmd_len;
            if (sync) {
                *used_r = i;
                return IMAP_READ_CONTINUE;
            }
            continue;
        }
        r->complete = true;
        *used_r = i;
        return IMAP_READ_COMMAND;
    }
    *used_r = len;
    return IMAP_READ_MORE;
}

/* ---- the grammar --------------------------------------------------------------------------- */

struct imap_p {
    const char *s;
    size_t len, pos;
    const char *error;
};

static bool imap_fail(struct imap_p *p, const char *error)
{
    if (!p->error)
        p->error = error;
    return false;
}

static bool imap_at_end(const struct imap_p *p)
{
    return p->pos >= p->len;
}

static int imap_peek(const struct imap_p *p)
{
    return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static bool imap_sp(struct imap_p *p)
{
    if (imap_peek(p) != ' ')
        return imap_fail(p, "Missing argument or space expected.");
    p->pos++;
    return true;
}

static bool imap_char(struct imap_p *p, char c, const char *error)
{
    if (imap_peek(p) != (unsigned char)c)
        return imap_fail(p, error);
    p->pos++;
    return true;
}

static bool imap_atom_char(int c)
{
    return c > 0x20 && c < 0x7f && !strchr("(){%*\"\\]", c);
}

/* An atom (extra: characters allowed besides ATOM-CHAR, e.g. "]" for astring). */
static bool imap_atom(struct imap_p *p, const char *extra, const char **s_r, size_t *len_r)
{
    size_t start = p->pos;
    while (!imap_at_end(p)) {
        int c = imap_peek(p);
        if (!imap_atom_char(c) && !(c > 0x20 && c < 0x7f && extra && strchr(extra, c)))
            break;
        p->pos++;
    }
    if (p->pos == start)
        return imap_fail(p, "Atom expected.");
    *s_r = p->s + start;
    *len_r = p->pos - start;
    return true;
}

static bool imap_word_is(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

static bool imap_number64(struct imap_p *p, unsigned long long max, unsigned long long *n_r)
{
    size_t start = p->pos;
    unsigned long long n = 0;
    while (isdigit(imap_peek(p))) {
        n = n * 10 + (unsigned)(p->s[p->pos] - '0');
        p->pos++;
        if (n > max)
            return imap_fail(p, "Number too large.");
    }
    if (p->pos == start)
        return imap_fail(p, "Number expected.");
    *n_r = n;
    return true;
}

static bool imap_number(struct imap_p *p, bool nonzero, uint32_t *n_r)
{
    unsigned long long n;
    if (!imap_number64(p, UINT32_MAX, &n))
        return false;
    if (nonzero && n == 0)
        return imap_fail(p, "Number 0 is not allowed here.");
    *n_r = (uint32_t)n;
    return true;
}

/* A quoted string or a literal; *out_r is a NUL-terminated copy. */
static bool imap_string(struct imap_p *p, char **out_r, size_t *len_r)
{
    int c = imap_peek(p);
    if (c == '"') {
        p->pos++;
        char *out = xmalloc(p->len - p->pos + 1);
        size_t n = 0;
        for (;;) {
            c = imap_peek(p);
            if (c < 0 || c == '\r' || c == '\n' || c == 0) {
                free(out);
                return imap_fail(p, "Unterminated quoted string.");
            }
            p->pos++;
            if (c == '"')
                break;
            if (c == '\\') {
                c = imap_peek(p);
                if (c != '"' && c != '\\') {
                    free(out);
                    return imap_fail(p, "Invalid escape in quoted string.");
                }
                p->pos++;
            }
            out[n++] = (char)c;
        }
        out[n] = '\0';
        if (n > IMAP_STRING_MAX) {
            free(out);
            return imap_fail(p, "String too long.");
        }
        *out_r = out;
        *len_r = n;
        return true;
    }
    if (c == '{') {
        p->pos++;
        unsigned long long n;
        if (!imap_number64(p, p->len, &n))
            return false;
        if (imap_peek(p) == '+')
            p->pos++;
        if (!imap_char(p, '}', "Invalid literal."))
            return false;
        if (p->len - p->pos < n)
            return imap_fail(p, "Literal shorter than announced.");
        char *out = xmalloc((size_t)n + 1);
        memcpy(out, p->s + p->pos, (size_t)n);
        out[n] = '\0';
        p->pos += (size_t)n;
        *out_r = out;
        *len_r = (size_t)n;
        return true;
    }
    return imap_fail(p, "String expected.");
}

/* astring = 1*ASTRING-CHAR / string; extra widens the atom (list-mailbox wildcards). */
static bool imap_astring_x(struct imap_p *p, const char *extra, char **out_r, size_t *len_r)
{
    int c = imap_peek(p);
    if (c == '"' || c == '{')
        return imap_string(p, out_r, len_r);
    const char *s;
    size_t len;
    if (!imap_atom(p, extra, &s, &len))
        return imap_fail(p, "String expected.");
    *out_r = xstrndup(s, len);
    *len_r = len;
    return true;
}

static bool imap_astring(struct imap_p *p, char **out_r, size_t *len_r)
{
    return imap_astring_x(p, "]", out_r, len_r);
}

/* A NUL-free astring (names, header values to search). */
static bool imap_astring_text(struct imap_p *p, char **out_r)
{
    size_t len;
    if (!imap_astring(p, out_r, &len))
        return false;
    if (strlen(*out_r) != len) {
        free(*out_r);
        *out_r = NULL;
        return imap_fail(p, "NUL byte in a string.");
    }
    return true;
}

static bool imap_seq_number(struct imap_p *p, uint32_t *n_r)
{
    if (imap_peek(p) == '*') {
        p->pos++;
        *n_r = IMAP_SEQ_STAR;
        return true;
    }
    return imap_number(p, true, n_r) || imap_fail(p, "Invalid sequence set.");
}

static bool imap_seqset(struct imap_p *p, struct imap_seqset *set)
{
    for (;;) {
        struct imap_seq_range r;
        if (!imap_seq_number(p, &r.lo))
            return imap_fail(p, "Invalid sequence set.");
        r.hi = r.lo;
        if (imap_peek(p) == ':') {
            p->pos++;
            if (!imap_seq_number(p, &r.hi))
                return false;
        }
        if (set->n >= IMAP_SEQ_RANGES_MAX)
            return imap_fail(p, "Sequence set has too many ranges.");
        set->ranges = xreallocarray(set->ranges, set->n + 1, sizeof *set->ranges);
        set->ranges[set->n++] = r;
        if (imap_peek(p) != ',')
            return true;
        p->pos++;
    }
}

bool imap_parse_date(const char *s, size_t len, time_t *date_r)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    size_t i = 0;
    unsigned day = 0, year = 0;
    while (i < len && i < 2 && isdigit((unsigned char)s[i]))
        day = day * 10 + (unsigned)(s[i++] - '0');
    if (i == 0 || day == 0 || day > 31 || len != i + 9 || s[i] != '-' || s[i + 4] != '-')
        return false;
    int month = -1;
    for (int m = 0; m < 12; m++)
        if (strncasecmp(s + i + 1, months + (ptrdiff_t)m * 3, 3) == 0)
            month = m;
    if (month < 0)
        return false;
    for (size_t k = i + 5; k < len; k++) {
        if (!isdigit((unsigned char)s[k]))
            return false;
        year = year * 10 + (unsigned)(s[k] - '0');
    }
    if (year < 1900 || year > 9999)
        return false;
    struct tm tm = {.tm_mday = (int)day, .tm_mon = month, .tm_year = (int)year - 1900};
    *date_r = timegm(&tm);
    return true;
}

bool imap_parse_datetime(const char *s, size_t len, time_t *t_r)
{
    /* date-day-fixed "-" date-month "-" date-year SP time SP zone (RFC 3501 9) */
    if (len != 26 || s[2] != '-' || s[6] != '-' || s[11] != ' ' || s[14] != ':' || s[17] != ':' || s[20] != ' ' ||
        (s[21] != '+' && s[21] != '-'))
        return false;
    char day[12];
    size_t n = 0;
    if (s[0] != ' ')
        day[n++] = s[0];
    memcpy(day + n, s + 1, 10);
    n += 10;
    time_t date;
    if (!imap_parse_date(day, n, &date))
        return false;
    int v[7];
    static const size_t at[] = {12, 15, 18, 22, 24};
    for (size_t i = 0; i < 5; i++) {
        if (!isdigit((unsigned char)s[at[i]]) || !isdigit((unsigned char)s[at[i] + 1]))
            return false;
        v[i] = (s[at[i]] - '0') * 10 + (s[at[i] + 1] - '0');
    }
    if (v[0] > 23 || v[1] > 59 || v[2] > 60 || v[4] > 59)
        return false;
    long zone = (long)(v[3] * 60 + v[4]) * 60;
    *t_r = date + (time_t)v[0] * 3600 + (time_t)v[1] * 60 + v[2] - (s[21] == '+' ? zone : -zone);
    return true;
}

static bool imap_date(struct imap_p *p, time_t *date_r)
{
    char *s;
    size_t len;
    bool quoted = imap_peek(p) == '"';
    if (quoted) {
        if (!imap_string(p, &s, &len))
            return false;
    } else {
        const char *a;
        if (!imap_atom(p, NULL, &a, &len))
            return imap_fail(p, "Date expected.");
        s = xstrndup(a, len);
    }
    bool ok = imap_parse_date(s, len, date_r);
    free(s);
    return ok || imap_fail(p, "Invalid date (expected d-Mon-yyyy).");
}

bool imap_flag_is_system(const char *flag)
{
    static const char *const system[] = {"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "\\Recent"};
    for (size_t i = 0; i < sizeof system / sizeof system[0]; i++)
        if (strcasecmp(flag, system[i]) == 0)
            return true;
    return false;
}

/* flag = "\" atom / atom (keywords); "\*" only where allowed (never in commands). */
static bool imap_flag(struct imap_p *p, char **out_r)
{
    size_t start = p->pos;
    if (imap_peek(p) == '\\')
        p->pos++;
    const char *a;
    size_t len;
    if (!imap_atom(p, NULL, &a, &len))
        return imap_fail(p, "Invalid flag.");
    *out_r = xstrndup(p->s + start, p->pos - start);
    if (p->s[start] == '\\' && !imap_flag_is_system(*out_r)) {
        free(*out_r);
        *out_r = NULL;
        return imap_fail(p, "Unknown system flag.");
    }
    return true;
}

static bool imap_add_flag(struct imap_p *p, struct imap_cmd *cmd)
{
    char *f;
    if (cmd->nflags >= IMAP_FLAGS_MAX)
        return imap_fail(p, "Too many flags.");
    if (!imap_flag(p, &f))
        return false;
    cmd->flags = xreallocarray(cmd->flags, cmd->nflags + 1, sizeof *cmd->flags);
    cmd->flags[cmd->nflags++] = f;
    return true;
}

/* flag-list = "(" [flag *(SP flag)] ")" */
static bool imap_flag_list(struct imap_p *p, struct imap_cmd *cmd)
{
    if (!imap_char(p, '(', "Flag list expected."))
        return false;
    if (imap_peek(p) == ')') {
        p->pos++;
        return true;
    }
    for (;;) {
        if (!imap_add_flag(p, cmd))
            return false;
        if (imap_peek(p) == ')') {
            p->pos++;
            return true;
        }
        if (!imap_sp(p))
            return false;
    }
}

static bool imap_add_item(struct imap_p *p, struct imap_cmd *cmd)
{
    const char *a;
    size_t len;
    if (cmd->nitems >= IMAP_ITEMS_MAX)
        return imap_fail(p, "Too many items.");
    if (!imap_atom(p, NULL, &a, &len))
        return false;
    char *item = xstrndup(a, len);
    for (char *c = item; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    cmd->items = xreallocarray(cmd->items, cmd->nitems + 1, sizeof *cmd->items);
    cmd->items[cmd->nitems++] = item;
    return true;
}

/* ---- FETCH --------------------------------------------------------------------------------- */

/* A fetch item name: letters, digits and dots (BODY.PEEK, RFC822.SIZE, HEADER.FIELDS). */
static void imap_name(struct imap_p *p, const char **s_r, size_t *len_r)
{
    size_t start = p->pos;
    while (!imap_at_end(p) && (isalnum(imap_peek(p)) || imap_peek(p) == '.'))
        p->pos++;
    *s_r = p->s + start;
    *len_r = p->pos - start;
}

static bool imap_section(struct imap_p *p, struct imap_fetch_att *a)
{
    if (!imap_char(p, '[', "Section expected."))
        return false;
    a->kind = IMAP_FETCH_SECTION;
    while (isdigit(imap_peek(p))) {
        if (a->nparts >= IMAP_SECTION_DEPTH_MAX)
            return imap_fail(p, "Section nested too deep.");
        if (!imap_number(p, true, &a->part[a->nparts++]))
            return false;
        if (imap_peek(p) != '.')
            break;
        p->pos++;
        if (!isdigit(imap_peek(p)))
            break;
    }
    if (a->nparts > 0 && p->s[p->pos - 1] != '.' && imap_peek(p) != ']')
        return imap_fail(p, "Invalid section.");
    const char *s;
    size_t len;
    imap_name(p, &s, &len);
    if (len == 0)
        a->text = IMAP_SECTION_ALL;
    else if (imap_word_is(s, len, "HEADER"))
        a->text = IMAP_SECTION_HEADER;
    else if (imap_word_is(s, len, "HEADER.FIELDS"))
        a->text = IMAP_SECTION_HEADER_FIELDS;
    else if (imap_word_is(s, len, "HEADER.FIELDS.NOT"))
        a->text = IMAP_SECTION_HEADER_FIELDS_NOT;
    else if (imap_word_is(s, len, "TEXT"))
        a->text = IMAP_SECTION_TEXT;
    else if (imap_word_is(s, len, "MIME") && a->nparts > 0)
        a->text = IMAP_SECTION_MIME;
    else
        return imap_fail(p, "Invalid section.");
    if (len == 0 && a->nparts > 0 && p->s[p->pos - 1] == '.')
        return imap_fail(p, "Invalid section.");
    if (a->text == IMAP_SECTION_HEADER_FIELDS || a->text == IMAP_SECTION_HEADER_FIELDS_NOT) {
        if (!imap_sp(p) || !imap_char(p, '(', "Header list expected."))
            return false;
        for (;;) {
            char *f;
            if (a->nfields >= IMAP_HEADER_FIELDS_MAX)
                return imap_fail(p, "Too many header fields.");
            if (!imap_astring_text(p, &f))
                return false;
            a->fields = xreallocarray(a->fields, a->nfields + 1, sizeof *a->fields);
            a->fields[a->nfields++] = f;
            if (f[0] == '\0' || strchr(f, ':') || strchr(f, ' '))
                return imap_fail(p, "Invalid header field name.");
            if (imap_peek(p) == ')') {
                p->pos++;
                break;
            }
            if (!imap_sp(p))
                return false;
        }
    }
    if (!imap_char(p, ']', "Invalid section."))
        return false;
    if (imap_peek(p) == '<') {
        p->pos++;
        a->partial = true;
        if (!imap_number(p, false, &a->partial_offset) || !imap_char(p, '.', "Invalid partial.") ||
            !imap_number(p, true, &a->partial_length) || !imap_char(p, '>', "Invalid partial."))
            return imap_fail(p, "Invalid partial.");
    }
    return true;
}

static struct imap_fetch_att *imap_new_att(struct imap_p *p, struct imap_cmd *cmd)
{
    if (cmd->natts >= IMAP_FETCH_ATTS_MAX) {
        imap_fail(p, "Too many fetch items.");
        return NULL;
    }
    cmd->atts = xreallocarray(cmd->atts, cmd->natts + 1, sizeof *cmd->atts);
    struct imap_fetch_att *a = &cmd->atts[cmd->natts++];
    memset(a, 0, sizeof *a);
    return a;
}

static bool imap_add_simple(struct imap_p *p, struct imap_cmd *cmd, enum imap_fetch_kind kind)
{
    struct imap_fetch_att *a = imap_new_att(p, cmd);
    if (!a)
        return false;
    a->kind = kind;
    return true;
}

static bool imap_fetch_att(struct imap_p *p, struct imap_cmd *cmd, bool macros)
{
    static const struct {
        const char *name;
        enum imap_fetch_kind kind;
    } simple[] = {
        {"FLAGS", IMAP_FETCH_FLAGS},
        {"UID", IMAP_FETCH_UID},
        {"INTERNALDATE", IMAP_FETCH_INTERNALDATE},
        {"RFC822.SIZE", IMAP_FETCH_RFC822_SIZE},
        {"ENVELOPE", IMAP_FETCH_ENVELOPE},
        {"BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE},
        {"RFC822", IMAP_FETCH_RFC822},
        {"RFC822.HEADER", IMAP_FETCH_RFC822_HEADER},
        {"RFC822.TEXT", IMAP_FETCH_RFC822_TEXT},
        {"MODSEQ", IMAP_FETCH_MODSEQ},
    };
    const char *s;
    size_t len;
    imap_name(p, &s, &len);
    if (len == 0)
        return imap_fail(p, "Fetch item expected.");
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
        if (imap_word_is(s, len, simple[i].name))
            return imap_add_simple(p, cmd, simple[i].kind);
    bool peek = imap_word_is(s, len, "BODY.PEEK");
    if (imap_word_is(s, len, "BODY") || peek) {
        if (imap_peek(p) != '[') {
            if (peek)
                return imap_fail(p, "BODY.PEEK needs a section.");
            return imap_add_simple(p, cmd, IMAP_FETCH_BODY);
        }
        struct imap_fetch_att *a = imap_new_att(p, cmd);
        if (!a)
            return false;
        a->peek = peek;
        return imap_section(p, a);
    }
    if (macros) {
        static const enum imap_fetch_kind fast[] = {IMAP_FETCH_FLAGS, IMAP_FETCH_INTERNALDATE,
                                                     IMAP_FETCH_RFC822_SIZE, IMAP_FETCH_ENVELOPE,
                                                     IMAP_FETCH_BODY};
        size_t n = imap_word_is(s, len, "FAST") ? 3 : imap_word_is(s, len, "ALL") ? 4
                                                  : imap_word_is(s, len, "FULL")  ? 5
                                                                                  : 0;
        if (n) {
            for (size_t i = 0; i < n; i++)
                if (!imap_add_simple(p, cmd, fast[i]))
                    return false;
            return true;
        }
    }
    return imap_fail(p, "Unknown fetch item.");
}

/* RFC 7162 mod-sequence-value: 1 to 2^63 - 1 (zero: mod-sequence-valzer). */
static bool imap_modseq(struct imap_p *p, bool zero_ok, unsigned long long *n_r)
{
    if (!imap_number64(p, 0x7fffffffffffffffULL, n_r))
        return false;
    return zero_ok || *n_r > 0 || imap_fail(p, "MODSEQ 0 is not allowed here.");
}

/*
 * [SP "(" modifier *(SP modifier) ")"] after the fetch items: CHANGEDSINCE n (RFC 7162
 * 3.1.4.1) and VANISHED (3.2.6: UID FETCH only, and only with CHANGEDSINCE), each once.
 */
static bool imap_fetch_modifiers(struct imap_p *p, struct imap_cmd *cmd)
{
    if (imap_at_end(p))
        return true;
    if (!imap_sp(p) || !imap_char(p, '(', "Fetch modifiers expected."))
        return false;
    for (unsigned n = 0;; n++) {
        const char *s;
        size_t len;
        if (n > 0 && !imap_sp(p))
            return false;
        imap_name(p, &s, &len);
        if (imap_word_is(s, len, "CHANGEDSINCE") && !cmd->changedsince) {
            if (!imap_sp(p) || !imap_modseq(p, false, &cmd->changedsince))
                return false;
        } else if (imap_word_is(s, len, "VANISHED") && !cmd->vanished) {
            cmd->vanished = true;
        } else {
            return imap_fail(p, "Unknown or repeated fetch modifier.");
        }
        if (imap_peek(p) == ')') {
            p->pos++;
            break;
        }
    }
    if (cmd->vanished && !cmd->uid)
        return imap_fail(p, "VANISHED is a UID FETCH modifier.");
    if (cmd->vanished && !cmd->changedsince)
        return imap_fail(p, "VANISHED needs CHANGEDSINCE.");
    return true;
}

static bool imap_fetch_args(struct imap_p *p, struct imap_cmd *cmd)
{
    if (!imap_sp(p) || !imap_seqset(p, &cmd->set) || !imap_sp(p))
        return false;
    if (imap_peek(p) != '(')
        return imap_fetch_att(p, cmd, true) && imap_fetch_modifiers(p, cmd);
    p->pos++;
    for (;;) {
        if (!imap_fetch_att(p, cmd, false))
            return false;
        if (imap_peek(p) == ')') {
            p->pos++;
            return imap_fetch_modifiers(p, cmd);
        }
        if (!imap_sp(p))
            return false;
    }
}

/* ---- STORE --------------------------------------------------------------------------------- */

static bool imap_store_args(struct imap_p *p, struct imap_cmd *cmd)
{
    if (!imap_sp(p) || !imap_seqset(p, &cmd->set) || !imap_sp(p))
        return false;
    if (imap_peek(p) == '(') {
        /* RFC 7162 3.1.3: "(UNCHANGEDSINCE n)" before the item */
        p->pos++;
        const char *m;
        size_t mlen;
        imap_name(p, &m, &mlen);
        if (!imap_word_is(m, mlen, "UNCHANGEDSINCE"))
            return imap_fail(p, "Unknown store modifier.");
        if (!imap_sp(p) || !imap_modseq(p, true, &cmd->unchangedsince) || !imap_char(p, ')', "')' expected.") ||
            !imap_sp(p))
            return false;
        cmd->has_unchangedsince = true;
    }
    cmd->store_mode = IMAP_STORE_REPLACE;
    if (imap_peek(p) == '+' || imap_peek(p) == '-') {
        cmd->store_mode = imap_peek(p) == '+' ? IMAP_STORE_ADD : IMAP_STORE_REMOVE;
        p->pos++;
    }
    const char *s;
    size_t len;
    imap_name(p, &s, &len);
    if (imap_word_is(s, len, "FLAGS.SILENT"))
        cmd->silent = true;
    else if (!imap_word_is(s, len, "FLAGS"))
        return imap_fail(p, "Invalid STORE item (FLAGS, +FLAGS, -FLAGS[.SILENT]).");
    if (!imap_sp(p))
        return false;
    if (imap_peek(p) == '(')
        return imap_flag_list(p, cmd);
    for (;;) {
        if (!imap_add_flag(p, cmd))
            return false;
        if (imap_at_end(p))
            return true;
        if (!imap_sp(p))
            return false;
    }
}

/* ---- SEARCH -------------------------------------------------------------------------------- */

static struct imap_search_key *imap_new_key(struct imap_p *p, struct imap_cmd *cmd, enum imap_search_type type)
{
    if (cmd->nkeys >= IMAP_SEARCH_KEYS_MAX) {
        imap_fail(p, "Too many search keys.");
        return NULL;
    }
    cmd->keys = xreallocarray(cmd->keys, cmd->nkeys + 1, sizeof *cmd->keys);
    struct imap_search_key *k = &cmd->keys[cmd->nkeys++];
    memset(k, 0, sizeof *k);
    k->type = type;
    return k;
}

static bool imap_search_key(struct imap_p *p, struct imap_cmd *cmd, unsigned depth);

/* One key and the keys it takes (NOT: 1, OR: 2); AND lists count their children. */
static bool imap_search_key(struct imap_p *p, struct imap_cmd *cmd, unsigned depth)
{
    static const struct {
        const char *name;
        enum imap_search_type type;
        const char *flag;     /* FLAG/UNFLAG */
        const char *header;   /* HEADER shorthand */
        char arg;             /* 0 none, 's' astring, 'd' date, 'n' number, 'f' keyword */
    } words[] = {
        {"ALL", IMAP_SK_ALL, NULL, NULL, 0},
        {"ANSWERED", IMAP_SK_FLAG, "\\Answered", NULL, 0},
        {"DELETED", IMAP_SK_FLAG, "\\Deleted", NULL, 0},
        {"DRAFT", IMAP_SK_FLAG, "\\Draft", NULL, 0},
        {"FLAGGED", IMAP_SK_FLAG, "\\Flagged", NULL, 0},
        {"SEEN", IMAP_SK_FLAG, "\\Seen", NULL, 0},
        {"UNANSWERED", IMAP_SK_UNFLAG, "\\Answered", NULL, 0},
        {"UNDELETED", IMAP_SK_UNFLAG, "\\Deleted", NULL, 0},
        {"UNDRAFT", IMAP_SK_UNFLAG, "\\Draft", NULL, 0},
        {"UNFLAGGED", IMAP_SK_UNFLAG, "\\Flagged", NULL, 0},
        {"UNSEEN", IMAP_SK_UNFLAG, "\\Seen", NULL, 0},
        {"KEYWORD", IMAP_SK_FLAG, NULL, NULL, 'f'},
        {"UNKEYWORD", IMAP_SK_UNFLAG, NULL, NULL, 'f'},
        {"NEW", IMAP_SK_NEW, NULL, NULL, 0},
        {"OLD", IMAP_SK_OLD, NULL, NULL, 0},
        {"RECENT", IMAP_SK_RECENT, NULL, NULL, 0},
        {"BCC", IMAP_SK_HEADER, NULL, "Bcc", 's'},
        {"CC", IMAP_SK_HEADER, NULL, "Cc", 's'},
        {"FROM", IMAP_SK_HEADER, NULL, "From", 's'},
        {"TO", IMAP_SK_HEADER, NULL, "To", 's'},
        {"SUBJECT", IMAP_SK_HEADER, NULL, "Subject", 's'},
        {"HEADER", IMAP_SK_HEADER, NULL, NULL, 'h'},
        {"BODY", IMAP_SK_BODY, NULL, NULL, 's'},
        {"TEXT", IMAP_SK_TEXT, NULL, NULL, 's'},
        {"BEFORE", IMAP_SK_BEFORE, NULL, NULL, 'd'},
        {"ON", IMAP_SK_ON, NULL, NULL, 'd'},
        {"SINCE", IMAP_SK_SINCE, NULL, NULL, 'd'},
        {"SENTBEFORE", IMAP_SK_SENTBEFORE, NULL, NULL, 'd'},
        {"SENTON", IMAP_SK_SENTON, NULL, NULL, 'd'},
        {"SENTSINCE", IMAP_SK_SENTSINCE, NULL, NULL, 'd'},
        {"LARGER", IMAP_SK_LARGER, NULL, NULL, 'n'},
        {"SMALLER", IMAP_SK_SMALLER, NULL, NULL, 'n'},
        {"UID", IMAP_SK_UID, NULL, NULL, 'u'},
        {"MODSEQ", IMAP_SK_MODSEQ, NULL, NULL, 'm'},
        {"NOT", IMAP_SK_NOT, NULL, NULL, '1'},
        {"OR", IMAP_SK_OR, NULL, NULL, '2'},
    };
    if (depth > IMAP_SEARCH_DEPTH_MAX)
        return imap_fail(p, "Search keys nested too deep.");
    int c = imap_peek(p);
    if (c == '(') {
        p->pos++;
        size_t at = cmd->nkeys;
        if (!imap_new_key(p, cmd, IMAP_SK_AND))
            return false;
        size_t n = 0;
        for (;;) {
            if (!imap_search_key(p, cmd, depth + 1))
                return false;
            n++;
            if (imap_peek(p) == ')') {
                p->pos++;
                break;
            }
            if (!imap_sp(p))
                return false;
        }
        cmd->keys[at].nchildren = n;
        return true;
    }
    if (c == '*' || isdigit(c)) {
        struct imap_search_key *k = imap_new_key(p, cmd, IMAP_SK_SEQSET);
        return k && imap_seqset(p, &k->set);
    }
    const char *s;
    size_t len;
    if (!imap_atom(p, NULL, &s, &len))
        return imap_fail(p, "Search key expected.");
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (!imap_word_is(s, len, words[i].name))
            continue;
        size_t at = cmd->nkeys;
        struct imap_search_key *k = imap_new_key(p, cmd, words[i].type);
        if (!k)
            return false;
        if (words[i].flag)
            k->str = xstrdup(words[i].flag);
        if (words[i].header)
            k->str = xstrdup(words[i].header);
        if (!words[i].arg)
            return true;
        if (!imap_sp(p))
            return false;
        char *str = NULL;
        time_t date;
        uint32_t n;
        switch (words[i].arg) {
        case 's':
            if (!imap_astring_text(p, &str))
                return false;
            if (cmd->keys[at].str)
                cmd->keys[at].str2 = str;
            else
                cmd->keys[at].str = str;
            return true;
        case 'h':
            if (!imap_astring_text(p, &str))
                return false;
            cmd->keys[at].str = str;
            if (!imap_sp(p) || !imap_astring_text(p, &str))
                return false;
            cmd->keys[at].str2 = str;
            return true;
        case 'f':
            if (!imap_flag(p, &str))
                return false;
            cmd->keys[at].str = str;
            return true;
        case 'd':
            if (!imap_date(p, &date))
                return false;
            cmd->keys[at].date = date;
            return true;
        case 'n':
            if (!imap_number(p, false, &n))
                return false;
            cmd->keys[at].number = n;
            return true;
        case 'u':
            return imap_seqset(p, &cmd->keys[at].set);
        case 'm':
            if (imap_peek(p) == '"') {
                /* entry-name SP entry-type-req (RFC 7162 3.1.5): per-flag MODSEQs are not kept */
                char *entry = NULL;
                size_t elen;
                const char *type;
                size_t tlen;
                if (!imap_string(p, &entry, &elen))
                    return false;
                free(entry);
                if (!imap_sp(p) || !imap_atom(p, NULL, &type, &tlen))
                    return false;
                if (!imap_word_is(type, tlen, "priv") && !imap_word_is(type, tlen, "shared") &&
                    !imap_word_is(type, tlen, "all"))
                    return imap_fail(p, "Entry type priv, shared or all expected.");
                if (!imap_sp(p))
                    return false;
            }
            return imap_modseq(p, true, &cmd->keys[at].modseq);
        case '1':
            return imap_search_key(p, cmd, depth + 1);
        case '2':
            return imap_search_key(p, cmd, depth + 1) && imap_sp(p) && imap_search_key(p, cmd, depth + 1);
        default:
            return imap_fail(p, "Search key expected.");
        }
    }
    return imap_fail(p, "Unknown search key.");
}

static bool imap_search_args(struct imap_p *p, struct imap_cmd *cmd)
{
    if (!imap_sp(p))
        return false;
    size_t save = p->pos;
    const char *s;
    size_t len;
    if (imap_atom(p, NULL, &s, &len) && imap_word_is(s, len, "CHARSET")) {
        char *charset;
        if (!imap_sp(p) || !imap_astring_text(p, &charset))
            return false;
        bool ok = strcasecmp(charset, "UTF-8") == 0 || strcasecmp(charset, "US-ASCII") == 0;
        free(charset);
        if (!ok)
            return imap_fail(p, "[BADCHARSET (US-ASCII UTF-8)] Unsupported charset.");
        if (!imap_sp(p))
            return false;
    } else {
        p->pos = save;
        p->error = NULL;
    }
    if (!imap_new_key(p, cmd, IMAP_SK_AND))
        return false;
    size_t n = 0;
    for (;;) {
        if (!imap_search_key(p, cmd, 1))
            return false;
        n++;
        if (imap_at_end(p))
            break;
        if (!imap_sp(p))
            return false;
    }
    cmd->keys[0].nchildren = n;
    return true;
}

/* ---- SELECT parameters (RFC 4466 select-params, RFC 7162) ----------------------------------- */

/* A QRESYNC set (known-uids, known-sequence-set, known-uid-set): '*' is not allowed. */
static bool imap_qresync_set(struct imap_p *p, struct imap_seqset *set)
{
    if (!imap_seqset(p, set))
        return false;
    for (size_t i = 0; i < set->n; i++)
        if (set->ranges[i].lo == IMAP_SEQ_STAR || set->ranges[i].hi == IMAP_SEQ_STAR)
            return imap_fail(p, "'*' is not allowed in QRESYNC parameters.");
    return true;
}

/*
 * A sequence match set must ascend (RFC 7162 3.2.5.2): each range is made lo <= hi and must
 * start above the previous one's end. *count_r is how many values it holds (at most
 * IMAP_SEQ_RANGES_MAX * 2^32: no overflow).
 */
static bool imap_match_set(struct imap_p *p, struct imap_seqset *set, unsigned long long *count_r)
{
    unsigned long long count = 0;
    for (size_t i = 0; i < set->n; i++) {
        struct imap_seq_range *r = &set->ranges[i];
        if (r->lo > r->hi) {
            uint32_t t = r->lo;
            r->lo = r->hi;
            r->hi = t;
        }
        if (i > 0 && r->lo <= set->ranges[i - 1].hi)
            return imap_fail(p, "QRESYNC sequence match data must ascend.");
        count += (unsigned long long)r->hi - r->lo + 1;
    }
    *count_r = count;
    return true;
}

/* QRESYNC SP "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")" */
static bool imap_qresync_param(struct imap_p *p, struct imap_cmd *cmd)
{
    cmd->qresync = true;
    if (!imap_sp(p) || !imap_char(p, '(', "QRESYNC parameters expected.") ||
        !imap_number(p, true, &cmd->qresync_uidvalidity) || !imap_sp(p) ||
        !imap_number64(p, 0x7fffffffffffffffULL, &cmd->qresync_modseq))
        return imap_fail(p, "Invalid QRESYNC parameters.");
    if (imap_peek(p) == ' ' && p->pos + 1 < p->len && p->s[p->pos + 1] != '(') {
        p->pos++;
        if (!imap_qresync_set(p, &cmd->qresync_known_uids))
            return false;
    }
    if (imap_peek(p) == ' ') {
        p->pos++;
        unsigned long long nseqs, nuids;
        if (!imap_char(p, '(', "Sequence match data expected.") || !imap_qresync_set(p, &cmd->qresync_match_seqs) ||
            !imap_sp(p) || !imap_qresync_set(p, &cmd->qresync_match_uids) ||
            !imap_char(p, ')', "')' expected after the sequence match data."))
            return false;
        if (!imap_match_set(p, &cmd->qresync_match_seqs, &nseqs) || !imap_match_set(p, &cmd->qresync_match_uids, &nuids))
            return false;
        if (nseqs != nuids)
            return imap_fail(p, "QRESYNC sequence match sets differ in size.");
    }
    return imap_char(p, ')', "')' expected after the QRESYNC parameters.");
}

/* SP "(" select-param *(SP select-param) ")": CONDSTORE and QRESYNC (...), each once. */
static bool imap_select_params(struct imap_p *p, struct imap_cmd *cmd)
{
    if (!imap_sp(p) || !imap_char(p, '(', "Select parameters expected."))
        return false;
    for (unsigned n = 0;; n++) {
        const char *s;
        size_t len;
        if ((n > 0 && !imap_sp(p)) || !imap_atom(p, NULL, &s, &len))
            return false;
        if (imap_word_is(s, len, "CONDSTORE") && !cmd->condstore)
            cmd->condstore = true;
        else if (imap_word_is(s, len, "QRESYNC") && !cmd->qresync) {
            if (!imap_qresync_param(p, cmd))
                return false;
        } else
            return imap_fail(p, "Unknown or repeated select parameter.");
        if (imap_peek(p) == ')') {
            p->pos++;
            return true;
        }
    }
}

/* ---- the commands -------------------------------------------------------------------------- */

static const char *const imap_verb_names[IMAP_VERB_COUNT_] = {
    [IMAP_VERB_UNKNOWN] = "?",
    [IMAP_VERB_CAPABILITY] = "CAPABILITY",
    [IMAP_VERB_NOOP] = "NOOP",
    [IMAP_VERB_LOGOUT] = "LOGOUT",
    [IMAP_VERB_STARTTLS] = "STARTTLS",
    [IMAP_VERB_AUTHENTICATE] = "AUTHENTICATE",
    [IMAP_VERB_LOGIN] = "LOGIN",
    [IMAP_VERB_SELECT] = "SELECT",
    [IMAP_VERB_EXAMINE] = "EXAMINE",
    [IMAP_VERB_CREATE] = "CREATE",
    [IMAP_VERB_DELETE] = "DELETE",
    [IMAP_VERB_RENAME] = "RENAME",
    [IMAP_VERB_SUBSCRIBE] = "SUBSCRIBE",
    [IMAP_VERB_UNSUBSCRIBE] = "UNSUBSCRIBE",
    [IMAP_VERB_LIST] = "LIST",
    [IMAP_VERB_LSUB] = "LSUB",
    [IMAP_VERB_STATUS] = "STATUS",
    [IMAP_VERB_APPEND] = "APPEND",
    [IMAP_VERB_CHECK] = "CHECK",
    [IMAP_VERB_CLOSE] = "CLOSE",
    [IMAP_VERB_UNSELECT] = "UNSELECT",
    [IMAP_VERB_EXPUNGE] = "EXPUNGE",
    [IMAP_VERB_SEARCH] = "SEARCH",
    [IMAP_VERB_FETCH] = "FETCH",
    [IMAP_VERB_STORE] = "STORE",
    [IMAP_VERB_COPY] = "COPY",
    [IMAP_VERB_MOVE] = "MOVE",
    [IMAP_VERB_IDLE] = "IDLE",
    [IMAP_VERB_ID] = "ID",
    [IMAP_VERB_ENABLE] = "ENABLE",
    [IMAP_VERB_NAMESPACE] = "NAMESPACE",
};

const char *imap_verb_name(enum imap_verb verb)
{
    return verb > IMAP_VERB_UNKNOWN && verb < IMAP_VERB_COUNT_ ? imap_verb_names[verb] : "?";
}

static bool imap_mailbox_arg(struct imap_p *p, char **out_r, size_t *len_r)
{
    if (!imap_sp(p) || !imap_astring(p, out_r, len_r))
        return false;
    if (strlen(*out_r) != *len_r)
        return imap_fail(p, "NUL byte in a mailbox name.");
    return true;
}

static bool imap_id_args(struct imap_p *p)
{
    if (!imap_sp(p))
        return false;
    const char *s;
    size_t len;
    if (imap_peek(p) != '(') {
        if (imap_atom(p, NULL, &s, &len) && imap_word_is(s, len, "NIL"))
            return true;
        return imap_fail(p, "ID expects a list or NIL.");
    }
    p->pos++;
    for (unsigned n = 0; imap_peek(p) != ')'; n++) {
        char *v;
        size_t vlen;
        if (n >= 60 || (n > 0 && !imap_sp(p)))
            return imap_fail(p, "Invalid ID list.");
        if (n % 2 == 1 && imap_peek(p) != '"' && imap_peek(p) != '{') {
            if (!imap_atom(p, NULL, &s, &len) || !imap_word_is(s, len, "NIL"))
                return imap_fail(p, "Invalid ID list.");
            continue;
        }
        if (!imap_string(p, &v, &vlen))
            return false;
        free(v);
    }
    p->pos++;
    return true;
}

/* An RFC 5258 option list "(A B ...)": the bits of the known names; unknown ones fail. */
static bool imap_list_opts(struct imap_p *p, const char *const *names, size_t nnames, unsigned *bits_r)
{
    if (!imap_char(p, '(', "Option list expected."))
        return false;
    for (unsigned n = 0; imap_peek(p) != ')'; n++) {
        const char *s;
        size_t len;
        if (n >= 16 || (n > 0 && !imap_sp(p)) || !imap_atom(p, NULL, &s, &len))
            return imap_fail(p, "Invalid LIST option list.");
        size_t k = 0;
        while (k < nnames && !imap_word_is(s, len, names[k]))
            k++;
        if (k == nnames)
            return imap_fail(p, "Unsupported LIST option.");
        *bits_r |= 1u << k;
    }
    p->pos++;
    return true;
}

/* LIST [(select-opts)] reference (pattern | (patterns)) [RETURN (return-opts)] (RFC 5258). */
static bool imap_list_args(struct imap_p *p, struct imap_cmd *cmd)
{
    static const char *const select_names[] = {"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"};
    static const char *const return_names[] = {"SUBSCRIBED", "CHILDREN", "SPECIAL-USE"};
    cmd->has_arg2 = true;
    if (!imap_sp(p))
        return false;
    if (imap_peek(p) == '(') {
        cmd->list_extended = true;
        if (!imap_list_opts(p, select_names, 4, &cmd->list_select))
            return false;
        if ((cmd->list_select & IMAP_LIST_SEL_RECURSIVEMATCH) &&
            !(cmd->list_select & (IMAP_LIST_SEL_SUBSCRIBED | IMAP_LIST_SEL_SPECIAL_USE)))
            return imap_fail(p, "RECURSIVEMATCH needs another selection option.");
        if (!imap_sp(p))
            return false;
    }
    if (!imap_astring(p, &cmd->arg1, &cmd->arg1_len))
        return false;
    if (strlen(cmd->arg1) != cmd->arg1_len)
        return imap_fail(p, "NUL byte in a mailbox name.");
    if (!imap_sp(p))
        return false;
    if (imap_peek(p) == '(') {
        cmd->list_extended = true;
        p->pos++;
        for (unsigned n = 0; imap_peek(p) != ')'; n++) {
            char *pat;
            size_t len;
            if (n >= IMAP_ITEMS_MAX || (n > 0 && !imap_sp(p)))
                return imap_fail(p, "Invalid pattern list.");
            if (!imap_astring_x(p, "]%*", &pat, &len))
                return false;
            if (strlen(pat) != len) {
                free(pat);
                return imap_fail(p, "NUL byte in a pattern.");
            }
            if (!cmd->arg2) {
                cmd->arg2 = pat;
                cmd->arg2_len = len;
            } else {
                cmd->items = xreallocarray(cmd->items, cmd->nitems + 1, sizeof *cmd->items);
                cmd->items[cmd->nitems++] = pat;
            }
        }
        p->pos++;
        if (!cmd->arg2)
            return imap_fail(p, "Empty pattern list.");
    } else {
        if (!imap_astring_x(p, "]%*", &cmd->arg2, &cmd->arg2_len))
            return false;
        if (strlen(cmd->arg2) != cmd->arg2_len)
            return imap_fail(p, "NUL byte in a pattern.");
    }
    if (imap_at_end(p))
        return true;
    const char *s;
    size_t len;
    if (!imap_sp(p) || !imap_atom(p, NULL, &s, &len) || !imap_word_is(s, len, "RETURN") || !imap_sp(p))
        return imap_fail(p, "RETURN expected.");
    cmd->list_extended = true;
    return imap_list_opts(p, return_names, 3, &cmd->list_return);
}

static bool imap_args(struct imap_p *p, struct imap_cmd *cmd)
{
    switch (cmd->verb) {
    case IMAP_VERB_CAPABILITY:
    case IMAP_VERB_NOOP:
    case IMAP_VERB_LOGOUT:
    case IMAP_VERB_STARTTLS:
    case IMAP_VERB_CHECK:
    case IMAP_VERB_CLOSE:
    case IMAP_VERB_UNSELECT:
    case IMAP_VERB_IDLE:
    case IMAP_VERB_NAMESPACE:
        return true;
    case IMAP_VERB_EXPUNGE:
        return !cmd->uid || (imap_sp(p) && imap_seqset(p, &cmd->set));
    case IMAP_VERB_AUTHENTICATE: {
        const char *s;
        size_t len;
        if (!imap_sp(p) || !imap_atom(p, NULL, &s, &len))
            return false;
        cmd->arg1 = xstrndup(s, len);
        cmd->arg1_len = len;
        if (imap_at_end(p))
            return true;
        if (!imap_sp(p))
            return false;
        size_t start = p->pos;
        while (!imap_at_end(p) && (isalnum(imap_peek(p)) || strchr("+/=", imap_peek(p))))
            p->pos++;
        if (p->pos == start)
            return imap_fail(p, "Invalid initial response.");
        cmd->arg2 = xstrndup(p->s + start, p->pos - start);
        cmd->arg2_len = p->pos - start;
        cmd->has_arg2 = true;
        return true;
    }
    case IMAP_VERB_LOGIN:
        cmd->has_arg2 = true;
        return imap_sp(p) && imap_astring(p, &cmd->arg1, &cmd->arg1_len) && imap_sp(p) &&
               imap_astring(p, &cmd->arg2, &cmd->arg2_len);
    case IMAP_VERB_SELECT:
    case IMAP_VERB_EXAMINE:
        if (!imap_mailbox_arg(p, &cmd->arg1, &cmd->arg1_len))
            return false;
        return imap_at_end(p) || imap_select_params(p, cmd);
    case IMAP_VERB_CREATE:
    case IMAP_VERB_DELETE:
    case IMAP_VERB_SUBSCRIBE:
    case IMAP_VERB_UNSUBSCRIBE:
        return imap_mailbox_arg(p, &cmd->arg1, &cmd->arg1_len);
    case IMAP_VERB_RENAME:
        cmd->has_arg2 = true;
        return imap_mailbox_arg(p, &cmd->arg1, &cmd->arg1_len) && imap_mailbox_arg(p, &cmd->arg2, &cmd->arg2_len);
    case IMAP_VERB_LIST:
        return imap_list_args(p, cmd);
    case IMAP_VERB_LSUB:
        cmd->has_arg2 = true;
        if (!imap_mailbox_arg(p, &cmd->arg1, &cmd->arg1_len) || !imap_sp(p) ||
            !imap_astring_x(p, "]%*", &cmd->arg2, &cmd->arg2_len))
            return false;
        return strlen(cmd->arg2) == cmd->arg2_len || imap_fail(p, "NUL byte in a pattern.");
    case IMAP_VERB_STATUS:
        if (!imap_mailbox_arg(p, &cmd->arg1, &cmd->arg1_len) || !imap_sp(p) ||
            !imap_char(p, '(', "Status item list expected."))
            return false;
        for (;;) {
            if (!imap_add_item(p, cmd))
                return false;
            if (imap_peek(p) == ')') {
                p->pos++;
                return true;
            }
            if (!imap_sp(p))
                return false;
        }
    case IMAP_VERB_APPEND:
        if (!imap_mailbox_arg(p, &cmd->arg1, &cmd->arg1_len) || !imap_sp(p))
            return false;
        if (imap_peek(p) == '(' && (!imap_flag_list(p, cmd) || !imap_sp(p)))
            return false;
        if (imap_peek(p) == '"') {
            char *date;
            size_t dlen;
            if (!imap_string(p, &date, &dlen))
                return false;
            cmd->items = xreallocarray(cmd->items, 1, sizeof *cmd->items);
            cmd->items[cmd->nitems++] = date;
            if (!imap_sp(p))
                return false;
        }
        if (imap_peek(p) != '{')
            return imap_fail(p, "APPEND needs the message as a literal.");
        cmd->has_arg2 = true;
        return imap_string(p, &cmd->arg2, &cmd->arg2_len);
    case IMAP_VERB_SEARCH:
        return imap_search_args(p, cmd);
    case IMAP_VERB_FETCH:
        return imap_fetch_args(p, cmd);
    case IMAP_VERB_STORE:
        return imap_store_args(p, cmd);
    case IMAP_VERB_COPY:
    case IMAP_VERB_MOVE:
        return imap_sp(p) && imap_seqset(p, &cmd->set) && imap_mailbox_arg(p, &cmd->arg1, &cmd->arg1_len);
    case IMAP_VERB_ID:
        return imap_id_args(p);
    case IMAP_VERB_ENABLE:
        do {
            if (!imap_sp(p) || !imap_add_item(p, cmd))
                return false;
        } while (!imap_at_end(p));
        return true;
    case IMAP_VERB_UNKNOWN:
    case IMAP_VERB_COUNT_:
        break;
    }
    return imap_fail(p, "Unknown command.");
}

bool imap_cmd_parse(const char *data, size_t len, struct imap_cmd *cmd, const char **error_r)
{
    struct imap_p p = {.s = data, .len = len};
    memset(cmd, 0, sizeof *cmd);
    strcpy(cmd->tag, "*");
    size_t n = 0;
    while (n < len && n <= IMAP_TAG_MAX && imap_tag_char((unsigned char)data[n]))
        n++;
    if (n == 0 || n > IMAP_TAG_MAX || (n < len && data[n] != ' ')) {
        *error_r = n == 0 && len == 0 ? "Empty command line." : "Invalid tag.";
        return false;
    }
    memcpy(cmd->tag, data, n);
    cmd->tag[n] = '\0';
    p.pos = n;
    const char *s;
    size_t slen;
    if (!imap_sp(&p) || !imap_atom(&p, NULL, &s, &slen)) {
        *error_r = "Command expected.";
        return false;
    }
    if (imap_word_is(s, slen, "UID")) {
        cmd->uid = true;
        if (!imap_sp(&p) || !imap_atom(&p, NULL, &s, &slen)) {
            *error_r = "UID needs a command.";
            return false;
        }
    }
    for (int v = IMAP_VERB_UNKNOWN + 1; v < IMAP_VERB_COUNT_; v++)
        if (imap_word_is(s, slen, imap_verb_names[v]))
            cmd->verb = (enum imap_verb)v;
    if (cmd->verb == IMAP_VERB_UNKNOWN) {
        *error_r = "Unknown command.";
        return false;
    }
    if (cmd->uid && cmd->verb != IMAP_VERB_FETCH && cmd->verb != IMAP_VERB_STORE && cmd->verb != IMAP_VERB_SEARCH &&
        cmd->verb != IMAP_VERB_COPY && cmd->verb != IMAP_VERB_MOVE && cmd->verb != IMAP_VERB_EXPUNGE) {
        *error_r = "Unknown UID command.";
        return false;
    }
    if (!imap_args(&p, cmd) || (!imap_at_end(&p) && imap_fail(&p, "Unexpected characters at the end of the command."))) {
        *error_r = p.error ? p.error : "Invalid arguments.";
        return false;
    }
    if (!imap_at_end(&p)) {
        *error_r = "Unexpected characters at the end of the command.";
        return false;
    }
    return true;
}

void imap_cmd_free(struct imap_cmd *cmd)
{
    free(cmd->arg1);
    free(cmd->arg2);
    free(cmd->set.ranges);
    free(cmd->qresync_known_uids.ranges);
    free(cmd->qresync_match_seqs.ranges);
    free(cmd->qresync_match_uids.ranges);
    for (size_t i = 0; i < cmd->natts; i++) {
        for (size_t k = 0; k < cmd->atts[i].nfields; k++)
            free(cmd->atts[i].fields[k]);
        free(cmd->atts[i].fields);
    }
    free(cmd->atts);
    for (size_t i = 0; i < cmd->nflags; i++)
        free(cmd->flags[i]);
    free(cmd->flags);
    for (size_t i = 0; i < cmd->nitems; i++)
        free(cmd->items[i]);
    free(cmd->items);
    for (size_t i = 0; i < cmd->nkeys; i++) {
        free(cmd->keys[i].str);
        free(cmd->keys[i].str2);
        free(cmd->keys[i].set.ranges);
    }
    free(cmd->keys);
    char tag[IMAP_TAG_MAX + 1];
    memcpy(tag, cmd->tag, sizeof tag);
    memset(cmd, 0, sizeof *cmd);
    memcpy(cmd->tag, tag, sizeof tag);
}
