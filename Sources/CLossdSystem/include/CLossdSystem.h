#ifndef CLOSSD_SYSTEM_H
#define CLOSSD_SYSTEM_H
// Linux system calls that Swift's Glibc module does not import (epoll, eventfd),
// wrapped so that Swift never touches the packed `struct epoll_event`.
#include <stdint.h>
#include <stddef.h>

/// Creates an epoll instance (close-on-exec). Returns the fd or -1 with errno set.
int lossd_epoll_create(void);
/// Registers `fd` for readability (and writability when `want_write`), edge-triggered off.
int lossd_epoll_add(int epfd, int fd, int want_read, int want_write);
/// Changes the interest set of a registered fd.
int lossd_epoll_modify(int epfd, int fd, int want_read, int want_write);
/// Like lossd_epoll_modify, and watches for the peer closing its side (EPOLLRDHUP, reported
/// as flag 8) even while not reading: a client that leaves while its request runs.
int lossd_epoll_modify_watching_hangup(int epfd, int fd, int want_read, int want_write, int want_hangup);
/// Unregisters `fd`.
int lossd_epoll_remove(int epfd, int fd);
/// Waits for events; fills `fds[i]` and `flags[i]` (bit 0 readable, bit 1 writable,
/// bit 2 hang-up or error). Returns the number of events, or -1 with errno set.
int lossd_epoll_wait(int epfd, int32_t *fds, uint32_t *flags, int max_events, int timeout_ms);
/// Creates a non-blocking, close-on-exec eventfd used to wake an epoll loop.
int lossd_eventfd_create(void);

/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC (a GNU extension Swift does not import).
int lossd_accept(int listen_fd, void *address, unsigned int *address_length);
/// Names the calling thread (shown by top and gdb); names are cut to 15 bytes.
void lossd_set_thread_name(const char *name);

/// Fixes glibc malloc's thresholds: blocks below `mmap_threshold` come from the heap and
/// freed heap memory is given back only once `trim_threshold` bytes are free at its top.
/// glibc's own dynamic thresholds settle at twice the largest freed block, so a service
/// that allocates and frees the same few megabytes per request gives its pages back and
/// faults them in again every time (a third of a 256x1000 loss request's CPU time).
/// Heaps (arenas) are limited to one per online core (at least 2; glibc's default is
/// eight per core), since each keeps up to `trim_threshold` free bytes: on 2 cores a
/// realistic soak plateaus at 80 MiB instead of 105 MiB, at no measurable cost.
/// Does nothing when GLIBC_TUNABLES sets a malloc tunable (the operator's choice wins).
/// Returns 1 when both were set, 0 otherwise.
int lossd_tune_malloc(size_t mmap_threshold, size_t trim_threshold);

#endif
