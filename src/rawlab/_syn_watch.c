/* rawlab._syn_watch: the SYN watch's question asked by a thread that never takes the
 * interpreter lock (rawlab.analysis.syn_watch).
 *
 *   w = Watcher(packet_fd, linktype, proc_root, notify_fd)
 *   w.namespace(netns, diag_fd)     a NETLINK_SOCK_DIAG socket opened in that namespace
 *   w.forget(netns)                 (its socket closed by the thread, when it is not asking)
 *   w.routes(home, [(addr, netns)]) where each local address lives (home: loopback's)
 *   w.hint(netns, uid, pid, fd)     the process that last held such a socket, and where
 *   w.members({netns: [pid]})       each namespace's processes (as last seen)
 *   w.listener(netns, port, pid)    a TCP listener on that port there, held by pid
 *   w.start(); w.take() -> items; w.stop()
 *
 * For each TCP SYN (without ACK) the packet socket reads, the thread asks the kernel for
 * the connecting socket (the SYN's source) in the namespace its address lives in, then
 * reads the fd links the hints name for that namespace and the socket's uid: a process
 * that holds the socket's inode there is its owner (HIT). Each link is read through the
 * /proc/PID directory opened when the hint was given (openat: a directory that names that
 * process; once it has exited, nothing under it is found, even if its pid is another's
 * now): a link that holds the inode says that very process held the socket then (the
 * facts read when it was given are its: `alive`), with no other system call.
 * When no hint holds the socket (a new process), the thread walks /proc itself: the
 * socket's namespace's processes first when there are few (w.members), then the newest
 * pids first, and reads the holder's /proc files at once (a short-lived client is gone
 * milliseconds later): Python reads them (rawlab.sockets.proc.facts_from). What it
 * cannot finish (WALKS_MOST walks a window spent; an address it has no route for) is
 * queued with what it found and
 * `notify_fd` is written, which wakes the Python thread that finishes it; the rest waits
 * in the queue for the capture's next question (OwnerLookup.take_syns).
 *
 * After a SYN to an address and port where a listener is known (w.listener), the thread
 * asks for the connection's accepting end ACCEPT_AFTER_US after the SYN until it has
 * an inode (a process accepted it; a server that answers and closes at once is gone
 * long before the capture's block is read): the listener's process is the one that can
 * have accepted it, and its fd links are read (the fds that held the last ones first,
 * then ACCEPT_SCAN links at most): found, the item (end 1) is queued as a HIT; not found,
 * nothing is (the capture asks, later). ACCEPTS_MOST a window at most, SCANS_MOST
 * fd-table reads; a listener whose accepted sockets were mostly not found in its process
 * (others accept them too) rests ACCEPT_REST_US, doubled while that goes on. The links are
 * read through the listener's process's /proc/PID directory, opened when it was given:
 * found there, that process held the socket then (`alive`).
 *
 * The thread runs at real-time priority (SCHED_FIFO 1, where it may: CAP_SYS_NICE): a
 * SYN's wake-up preempts the capture's loop at once, also on a shared CPU, where a
 * thread of the same class may wait milliseconds and a client's socket may live 200 µs.
 * Over RT_MOST SYNs in RT_WINDOW_MS (a flood) it runs as any thread until a window with
 * half as many: it never takes the capture's CPU.
 *
 * Items: (kind, family, src, sport, dst, dport, netns, found, pid, fd, alive, errno, facts,
 *         end): src and sport are the socket's own end
 *   kind  HIT, MISS (found, no hint held it), GONE (no such socket), ASK (not asked:
 *         no route to the address's namespace), ERROR (errno: the kernel's)
 *   found (state, inode, uid, cookie, cgroup_id) as rawlab._kernels.diag_find's
 *   alive 1 (the process the hint or listener was given for held it: its facts are
 *         this owner's), -1 when not known (its /proc directory could not be opened)
 *   facts a walk's find (MISS with a pid): its stat, comm, cmdline, status, cgroup
 *         (bytes) and thread count; else None
 *   end   0: the connecting end (the SYN's source), 1: the accepting end
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "_diag.h"

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

enum { K_HIT, K_MISS, K_GONE, K_ASK, K_ERROR, K_KINDS };
#define HINTS 2          /* (pid, fd) kept per (namespace, uid), as owners._HINTS */
#define MAX_KEYS 64      /* (namespace, uid) pairs with hints (a procfd each), least recently
                            given out */
#define QUEUE 4096       /* items waiting; more are dropped (counted in `dropped`: SYNs and
                            accepting ends) */
#define SNAP 256         /* the packet socket's snap length */
#define RECV_BATCH 16    /* SYNs read by one call */
#define KICK_AT 16       /* fds waiting for the thread to close them: it is woken for them */
#define SS_ALL ((1u << 14) - 1)
#define DIAG_WAIT_MS 1000
#define RT_WINDOW_MS 100
#define RT_MOST 500      /* SYNs a window at real-time priority (5,000/s, ~8 % of a CPU) */
#define WALKS_MOST 20    /* walks of /proc a window (~0.3 ms each); more go to Python */
#define FACT_FILES 5     /* stat, comm, cmdline, status, cgroup */
#define FACT_MOST 65536  /* bytes read of each */

typedef struct {
    uint8_t kind, family;
    uint8_t end;         /* 0: the connecting end (the SYN's source), 1: the accepting one */
    uint8_t src[16], dst[16];
    uint16_t sport, dport;
    uint64_t netns;
    int has_found;
    diag_found_t found;
    long long pid, fd;
    int alive, err;
    char *facts;         /* a walk's find: the process's files (malloc'd), or NULL */
    size_t facts_len;
    int threads;
} item_t;

typedef struct { uint64_t netns; int fd; uint32_t seq; } ns_t;
/* an accepting end asked for again until accepted (the thread's own: no mutex) */
#define ACCEPTS 256      /* connections waiting to be accepted, at most; more: not asked */
static const long long ACCEPT_AFTER_US[] = {100, 250, 500, 1000, 2000, 5000, 10000, 20000,
                                             50000};
#define ACCEPT_TRIES ((int)(sizeof ACCEPT_AFTER_US / sizeof ACCEPT_AFTER_US[0]))
#define ACCEPT_SCAN 64   /* fd links of the listener's process read for an accepted socket */
#define ACCEPTS_MOST 100 /* accepting ends watched a window (RT_WINDOW_MS); more: not asked */
#define ACCEPT_RUN 64    /* accepted sockets of a listener, over half not found in its
                            process (others accept them): that listener rests */
#define ACCEPT_REST_US 1000000  /* (a second, then 2, 4 ... 64 while runs miss) */
#define SCANS_MOST 10    /* fd-table reads for accepted sockets a window; more: last[] only */
#define LISTENERS 256
#define ACCEPT_LAST 4    /* fds that held a listener's last accepted sockets, tried first */
typedef struct {
    uint64_t netns;
    uint16_t port;
    long long pid, last[ACCEPT_LAST];  /* (-1: none) */
    int procfd;               /* its /proc/PID, opened when the pid was given (-1: none) */
    int tried, missed;        /* accepted sockets looked for, not found, of the last run */
    long long rest_until_us;  /* after a run of ACCEPT_RUN with over half missed */
    long long rest_us;        /* how long: doubled by each such run in a row */
} listener_t;
typedef struct { item_t it; long long syn_us, due_us; int tries, missed; } accept_t;
#define NEAR_MOST 64     /* a namespace's processes walked first, if it has no more */
typedef struct { uint64_t netns; int n; long long pid[NEAR_MOST]; } near_t;
typedef struct { uint8_t len; uint8_t addr[16]; uint64_t netns; } route_t;
typedef struct {
    uint64_t netns;
    long long uid;
    long long pid[HINTS], fd[HINTS];
    int procfd[HINTS];  /* their /proc/PID directories (-1: none) */
    int n;
    uint64_t used;
} hint_t;

