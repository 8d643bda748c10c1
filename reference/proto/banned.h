/*
 * banned: is an attachment name banned? (amavis's $banned_filename_re, as a list of
 * extensions). Pure functions over strings.
 *
 * DESCRIPTION: the name is reduced the way Windows reads it before its extension is
 * compared, case-insensitively, with the configured list (banned_extensions, default
 * BANNED_DEFAULT): path components are dropped ("C:\x\a.exe" -> "a.exe"), trailing dots,
 * spaces, tabs and NULs are stripped ("a.exe. " -> "a.exe"). A double extension
 * ("invoice.pdf.exe") is reported as such; its last extension decides. A name carrying the
 * Unicode right-to-left override (U+202E, "invoice\u202Eexe.pdf" shows as "invoicefdp.exe")
 * or another control character is banned outright, whatever its extension.
 *
 * LIMITS: BANNED_EXT_MAX extensions of at most BANNED_EXT_LEN bytes each.
 */
#ifndef ZOLDER_BANNED_H
#define ZOLDER_BANNED_H

#include <stdbool.h>
#include <stddef.h>

#define BANNED_EXT_MAX 128
#define BANNED_EXT_LEN 16
#define BANNED_DEFAULT ".exe .pif .scr .com .bat .cmd .vbs .vbe .js .jse .wsf .wsh .hta .cpl " \
                       ".msi .msp .lnk .reg .scf .shs .inf .ps1 .jar .dll .sys .chm .application .gadget"

struct banned_list {
    char exts[BANNED_EXT_MAX][BANNED_EXT_LEN + 1];  /* lower case, without the dot */
    size_t n;
};

/*
 * Parses a blank separated list of extensions (".exe exe .PIF" all work). false with a
 * static reason when an entry is empty, too long, holds something other than letters,
 * digits, '-' and '_', or there are too many.
 */
bool banned_list_parse(struct banned_list *list, const char *text, const char **error_r);

struct banned_verdict {
    bool banned;
    char ext[BANNED_EXT_LEN + 2];  /* ".exe"; or "" for a control-character name */
    bool double_ext;               /* "invoice.pdf.exe" */
    const char *why;               /* static text: "banned extension", "double extension", ... */
};

/* Checks one attachment name (UTF-8 or raw bytes). Returns v->banned. */
bool banned_check(const struct banned_list *list, const char *name, struct banned_verdict *v);

#endif
