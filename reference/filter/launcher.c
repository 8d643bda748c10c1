/* launcher: scanner processes as filter_user (see launcher.h). */
#include "launcher.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "deadline.h"
#include "log.h"
#include "xalloc.h"

enum launcher_op {
    LAUNCHER_SPAWN = 1,   /* zolderd -> launcher, with a descriptor */
    LAUNCHER_KILL = 2,    /* zolderd -> launcher: pid */
    LAUNCHER_SPAWNED = 3, /* launcher -> zolderd: pid, or 0 with err */
    LAUNCHER_EXITED = 4,  /* launcher -> zolderd: pid, status */
};

struct launcher_msg {
    int32_t op;
    int32_t pid;
    int32_t status;
    int32_t err;
};

struct launcher_exit {
    pid_t pid;
    int status;
};

struct launcher {
    pid_t pid;
    int fd;
    struct launcher_exit stash[LAUNCHER_STASH_MAX]; /* ends nobody waited for yet */
    size_t nstash, stash_next;
};

/* ---- the launcher process ------------------------------------------------------------------ */

static int launcher_sweep_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type == FTW_DP || type == FTW_D || type == FTW_DNR)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void launcher_sweep(const char *tmp_root)
{
    DIR *dir = opendir(tmp_root);
    if (!dir)
        return;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        size_t n = strlen(tmp_root) + strlen(e->d_name) + 2;
        char *path = xmalloc(n);
        snprintf(path, n, "%s/%s", tmp_root, e->d_name);
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        /* a scanner holds a lock on the folder of the message it is scanning */
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) == 0)
            nftw(path, launcher_sweep_cb, 8, FTW_DEPTH | FTW_PHYS);
        if (fd >= 0)
            close(fd);
        free(path);
    }
    closedir(dir);
}

static int launcher_send(int fd, const struct launcher_msg *m, int pass_fd)
{
    struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof *m};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    if (pass_fd >= 0) {
        memset(&ctl, 0, sizeof ctl);
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof ctl.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    ssize_t r;
    do
        r = sendmsg(fd, &mh, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r == (ssize_t)sizeof *m ? 0 : -1;
}

/* One message; *fd_r the descriptor that came with it (-1: none). 1, 0 at EOF, -1 on error. */
static int launcher_recv(int fd, struct launcher_msg *m, int *fd_r)
{
    struct iovec iov = {.iov_base = m, .iov_len = sizeof *m};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    if (fd_r)
        *fd_r = -1;
    ssize_t r;
    do
        r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return (int)r;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int got;
            memcpy(&got, CMSG_DATA(c), sizeof got);
            if (fd_r && *fd_r < 0)
                *fd_r = got;
            else
                close(got);
        }
    }
    if (r != (ssize_t)sizeof *m || (mh.msg_flags & MSG_TRUNC)) {
        if (fd_r && *fd_r >= 0)
            close(*fd_r);
        errno = EPROTO;
        return -1;
    }
    return 1;
}

void launcher_main(int ctl, const char *tmp_root, launcher_child_fn child)
{
    if (chdir(tmp_root) < 0) /* scanners start in it; "." is all the launcher needs of it */
        _exit(1);
    tmp_root = ".";
    pid_t children[LAUNCHER_CHILDREN_MAX];
    size_t nchildren = 0;
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC);
    if (sfd < 0)
        _exit(1);
    launcher_sweep(tmp_root); /* left by an earlier run */
    for (;;) {
        struct pollfd p[2] = {{.fd = ctl, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) < 0 && errno != EAGAIN)
                break;
            int status;
            pid_t pid;
            bool sweep = false;
            while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                for (size_t i = 0; i < nchildren; i++)
                    if (children[i] == pid)
                        children[i] = children[--nchildren];
                struct launcher_msg m = {.op = LAUNCHER_EXITED, .pid = pid, .status = status};
                launcher_send(ctl, &m, -1);
                sweep |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
            }
            if (sweep) /* a scanner that died may have left its message's folder */
                launcher_sweep(tmp_root);
        }
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        struct launcher_msg m;
        int fd = -1;
        int r = launcher_recv(ctl, &m, &fd);
        if (r <= 0)
            break; /* zolderd is gone: so are we, and our children */
        if (m.op == LAUNCHER_KILL) {
            for (size_t i = 0; i < nchildren; i++)
                if (children[i] == m.pid)
                    kill(m.pid, SIGKILL);
        } else if (m.op == LAUNCHER_SPAWN && fd >= 0) {
            struct launcher_msg reply = {.op = LAUNCHER_SPAWNED};
            pid_t pid = nchildren < LAUNCHER_CHILDREN_MAX ? fork() : (errno = EAGAIN, -1);
            if (pid == 0) {
                close(ctl);
                close(sfd);
                sigprocmask(SIG_UNBLOCK, &chld, NULL);
                int flags = fcntl(fd, F_GETFD);
                fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
                child(fd);
                _exit(0);
            }
            if (pid > 0) {
                children[nchildren++] = pid;
                reply.pid = pid;
            } else {
                reply.err = errno;
            }
            launcher_send(ctl, &reply, -1);
        }
        if (fd >= 0)
            close(fd);
    }
    for (size_t i = 0; i < nchildren; i++)
        kill(children[i], SIGKILL);
    _exit(0);
}