typedef struct {
    PyObject_HEAD
    pthread_mutex_t mu;
    pthread_t thread;
    int running;
    int stopping;      /* a stop waits for the thread (start() refuses meanwhile) */
    int thread_alive;  /* (under mu) the thread may be reading through copied fds: a
                          given-up /proc directory waits for it (0: closed at once) */
    int pkt_fd, notify_fd, stop_r, stop_w;
    int kick_fd;       /* an eventfd that wakes the thread to close what waits (to_close) */
    int linktype;
    char proc[256];
    ns_t *ns; size_t nns;
    int *closing; size_t nclosing;       /* diag fds the thread closes */
    route_t *routes; size_t nroutes;      /* sorted by (len, addr) */
    near_t *near; size_t nnear;           /* the small namespaces' processes */
    uint64_t home; int has_home;
    hint_t hints[MAX_KEYS]; size_t nhints; uint64_t tick;
    item_t *queue; size_t qhead, qlen;
    unsigned long long syns, dropped, counts[K_KINDS];
    unsigned long long accepts;           /* accepting ends queued (found accepted) */
    unsigned long long accept_asks;       /* look-ups of accepting ends */
    unsigned long long accept_misses;     /* accepted sockets the listener's process did
                                             not hold when read */
    accept_t acc[ACCEPTS]; size_t nacc;   /* the thread's: connections not yet accepted */
    long long acc_window; unsigned acc_in_window;
    long long scan_window; unsigned scans_in_window;
    listener_t lst[LISTENERS]; size_t nlst, lnext;  /* (the mutex held) */
    unsigned long long demoted;           /* times a flood of SYNs ended real time */
    unsigned long long walks;             /* walks of /proc the thread made */
    long long walk_window; unsigned walks_in_window;
    int rt;                               /* the thread runs SCHED_FIFO now */
    int failed;                           /* errno that stopped the thread */
} Watcher;

/* ---- reading the SYN ----------------------------------------------------------------- */

/* the IP header's offset in a frame of `linktype` (-1: not read here) */
static int
ip_offset(const unsigned char *p, size_t n, int linktype)
{
    if (linktype == 101 || linktype == 12 || linktype == 14)  /* raw IP */
        return 0;
    if (linktype != 1)
        return -1;
    size_t off = 12;
    for (int tags = 0; tags < 3; tags++) {
        if (off + 2 > n)
            return -2;
        unsigned et = (unsigned)p[off] << 8 | p[off + 1];
        if (et == 0x0800 || et == 0x86DD)
            return (int)off + 2;
        if (et != 0x8100 && et != 0x88A8)
            return -2;
        off += 4;
    }
    return -2;
}

/* the SYN's 4-tuple: 1 when `p` is a TCP SYN without ACK (IPv4 not a later fragment,
   IPv6 without extension headers), 0 when not, -1 for a link type not read here */
static int
syn_of(const unsigned char *p, size_t n, int linktype, item_t *it)
{
    int at = ip_offset(p, n, linktype);
    if (at == -1)
        return -1;
    if (at < 0 || (size_t)at + 1 > n)
        return 0;
    const unsigned char *ip = p + at;
    size_t left = n - (size_t)at, l4;
    if (ip[0] >> 4 == 4) {
        size_t ihl = (size_t)(ip[0] & 15) * 4;
        if (ihl < 20 || left < ihl + 14 || ip[9] != 6 || (((unsigned)ip[6] << 8 | ip[7]) & 0x1FFF))
            return 0;
        it->family = 4;
        memset(it->src, 0, 32);
        memcpy(it->src, ip + 12, 4);
        memcpy(it->dst, ip + 16, 4);
        l4 = ihl;
    } else if (ip[0] >> 4 == 6) {
        if (left < 40 + 14 || ip[6] != 6)
            return 0;
        it->family = 6;
        memcpy(it->src, ip + 8, 16);
        memcpy(it->dst, ip + 24, 16);
        l4 = 40;
    } else {
        return 0;
    }
    const unsigned char *t = ip + l4;
    if ((t[13] & 0x12) != 0x02)
        return 0;
    it->sport = (uint16_t)(t[0] << 8 | t[1]);
    it->dport = (uint16_t)(t[2] << 8 | t[3]);
    return 1;
}

/* ---- the tables (Watcher.mu held) ----------------------------------------------------- */

static int
route_cmp(const void *a, const void *b)
{
    const route_t *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->addr, y->addr, x->len);
}

static int
is_loopback(int family, const uint8_t *a)
{
    static const uint8_t one[16] = {[15] = 1};
    return family == 4 ? a[0] == 127 : memcmp(a, one, 16) == 0;
}

/* the namespace the address lives in (1), or 0 */
static int
route_of(Watcher *w, int family, const uint8_t *addr, uint64_t *netns)
{
    if (is_loopback(family, addr)) {
        *netns = w->home;
        return w->has_home;
    }
    route_t key = {family == 4 ? 4 : 16, {0}, 0};
    memcpy(key.addr, addr, key.len);
    route_t *r = bsearch(&key, w->routes, w->nroutes, sizeof key, route_cmp);
    if (r == NULL)
        return 0;
    *netns = r->netns;
    return 1;
}

static ns_t *
ns_of(Watcher *w, uint64_t netns)
{
    for (size_t i = 0; i < w->nns; i++)
        if (w->ns[i].netns == netns)
            return &w->ns[i];
    return NULL;
}

static hint_t *
hint_of(Watcher *w, uint64_t netns, long long uid)
{
    for (size_t i = 0; i < w->nhints; i++)
        if (w->hints[i].netns == netns && w->hints[i].uid == uid)
            return &w->hints[i];
    return NULL;
}

static void
push(Watcher *w, const item_t *it)
{
    if (w->qlen == QUEUE) {
        w->dropped++;  /* (SYNs and accepting ends: the capture asks for them itself) */
        free(it->facts);
        return;
    }
    w->queue[(w->qhead + w->qlen) % QUEUE] = *it;
    __atomic_store_n(&w->qlen, w->qlen + 1, __ATOMIC_RELAXED);
    if (it->end)
        w->accepts++;
    else
        w->counts[it->kind]++;
}

/* ---- the thread ----------------------------------------------------------------------- */

static void
wake(Watcher *w)
{
    uint64_t one = 1;
    ssize_t r;
    do {
        r = write(w->notify_fd, &one, sizeof one);
    } while (r < 0 && errno == EINTR);
    /* (EAGAIN: a wake-up is already waiting) */
}

static long long
now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static long long
now_ms(void)
{
    return now_us() / 1000;
}

/* the kernel's answer about item `it`'s socket (its local end is `src`): diag_take's
   codes */
static int
ask(int fd, uint32_t seq, const item_t *it, diag_found_t *out)
{
    unsigned char req[DIAG_REQ_LEN];
    uint32_t states = SS_ALL, zero = 0;
    uint64_t nocookie = UINT64_MAX;
    memset(req, 0, sizeof req);
    req[0] = it->family == 4 ? 2 : 10;  /* AF_INET, AF_INET6 */
    req[1] = 6;                          /* IPPROTO_TCP */
    memcpy(req + 4, &states, 4);
    req[8] = (uint8_t)(it->sport >> 8);  /* TCP: id.src is the local end */
    req[9] = (uint8_t)it->sport;
    req[10] = (uint8_t)(it->dport >> 8);
    req[11] = (uint8_t)it->dport;
    memcpy(req + 12, it->src, 16);
    memcpy(req + 28, it->dst, 16);
    memcpy(req + 44, &zero, 4);
    memcpy(req + 48, &nocookie, 8);
    int rc = diag_send(fd, seq, req, sizeof req);
    if (rc < 0)
        return rc;
    unsigned char buf[8192] __attribute__((aligned(8)));
    long long deadline = now_ms() + DIAG_WAIT_MS;
    for (;;) {
        rc = diag_take(fd, seq, buf, sizeof buf, out);
        if (rc >= 0 || (rc != -EAGAIN && rc != -EINTR))
            return rc;
        if (rc == -EINTR)
            continue;
        long long left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
            return -errno;
    }
}

/* /proc/PID of `pid`, opened (a directory that names that process: -1 when it cannot
   be opened); close-on-exec */
