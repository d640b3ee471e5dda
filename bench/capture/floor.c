/* bench/capture/floor.c: what the kernel alone charges for attributing a capture, before
 * any code of rawlab's runs (run.py compiles it and runs it in the capture's namespace).
 *
 *   floor DIR OFF_BYTES ON_BYTES LEAST_BYTES
 *
 * prints one JSON line of CPU times (process CPU, best of 5 rounds):
 *   diag_us      one exact sock_diag look-up of a TCP socket by its 4-tuple (the question
 *                rawlab asks for each end of a new connection: rawlab/_diag.h)
 *   readlink_us  one readlink of /proc/PID/fd/N (the fewest /proc reads that name the
 *                process holding that socket: the link of the one fd that holds it)
 *   paced_us     one socket end's look-up (the two above, one after the other) made as
 *                the capture makes them: one connection's pair among the frames written
 *                between two connections (FRAMES_PER_CONN of OFF_BYTES, the bench's
 *                100k frames/s to 100 connections/s) and a short sleep, the caches as cold
 *                as the capture leaves them; the look-up's own CPU only (this thread's
 *                clock around it: no wake-up, no write counted), the mean of PACED
 *   write_off_ns, write_on_ns, write_least_ns
 *                one frame's share of write() to a file in DIR, frames of OFF_BYTES, of
 *                ON_BYTES and of LEAST_BYTES (the file's bytes a frame without and with
 *                the per-packet comments, and with the least comment that names a
 *                process), written 512 at a time as the capture writes them
 * A loopback connection inside this process is looked up (never any other socket).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../src/rawlab/_diag.h"

#define ROUNDS 5
#define LOOKUPS 20000
#define FRAMES 1000000
#define BATCH 512
#define PACED 400
#define FRAMES_PER_CONN 1000

static double
cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static double
thread_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void
fail(const char *what)
{
    perror(what);
    exit(1);
}

/* inet_diag_req_v2 for the IPv4 TCP socket (src:sport -> dst:dport), every state */
static void
request(unsigned char *req, const struct sockaddr_in *src, const struct sockaddr_in *dst)
{
    memset(req, 0, DIAG_REQ_LEN);
    req[0] = AF_INET;
    req[1] = IPPROTO_TCP;
    uint32_t states = 0xFFFFFFFFu, nocookie = 0xFFFFFFFFu;
    memcpy(req + 4, &states, 4);
    memcpy(req + 8, &src->sin_port, 2);   /* inet_diag_sockid: sport, dport (network) */
    memcpy(req + 10, &dst->sin_port, 2);
    memcpy(req + 12, &src->sin_addr, 4);  /* src[4], dst[4] */
    memcpy(req + 28, &dst->sin_addr, 4);
    memcpy(req + 48, &nocookie, 4);       /* cookie: any */
    memcpy(req + 52, &nocookie, 4);
}

static double
diag_us(int nl, const unsigned char *req, uint32_t want_inode)
{
    static unsigned char buf[8192] __attribute__((aligned(8)));
    diag_found_t f = {0};
    double t0 = cpu_s();
    for (uint32_t i = 1; i <= LOOKUPS; i++) {
        int rc;
        if (diag_send(nl, i, req, DIAG_REQ_LEN) < 0)
            fail("sock_diag send");
        while ((rc = diag_take(nl, i, buf, sizeof buf, &f)) == -EAGAIN)
            ;
        if (rc != 1 || f.inode != want_inode) {
            fprintf(stderr, "sock_diag: no answer about the socket (%d)\n", rc);
            exit(1);
        }
    }
    return (cpu_s() - t0) / LOOKUPS * 1e6;
}

static double
readlink_us(const char *path, long long want_inode)
{
    char link[64];
    double t0 = cpu_s();
    for (int i = 0; i < LOOKUPS; i++) {
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (link_socket_inode(link, n) != want_inode) {
            fprintf(stderr, "readlink %s: not the socket\n", path);
            exit(1);
        }
    }
    return (cpu_s() - t0) / LOOKUPS * 1e6;
}

