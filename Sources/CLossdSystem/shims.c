#include "CLossdSystem.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <malloc.h>
#include <unistd.h>
#include <stdlib.h>

static uint32_t interest(int want_read, int want_write) {
    uint32_t ev = 0;
    if (want_read) ev |= EPOLLIN | EPOLLRDHUP;
    if (want_write) ev |= EPOLLOUT;
    return ev;
}

int lossd_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int lossd_epoll_add(int epfd, int fd, int want_read, int want_write) {
    struct epoll_event ev = {0};
    ev.events = interest(want_read, want_write);
    ev.data.fd = fd;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

int lossd_epoll_modify(int epfd, int fd, int want_read, int want_write) {
    struct epoll_event ev = {0};
    ev.events = interest(want_read, want_write);
    ev.data.fd = fd;
    return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
}

int lossd_epoll_modify_watching_hangup(int epfd, int fd, int want_read, int want_write, int want_hangup) {
    struct epoll_event ev = {0};
    ev.events = interest(want_read, want_write);
    if (want_hangup) ev.events |= EPOLLRDHUP;
    ev.data.fd = fd;
    return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
}

int lossd_epoll_remove(int epfd, int fd) {
    struct epoll_event ev = {0};
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev);
}

int lossd_epoll_wait(int epfd, int32_t *fds, uint32_t *flags, int max_events, int timeout_ms) {
    struct epoll_event events[256];
    if (max_events > 256) max_events = 256;
    int n;
    do {
        n = epoll_wait(epfd, events, max_events, timeout_ms);
    } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) {
        uint32_t e = events[i].events;
        uint32_t f = 0;
        if (e & (EPOLLIN | EPOLLRDHUP)) f |= 1u;
        if (e & EPOLLOUT) f |= 2u;
        if (e & (EPOLLHUP | EPOLLERR)) f |= 4u;
        if (e & EPOLLRDHUP) f |= 8u;
        fds[i] = events[i].data.fd;
        flags[i] = f;
    }
    return n;
}

int lossd_eventfd_create(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int lossd_accept(int listen_fd, void *address, unsigned int *address_length) {
    socklen_t length = *address_length;
    int fd = accept4(listen_fd, (struct sockaddr *)address, &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    *address_length = length;
    return fd;
}

void lossd_set_thread_name(const char *name) {
    char truncated[16];
    strncpy(truncated, name, 15);
    truncated[15] = 0;
    pthread_setname_np(pthread_self(), truncated);
}

int lossd_tune_malloc(size_t mmap_threshold, size_t trim_threshold) {
    const char *tunables = getenv("GLIBC_TUNABLES");
    if (tunables != NULL && strstr(tunables, "glibc.malloc.") != NULL) return 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int arenas = cores < 2 ? 2 : (int)cores;
    return mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, (int)trim_threshold) == 1 &&
           mallopt(M_ARENA_MAX, arenas) == 1;
}