static int
open_proc(Watcher *w, long long pid)
{
    char path[512];
    int len = snprintf(path, sizeof path, "%s/%lld", w->proc, pid);
    if (len <= 0 || (size_t)len >= sizeof path)
        return -1;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -1 : fd;
}

/* the fd link `fd` of process `pid`, through its /proc directory `procfd` when there is
   one (-1: by path); readlink's return */
static ssize_t
fd_link(Watcher *w, int procfd, long long pid, long long fd, char *link, size_t cap)
{
    char path[512];
    int len = procfd >= 0 ? snprintf(path, sizeof path, "fd/%lld", fd)
                          : snprintf(path, sizeof path, "%s/%lld/fd/%lld", w->proc, pid, fd);
    if (len <= 0 || (size_t)len >= sizeof path)
        return -1;
    return procfd >= 0 ? readlinkat(procfd, path, link, cap) : readlink(path, link, cap);
}

/* which hint holds `inode`: its index, or -1 (the links read without the mutex, through
   the hints' /proc directories: they are closed by the thread only, between SYNs) */
static int
held_by(Watcher *w, const int *procfd, const long long *pid, const long long *fd, int n,
        long long inode)
{
    for (int i = 0; i < n; i++) {
        char link[64];
        if (link_socket_inode(link, fd_link(w, procfd[i], pid[i], fd[i], link,
                                            sizeof link - 1)) == inode)
            return i;
    }
    return -1;
}

static int
pid_desc(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* whether process `p` holds socket `inode`, and at which fd (its fd links read: `most`
   of them at most, 0: all; through its /proc directory `procfd` when there is one, -1:
   by path); 1 when found */
static int
held_in(Watcher *w, int procfd, long long p, long long inode, long long *pid, long long *fd,
        int most)
{
    char path[512], link[64];
    snprintf(path, sizeof path, "%s/%lld/fd", w->proc, p);
    int at = procfd >= 0 ? openat(procfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                         : open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *fds = at >= 0 ? fdopendir(at) : NULL;
    if (fds == NULL) {
        if (at >= 0)
            close(at);
        return 0;
    }
    int dfd = dirfd(fds), found = 0, read = 0;
    struct dirent *e;
    while ((e = readdir(fds)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        if (most && read++ == most)
            break;
        if (link_socket_inode(link, readlinkat(dfd, e->d_name, link, sizeof link - 1))
                == inode) {
            *pid = p;
            *fd = strtoll(e->d_name, NULL, 10);
            found = 1;
            break;
        }
    }
    closedir(fds);
    return found;
}

static int
walk(Watcher *w, uint64_t netns, long long inode, long long *pid, long long *fd)
{
    long long near[NEAR_MOST];
    int nn = 0;
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->nnear; i++)
        if (w->near[i].netns == netns) {
            nn = w->near[i].n;
            memcpy(near, w->near[i].pid, sizeof(long long) * (size_t)nn);
            break;
        }
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < nn; i++)  /* (the socket's namespace's own, as last seen) */
        if (held_in(w, -1, near[i], inode, pid, fd, 0))
            return 1;
    DIR *d = opendir(w->proc);
    if (d == NULL)
        return 0;
    size_t n = 0, cap = 1024;
    long long *pids = malloc(cap * sizeof *pids);
    struct dirent *e;
    while (pids != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        if (n == cap) {
            long long *more = realloc(pids, cap * 2 * sizeof *pids);
            if (more == NULL)
                break;
            pids = more;
            cap *= 2;
        }
        pids[n++] = strtoll(e->d_name, NULL, 10);
    }
    closedir(d);
    if (pids == NULL)
        return 0;
    qsort(pids, n, sizeof *pids, pid_desc);
    int found = 0;
    for (size_t i = 0; i < n && !found; i++) {
        int seen = 0;
        for (int j = 0; j < nn && !seen; j++)
            seen = near[j] == pids[i];
        found = !seen && held_in(w, -1, pids[i], inode, pid, fd, 0);
    }
    free(pids);
    return found;
}

/* what /proc says of `pid` now, for Python to read (rawlab.sockets.proc.facts_from):
   each of FACT_FILES files as a 4-byte length and its bytes; and its thread count.
   0 when it is gone */
static int
snapshot(Watcher *w, long long pid, item_t *it)
{
    static const char *names[FACT_FILES] = {"stat", "comm", "cmdline", "status", "cgroup"};
    size_t cap = FACT_FILES * (4 + 4096), len = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return 0;
    for (int f = 0; f < FACT_FILES; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%lld/%s", w->proc, pid, names[f]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            free(buf);
            return 0;
        }
        size_t at = len + 4;
        uint32_t got = 0;
        for (;;) {
            if (cap - at - got < 4096) {
                if (cap >= (size_t)FACT_FILES * (4 + FACT_MOST))
                    break;
                char *more = realloc(buf, cap * 2);
                if (more == NULL)
                    break;
                buf = more;
                cap *= 2;
            }
            ssize_t r = read(fd, buf + at + got, cap - at - got < FACT_MOST - got
                                                     ? cap - at - got : FACT_MOST - got);
            if (r <= 0)
                break;
            got += (uint32_t)r;
            if (got >= FACT_MOST)
                break;
        }
        close(fd);
        memcpy(buf + len, &got, 4);
        len = at + got;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/%lld/task", w->proc, pid);
    int threads = 0;
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            threads += e->d_name[0] != '.';
        closedir(d);
    }
    it->facts = buf;
    it->facts_len = len;
    it->threads = threads;
    return 1;
}

static int to_close(Watcher *w, int fd);

/* a process's /proc directory given up: closed by the thread between SYNs, never while
   it may read a link through a copy of it (the fd's number could name another's by
   then); under w->mu */
static void
give_up(Watcher *w, int procfd)
{
    if (procfd < 0)
        return;
    if (!w->thread_alive)
        close(procfd);
    else
        (void)to_close(w, procfd);  /* (out of memory: left open, never closed under it) */
}

/* (pid, fd) first for (netns, uid); the /proc directory of a process new there (whose
   facts were read just now) opened, or opened again when `check` finds the one kept
   names a process that has exited (the thread's own, after a walk); the mutex not
   held */
static void
hint_put(Watcher *w, uint64_t netns, long long uid, long long pid, long long fd, int check)
{
    pthread_mutex_lock(&w->mu);
    hint_t *h = hint_of(w, netns, uid);
    if (h == NULL) {
        if (w->nhints < MAX_KEYS) {
            h = &w->hints[w->nhints++];
        } else {  /* the least recently used pair gives its place */
            h = &w->hints[0];
            for (size_t i = 1; i < w->nhints; i++)
                if (w->hints[i].used < h->used)
                    h = &w->hints[i];
            for (int j = 0; j < h->n; j++)
                give_up(w, h->procfd[j]);
        }
        memset(h, 0, sizeof *h);
        h->netns = netns;
        h->uid = uid;
    }
    h->used = ++w->tick;
    if (h->n > 0 && h->pid[0] == pid && h->fd[0] == fd && (h->procfd[0] < 0 || (check
            && syscall(SYS_pidfd_send_signal, h->procfd[0], 0, NULL, 0) != 0
            && errno == ESRCH))) {
        give_up(w, h->procfd[0]);  /* (none, or a process gone: this pid is another's) */
        h->procfd[0] = open_proc(w, pid);
    } else if (!(h->n > 0 && h->pid[0] == pid && h->fd[0] == fd)) {
        int keep = -1;  /* the /proc directory of that pid, if kept already */
        for (int j = 0; j < h->n; j++)
            if (h->pid[j] == pid) {
                keep = h->procfd[j];
                h->procfd[j] = -1;
            }
        /* (one of a process gone: the pid is another's now, whose facts were just read;
           a /proc/PID directory is a pidfd to the kernel) */
        if (keep >= 0 && syscall(SYS_pidfd_send_signal, keep, 0, NULL, 0) != 0
                && errno == ESRCH) {
            give_up(w, keep);
            keep = -1;
        }
        long long npid[HINTS], nfd[HINTS];
        int nprocfd[HINTS], nn = 1;
        npid[0] = pid;
        nfd[0] = fd;
        nprocfd[0] = keep >= 0 ? keep : open_proc(w, pid);
        for (int j = 0; j < h->n; j++) {
            if (h->pid[j] == pid)
                continue;
            if (nn < HINTS) {
                npid[nn] = h->pid[j];
                nfd[nn] = h->fd[j];
                nprocfd[nn++] = h->procfd[j];
            } else {
                give_up(w, h->procfd[j]);
            }
        }
        memcpy(h->pid, npid, sizeof npid);
        memcpy(h->fd, nfd, sizeof nfd);
        memcpy(h->procfd, nprocfd, sizeof nprocfd);
        h->n = nn;
    }
    pthread_mutex_unlock(&w->mu);
}

