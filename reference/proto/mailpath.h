/*
 * mailpath: where a user's mail folders live (`mail_dir`), from the config value, the user's
 * name and the home the users file gives. Pure: no file system access.
 *
 * SYNTAX (docs/config.md, mail_dir)
 *   ~/REL        under the user's home: the users file's third field, or, for a user without
 *                one (a virtual user), STATE_DIR/home/USER. The default is ~/Mail, the seed's
 *                folder.
 *   /ABS/%u/...  an absolute path in which every %u becomes the user name (at least one %u:
 *                without it every user would share one folder tree); %% is a '%'.
 *   Components "." and ".." and empty components ("//") are refused in the value, so the
 *   result stays inside what the admin named.
 *
 * SECURITY
 *   The user name is re-checked here (no '/', not empty, not "." or "..", no leading '.')
 *   before it becomes part of a path; so is the home (absolute, no ".." component).
 */
#ifndef ZOLDER_MAILPATH_H
#define ZOLDER_MAILPATH_H

#include <stdbool.h>
#include <stddef.h>

#define MAILPATH_MAX 1024

/* Is value a valid mail_dir? false with *why_r set to the reason. */
bool mailpath_valid(const char *value, const char **why_r);

/*
 * Writes user's mail folder path into out[outlen]. home: from the users file, or NULL.
 * false (with *why_r) when the value, the name or the home is unusable or the path too long.
 */
bool mailpath_user_dir(const char *value, const char *state_dir, const char *user, const char *home,
                       char *out, size_t outlen, const char **why_r);

#endif
