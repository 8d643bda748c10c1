/*
 * queue: the durable mail queue under STATE_DIR/queue (docs/architecture.md, "Queue").
 *
 *   tmp/ID    being written; never looked at except to clean up
 *   tmp/ID.ready, tmp/ID.marks
 *             a report (bounce) past its commit point and the parent's recipients it marks
 *             (queue_commit_marked); finished at start by queue_clean_tmp
 *   msg/ID    committed: the 250 after DATA was (or will be) sent only after this file and
 *             the msg/ folder were fsync'd
 *   hold/ID   put on hold by an operator (postsuper -h); not delivered until released
 *
 * A queue file is an envelope of text lines followed by "data" and the message bytes (CRLF
 * line ends, as received). Each recipient line carries a status byte and an attempt field
 * that are overwritten in place (as Postfix marks done recipients), so marking a recipient
 * delivered is one pwrite + fdatasync, never a rewrite of the file.
 */
#ifndef ZOLDER_QUEUE_H
#define ZOLDER_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "buf.h"
#include "qenv.h"

struct queue_msg {
    char id[QUEUE_ID_LEN + 1];
    char *path;
    struct queue_envelope env;
    off_t data_off;     /* where the message bytes start */
    size_t size;        /* message size in bytes */
    bool held;
};

struct queue {
    char *root;     /* STATE_DIR/queue */
    char *tmp_dir;
    char *msg_dir;
    char *hold_dir;
};

struct queue_writer {
    int fd;
    char id[QUEUE_ID_LEN + 1];
    char *tmp_path;
    size_t size;
    bool failed;
};

int queue_open(struct queue *q, const char *state_dir);
void queue_close(struct queue *q);
/* A new unique id (time-ordered, like Postfix's long ids). */
void queue_new_id(char out[QUEUE_ID_LEN + 1]);

/* Creates tmp/ID and writes the envelope; the caller then writes the message bytes. */
int queue_writer_begin(struct queue *q, const struct queue_envelope *env, struct queue_writer *w);
/* Like begin, but with a chosen id (a child of an alias explosion); EEXIST when it exists. */
int queue_writer_begin_id(struct queue *q, const char *id, const struct queue_envelope *env,
                          struct queue_writer *w);
int queue_writer_write(struct queue_writer *w, const void *data, size_t len);
/*
 * fsync the file, rename it into msg/, fsync msg/. Only after this returns 0 may the message
 * be promised (the 250). On failure the temporary file is removed.
 */
int queue_writer_commit(struct queue *q, struct queue_writer *w);
void queue_writer_abort(struct queue_writer *w);
/*
 * Commits w (a report about parent, e.g. a bounce) and writes status at parent's recipients
 * rcpts[0..n) as one step, so a crash can neither lose the report nor leave the recipients
 * unmarked (and so tried and reported again): w is fsync'd, the list of marks goes to
 * tmp/ID.marks (fsync), tmp/ID becomes tmp/ID.ready and tmp/ is fsync'd (the commit point),
 * the marks are written (fdatasync), then tmp/ID.ready goes into msg/ (fsync). After a crash,
 * queue_clean_tmp finishes what passed the commit point and drops what did not.
 */
int queue_commit_marked(struct queue *q, struct queue_writer *w, struct queue_msg *parent,
                        const size_t *rcpts, size_t n, char status);
/*
 * Group commit: n finished writers become durable together. Their files are closed, one
 * syncfs(2) writes back every tmp file of the batch (data and inode) in one journal commit,
 * each is renamed into msg/, and one fsync of msg/ makes the renames durable. ok_r[i] tells
 * each writer's fate; a failed one is removed. Only then may the 250s go out.
 */
void queue_commit_batch(struct queue *q, struct queue_writer *const *ws, size_t n, bool *ok_r);
/*
 * The same round with finished queue files of delivered messages riding along: they are
 * unlinked after the syncfs (which made their mailbox appends durable) and before the one
 * folder fsync. Returns false when the syncfs failed (then nothing was unlinked).
 */
bool queue_commit_round(struct queue *q, struct queue_writer *const *ws, size_t n, bool *ok_r,
                        char *const *unlinks, size_t nunlinks);

/* Loads the envelope of msg/ID (or hold/ID). 0, or -1 with a reason in *error_r. */
int queue_load(struct queue *q, const char *id, struct queue_msg *msg, const char **error_r);
void queue_msg_free(struct queue_msg *msg);
/* Reads the message bytes into out. */
int queue_read_data(const struct queue_msg *msg, struct buf *out);
/* Overwrites one recipient's status (and attempt field), then fdatasync. */
int queue_mark(struct queue_msg *msg, size_t rcpt, char status);
int queue_set_attempt(struct queue_msg *msg, size_t rcpt, long long attempt);
/*
 * Overwrites the remote retry state (the envelope's X line), then fdatasync. A queue file
 * written before the X line existed keeps the state in memory only (returns 0).
 */
int queue_set_retry(struct queue_msg *msg, time_t next_attempt, unsigned attempts, bool warned);
/*
 * Overwrites one recipient's last deferral reason (its Y line; cut and sanitised as
 * queue_envelope_format_reason says), then fdatasync when sync; without sync the caller's
 * next queue_set_retry (or queue_sync) makes it durable. A file without Y lines keeps the
 * reason in memory only (returns 0).
 */
int queue_set_reason(struct queue_msg *msg, size_t rcpt, const char *reason, bool sync);
/* Removes the queue file when no recipient is pending; fsyncs the folder. 1 removed, 0 kept. */
int queue_remove_if_done(struct queue *q, struct queue_msg *msg);
/*
 * Batch forms for group commit: a status byte written without a sync, an unlink without the
 * folder fsync, then one queue_sync() for the whole batch (syncfs for the marks when any,
 * fsync of msg/ and hold/ for the unlinks when any).
 */
int queue_mark_nosync(struct queue_msg *msg, size_t rcpt, char status);
int queue_unlink(struct queue_msg *msg);
int queue_sync(struct queue *q, bool marks, bool unlinks);

/* Lists ids in msg/ (and hold/ when with_hold), sorted. Caller frees each and the array. */
int queue_list(struct queue *q, bool with_hold, char ***ids_r, size_t *n_r);
void queue_list_free(char **ids, size_t n);
/* hold/release/delete by id, as postsuper -h/-H/-d. */
int queue_hold(struct queue *q, const char *id);
int queue_release(struct queue *q, const char *id);
int queue_delete(struct queue *q, const char *id);
/*
 * At start: removes leftovers in tmp/ (messages never promised), and finishes the reports
 * that passed queue_commit_marked's commit point (their parent's marks, then into msg/).
 */
void queue_clean_tmp(struct queue *q);

#endif
