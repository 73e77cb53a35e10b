/*
 * tls_pool.c — handshake threads. The public-key work of a full TLS handshake (1-3 ms of CPU
 * with mbedTLS) runs here, not on the loop: a reconnect storm of thousands of devices after a
 * restart would otherwise hold the only loop thread for minutes while connected clients wait.
 *
 * A job is one call of mbedtls_ssl_handshake() on a transport (tls_transport.c), which steps
 * the handshake as far as the socket allows and returns WANT_READ/WANT_WRITE, done or an
 * error. The loop keeps every readiness decision: it submits a job when the socket is ready,
 * watches nothing for that socket while the job runs, and takes the result back when the
 * worker is done (an eventfd wakes it; loop_fire_fd() then runs the connection's callback as
 * if the socket had fired). So a worker never waits on a socket, the loop never waits on a
 * worker, and everything but the handshake step itself (logging, metrics, freeing, reference
 * counts) stays on the loop thread.
 *
 * Workers run at a lower priority (nice TLS_POOL_NICE) so that the loop, when it wakes with
 * messages to route, takes the CPU from them at once.
 *
 * What the workers share: the DRBG and the session-ticket keys (both locked by mbedTLS, built
 * with MBEDTLS_THREADING_PTHREAD), the RSA key's blinding values (locked by mbedTLS), and
 * read-only state: the config, certificates, CA, CRL, PSK table and the ECDSA key's comb table
 * (built before the first handshake, see tls.c).
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "tls_internal.h"

#define TLS_POOL_MAX_THREADS 8
#define TLS_POOL_NICE        10

struct tls_pool {
    struct loop *loop;
    int efd; /* workers -> loop: results are waiting */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct tls_job *jobs, *jobs_tail; /* submitted, not started */
    struct tls_job *done, *done_tail; /* finished, not yet taken by the loop */
    bool stop;
    unsigned n;
    pthread_t threads[TLS_POOL_MAX_THREADS];
};

static struct tls_pool *tls_pool_g;

static void tls_job_push(struct tls_job **head, struct tls_job **tail, struct tls_job *j)
{
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

static void *tls_pool_worker(void *arg)
{
    struct tls_pool *p = arg;
    const uint64_t one = 1;

    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), TLS_POOL_NICE);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        struct tls_job *j;
        bool wake;

        while (!p->stop && !p->jobs)
            pthread_cond_wait(&p->cond, &p->lock);
        if (p->stop)
            break;
        j = p->jobs;
        p->jobs = j->next;
        if (!p->jobs)
            p->jobs_tail = NULL;
        pthread_mutex_unlock(&p->lock);
        j->run(j);
        pthread_mutex_lock(&p->lock);
        wake = p->done == NULL; /* else the loop has a wake-up coming already */
        tls_job_push(&p->done, &p->done_tail, j);
        if (wake && write(p->efd, &one, sizeof(one)) < 0)
            log_write(CAIRN_LOG_ERR, "TLS handshake thread: eventfd: %s", strerror(errno));
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* The finished jobs, oldest first, handed to their owners on the loop thread. */
static void tls_pool_take_done(struct tls_pool *p)
{
    struct tls_job *j;

    pthread_mutex_lock(&p->lock);
    j = p->done;
    p->done = p->done_tail = NULL;
    pthread_mutex_unlock(&p->lock);
    while (j) {
        struct tls_job *next = j->next;

        j->done(j, true);
        j = next;
    }
}

static void tls_pool_on_event(struct loop *l, int fd, int events, void *arg)
{
    uint64_t n;

    (void)l;
    (void)events;
    if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        log_write(CAIRN_LOG_ERR, "TLS handshake threads: eventfd: %s", strerror(errno));
    tls_pool_take_done(arg);
}

/* One per CPU this process may run on (a container's cpuset, taskset), at most the maximum. */
static unsigned tls_pool_default_threads(void)
{
    cpu_set_t set;
    long n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
                                                          : sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : n > TLS_POOL_MAX_THREADS ? TLS_POOL_MAX_THREADS : (unsigned)n;
}

int tls_pool_start(struct loop *l, unsigned threads, char *err, size_t errlen)
{
    struct tls_pool *p = NULL;
    int rc = 0;

    if (tls_pool_g)
        goto out;
    if (threads == 0)
        threads = tls_pool_default_threads();
    if (threads > TLS_POOL_MAX_THREADS)
        threads = TLS_POOL_MAX_THREADS;
    rc = -ENOMEM;
    p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    p->loop = l;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0) {
        rc = -errno;
        snprintf(err, errlen, "TLS handshake threads: eventfd: %s", strerror(errno));
        goto out;
    }
    rc = loop_add_fd(l, p->efd, CAIRN_EV_READ, tls_pool_on_event, p);
    if (rc < 0) {
        snprintf(err, errlen, "TLS handshake threads: %s", strerror(-rc));
        goto out;
    }
    for (; p->n < threads; p->n++) {
        int e = pthread_create(&p->threads[p->n], NULL, tls_pool_worker, p);

        if (e != 0) {
            rc = -e;
            snprintf(err, errlen, "TLS handshake threads: %s", strerror(e));
            goto out;
        }
    }
    tls_pool_g = p;
    p = NULL;
    rc = 0;
out:
    if (p) {
        tls_pool_g = p;
        tls_pool_stop();
    }
    return rc;
}

void tls_pool_stop(void)
{
    struct tls_pool *p = tls_pool_g;
    struct tls_job *j;

    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    /* Jobs never started are handed back unrun; finished ones as usual. */
    for (j = p->jobs; j; j = p->jobs) {
        p->jobs = j->next;
        j->done(j, false);
    }
    tls_pool_take_done(p);
    if (p->efd >= 0) {
        loop_del_fd(p->loop, p->efd);
        close(p->efd);
    }
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
    tls_pool_g = NULL;
}

bool tls__pool_active(void)
{
    return tls_pool_g != NULL;
}

void tls__pool_submit(struct tls_job *j)
{
    struct tls_pool *p = tls_pool_g;

    pthread_mutex_lock(&p->lock);
    tls_job_push(&p->jobs, &p->jobs_tail, j);
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

void tls__pool_fire(int fd)
{
    if (tls_pool_g && !tls_pool_g->stop) /* no callbacks while the broker shuts down */
        loop_fire_fd(tls_pool_g->loop, fd, CAIRN_EV_READ);
}