/* one end asked for and its fd link read, as the capture would between its writes */
static double
paced_us(int nl, const unsigned char *req, const char *link_path, long long want_inode,
         const char *dir, size_t frame)
{
    static unsigned char buf[8192] __attribute__((aligned(8)));
    char path[4096], link[64];
    snprintf(path, sizeof path, "%s/floor-paced.bin", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t run = frame * FRAMES_PER_CONN;
    char *frames = malloc(run);
    if (fd < 0 || frames == NULL)
        fail(path);
    memset(frames, 0x5a, run);
    struct timespec gap = {0, 1000000};  /* (the capture waits for its next block) */
    double spent = 0;
    diag_found_t f = {0};
    for (uint32_t i = 1; i <= PACED; i++) {
        if (write(fd, frames, run) != (ssize_t)run)
            fail("write");
        nanosleep(&gap, NULL);
        double t0 = thread_s();
        int rc;
        if (diag_send(nl, LOOKUPS + i, req, DIAG_REQ_LEN) < 0)
            fail("sock_diag send");
        while ((rc = diag_take(nl, LOOKUPS + i, buf, sizeof buf, &f)) == -EAGAIN)
            ;
        ssize_t n = readlink(link_path, link, sizeof link - 1);
        spent += thread_s() - t0;
        if (rc != 1 || f.inode != want_inode || link_socket_inode(link, n) != want_inode) {
            fprintf(stderr, "paced look-up: not the socket (%d)\n", rc);
            exit(1);
        }
        if (i % 64 == 0 && ftruncate(fd, 0) < 0)  /* (the file stays small) */
            fail("ftruncate");
    }
    close(fd);
    unlink(path);
    free(frames);
    return spent / PACED * 1e6;
}

static double
write_ns(const char *dir, size_t frame)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/floor-%zu.bin", dir, frame);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        fail(path);
    /* runs of about BATCH frames, never two alike in a row: a run that is a whole number
       of pages (or of the page cache's folios) would be cheaper than the capture's are */
    static const int runs[] = {BATCH - 25, BATCH + 9, BATCH - 7, BATCH + 29, BATCH - 3};
    char *buf = malloc(frame * (BATCH + 29));
    if (buf == NULL)
        fail("malloc");
    memset(buf, 0x5a, frame * (BATCH + 29));
    long frames = 0;
    double t0 = cpu_s();
    for (int i = 0; frames < FRAMES; i++) {
        size_t run = frame * runs[i % 5];
        if (write(fd, buf, run) != (ssize_t)run)
            fail("write");
        frames += runs[i % 5];
    }
    double t = cpu_s() - t0;
    close(fd);
    unlink(path);
    free(buf);
    return t / frames * 1e9;
}

int
main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: floor DIR OFF_BYTES ON_BYTES LEAST_BYTES\n");
        return 2;
    }
    size_t off = strtoul(argv[2], NULL, 10), on = strtoul(argv[3], NULL, 10);
    size_t least = strtoul(argv[4], NULL, 10);
    struct sockaddr_in srv = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in cli;
    socklen_t len = sizeof srv;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0 || bind(l, (void *)&srv, sizeof srv) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (void *)&srv, &len) < 0)
        fail("listen on loopback");
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    len = sizeof cli;
    if (c < 0 || connect(c, (void *)&srv, sizeof srv) < 0 ||
        getsockname(c, (void *)&cli, &len) < 0)
        fail("connect on loopback");
    int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 4 /* NETLINK_SOCK_DIAG */);
    if (a < 0 || nl < 0)
        fail("accept, or a sock_diag socket");
    char path[64], link[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)getpid(), c);
    ssize_t n = readlink(path, link, sizeof link - 1);
    long long inode = link_socket_inode(link, n);
    if (inode < 0)
        fail("readlink of the client's fd");
    unsigned char req[DIAG_REQ_LEN];
    request(req, &cli, &srv);
    double best[5] = {1e9, 1e9, 1e9, 1e9, 1e9};
    for (int r = 0; r < ROUNDS; r++) {
        double got[5] = {diag_us(nl, req, (uint32_t)inode), readlink_us(path, inode),
                         write_ns(argv[1], off), write_ns(argv[1], on),
                         write_ns(argv[1], least)};
        for (int i = 0; i < 5; i++)
            if (got[i] < best[i])
                best[i] = got[i];
    }
    double paced = paced_us(nl, req, path, inode, argv[1], off);
    printf("{\"diag_us\": %.3f, \"readlink_us\": %.3f, \"write_off_ns\": %.2f, "
           "\"write_on_ns\": %.2f, \"write_least_ns\": %.2f, \"paced_us\": %.3f}\n",
           best[0], best[1], best[2], best[3], best[4], paced);
    return 0;
}