/* a walk may be made now (WALKS_MOST a window) */
static int
may_walk(Watcher *w)
{
    long long t = now_ms();
    if (t - w->walk_window >= RT_WINDOW_MS) {
        w->walk_window = t;
        w->walks_in_window = 0;
    }
    return w->walks_in_window++ < WALKS_MOST;
}

/* the kernel's answer `rc` about item `it`'s socket (in namespace `netns`) finished and
   queued: the hint that holds it (HIT), else a walk of /proc (MISS; Python is woken when
   the thread could not walk) */
static void
settle(Watcher *w, item_t *it, int rc, uint64_t netns)
{
    /* (an accepting end: its listener's process is read, no walk: accept_held) */
    long long pid[HINTS] = {0}, hfd[HINTS] = {0};
    int procfd[HINTS] = {0}, nh = 0, urgent = 0;
    if (rc == 1 && it->found.inode) {
        pthread_mutex_lock(&w->mu);
        hint_t *h = hint_of(w, netns, it->found.uid);
        if (h != NULL) {
            nh = h->n;
            memcpy(pid, h->pid, sizeof pid);
            memcpy(hfd, h->fd, sizeof hfd);
            memcpy(procfd, h->procfd, sizeof procfd);
            h->used = ++w->tick;
        }
        pthread_mutex_unlock(&w->mu);
    }
    if (rc == 1) {
        it->has_found = 1;
        int i = it->found.inode && it->found.state != 10 /* LISTEN */
            ? held_by(w, procfd, pid, hfd, nh, it->found.inode) : -1;
        if (i >= 0) {
            it->kind = K_HIT;
            it->pid = pid[i];
            it->fd = hfd[i];
            it->alive = procfd[i] >= 0 ? 1 : -1;  /* (that process held it: see the top) */
        } else {
            it->kind = K_MISS;
            /* a new process: found by a walk of /proc and its facts read before it exits,
               here; else Python walks, at once */
            if (it->found.inode && it->found.state != 10 && may_walk(w)) {
                __atomic_add_fetch(&w->walks, 1, __ATOMIC_RELAXED);
                if (walk(w, netns, it->found.inode, &it->pid, &it->fd)) {
                    if (snapshot(w, it->pid, it))  /* its next socket: a hint's */
                        hint_put(w, netns, it->found.uid, it->pid, it->fd, 1);
                    else
                        it->pid = it->fd = -1;  /* (gone meanwhile) */
                }
            }
            urgent = it->found.inode != 0 && it->facts == NULL;
        }
    } else if (rc == 0) {
        it->kind = K_GONE;
    } else {
        it->kind = K_ERROR;
        it->err = -rc;
    }
    pthread_mutex_lock(&w->mu);
    push(w, it);
    pthread_mutex_unlock(&w->mu);
    if (urgent)
        wake(w);
}

/* the accepting end of the SYN's connection, when its address is one the thread can ask
   in: asked for ACCEPT_AFTER_US after the SYN until a process has accepted it */
/* an fd table may be read for an accepted socket now (SCANS_MOST a window) */
static int
may_scan(Watcher *w)
{
    long long t = now_ms();
    if (t - w->scan_window >= RT_WINDOW_MS) {
        w->scan_window = t;
        w->scans_in_window = 0;
    }
    return w->scans_in_window++ < SCANS_MOST;
}

static listener_t *
listener_of(Watcher *w, uint64_t netns, uint16_t port)
{
    for (size_t i = 0; i < w->nlst; i++)
        if (w->lst[i].netns == netns && w->lst[i].port == port)
            return &w->lst[i];
    return NULL;
}

/* the process of the listener on the accepted socket `it`'s port holds it: 1 and `it`
   a HIT (its fd: those that held the last such sockets first, then ACCEPT_SCAN links);
   0 when not (a miss, counted against the listener when `count`); -1 when its fd table
   could not be read now (SCANS_MOST spent: nothing counted) */
static int
accept_held(Watcher *w, item_t *it, int count)
{
    long long last[ACCEPT_LAST], pids[ACCEPT_LAST];
    int procfds[ACCEPT_LAST];
    pthread_mutex_lock(&w->mu);
    listener_t *l = listener_of(w, it->netns, it->sport);
    long long pid = l != NULL ? l->pid : -1;
    int procfd = l != NULL ? l->procfd : -1, n = 0;
    for (int j = 0; l != NULL && j < ACCEPT_LAST && l->last[j] >= 0; j++)
        last[n++] = l->last[j];
    pthread_mutex_unlock(&w->mu);
    if (pid < 0)
        return 0;
    /* lowest first: the kernel gives an accepted socket the lowest free fd, and the
       server has mostly closed the one before (a run of them alternates otherwise) */
    for (int j = 1; j < n; j++)
        for (int k = j; k > 0 && last[k] < last[k - 1]; k--) {
            long long t = last[k];
            last[k] = last[k - 1];
            last[k - 1] = t;
        }
    for (int j = 0; j < n; j++) {
        pids[j] = pid;
        procfds[j] = procfd;
    }
    long long got_pid = pid, got_fd = -1;
    int i = held_by(w, procfds, pids, last, n, it->found.inode);
    if (i >= 0)
        got_fd = last[i];
    else if (!may_scan(w))
        return -1;
    else if (!held_in(w, procfd, pid, it->found.inode, &got_pid, &got_fd, ACCEPT_SCAN))
        got_fd = -1;
    if (got_fd < 0 && !count)
        return 0;
    /* (found through the listener's process's /proc directory: that process held it) */
    int alive = got_fd >= 0 && procfd >= 0 ? 1 : -1;
    pthread_mutex_lock(&w->mu);
    l = listener_of(w, it->netns, it->sport);
    if (l != NULL && l->pid == pid) {
        l->missed += got_fd < 0;
        if (++l->tried == ACCEPT_RUN) {
            if (l->missed * 2 > ACCEPT_RUN) {
                l->rest_us = l->rest_us ? l->rest_us * 2 : ACCEPT_REST_US;
                if (l->rest_us > 64 * (long long)ACCEPT_REST_US)
                    l->rest_us = 64 * (long long)ACCEPT_REST_US;
                l->rest_until_us = now_us() + l->rest_us;
            } else {
                l->rest_us = 0;
            }
            l->tried = l->missed = 0;
        }
        if (got_fd >= 0) {  /* (first from now on; the others after it, in order) */
            int at = ACCEPT_LAST - 1;
            for (int j = 0; j < ACCEPT_LAST; j++)
                if (l->last[j] == got_fd || l->last[j] < 0) {
                    at = j;
                    break;
                }
            memmove(l->last + 1, l->last, sizeof(long long) * (size_t)at);
            l->last[0] = got_fd;
        }
    }
    pthread_mutex_unlock(&w->mu);
    if (got_fd < 0) {
        __atomic_add_fetch(&w->accept_misses, 1, __ATOMIC_RELAXED);
        return 0;
    }
    it->kind = K_HIT;
    it->has_found = 1;
    it->pid = pid;
    it->fd = got_fd;
    it->alive = alive;
    return 1;
}

