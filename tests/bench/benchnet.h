/*
 * benchnet.h — the small pieces every broker benchmark needs: a monotonic clock, a free
 * loopback port, a loopback TCP connection, a blocking write of a whole buffer, and a
 * figure from /proc/PID/status. Linked into every bench_* program (tests/bench/CMakeLists.txt).
 */
#ifndef CAIRN_BENCHNET_H
#define CAIRN_BENCHNET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Seconds on CLOCK_MONOTONIC. */
double bench_now(void);
/* A port on 127.0.0.1 that was free a moment ago, or -1. */
int bench_free_port(void);
/* A blocking TCP connection (TCP_NODELAY) to 127.0.0.1:port, or -1. The caller closes it. */
int bench_connect_tcp(int port);
/* Write all len bytes (retrying on EINTR): 0, or -1 on error or EOF. */
int bench_write_all(int fd, const uint8_t *p, size_t len);
/* A "Key: N kB" figure of /proc/PID/status (VmRSS, VmHWM, ...), or -1. */
long bench_proc_kb(pid_t pid, const char *key);

#endif
