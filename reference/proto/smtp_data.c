/*
 * smtp_data: DATA transparency (see smtp_data.h).
 *
 * STANDARDS
 *   RFC 5321 4.5.2 (dot-stuffing), 4.1.1.4 (CRLF.CRLF ends the data), 2.3.8 (CRLF only).
 */
#include "smtp_data.h"

bool smtp_data_stuff(const char *data, size_t len, struct buf *out)
{
    bool ok = true, bol = true;
    size_t run = 0; /* start of the bytes not yet copied */
    for (size_t i = 0; i < len && ok; i++) {
        char c = data[i];
        if (bol && c == '.') {
            ok = buf_append(out, data + run, i - run) && buf_append_char(out, '.');
            run = i;
        }
        bol = false;
        if (c == '\r' && i + 1 < len && data[i + 1] == '\n') {
            i++;
            bol = true;
        } else if (c == '\r' || c == '\n') {
            /* bare CR or LF: written as CRLF */
            ok = buf_append(out, data + run, i - run) && buf_append(out, "\r\n", 2);
            run = i + 1;
            bol = true;
        }
    }
    if (ok && run < len)
        ok = buf_append(out, data + run, len - run);
    if (ok && !bol)
        ok = buf_append(out, "\r\n", 2);
    return ok && buf_append(out, ".\r\n", 3);
}

bool smtp_data_has_8bit(const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)data[i] >= 0x80)
            return true;
    return false;
}
