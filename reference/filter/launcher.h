/*
 * launcher: starts the content filter's scanner processes as a user of their own
 * (`filter_user`, docs/filter.md "Security"), separate from run_as.
 *
 * DESCRIPTION
 *   zolderd gives up root before its event loop starts, and a process that is no longer
 *   root cannot start one under another user. So, while still root, zolderd forks the
 *   launcher: it switches to filter_user at once (setgroups, setgid, setuid, verified) and
 *   from then on only forks scanner processes on request and reports how they end. zolderd
 *   talks to it over a SOCK_SEQPACKET socket: SPAWN (with one end of a fresh socketpair
 *   passed along, SCM_RIGHTS) -> SPAWNED pid; KILL pid; and, unasked, EXITED pid status
 *   whenever a scanner process ends. The new process runs the child function given at
 *   launcher_start with that socket; its configuration comes over the socket (it is the
 *   launcher's child, not zolderd's: the launcher was forked before any filter
 *   configuration was loaded, and a reload changes it).
 *
 * SECURITY
 *   The launcher holds no root: it is filter_user from its first instruction on, with no
 *   new privileges, no descriptor but its socket and stderr, no core dumps, and it dies
 *   with zolderd (PR_SET_PDEATHSIG, set after the uid change, which clears it). It kills
 *   only its own children. zolderd cannot signal or reap a filter_user process itself:
 *   every kill and wait goes through the launcher. The launcher also owns
 *   STATE_DIR/filter-tmp (chowned to filter_user by zolderd while root): it empties it when
 *   it starts and removes what a scanner that died left there (folders no live scanner
 *   holds a lock on).
 *
 * LIMITS
 *   LAUNCHER_CHILDREN_MAX live processes; statuses of processes nobody waits for are kept
 *   for the last LAUNCHER_STASH_MAX. A launcher that died is not restarted (it would need
 *   root): scans are then deferred, logged, until zolderd is restarted.
 */
#ifndef ZOLDER_LAUNCHER_H
#define ZOLDER_LAUNCHER_H

#include <stdbool.h>
#include <sys/types.h>

#define LAUNCHER_CHILDREN_MAX 64
#define LAUNCHER_STASH_MAX 64

struct launcher;
typedef void (*launcher_child_fn)(int fd);

/*
 * Forks the launcher as uid/gid (call as root). tmp_fd: STATE_DIR/filter-tmp (owned by uid),
 * opened while root: STATE_DIR itself stays closed to uid; the launcher and the processes it
 * starts work in that folder (their working directory). child(fd) is what each started
 * process runs (it must not return). NULL with errno.
 */
struct launcher *launcher_start(uid_t uid, gid_t gid, int tmp_fd, launcher_child_fn child);
/* Ends the launcher and every process it started. */
void launcher_free(struct launcher *l);
pid_t launcher_pid(const struct launcher *l);

/* Starts a process: *fd_r is zolderd's end of its socket. false with errno. */
bool launcher_spawn(struct launcher *l, pid_t *pid_r, int *fd_r);
/* SIGKILL to a process it started. */
void launcher_kill(struct launcher *l, pid_t pid);
/* Waits up to timeout_ms for pid's end; its wait status in *status_r. false: not known. */
bool launcher_wait(struct launcher *l, pid_t pid, int *status_r, int timeout_ms);

/* The launcher's own loop in tmp_root (for tests that run it in a child of their own). */
void launcher_main(int ctl, const char *tmp_root, launcher_child_fn child);
/* Removes the folders in tmp_root no process holds a lock (flock) on. */
void launcher_sweep(const char *tmp_root);

#endif
