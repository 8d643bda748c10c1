/*
 * auth: password checks off the event loop (see auth.h).
 *
 * A request lives in one of three places: the todo list (waiting for a worker), a worker's
 * hands, the done list (waiting for the loop); then, for a failure, on its delay timer. The
 * lists and every request's `cancelled` flag are guarded by the service's mutex; the timer
 * and the callback belong to the loop thread alone.
 */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "log.h"
#include "str.h"
#include "xalloc.h"

struct auth_request {
    struct auth_request *next;
    struct auth_service *svc;
    struct users_check chk;
    char password[USERS_PASSWORD_MAX + 2];
    enum users_auth result;
    auth_done_fn done;
    void *arg;
    bool cancelled;
    bool delaying;
    struct event *delay;
    bool cacheable;                        /* a real hash: an OK verdict goes into the cache */
    unsigned char digest[AUTH_DIGEST_LEN]; /* its cache key (see auth_cache_key) */
};

/* One remembered success: the key of (hash string, password) and when it stops counting. */
struct auth_cache_entry {
    unsigned char digest[AUTH_DIGEST_LEN];
    long long expires;                     /* CLOCK_MONOTONIC seconds */
    bool used;
};

struct auth_service {
    struct event_base *base;
    unsigned failure_delay_ms;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct auth_request *todo_head, *todo_tail;
    struct auth_request *done_head, *done_tail;
    struct auth_request *delaying;  /* requests on their failure timer (loop thread only) */
    size_t queued;
    bool stopping;
    pthread_t workers[AUTH_WORKERS];
    size_t nworkers;
    int notify[2];                   /* workers write a byte, the loop reads */
    struct event *notify_ev;
    /* the cache of successful checks (loop thread only) */
    unsigned char cache_key[32];     /* random per process: digests mean nothing elsewhere */
    struct auth_cache_entry *cache;
    size_t cache_size;
    unsigned long cache_ttl;
    unsigned long long hashed;       /* checks that ran a hash (tests, statistics) */
};

static long long auth_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec;
}

/* HMAC-SHA256 under the process's key of the user's hash string, a NUL, and the password. */
static void auth_cache_key(const struct auth_service *svc, const struct users_check *chk, const char *password,
                           unsigned char *out)
{
    size_t hl = strnlen(chk->hash, sizeof chk->hash), pl = strlen(password);
    unsigned char buf[USERS_HASH_MAX + 1 + USERS_PASSWORD_MAX + 2];
    memcpy(buf, chk->hash, hl);
    buf[hl] = '\0';
    memcpy(buf + hl + 1, password, pl);
    unsigned len = 0;
    if (!HMAC(EVP_sha256(), svc->cache_key, sizeof svc->cache_key, buf, hl + 1 + pl, out, &len) ||
        len != AUTH_DIGEST_LEN)
        memset(out, 0, AUTH_DIGEST_LEN); /* cannot happen; an all-zero key is never stored */
    explicit_bzero(buf, sizeof buf);
}

static bool auth_digest_zero(const unsigned char *d)
{
    unsigned char acc = 0;
    for (size_t i = 0; i < AUTH_DIGEST_LEN; i++)
        acc |= d[i];
    return acc == 0;
}

static bool auth_cache_hit(struct auth_service *svc, const unsigned char *digest)
{
    long long now = auth_now();
    for (size_t i = 0; i < svc->cache_size; i++) {
        struct auth_cache_entry *e = &svc->cache[i];
        if (!e->used)
            continue;
        if (e->expires <= now) {
            explicit_bzero(e, sizeof *e);
            continue;
        }
        if (CRYPTO_memcmp(e->digest, digest, AUTH_DIGEST_LEN) == 0)
            return true;
    }
    return false;
}

static void auth_cache_put(struct auth_service *svc, const unsigned char *digest)
{
    if (!svc->cache_size || auth_digest_zero(digest))
        return;
    long long now = auth_now();
    struct auth_cache_entry *slot = NULL;
    for (size_t i = 0; i < svc->cache_size; i++) {
        struct auth_cache_entry *e = &svc->cache[i];
        if (e->used && CRYPTO_memcmp(e->digest, digest, AUTH_DIGEST_LEN) == 0) {
            slot = e; /* the same again: a new lifetime */
            break;
        }
        /* a free or expired place, else the one that expires first */
        if (!slot || (slot->used && (!e->used || e->expires <= now || e->expires < slot->expires)))
            slot = e;
    }
    memcpy(slot->digest, digest, AUTH_DIGEST_LEN);
    slot->expires = now + (long long)svc->cache_ttl;
    slot->used = true;
}

static void auth_push(struct auth_request **head, struct auth_request **tail, struct auth_request *r)
{
    r->next = NULL;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
}

