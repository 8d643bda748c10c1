/*
 * sim_store: ispsim's mailstores. Each mailbox of the world is a folder
 * DATA/store/STORE/USER/ holding one file per message, UID.eml, with CRLF line ends as
 * on the wire. Opening (and reset) empties every mailbox and loads its `mbox` file, if the
 * world gives one. Written to a temp name, fsync'd, renamed: a message is there or not.
 */
#ifndef ZOLDER_SIM_STORE_H
#define ZOLDER_SIM_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "sim_world.h"

#define SIM_STORE_MSG_MAX (64u << 20)
#define SIM_STORE_MAX_MSGS 100000

struct sim_store_msg {
    unsigned uid;
    size_t size;
    unsigned flags;      /* IMAP system flags (SIM_IMAP_SEEN, ...), in memory only */
};

struct sim_store_box {
    char *dir;
    struct sim_store_msg *msgs;
    int n;
    unsigned next_uid;
    unsigned long long used;       /* bytes of its messages */
    unsigned long long quota;      /* bytes; 0: none (the world's, until mailstore.quota) */
    unsigned full_code;            /* 452 or 552 */
};

struct sim_store {
    const struct sim_world *w;
    char *root;          /* DATA/store */
    char *world_dir;     /* mbox paths are relative to it */
    struct sim_store_box *boxes;   /* one per world mailbox, same index */
    unsigned uidvalidity;          /* 1 at open, one more at every reset (uids restart) */
};

int sim_store_open(struct sim_store *st, const struct sim_world *w, const char *datadir,
                   const char *world_dir, char *err, size_t errsize);
void sim_store_close(struct sim_store *st);
/* Empties every mailbox and reloads the mbox files. */
int sim_store_reset(struct sim_store *st, char *err, size_t errsize);
int sim_store_deliver(struct sim_store *st, int mailbox, const char *data, size_t len,
                      unsigned *uid_r);
/* The message at uid, allocated. -1 when absent. */
int sim_store_read(struct sim_store *st, int mailbox, unsigned uid, char **data_r, size_t *len_r);
/* Removes the message and fsyncs the mailbox folder. */
int sim_store_remove(struct sim_store *st, int mailbox, unsigned uid);
/* The same without the fsync: a POP3 UPDATE or an EXPUNGE removes its messages, then one
 * sim_store_sync makes them all durable (one folder fsync per command, not per message). */
int sim_store_remove_nosync(struct sim_store *st, int mailbox, unsigned uid);
int sim_store_sync(struct sim_store *st, int mailbox);
/* Would a message of len bytes fit under the mailbox's quota? */
bool sim_store_fits(const struct sim_store *st, int mailbox, unsigned long long len);
/* The message's entry, or NULL. */
struct sim_store_msg *sim_store_msg(struct sim_store *st, int mailbox, unsigned uid);
/* The mailbox of store name and user, or -1. */
int sim_store_find(const struct sim_store *st, const char *store, const char *user);

/*
 * Splits an mbox (RFC 4155, "From " lines after a blank line or at the start) into messages,
 * undoing >From quoting and turning line ends into CRLF. Pure. cb gets each message.
 */
void sim_mbox_split(const char *data, size_t len,
                    void (*cb)(void *ctx, const char *msg, size_t msglen), void *ctx);

#endif
