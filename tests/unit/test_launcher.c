/*
 * Unit tests for reference/filter/launcher (filter_user): started as root, the launcher runs
 * as another user (here `nobody`) and so do the processes it starts; zolderd's side learns
 * how each ended (exit code, signal), kills them through it (it cannot itself), keeps the
 * statuses nobody asked for yet, and after a crash the launcher removes the folders in
 * filter-tmp that no live process holds a lock on. Skipped when not run as root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "filter/launcher.h"

/* What a started process does: reports its uid, then obeys one command byte. */
static void test_child(int fd)
{
    uid_t uid = getuid();
    if (write(fd, &uid, sizeof uid) != (ssize_t)sizeof uid)
        _exit(1);
    char cmd = 0;
    if (read(fd, &cmd, 1) != 1)
        _exit(2);
    switch (cmd) {
    case 'e': _exit(7);
    case 's': signal(SIGSEGV, SIG_DFL); raise(SIGSEGV); _exit(3); /* not cmocka's handler */
    case 'l': { /* hold a lock on a folder of filter-tmp (our working folder), then wait */
        mkdir("held", 0700);
        int d = open("held", O_RDONLY | O_DIRECTORY);
        if (d < 0 || flock(d, LOCK_EX) < 0)
            _exit(4);
        char ok = 'k';
        if (write(fd, &ok, 1) != 1)
            _exit(5);
        pause();
        _exit(0);
    }
    default: pause(); _exit(0); /* 'w': until killed */
    }
}

/* Gone, or a zombie nobody reaped yet (the launcher's orphans go to init). */
static bool gone(pid_t pid)
{
    char path[64], text[4096];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *ps = fopen(path, "r");
    if (!ps)
        return true;
    size_t n = fread(text, 1, sizeof text - 1, ps);
    text[n] = '\0';
    fclose(ps);
    return strstr(text, "\nState:\tZ") != NULL;
}

static int count_entries(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -A %s | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

static void test_launcher_processes(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    const struct passwd *pw = getpwnam("nobody");
    if (!pw)
        skip();
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    char dir[] = "/tmp/zolder-test-launcher-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char tmp[512], stale[600], file[700];
    snprintf(tmp, sizeof tmp, "%s/filter-tmp", dir);
    snprintf(stale, sizeof stale, "%s/20QKLTZ000000001", tmp);
    snprintf(file, sizeof file, "%s/left-file", stale);
    assert_int_equal(mkdir(tmp, 0700), 0);
    assert_int_equal(mkdir(stale, 0700), 0);
    int f = open(file, O_WRONLY | O_CREAT, 0600);
    assert_true(f >= 0);
    close(f);
    assert_int_equal(chown(tmp, uid, gid), 0);
    assert_int_equal(chown(stale, uid, gid), 0);
    assert_int_equal(chown(file, uid, gid), 0);
    int tmp_fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(tmp_fd >= 0);

    struct launcher *l = launcher_start(uid, gid, tmp_fd, test_child);
    close(tmp_fd);
    assert_non_null(l);

    /* three processes at once, each as nobody */
    pid_t pids[3];
    int fds[3];
    for (int i = 0; i < 3; i++) {
        assert_true(launcher_spawn(l, &pids[i], &fds[i]));
        uid_t got = 0;
        assert_int_equal(read(fds[i], &got, sizeof got), (ssize_t)sizeof got);
        assert_int_equal(got, uid);
        char path[64], text[4096];
        snprintf(path, sizeof path, "/proc/%ld/status", (long)pids[i]);
        FILE *ps = fopen(path, "r");
        assert_non_null(ps);
        size_t n = fread(text, 1, sizeof text - 1, ps);
        text[n] = '\0';
        fclose(ps);
        char want[64];
        snprintf(want, sizeof want, "\nPPid:\t%ld\n", (long)launcher_pid(l));
        assert_non_null(strstr(text, want)); /* the launcher's child, not ours */
    }
    /* the launcher itself (it answered: it has switched) */
    char status_path[64], line[256];
    snprintf(status_path, sizeof status_path, "/proc/%ld/status", (long)launcher_pid(l));
    FILE *st = fopen(status_path, "r");
    assert_non_null(st);
    bool uid_ok = false;
    while (fgets(line, sizeof line, st)) {
        unsigned long r, e, s;
        if (sscanf(line, "Uid: %lu %lu %lu", &r, &e, &s) == 3)
            uid_ok = r == uid && e == uid && s == uid;
    }
    fclose(st);
    assert_true(uid_ok);
    /* the third ends first: its status waits in the stash while we wait for the first */
    assert_int_equal(write(fds[2], "e", 1), 1);
    assert_int_equal(write(fds[0], "s", 1), 1);
    int status = 0;
    assert_true(launcher_wait(l, pids[0], &status, 10000));
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
    assert_true(launcher_wait(l, pids[2], &status, 10000));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 7);
    /* killed through the launcher */
    assert_int_equal(write(fds[1], "w", 1), 1);
    launcher_kill(l, pids[1]);
    assert_true(launcher_wait(l, pids[1], &status, 10000));
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    /* an unknown pid: no status, in time */
    assert_false(launcher_wait(l, 1, &status, 200));
    for (int i = 0; i < 3; i++)
        close(fds[i]);

    /* the launcher emptied filter-tmp when it started; after a crash it removes what no live
     * process holds a lock on, and leaves a locked folder alone */
    assert_int_equal(access(stale, F_OK), -1);
    pid_t holder, crasher;
    int hfd, cfd;
    assert_true(launcher_spawn(l, &holder, &hfd));
    uid_t got;
    assert_int_equal(read(hfd, &got, sizeof got), (ssize_t)sizeof got);
    assert_int_equal(write(hfd, "l", 1), 1);
    char ok = 0;
    assert_int_equal(read(hfd, &ok, 1), 1);
    assert_int_equal(mkdir(stale, 0700), 0); /* as a scanner killed mid-scan would leave it */
    assert_true(launcher_spawn(l, &crasher, &cfd));
    assert_int_equal(read(cfd, &got, sizeof got), (ssize_t)sizeof got);
    assert_int_equal(write(cfd, "s", 1), 1);
    assert_true(launcher_wait(l, crasher, &status, 10000));
    char held[700];
    snprintf(held, sizeof held, "%s/held", tmp);
    for (int i = 0; i < 100 && access(stale, F_OK) == 0; i++)
        usleep(10000);
    assert_int_equal(access(stale, F_OK), -1);
    assert_int_equal(access(held, F_OK), 0);
    assert_int_equal(count_entries(tmp), 1);

    /* the launcher's end takes its processes with it */
    launcher_free(l);
    for (int i = 0; i < 100 && !gone(holder); i++)
        usleep(10000);
    assert_true(gone(holder));
    close(hfd);
    close(cfd);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_launcher_processes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