static struct auth_request *auth_pop(struct auth_request **head, struct auth_request **tail)
{
    struct auth_request *r = *head;
    if (r) {
        *head = r->next;
        if (!*head)
            *tail = NULL;
        r->next = NULL;
    }
    return r;
}

static void auth_request_free(struct auth_request *r)
{
    if (r->delay)
        event_free(r->delay);
    explicit_bzero(r, sizeof *r);
    free(r);
}

static void *auth_worker(void *arg)
{
    struct auth_service *svc = arg;
    pthread_mutex_lock(&svc->lock);
    for (;;) {
        while (!svc->todo_head && !svc->stopping)
            pthread_cond_wait(&svc->wake, &svc->lock);
        if (svc->stopping)
            break;
        struct auth_request *r = auth_pop(&svc->todo_head, &svc->todo_tail);
        bool skip = r->cancelled;
        pthread_mutex_unlock(&svc->lock);
        r->result = skip ? USERS_AUTH_ERROR : users_check_run(&r->chk, r->password);
        explicit_bzero(r->password, sizeof r->password);
        pthread_mutex_lock(&svc->lock);
        auth_push(&svc->done_head, &svc->done_tail, r);
        char one = 1;
        /* a full pipe already holds a wake-up for the loop */
        (void)!write(svc->notify[1], &one, 1);
    }
    pthread_mutex_unlock(&svc->lock);
    return NULL;
}

static void auth_unlink_delaying(struct auth_service *svc, struct auth_request *r)
{
    for (struct auth_request **p = &svc->delaying; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            return;
        }
    }
}

/* A failure's delay is over (or an overload refusal's next loop turn has come). */
static void auth_delay_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct auth_request *r = arg;
    auth_unlink_delaying(r->svc, r);
    r->done(r->result, r->arg);
    auth_request_free(r);
}

static void auth_notified(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct auth_service *svc = arg;
    char drain[64];
    while (read(fd, drain, sizeof drain) > 0)
        ;
    for (;;) {
        pthread_mutex_lock(&svc->lock);
        struct auth_request *r = auth_pop(&svc->done_head, &svc->done_tail);
        if (r) {
            svc->queued--;
            if (r->cancelled) {
                pthread_mutex_unlock(&svc->lock);
                auth_request_free(r);
                continue;
            }
        }
        pthread_mutex_unlock(&svc->lock);
        if (!r)
            return;
        svc->hashed++;
        if (r->result == USERS_AUTH_OK && r->cacheable)
            auth_cache_put(svc, r->digest); /* failures are never cached */
        if (r->result != USERS_AUTH_OK && svc->failure_delay_ms > 0) {
            r->delaying = true;
            r->delay = evtimer_new(svc->base, auth_delay_done, r);
            r->next = svc->delaying;
            svc->delaying = r;
            struct timeval tv = {.tv_sec = svc->failure_delay_ms / 1000,
                                 .tv_usec = (suseconds_t)(svc->failure_delay_ms % 1000) * 1000};
            evtimer_add(r->delay, &tv);
            continue;
        }
        r->done(r->result, r->arg);
        auth_request_free(r);
    }
}

static bool auth_pipe(int fds[2])
{
    if (pipe(fds) < 0)
        return false;
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(fds[i], F_GETFL);
        if (fl < 0 || fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) < 0 ||
            fcntl(fds[i], F_SETFD, FD_CLOEXEC) < 0) {
            close(fds[0]);
            close(fds[1]);
            return false;
        }
    }
    return true;
}

struct auth_service *auth_service_new(struct event_base *base, unsigned failure_delay_ms,
                                      const char **error_r)
{
    struct auth_service *svc = xcalloc(1, sizeof *svc);
    svc->base = base;
    svc->failure_delay_ms = failure_delay_ms;
    pthread_mutex_init(&svc->lock, NULL);
    pthread_cond_init(&svc->wake, NULL);
    if (!auth_pipe(svc->notify)) {
        *error_r = "cannot create the notification pipe";
        pthread_mutex_destroy(&svc->lock);
        pthread_cond_destroy(&svc->wake);
        free(svc);
        return NULL;
    }
    if (RAND_bytes(svc->cache_key, sizeof svc->cache_key) != 1) {
        *error_r = "cannot make the password cache's key";
        close(svc->notify[0]);
        close(svc->notify[1]);
        pthread_mutex_destroy(&svc->lock);
        pthread_cond_destroy(&svc->wake);
        free(svc);
        return NULL;
    }
    svc->notify_ev = event_new(base, svc->notify[0], EV_READ | EV_PERSIST, auth_notified, svc);
    event_add(svc->notify_ev, NULL);
    for (size_t i = 0; i < AUTH_WORKERS; i++) {
        if (pthread_create(&svc->workers[i], NULL, auth_worker, svc) != 0) {
            *error_r = "cannot start the password-check threads";
            auth_service_free(svc);
            return NULL;
        }
        svc->nworkers++;
    }
    return svc;
}

