/* mailpath: mail_dir expansion (see mailpath.h). */
#include "mailpath.h"

#include <string.h>

/* Every '/'-separated component of path[0..len) is non-empty and neither "." nor "..". */
static bool mailpath_components_ok(const char *path, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && path[i] != '/')
            continue;
        size_t n = i - start;
        if (n == 0 || (n == 1 && path[start] == '.') || (n == 2 && path[start] == '.' && path[start + 1] == '.'))
            return false;
        start = i + 1;
    }
    return true;
}

bool mailpath_valid(const char *value, const char **why_r)
{
    size_t len = strlen(value);
    if (len == 0 || len >= MAILPATH_MAX) {
        *why_r = len ? "too long" : "empty";
        return false;
    }
    if (value[0] == '~') {
        if (value[1] != '/' || !mailpath_components_ok(value + 2, len - 2)) {
            *why_r = "expected ~/FOLDER (no empty, \".\" or \"..\" components)";
            return false;
        }
        if (strchr(value, '%')) {
            *why_r = "%u is for absolute paths; ~/ is already per user";
            return false;
        }
        return true;
    }
    if (value[0] != '/' || !mailpath_components_ok(value + 1, len - 1)) {
        *why_r = "expected ~/FOLDER or an absolute path with %u (no empty, \".\" or \"..\" components)";
        return false;
    }
    bool has_user = false;
    for (size_t i = 0; i < len; i++) {
        if (value[i] != '%')
            continue;
        if (value[i + 1] == 'u')
            has_user = true;
        else if (value[i + 1] != '%') {
            *why_r = "only %u (the user name) and %% may follow a '%'";
            return false;
        }
        i++;
    }
    if (!has_user) {
        *why_r = "an absolute mail_dir needs %u, or every user would share one folder tree";
        return false;
    }
    return true;
}

static bool mailpath_name_ok(const char *user)
{
    return user[0] && user[0] != '.' && !strchr(user, '/') && strlen(user) < 256;
}

/* Appends s[0..n) to out at *pos; false when it does not fit. */
static bool mailpath_put(char *out, size_t outlen, size_t *pos, const char *s, size_t n)
{
    if (n >= outlen - *pos)
        return false;
    memcpy(out + *pos, s, n);
    *pos += n;
    out[*pos] = '\0';
    return true;
}

bool mailpath_user_dir(const char *value, const char *state_dir, const char *user, const char *home,
                       char *out, size_t outlen, const char **why_r)
{
    size_t pos = 0;
    if (outlen == 0) {
        *why_r = "no room";
        return false;
    }
    out[0] = '\0';
    if (!mailpath_valid(value, why_r))
        return false;
    if (!mailpath_name_ok(user)) {
        *why_r = "user name unusable in a path";
        return false;
    }
    bool ok = true;
    if (value[0] == '~') {
        if (home && home[0]) {
            size_t hn = strlen(home);
            while (hn > 1 && home[hn - 1] == '/')
                hn--;
            if (home[0] != '/' || (hn > 1 && !mailpath_components_ok(home + 1, hn - 1))) {
                *why_r = "home unusable in a path";
                return false;
            }
            if (hn > 1)
                ok = mailpath_put(out, outlen, &pos, home, hn);
        } else {
            ok = mailpath_put(out, outlen, &pos, state_dir, strlen(state_dir)) &&
                 mailpath_put(out, outlen, &pos, "/home/", 6) &&
                 mailpath_put(out, outlen, &pos, user, strlen(user));
        }
        ok = ok && mailpath_put(out, outlen, &pos, value + 1, strlen(value + 1));
    } else {
        for (const char *p = value; ok && *p; p++) {
            if (*p != '%')
                ok = mailpath_put(out, outlen, &pos, p, 1);
            else if (*++p == 'u')
                ok = mailpath_put(out, outlen, &pos, user, strlen(user));
            else
                ok = mailpath_put(out, outlen, &pos, "%", 1);
        }
    }
    if (!ok) {
        out[0] = '\0';
        *why_r = "path too long";
    }
    return ok;
}