static void
accept_watch(Watcher *w, const item_t *syn, long long t)
{
    if (w->nacc == ACCEPTS)
        return;
    int alen = syn->family == 4 ? 4 : 16;
    for (size_t i = 0; i < w->nacc; i++) {  /* (a SYN sent again) */
        const item_t *o = &w->acc[i].it;
        if (o->family == syn->family && o->sport == syn->dport && o->dport == syn->sport
                && memcmp(o->src, syn->dst, alen) == 0 && memcmp(o->dst, syn->src, alen) == 0)
            return;
    }
    uint64_t netns = 0;
    pthread_mutex_lock(&w->mu);
    listener_t *l = NULL;
    int ok = route_of(w, syn->family, syn->dst, &netns) && ns_of(w, netns) != NULL
        && (l = listener_of(w, netns, syn->dport)) != NULL && l->rest_until_us <= t;
    pthread_mutex_unlock(&w->mu);
    if (!ok)
        return;
    if (t / 1000 - w->acc_window >= RT_WINDOW_MS) {
        w->acc_window = t / 1000;
        w->acc_in_window = 0;
    }
    if (w->acc_in_window++ >= ACCEPTS_MOST)
        return;
    accept_t *a = &w->acc[w->nacc++];
    memset(a, 0, sizeof *a);
    a->it.end = 1;
    a->it.family = syn->family;
    memcpy(a->it.src, syn->dst, 16);
    memcpy(a->it.dst, syn->src, 16);
    a->it.sport = syn->dport;
    a->it.dport = syn->sport;
    a->it.netns = netns;
    a->it.pid = a->it.fd = -1;
    a->it.alive = -1;
    a->syn_us = t;
    a->due_us = t + ACCEPT_AFTER_US[0];
}

/* one accepting end asked for: 1 when done with it (queued: accepted; or closed, gone
   for good, not to be asked), 0 to ask again later */
static int
accept_ask(Watcher *w, accept_t *a)
{
    pthread_mutex_lock(&w->mu);
    ns_t *ns = ns_of(w, a->it.netns);
    int fd = ns != NULL ? ns->fd : -1;
    uint32_t seq = ns != NULL ? ++ns->seq : 0;
    pthread_mutex_unlock(&w->mu);
    if (fd < 0)
        return 1;
    diag_found_t f;
    memset(&f, 0, sizeof f);
    int rc = ask(fd, seq, &a->it, &f);
    __atomic_add_fetch(&w->accept_asks, 1, __ATOMIC_RELAXED);
    if (rc == 1 && f.inode && f.state != 10 /* LISTEN */) {
        item_t it = a->it;
        it.found = f;
        /* (a first miss is asked again: the kernel names the socket's inode a moment
           before the fd that holds it is in the process's table) */
        int last = a->missed || a->tries + 1 >= ACCEPT_TRIES;
        int got = accept_held(w, &it, last);
        if (got == 1) {
            pthread_mutex_lock(&w->mu);
            push(w, &it);
            pthread_mutex_unlock(&w->mu);
        } else if (got == 0 && !last) {
            a->missed = 1;
            return 0;
        }
        return 1;
    }
    /* not yet: no socket yet, the listener itself (the kernel's look-up falls back to it
       while no connection matches: SYN cookies keep no request), or one in its queue
       (ESTABLISHED, SYN_RECV, NEW_SYN_RECV, CLOSE_WAIT without an inode) */
    return !(rc == 0 || (rc == 1 && (f.state == 1 || f.state == 3 || f.state == 12
                                     || f.state == 8 || f.state == 10)));
}

/* the accepting ends due by now asked for; when the next one is due (-1: none) */
static long long
accept_due(Watcher *w)
{
    long long t = now_us(), next = -1;
    for (size_t i = 0; i < w->nacc;) {
        accept_t *a = &w->acc[i];
        if (a->due_us <= t) {
            int done = accept_ask(w, a);
            /* (late, the thread busy: the next step still ahead, not every one missed) */
            while (!done && ++a->tries < ACCEPT_TRIES
                   && a->syn_us + ACCEPT_AFTER_US[a->tries] <= t)
                ;
            if (done || a->tries >= ACCEPT_TRIES) {
                w->acc[i] = w->acc[--w->nacc];
                continue;
            }
            a->due_us = a->syn_us + ACCEPT_AFTER_US[a->tries];
        }
        if (next < 0 || a->due_us < next)
            next = a->due_us;
        i++;
    }
    return next;
}

static void
one_syn(Watcher *w, const unsigned char *p, size_t n)
{
    item_t it;
    memset(&it, 0, sizeof it);
    it.pid = it.fd = -1;
    it.alive = -1;
    if (syn_of(p, n, w->linktype, &it) != 1)
        return;
    long long t = now_us();
    pthread_mutex_lock(&w->mu);
    w->syns++;
    uint64_t netns = 0;
    ns_t *ns = route_of(w, it.family, it.src, &netns) ? ns_of(w, netns) : NULL;
    if (ns == NULL) {  /* Python asks */
        it.kind = K_ASK;
        push(w, &it);
        pthread_mutex_unlock(&w->mu);
        wake(w);
        accept_watch(w, &it, t);
        return;
    }
    int fd = ns->fd;
    uint32_t seq = ++ns->seq;
    pthread_mutex_unlock(&w->mu);
    it.netns = netns;
    int rc = ask(fd, seq, &it, &it.found);
    item_t syn = it;
    settle(w, &it, rc, netns);
    accept_watch(w, &syn, t);
}

/* the thread's policy: SCHED_FIFO priority 1 (on) or SCHED_OTHER; 0 or an errno */
static int
realtime(Watcher *w, int on)
{
    struct sched_param sp = {on ? 1 : 0};
    int rc = pthread_setschedparam(pthread_self(), on ? SCHED_FIFO : SCHED_OTHER, &sp);
    if (rc == 0)
        __atomic_store_n(&w->rt, on, __ATOMIC_RELAXED);
    return rc;
}

/* at real-time priority the thread preempts the capture's loop the moment a SYN wakes
   it (a client's socket may live 200 µs; sharing a CPU, a thread of the same class can
   wait milliseconds); over RT_MOST SYNs in a window (a flood) it runs as any thread
   until a window with half as many, so that it never takes the capture's CPU */
static void
pace(Watcher *w, long long *window, unsigned *seen)
{
    long long t = now_ms();
    if (t - *window >= RT_WINDOW_MS) {  /* (the window closes at its first SYN after) */
        /* quiet: few SYNs in it, or none for a window since (each of its SYNs came
           before its end, else it would have closed then) */
        if (!w->rt && (*seen <= RT_MOST / 2 || t - *window >= 2 * RT_WINDOW_MS))
            realtime(w, 1);
        *window = t;
        *seen = 0;
    }
    if (++*seen > RT_MOST && w->rt && realtime(w, 0) == 0)
        __atomic_add_fetch(&w->demoted, 1, __ATOMIC_RELAXED);
}

static void
close_pending(Watcher *w)
{
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->nclosing; i++)
        close(w->closing[i]);
    w->nclosing = 0;
    pthread_mutex_unlock(&w->mu);
}

static void run_loop(Watcher *w);

/* what waits to be closed, closed now if the thread has ended (it reads through no copy;
   `running` is 0 already while a stop waits for the thread) */
static void
close_if_stopped(Watcher *w)
{
    pthread_mutex_lock(&w->mu);
    int alive = w->thread_alive;
    pthread_mutex_unlock(&w->mu);
    if (!alive)
        close_pending(w);
}

/* the thread: its loop, then nothing of the Watcher's read through a copy any more */
static void *
run(void *arg)
{
    Watcher *w = arg;
    run_loop(w);
    pthread_mutex_lock(&w->mu);
    w->thread_alive = 0;
    pthread_mutex_unlock(&w->mu);
    close_pending(w);
    return NULL;
}