void auth_service_free(struct auth_service *svc)
{
    if (!svc)
        return;
    pthread_mutex_lock(&svc->lock);
    svc->stopping = true;
    pthread_cond_broadcast(&svc->wake);
    pthread_mutex_unlock(&svc->lock);
    for (size_t i = 0; i < svc->nworkers; i++)
        pthread_join(svc->workers[i], NULL);
    struct auth_request *r;
    while ((r = auth_pop(&svc->todo_head, &svc->todo_tail)))
        auth_request_free(r);
    while ((r = auth_pop(&svc->done_head, &svc->done_tail)))
        auth_request_free(r);
    while ((r = svc->delaying)) {
        svc->delaying = r->next;
        auth_request_free(r);
    }
    event_free(svc->notify_ev);
    if (svc->cache) {
        explicit_bzero(svc->cache, svc->cache_size * sizeof *svc->cache);
        free(svc->cache);
    }
    explicit_bzero(svc->cache_key, sizeof svc->cache_key);
    close(svc->notify[0]);
    close(svc->notify[1]);
    pthread_mutex_destroy(&svc->lock);
    pthread_cond_destroy(&svc->wake);
    free(svc);
}

void auth_service_set_failure_delay(struct auth_service *svc, unsigned failure_delay_ms)
{
    svc->failure_delay_ms = failure_delay_ms;
}

void auth_service_set_cache(struct auth_service *svc, size_t size, unsigned long ttl_s)
{
    if (size > AUTH_CACHE_MAX)
        size = AUTH_CACHE_MAX;
    if (svc->cache) {
        explicit_bzero(svc->cache, svc->cache_size * sizeof *svc->cache);
        free(svc->cache);
    }
    svc->cache = NULL;
    svc->cache_size = ttl_s ? size : 0;
    svc->cache_ttl = ttl_s;
    if (svc->cache_size)
        svc->cache = xcalloc(svc->cache_size, sizeof *svc->cache);
}

unsigned long long auth_service_hashed(const struct auth_service *svc)
{
    return svc->hashed;
}

/* A verdict known without a hash (a cache hit, overload, a password too long): answered on
 * the next loop turn, never from inside auth_submit. */
static void auth_answer_next_turn(struct auth_service *svc, struct auth_request *r, enum users_auth result)
{
    explicit_bzero(r->password, sizeof r->password);
    r->result = result;
    r->delaying = true;
    r->delay = evtimer_new(svc->base, auth_delay_done, r);
    r->next = svc->delaying;
    svc->delaying = r;
    struct timeval now = {0, 0};
    evtimer_add(r->delay, &now);
}

struct auth_request *auth_submit(struct auth_service *svc, const struct users_check *chk,
                                 const char *password, auth_done_fn done, void *arg)
{
    struct auth_request *r = xcalloc(1, sizeof *r);
    r->svc = svc;
    r->chk = *chk;
    r->done = done;
    r->arg = arg;
    bool too_long = !str_copy(r->password, sizeof r->password, password);
    if (svc->cache_size && !too_long && chk->if_unusable == USERS_AUTH_OK) {
        auth_cache_key(svc, chk, password, r->digest);
        r->cacheable = true;
        if (auth_cache_hit(svc, r->digest)) {
            /* this password passed against this very hash string within the TTL */
            auth_answer_next_turn(svc, r, USERS_AUTH_OK);
            return r;
        }
    }
    pthread_mutex_lock(&svc->lock);
    bool full = svc->queued >= AUTH_QUEUE_MAX;
    if (!full && !too_long) {
        svc->queued++;
        auth_push(&svc->todo_head, &svc->todo_tail, r);
        pthread_cond_signal(&svc->wake);
    }
    pthread_mutex_unlock(&svc->lock);
    if (full || too_long) {
        if (full)
            log_warnx("auth: %d checks waiting: refusing a login as overload", AUTH_QUEUE_MAX);
        auth_answer_next_turn(svc, r, USERS_AUTH_ERROR);
    }
    return r;
}

void auth_cancel(struct auth_request *r)
{
    struct auth_service *svc = r->svc;
    if (r->delaying) {
        auth_unlink_delaying(svc, r);
        auth_request_free(r);
        return;
    }
    /* in a worker's hands or on a list: the loop frees it when it comes back */
    pthread_mutex_lock(&svc->lock);
    r->cancelled = true;
    pthread_mutex_unlock(&svc->lock);
}
