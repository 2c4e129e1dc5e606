#ifndef CLOSSD_TLS_H
#define CLOSSD_TLS_H
// Server-side TLS for LossdHTTP's event loop, over OpenSSL (libssl). The OpenSSL API is
// mostly macros and variadic controls that Swift cannot call, so this shim exposes the
// few operations the loop needs, on opaque handles, with non-blocking results.
#include <stddef.h>

/// A configured server context (certificate chain, key, protocol floor). Immutable once
/// created; OpenSSL allows one context to be shared by every connection.
typedef struct lossd_tls_context lossd_tls_context;
/// One connection's TLS state; used by one thread at a time.
typedef struct lossd_tls_session lossd_tls_session;

/// Outcome of a non-blocking read or write.
enum lossd_tls_status {
    LOSSD_TLS_OK = 0,
    /// Retry when the socket is readable.
    LOSSD_TLS_WANT_READ = 1,
    /// Retry when the socket is writable.
    LOSSD_TLS_WANT_WRITE = 2,
    /// The peer closed the connection (close_notify or end of stream).
    LOSSD_TLS_CLOSED = 3,
    /// A protocol or handshake failure; the connection cannot continue.
    LOSSD_TLS_FAILED = 4,
};

/// Loads a PEM certificate chain and private key, checks that they match, and sets
/// TLS 1.2 as the lowest version. On failure returns NULL and writes a message to `error`.
lossd_tls_context *lossd_tls_context_create(const char *certificate_chain_path, const char *private_key_path,
                                            char *error, size_t error_capacity);
void lossd_tls_context_free(lossd_tls_context *context);

/// Starts a server-side session on a connected non-blocking socket. NULL when out of memory.
lossd_tls_session *lossd_tls_session_create(lossd_tls_context *context, int fd);
void lossd_tls_session_free(lossd_tls_session *session);

/// Reads decrypted bytes (driving the handshake first). Returns the count (> 0), or 0 with
/// `*status` saying why none were read.
long lossd_tls_read(lossd_tls_session *session, void *buffer, size_t capacity, int *status);
/// Writes bytes (a partial write is allowed). Returns the count (> 0), or 0 with `*status`.
long lossd_tls_write(lossd_tls_session *session, const void *bytes, size_t count, int *status);
/// Sends close_notify once, best effort; a no-op after a failure or before the handshake.
void lossd_tls_close_notify(lossd_tls_session *session);
/// The negotiated protocol ("TLSv1.3"), or "" before the handshake finished.
const char *lossd_tls_protocol(lossd_tls_session *session);
/// The reason for the last `LOSSD_TLS_FAILED`, for debug logs ("" when none).
const char *lossd_tls_last_error(lossd_tls_session *session);

#endif