static void
run_loop(Watcher *w)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);  /* (signals are the main thread's) */
    int may_rt = realtime(w, 1) == 0;  /* (CAP_SYS_NICE, or RLIMIT_RTPRIO) */
    long long window = now_ms();
    unsigned seen = 0;
    struct pollfd p[3] = {{w->pkt_fd, POLLIN, 0}, {w->stop_r, POLLIN, 0},
                          {w->kick_fd, POLLIN, 0}};
    /* (SYNs read RECV_BATCH at a time: fewer mean none was left, no read to learn it) */
    unsigned char pkt[RECV_BATCH][SNAP + 64];
    struct mmsghdr msgs[RECV_BATCH];
    struct iovec iov[RECV_BATCH];
    long long next = -1;  /* when the next accepting end is due */
    for (;;) {
        close_pending(w);
        struct timespec ts, *tp = NULL;
        if (next >= 0) {
            long long d = next - now_us();
            d = d < 0 ? 0 : d;
            ts.tv_sec = (time_t)(d / 1000000);
            ts.tv_nsec = (long)(d % 1000000) * 1000;
            tp = &ts;
        }
        p[0].revents = p[1].revents = p[2].revents = 0;
        if (ppoll(p, 3, tp, NULL) < 0) {
            if (errno == EINTR)
                continue;
            __atomic_store_n(&w->failed, errno, __ATOMIC_RELAXED);
            break;
        }
        if (p[1].revents)
            break;
        if (p[2].revents) {  /* (what waits to be closed: at the loop's top) */
            uint64_t n;
            ssize_t r = read(w->kick_fd, &n, sizeof n);
            (void)r;
        }
        if (p[0].revents & POLLNVAL) {
            __atomic_store_n(&w->failed, EBADF, __ATOMIC_RELAXED);
            break;
        }
        for (;;) {
            if (!(p[0].revents & (POLLIN | POLLERR | POLLHUP)))
                break;  /* (an accepting end is due; an error is read, which clears it) */
            for (int i = 0; i < RECV_BATCH; i++) {
                iov[i].iov_base = pkt[i];
                iov[i].iov_len = sizeof pkt[i];
                memset(&msgs[i], 0, sizeof msgs[i]);
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            int got = recvmmsg(w->pkt_fd, msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
            if (got < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN && errno != ENETDOWN) {
                    __atomic_store_n(&w->failed, errno, __ATOMIC_RELAXED);
                    wake(w);
                    return;
                }
                break;
            }
            for (int i = 0; i < got; i++) {
                if (may_rt)
                    pace(w, &window, &seen);
                one_syn(w, pkt[i], msgs[i].msg_len);
            }
            close_pending(w);  /* (between SYNs no copy is read through) */
            if (got < RECV_BATCH)
                break;
        }
        next = accept_due(w);
    }
}

/* ---- the Python side ------------------------------------------------------------------ */

static PyObject *
Watcher_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    int pkt_fd, linktype, notify_fd;
    const char *proc;
    if (!PyArg_ParseTuple(args, "iisi:Watcher", &pkt_fd, &linktype, &proc, &notify_fd))
        return NULL;
    if (strlen(proc) >= 256) {
        PyErr_SetString(PyExc_ValueError, "Watcher: proc root too long");
        return NULL;
    }
    Watcher *w = (Watcher *)type->tp_alloc(type, 0);
    if (w == NULL)
        return NULL;
    pthread_mutex_init(&w->mu, NULL);
    /* (its own: a socket closed under the thread would be another fd, reused) */
    w->pkt_fd = fcntl(pkt_fd, F_DUPFD_CLOEXEC, 0);
    w->linktype = linktype;
    w->notify_fd = fcntl(notify_fd, F_DUPFD_CLOEXEC, 0);
    w->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->stop_r = w->stop_w = -1;
    snprintf(w->proc, sizeof w->proc, "%s", proc);
    w->queue = PyMem_RawMalloc(sizeof(item_t) * QUEUE);
    w->ns = NULL;
    w->closing = NULL;
    w->routes = NULL;
    if (w->pkt_fd < 0 || w->notify_fd < 0 || w->kick_fd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(w);
        return NULL;
    }
    if (w->queue == NULL) {
        Py_DECREF(w);
        return PyErr_NoMemory();
    }
    return (PyObject *)w;
}

static void
stop_thread(Watcher *w)
{
    if (!w->running)
        return;
    w->running = 0;  /* (before the lock is let go: a second stop() does nothing) */
    /* (w->stop_r stays until the join: a thread just started reads it yet) */
    int stop_r = w->stop_r, stop_w = w->stop_w;
    char x = 'x';
    ssize_t r;
    do {
        r = write(stop_w, &x, 1);
    } while (r < 0 && errno == EINTR);
    pthread_t t = w->thread;
    w->stopping = 1;
    Py_BEGIN_ALLOW_THREADS
    pthread_join(t, NULL);
    Py_END_ALLOW_THREADS
    w->stop_r = w->stop_w = -1;
    close(stop_r);
    close(stop_w);
    close_pending(w);
    w->stopping = 0;
}

