/*
 * LD_PRELOAD shim that keeps a server off the network.
 *
 * Orthanc 1.10.1 has no listen-address setting and binds its ports on every interface.
 * This bind() rewrites every IPv4 address to 127.0.0.1 and every IPv6 address to ::1,
 * keeping the port, then calls the real bind(). Other address families pass through.
 *
 * Build: gcc -shared -fPIC -O2 -o bind_loopback.so bind_loopback.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

static bind_fn real_bind(void)
{
    static bind_fn resolved;
    bind_fn fn = __atomic_load_n(&resolved, __ATOMIC_ACQUIRE);
    if (fn == NULL) {
        fn = (bind_fn)dlsym(RTLD_NEXT, "bind");
        __atomic_store_n(&resolved, fn, __ATOMIC_RELEASE);
    }
    return fn;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    bind_fn next = real_bind();
    if (next == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (addr != NULL && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in v4;
        memcpy(&v4, addr, sizeof v4);
        v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return next(fd, (const struct sockaddr *)&v4, sizeof v4);
    }
    if (addr != NULL && addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 v6;
        memcpy(&v6, addr, sizeof v6);
        v6.sin6_addr = in6addr_loopback;
        v6.sin6_scope_id = 0;
        return next(fd, (const struct sockaddr *)&v6, sizeof v6);
    }
    return next(fd, addr, len);
}
