/*
 * maildir: the Maildir back-end of the mail store (mailstore.h), used for a Maildir INBOX
 * (mailbox_format = maildir: STATE_DIR/maildir/USER/{tmp,new,cur}). Internal to
 * reference/mailstore: mailstore.c's public calls dispatch here when ms->maildir is set.
 * The behaviour is described in mailstore.h (section "Maildir").
 */
#ifndef ZOLDER_MAILSTORE_MAILDIR_H
#define ZOLDER_MAILSTORE_MAILDIR_H

#include "mailstore.h"

enum mailstore_result maildir_store_open(struct mailstore *ms, const char *maildir_path, const char *index_path,
                                         const char *user, const char **error_r);
enum mailstore_result maildir_store_refresh(struct mailstore *ms, const char **error_r);
bool maildir_store_changed(struct mailstore *ms);
enum mailstore_result maildir_store_read_msg(struct mailstore *ms, const struct mailstore_msg *m, struct buf *raw,
                                             const char **error_r);
enum mailstore_result maildir_store_expunge(struct mailstore *ms, const uint32_t *uids, size_t n, size_t *removed_r,
                                            const char **error_r);
enum mailstore_result maildir_store_store_if(struct mailstore *ms, const uint32_t *uids, size_t n,
                                             enum mailstore_store_mode mode, unsigned flags,
                                             const char *const *keywords, size_t nkeywords,
                                             unsigned long long unchangedsince, uint32_t **modified_r,
                                             size_t *nmodified_r, const char **error_r);
enum mailstore_result maildir_store_append(struct mailstore *ms, const char *data, size_t len, time_t when,
                                           unsigned flags, const char *const *keywords, size_t nkeywords,
                                           uint32_t *uid_r, const char **error_r);
enum mailstore_result maildir_store_settle(struct mailstore *ms, const char **error_r);
void maildir_store_cache_clear(void);

#endif