static void
Watcher_dealloc(Watcher *w)
{
    stop_thread(w);
    if (w->pkt_fd >= 0)
        close(w->pkt_fd);
    if (w->notify_fd >= 0)
        close(w->notify_fd);
    if (w->kick_fd >= 0)
        close(w->kick_fd);
    for (size_t i = 0; i < w->nns; i++)
        close(w->ns[i].fd);
    for (size_t i = 0; i < w->nclosing; i++)
        close(w->closing[i]);
    for (size_t i = 0; i < w->nhints; i++)
        for (int j = 0; j < w->hints[i].n; j++)
            if (w->hints[i].procfd[j] >= 0)
                close(w->hints[i].procfd[j]);
    for (size_t i = 0; i < w->nlst; i++)
        if (w->lst[i].procfd >= 0)
            close(w->lst[i].procfd);
    PyMem_RawFree(w->ns);
    PyMem_RawFree(w->closing);
    PyMem_RawFree(w->routes);
    PyMem_RawFree(w->near);
    for (size_t i = 0; w->queue != NULL && i < w->qlen; i++)
        free(w->queue[(w->qhead + i) % QUEUE].facts);
    PyMem_RawFree(w->queue);
    pthread_mutex_destroy(&w->mu);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyObject *
Watcher_start(Watcher *w, PyObject *unused)
{
    if (w->running)
        Py_RETURN_NONE;
    if (w->stopping) {  /* (another thread's stop() waits for the thread to end) */
        PyErr_SetString(PyExc_RuntimeError, "Watcher: a stop is in progress");
        return NULL;
    }
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    w->stop_r = pipefd[0];
    w->stop_w = pipefd[1];
    w->failed = 0;
    pthread_mutex_lock(&w->mu);
    w->thread_alive = 1;
    pthread_mutex_unlock(&w->mu);
    int rc = pthread_create(&w->thread, NULL, run, w);
    if (rc != 0) {
        pthread_mutex_lock(&w->mu);
        w->thread_alive = 0;
        pthread_mutex_unlock(&w->mu);
        close(pipefd[0]);
        close(pipefd[1]);
        w->stop_r = w->stop_w = -1;
        errno = rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    w->running = 1;
    Py_RETURN_NONE;
}

static PyObject *
Watcher_stop(Watcher *w, PyObject *unused)
{
    stop_thread(w);
    Py_RETURN_NONE;
}

/* Hand an fd the thread may be using a copy of (a namespace's old diag socket, a process's
 * /proc directory given up) to the thread to close between SYNs (under w->mu). 1 when
 * out of memory (nothing changed). */
static int
to_close(Watcher *w, int fd)
{
    int *more = PyMem_RawRealloc(w->closing, sizeof(int) * (w->nclosing + 1));
    if (more == NULL)
        return 1;
    w->closing = more;
    w->closing[w->nclosing++] = fd;
    if (w->nclosing >= KICK_AT && w->kick_fd >= 0) {  /* (an idle thread: woken for them) */
        uint64_t one = 1;
        ssize_t r = write(w->kick_fd, &one, sizeof one);
        (void)r;  /* (EAGAIN: a kick already waits) */
    }
    return 0;
}

/* namespace(netns, fd): the watcher takes the socket (closed by it from then on) */
static PyObject *
Watcher_namespace(Watcher *w, PyObject *args)
{
    unsigned long long netns;
    int fd;
    if (!PyArg_ParseTuple(args, "Ki:namespace", &netns, &fd))
        return NULL;
    pthread_mutex_lock(&w->mu);
    ns_t *ns = ns_of(w, netns);
    int err = 0;
    if (ns != NULL) {
        err = to_close(w, ns->fd);
        if (!err) {
            ns->fd = fd;
            ns->seq = 0;
        }
    } else {
        ns_t *more = PyMem_RawRealloc(w->ns, sizeof(ns_t) * (w->nns + 1));
        if (more == NULL) {
            err = 1;
        } else {
            w->ns = more;
            w->ns[w->nns++] = (ns_t){netns, fd, 0};
        }
    }
    pthread_mutex_unlock(&w->mu);
    if (err) {
        close(fd);
        return PyErr_NoMemory();
    }
    close_if_stopped(w);
    Py_RETURN_NONE;
}

static PyObject *
Watcher_forget(Watcher *w, PyObject *arg)
{
    unsigned long long netns = PyLong_AsUnsignedLongLong(arg);
    if (netns == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    int err = 0;
    pthread_mutex_lock(&w->mu);
    ns_t *ns = ns_of(w, netns);
    if (ns != NULL) {
        err = to_close(w, ns->fd);
        if (!err)
            *ns = w->ns[--w->nns];
    }
    for (size_t i = 0; i < w->nhints;) {
        if (w->hints[i].netns != netns) {
            i++;
            continue;
        }
        for (int j = 0; j < w->hints[i].n; j++)
            give_up(w, w->hints[i].procfd[j]);
        w->hints[i] = w->hints[--w->nhints];
    }
    for (size_t i = 0; i < w->nlst;) {  /* (and its listeners) */
        if (w->lst[i].netns != netns) {
            i++;
            continue;
        }
        give_up(w, w->lst[i].procfd);
        w->lst[i] = w->lst[--w->nlst];
    }
    w->lnext = 0;
    pthread_mutex_unlock(&w->mu);
    if (err)
        return PyErr_NoMemory();
    close_if_stopped(w);
    Py_RETURN_NONE;
}

/* routes(home or None, [(addr, netns)]): the whole table again */
static PyObject *
Watcher_routes(Watcher *w, PyObject *args)
{
    PyObject *home, *seq;
    if (!PyArg_ParseTuple(args, "OO:routes", &home, &seq))
        return NULL;
    unsigned long long h = 0;
    if (home != Py_None) {
        h = PyLong_AsUnsignedLongLong(home);
        if (h == (unsigned long long)-1 && PyErr_Occurred())
            return NULL;
    }
    PyObject *fast = PySequence_Fast(seq, "routes: a sequence of (addr, netns)");
    if (fast == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    route_t *r = PyMem_RawMalloc(sizeof(route_t) * (size_t)(n ? n : 1));
    if (r == NULL) {
        Py_DECREF(fast);
        return PyErr_NoMemory();
    }
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(fast, i);
        const char *a;
        Py_ssize_t alen;
        unsigned long long netns;
        if (!PyArg_ParseTuple(t, "y#K:routes", &a, &alen, &netns)) {
            PyMem_RawFree(r);
            Py_DECREF(fast);
            return NULL;
        }
        if (alen != 4 && alen != 16)
            continue;
        r[k].len = (uint8_t)alen;
        memset(r[k].addr, 0, 16);
        memcpy(r[k].addr, a, (size_t)alen);
        r[k].netns = netns;
        k++;
    }
    Py_DECREF(fast);
    qsort(r, (size_t)k, sizeof *r, route_cmp);
    pthread_mutex_lock(&w->mu);
    route_t *old = w->routes;
    w->routes = r;
    w->nroutes = (size_t)k;
    w->home = h;
    w->has_home = home != Py_None;
    pthread_mutex_unlock(&w->mu);
    PyMem_RawFree(old);
    Py_RETURN_NONE;
}

/* listener(netns, port, pid): the process holding a TCP listener on `port` in `netns`
   (the one that accepts its connections; given as its facts were read: the /proc
   directory opened now names that process) */
static PyObject *
Watcher_listener(Watcher *w, PyObject *args)
{
    unsigned long long netns;
    int port;
    long long pid;
    if (!PyArg_ParseTuple(args, "KiL:listener", &netns, &port, &pid))
        return NULL;
    int fresh = 0;
    pthread_mutex_lock(&w->mu);
    listener_t *l = listener_of(w, netns, (uint16_t)port);
    if (l == NULL) {
        if (w->nlst < LISTENERS) {
            l = &w->lst[w->nlst++];
            l->procfd = -1;
        } else {  /* (an entry given up for this one: its /proc directory given up below) */
            l = &w->lst[w->lnext++ % LISTENERS];
        }
        fresh = 1;
    }
    /* (the same pid given again names the same process, unless that one has exited: a
       new listener's, whose facts were just read) */
    if (!fresh && l->pid == pid && l->procfd < 0) {  /* (not opened before: again, its
                                                        state kept) */
        l->procfd = open_proc(w, pid);
    } else if (fresh || l->pid != pid
            || (syscall(SYS_pidfd_send_signal, l->procfd, 0, NULL, 0) != 0 && errno == ESRCH)) {
        give_up(w, l->procfd);
        memset(l, 0, sizeof *l);
        l->netns = netns;
        l->port = (uint16_t)port;
        l->pid = pid;
        for (int j = 0; j < ACCEPT_LAST; j++)
            l->last[j] = -1;
        l->procfd = open_proc(w, pid);
    }
    pthread_mutex_unlock(&w->mu);
    Py_RETURN_NONE;
}

/* members({netns: [pid, ...]}): the processes of each namespace (as last seen), walked
   first there when they are NEAR_MOST at most (a lab namespace, a container) */
static PyObject *
Watcher_members(Watcher *w, PyObject *arg)
{
    if (!PyDict_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "members: a dict of netns -> list of pids");
        return NULL;
    }
    Py_ssize_t n = PyDict_GET_SIZE(arg), pos = 0, k = 0;
    near_t *t = PyMem_RawMalloc(sizeof(near_t) * (size_t)(n ? n : 1));
    if (t == NULL)
        return PyErr_NoMemory();
    PyObject *key, *val;
    while (PyDict_Next(arg, &pos, &key, &val)) {
        PyObject *fast = PySequence_Fast(val, "members: pids");
        if (fast == NULL) {
            PyMem_RawFree(t);
            return NULL;
        }
        Py_ssize_t m = PySequence_Fast_GET_SIZE(fast);
        if (m > 0 && m <= NEAR_MOST) {
            t[k].netns = PyLong_AsUnsignedLongLong(key);
            t[k].n = (int)m;
            for (Py_ssize_t i = 0; i < m; i++)
                t[k].pid[i] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fast, i));
            k++;
        }
        Py_DECREF(fast);
        if (PyErr_Occurred()) {
            PyMem_RawFree(t);
            return NULL;
        }
    }
    pthread_mutex_lock(&w->mu);
    near_t *old = w->near;
    w->near = t;
    w->nnear = (size_t)k;
    pthread_mutex_unlock(&w->mu);
    PyMem_RawFree(old);
    Py_RETURN_NONE;
}

/* hint(netns, uid, pid, fd): (pid, fd) first for (netns, uid); the /proc directory of
   a process new there opened (the caller has just read its facts) */
static PyObject *
Watcher_hint(Watcher *w, PyObject *args)
{
    unsigned long long netns;
    long long uid, pid, fd;
    if (!PyArg_ParseTuple(args, "KLLL:hint", &netns, &uid, &pid, &fd))
        return NULL;
    hint_put(w, netns, uid, pid, fd, 0);
    Py_RETURN_NONE;
}

