/*
 * notify.c — sd_notify's datagram without libsystemd (notify.h).
 */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int notify_address(const char *name, struct sockaddr_un *sa, socklen_t *len)
{
    size_t n = name ? strlen(name) : 0;
    int rc = 0;

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (n == 0 || (name[0] == '@' && n == 1)) {
        rc = -EINVAL;
        goto out;
    }
    if (name[0] != '/' && name[0] != '@') {
        rc = -EAFNOSUPPORT;
        goto out;
    }
    if (name[0] == '/' && n >= sizeof(sa->sun_path)) { /* a path needs its NUL */
        rc = -ENAMETOOLONG;
        goto out;
    }
    if (name[0] == '@' && n > sizeof(sa->sun_path)) { /* '\0' + name, no NUL after it */
        rc = -ENAMETOOLONG;
        goto out;
    }
    memcpy(sa->sun_path, name, n);
    if (name[0] == '@') {
        /* abstract: the address is the NUL and the bytes after it, exactly as long as given */
        sa->sun_path[0] = '\0';
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
out:
    return rc;
}

int notify_send(const char *state)
{
    const char *name = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    socklen_t len = 0;
    size_t n = strlen(state);
    int fd = -1;
    int rc = 0;

    if (!name || !*name)
        goto out;
    rc = notify_address(name, &sa, &len);
    if (rc < 0)
        goto out;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    /* one datagram, all or nothing; MSG_NOSIGNAL: a manager gone away is an error, not SIGPIPE */
    if (sendto(fd, state, n, MSG_NOSIGNAL, (const struct sockaddr *)&sa, len) < 0) {
        rc = -errno;
        goto out;
    }
    rc = 1;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}
