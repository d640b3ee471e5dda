/* rawlab/_diag.h: one exact sock_diag look-up and one /proc fd link, in plain C (no
 * Python): the compiled calls of rawlab._kernels (diag_find, fd_sockets, socket_inode)
 * and the SYN watch's thread (rawlab._syn_watch), which asks without the interpreter,
 * share them.
 *
 *   diag_send(fd, seq, req, len)       SOCK_DIAG_BY_FAMILY request `req` (inet_diag_req_v2)
 *   diag_take(fd, seq, buf, cap, out)  one datagram read (never waits): the reply of `seq`
 *   diag_parse(payload, len, out)      what one inet_diag_msg says of its socket
 *   link_socket_inode(link, len)       the inode of a "socket:[N]" readlink
 */
#ifndef RAWLAB_DIAG_H
#define RAWLAB_DIAG_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#define DIAG_MSG_LEN 72  /* struct inet_diag_msg */
#define DIAG_REQ_LEN 56  /* struct inet_diag_req_v2 */

typedef struct {
    uint8_t state;
    uint32_t inode, uid;
    uint64_t cookie;
    int has_cgroup;
    uint64_t cgroup_id;
} diag_found_t;

/* the socket one inet_diag_msg (its payload: the message and its attributes, at least
   DIAG_MSG_LEN bytes) describes; the cgroup id from INET_DIAG_CGROUP_ID when there */
static inline void
diag_parse(const unsigned char *p, size_t len, diag_found_t *out)
{
    out->state = p[1];
    memcpy(&out->cookie, p + 44, 8);
    memcpy(&out->uid, p + 64, 4);
    memcpy(&out->inode, p + 68, 4);
    out->has_cgroup = 0;
    out->cgroup_id = 0;
    size_t off = DIAG_MSG_LEN;
    while (off + 4 <= len) {
        uint16_t alen, atype;
        memcpy(&alen, p + off, 2);
        memcpy(&atype, p + off + 2, 2);
        if (alen < 4 || off + alen > len)
            break;
        if ((atype & 0x3FFF) == 21 && alen >= 12) {  /* INET_DIAG_CGROUP_ID */
            memcpy(&out->cgroup_id, p + off + 4, 8);
            out->has_cgroup = 1;
            break;
        }
        off += (alen + 3u) & ~3u;
    }
}

/* send one look-up: 0, or -errno */
static inline int
diag_send(int fd, uint32_t seq, const void *req, size_t len)
{
    struct { uint32_t len; uint16_t type, flags; uint32_t seq, pid; } h = {
        (uint32_t)(16 + len), 20 /* SOCK_DIAG_BY_FAMILY */, 1 /* NLM_F_REQUEST */, seq, 0};
    struct { uint16_t family; uint16_t pad; uint32_t pid, groups; } to = {
        16 /* AF_NETLINK */, 0, 0, 0};
    struct iovec iov[2] = {{&h, 16}, {(void *)req, len}};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &to;
    msg.msg_namelen = sizeof to;
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    return sendmsg(fd, &msg, 0) < 0 ? -errno : 0;
}

/* read one datagram if one is waiting (buf: `cap` bytes, 8-aligned): 1 and `out` when
   it holds the reply to `seq`, 0 when that reply says there is no such socket, -EAGAIN
   when nothing (of `seq`) was there, -errno for an error (the kernel's, or the read's;
   -EINTR included); replies to other requests are skipped */
static inline int
diag_take(int fd, uint32_t seq, unsigned char *buf, size_t cap, diag_found_t *out)
{
    ssize_t got = recv(fd, buf, cap, MSG_DONTWAIT);
    if (got < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    size_t off = 0;
    while (off + 16 <= (size_t)got) {
        struct { uint32_t len; uint16_t type, flags; uint32_t seq, pid; } m;
        memcpy(&m, buf + off, 16);
        if (m.len < 16 || off + m.len > (size_t)got)
            break;
        const unsigned char *pl = buf + off + 16;
        size_t plen = m.len - 16;
        off += (m.len + 3u) & ~3u;
        if (m.seq != seq)
            continue;  /* the reply to an earlier request */
        if (m.type == 2 /* NLMSG_ERROR */) {
            int32_t err = 0;
            if (plen >= 4)
                memcpy(&err, pl, 4);
            return err == 0 || err == -ENOENT ? 0 : (err < 0 ? err : -EIO);
        }
        if (m.type == 3 /* NLMSG_DONE */ || plen < DIAG_MSG_LEN)
            return 0;
        diag_parse(pl, plen, out);
        return 1;
    }
    return -EAGAIN;
}

/* the socket inode a /proc/PID/fd/N link names ("socket:[N]": `len` is readlink's
   return, the link read into a buffer of at least len + 1), -1 for anything else */
static inline long long
link_socket_inode(char *link, ssize_t len)
{
    if (len <= 9 || memcmp(link, "socket:[", 8) != 0 || link[len - 1] != ']')
        return -1;
    link[len - 1] = '\0';
    char *end;
    long long inode = strtoll(link + 8, &end, 10);
    return *end == '\0' ? inode : -1;
}

#endif