static PyObject *
item_tuple(const item_t *it)
{
    PyObject *found;
    if (it->has_found) {
        found = it->found.has_cgroup
            ? Py_BuildValue("(IIIKK)", (unsigned)it->found.state, (unsigned)it->found.inode,
                            (unsigned)it->found.uid, (unsigned long long)it->found.cookie,
                            (unsigned long long)it->found.cgroup_id)
            : Py_BuildValue("(IIIKO)", (unsigned)it->found.state, (unsigned)it->found.inode,
                            (unsigned)it->found.uid, (unsigned long long)it->found.cookie,
                            Py_None);
        if (found == NULL)
            return NULL;
    } else {
        found = Py_NewRef(Py_None);
    }
    PyObject *facts = Py_NewRef(Py_None);
    if (it->facts != NULL) {
        Py_DECREF(facts);
        facts = PyTuple_New(FACT_FILES + 1);
        size_t off = 0;
        for (int f = 0; facts != NULL && f < FACT_FILES; f++) {
            uint32_t n;
            memcpy(&n, it->facts + off, 4);
            PyObject *b = PyBytes_FromStringAndSize(it->facts + off + 4, n);
            if (b == NULL)
                Py_CLEAR(facts);
            else
                PyTuple_SET_ITEM(facts, f, b);
            off += 4 + n;
        }
        PyObject *t = facts != NULL ? PyLong_FromLong(it->threads) : NULL;
        if (t == NULL)
            Py_CLEAR(facts);
        else
            PyTuple_SET_ITEM(facts, FACT_FILES, t);
        if (facts == NULL) {
            Py_DECREF(found);
            return NULL;
        }
    }
    int alen = it->family == 4 ? 4 : 16;
    return Py_BuildValue("(iiy#iy#iKNLLiiNi)", it->kind, it->family, it->src,
                         (Py_ssize_t)alen, it->sport, it->dst, (Py_ssize_t)alen, it->dport,
                         (unsigned long long)it->netns, found, it->pid, it->fd, it->alive,
                         it->err, facts, (int)it->end);
}

static PyObject *
Watcher_take(Watcher *w, PyObject *unused)
{
    if (__atomic_load_n(&w->qlen, __ATOMIC_RELAXED) == 0)  /* (pushed now: taken next) */
        return PyList_New(0);
    pthread_mutex_lock(&w->mu);
    size_t n = w->qlen, head = w->qhead;
    item_t *copy = PyMem_RawMalloc(sizeof(item_t) * (n ? n : 1));
    if (copy != NULL) {
        for (size_t i = 0; i < n; i++)
            copy[i] = w->queue[(head + i) % QUEUE];
        w->qhead = (head + n) % QUEUE;
        __atomic_store_n(&w->qlen, 0, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&w->mu);
    if (copy == NULL)
        return PyErr_NoMemory();
    PyObject *out = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; out != NULL && i < n; i++) {
        PyObject *t = item_tuple(&copy[i]);
        if (t == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, (Py_ssize_t)i, t);
    }
    for (size_t i = 0; i < n; i++)
        free(copy[i].facts);
    PyMem_RawFree(copy);
    return out;
}

static PyObject *
Watcher_get_counts(Watcher *w, void *closure)
{
    pthread_mutex_lock(&w->mu);
    unsigned long long syns = w->syns, dropped = w->dropped, c[K_KINDS];
    unsigned long long accepts = w->accepts;
    memcpy(c, w->counts, sizeof c);
    pthread_mutex_unlock(&w->mu);
    return Py_BuildValue("{sKsKsKsKsKsKsKsKsisKsKsKsK}", "syns", syns, "dropped", dropped,
                         "hit", c[K_HIT], "miss", c[K_MISS], "gone", c[K_GONE],
                         "ask", c[K_ASK], "error", c[K_ERROR],
                         "demoted", __atomic_load_n(&w->demoted, __ATOMIC_RELAXED),
                         "realtime", __atomic_load_n(&w->rt, __ATOMIC_RELAXED),
                         "walks", __atomic_load_n(&w->walks, __ATOMIC_RELAXED),
                         "accepts", accepts,
                         "accept_asks", __atomic_load_n(&w->accept_asks, __ATOMIC_RELAXED),
                         "accept_misses",
                         __atomic_load_n(&w->accept_misses, __ATOMIC_RELAXED));
}

static PyObject *
Watcher_get_failed(Watcher *w, void *closure)
{
    int failed = __atomic_load_n(&w->failed, __ATOMIC_RELAXED);
    if (!failed)
        Py_RETURN_NONE;
    return PyUnicode_FromString(strerror(failed));
}

static PyObject *
syn_of_py(PyObject *self, PyObject *args)
{
    Py_buffer v;
    int linktype;
    if (!PyArg_ParseTuple(args, "y*i:syn_of", &v, &linktype))
        return NULL;
    item_t it;
    memset(&it, 0, sizeof it);
    int got = syn_of(v.buf, (size_t)v.len, linktype, &it);
    PyBuffer_Release(&v);
    if (got < 0)
        Py_RETURN_FALSE;
    if (got == 0)
        Py_RETURN_NONE;
    int alen = it.family == 4 ? 4 : 16;
    return Py_BuildValue("(iy#iy#i)", it.family, it.src, (Py_ssize_t)alen, it.sport, it.dst,
                         (Py_ssize_t)alen, it.dport);
}

static PyMethodDef Watcher_methods[] = {
    {"start", (PyCFunction)Watcher_start, METH_NOARGS, "start the thread"},
    {"stop", (PyCFunction)Watcher_stop, METH_NOARGS,
     "stop the thread (it ends the question it is in: up to 1 s)"},
    {"namespace", (PyCFunction)Watcher_namespace, METH_VARARGS,
     "namespace(netns, fd): a NETLINK_SOCK_DIAG socket opened in it, the watcher's now"},
    {"forget", (PyCFunction)Watcher_forget, METH_O, "forget(netns): its socket closed"},
    {"routes", (PyCFunction)Watcher_routes, METH_VARARGS,
     "routes(home, [(addr, netns)]): where local addresses live (home: loopback's, or None)"},
    {"members", (PyCFunction)Watcher_members, METH_O,
     "members({netns: [pid, ...]}): each namespace's processes, walked first there"},
    {"listener", (PyCFunction)Watcher_listener, METH_VARARGS,
     "listener(netns, port, pid): a TCP listener on port there, held by pid"},
    {"hint", (PyCFunction)Watcher_hint, METH_VARARGS,
     "hint(netns, uid, pid, fd): where a new socket of (netns, uid) is looked for first"},
    {"take", (PyCFunction)Watcher_take, METH_NOARGS, "the items waiting, oldest first"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Watcher_getset[] = {
    {"counts", (getter)Watcher_get_counts, NULL,
     "SYNs read, items by kind, items dropped; real time now (1/0), and how often a flood "
     "ended it", NULL},
    {"failed", (getter)Watcher_get_failed, NULL,
     "why the thread stopped on its own (None: it did not)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(Watcher_doc,
"Watcher(packet_fd, linktype, proc_root, notify_fd): the SYN watch's thread (see the\n"
"module). packet_fd stays the caller's; stop() before closing it.");

static PyTypeObject WatcherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rawlab._syn_watch.Watcher",
    .tp_basicsize = sizeof(Watcher),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = Watcher_doc,
    .tp_new = Watcher_new,
    .tp_dealloc = (destructor)Watcher_dealloc,
    .tp_methods = Watcher_methods,
    .tp_getset = Watcher_getset,
};

static PyMethodDef methods[] = {
    {"syn_of", syn_of_py, METH_VARARGS,
     "syn_of(frame, linktype) -> (family, src, sport, dst, dport); None: not a TCP SYN "
     "without ACK; False: a link type the thread does not read"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "rawlab._syn_watch",
    "The SYN watch's question asked by a thread without the interpreter lock (see "
    "_syn_watch.c).", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__syn_watch(void)
{
    if (PyType_Ready(&WatcherType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Watcher", (PyObject *)&WatcherType) < 0 ||
        PyModule_AddIntConstant(m, "HIT", K_HIT) < 0 ||
        PyModule_AddIntConstant(m, "MISS", K_MISS) < 0 ||
        PyModule_AddIntConstant(m, "GONE", K_GONE) < 0 ||
        PyModule_AddIntConstant(m, "ASK", K_ASK) < 0 ||
        PyModule_AddIntConstant(m, "ERROR", K_ERROR) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