struct launcher *launcher_start(uid_t uid, gid_t gid, int tmp_fd, launcher_child_fn child)
{
    if (uid == 0) {
        errno = EPERM;
        return NULL;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return NULL;
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return NULL;
    }
    if (pid == 0) {
        close(sv[0]);
        if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0 || setuid(0) == 0 || seteuid(0) == 0) {
            log_warn("scanner launcher: cannot become uid %ld", (long)uid);
            _exit(1);
        }
        /* after the uid change, which clears it; zolderd may have died in between */
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (getppid() != parent)
            _exit(0);
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        struct rlimit zero = {0, 0};
        setrlimit(RLIMIT_CORE, &zero);
        static const int quiet[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGPIPE};
        for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++)
            signal(quiet[i], SIG_IGN); /* zolderd's business: it ends us by closing the socket */
        /* STATE_DIR (run_as's, 0700) is not ours to pass through: filter-tmp is reached by
         * the descriptor zolderd opened while root, and is our working folder from now on */
        if (fchdir(tmp_fd) < 0 || dup2(sv[1], 3) < 0)
            _exit(1);
        close_range(4, ~0U, 0);
        close(0);
        close(1);
        launcher_main(3, ".", child);
        _exit(0);
    }
    close(sv[1]);
    struct launcher *l = xcalloc(1, sizeof *l);
    l->pid = pid;
    l->fd = sv[0];
    return l;
}

pid_t launcher_pid(const struct launcher *l)
{
    return l->pid;
}

void launcher_free(struct launcher *l)
{
    if (!l)
        return;
    close(l->fd); /* the launcher kills its children and exits */
    while (waitpid(l->pid, NULL, 0) < 0 && errno == EINTR)
        continue;
    free(l);
}

static void launcher_stash(struct launcher *l, pid_t pid, int status)
{
    l->stash[l->stash_next] = (struct launcher_exit){pid, status};
    l->stash_next = (l->stash_next + 1) % LAUNCHER_STASH_MAX;
    if (l->nstash < LAUNCHER_STASH_MAX)
        l->nstash++;
}

static bool launcher_stashed(struct launcher *l, pid_t pid, int *status_r)
{
    for (size_t i = 0; i < l->nstash; i++) {
        if (l->stash[i].pid == pid) {
            *status_r = l->stash[i].status;
            l->stash[i].pid = 0;
            return true;
        }
    }
    return false;
}

/* Reads the launcher's messages until want arrives (SPAWNED, or EXITED of pid) or the deadline. */
static bool launcher_read_until(struct launcher *l, int want, pid_t pid, struct launcher_msg *out,
                                long long deadline)
{
    for (;;) {
        int w = deadline_poll(l->fd, POLLIN, deadline);
        if (w <= 0) {
            if (w == 0)
                errno = ETIMEDOUT;
            return false;
        }
        struct launcher_msg m;
        int r = launcher_recv(l->fd, &m, NULL);
        if (r <= 0) {
            if (r == 0)
                errno = EPIPE;
            log_warnx("scanner launcher (pid %ld) is gone: scans are deferred until zolderd is restarted",
                      (long)l->pid);
            return false;
        }
        if (m.op == LAUNCHER_EXITED && !(want == LAUNCHER_EXITED && m.pid == pid)) {
            launcher_stash(l, m.pid, m.status);
            continue;
        }
        if (m.op == want) {
            *out = m;
            return true;
        }
    }
}

bool launcher_spawn(struct launcher *l, pid_t *pid_r, int *fd_r)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return false;
    struct launcher_msg m = {.op = LAUNCHER_SPAWN};
    struct launcher_msg reply;
    bool ok = launcher_send(l->fd, &m, sv[1]) == 0 &&
              launcher_read_until(l, LAUNCHER_SPAWNED, 0, &reply, deadline_now_ms() + 5000);
    close(sv[1]);
    if (ok && reply.pid <= 0) {
        errno = reply.err ? reply.err : EAGAIN;
        ok = false;
    }
    if (!ok) {
        int saved = errno;
        close(sv[0]);
        errno = saved;
        return false;
    }
    *pid_r = reply.pid;
    *fd_r = sv[0];
    return true;
}

void launcher_kill(struct launcher *l, pid_t pid)
{
    struct launcher_msg m = {.op = LAUNCHER_KILL, .pid = pid};
    launcher_send(l->fd, &m, -1);
}

bool launcher_wait(struct launcher *l, pid_t pid, int *status_r, int timeout_ms)
{
    if (launcher_stashed(l, pid, status_r))
        return true;
    struct launcher_msg m;
    if (!launcher_read_until(l, LAUNCHER_EXITED, pid, &m, deadline_now_ms() + timeout_ms))
        return false;
    *status_r = m.status;
    return true;
}
