#include "CLossdTLS.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

struct lossd_tls_context {
    SSL_CTX *ctx;
};

struct lossd_tls_session {
    SSL *ssl;
    int failed;
    char last_error[160];
};

static void describe_error_queue(char *out, size_t capacity, const char *fallback) {
    unsigned long code = ERR_peek_last_error();
    if (code != 0) {
        ERR_error_string_n(code, out, capacity);
    } else {
        snprintf(out, capacity, "%s", fallback);
    }
    ERR_clear_error();
}

/// Refuses to ask for a passphrase: an encrypted key fails at start-up instead of
/// waiting on a terminal prompt.
static int no_passphrase(char *buffer, int size, int rwflag, void *userdata) {
    (void)buffer;
    (void)size;
    (void)rwflag;
    (void)userdata;
    return 0;
}

/// Selects http/1.1 when the client offers it; otherwise continues without ALPN.
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
    (void)ssl;
    (void)arg;
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *selected = NULL;
    unsigned char selected_length = 0;
    if (SSL_select_next_proto(&selected, &selected_length, ours, sizeof(ours) - 1, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
        *out = selected;
        *outlen = selected_length;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

lossd_tls_context *lossd_tls_context_create(const char *certificate_chain_path, const char *private_key_path,
                                            char *error, size_t error_capacity) {
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        describe_error_queue(error, error_capacity, "cannot create a TLS context");
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        describe_error_queue(error, error_capacity, "cannot require TLS 1.2");
        SSL_CTX_free(ctx);
        return NULL;
    }
    // A peer that closes without close_notify (most HTTP clients) ends the session like one
    // that sends it; nothing is lost, since HTTP frames its own messages.
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    // Partial writes and a moving buffer suit the loop's growing output array; releasing
    // buffers keeps idle keep-alive connections small.
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, certificate_chain_path) != 1) {
        char detail[160];
        describe_error_queue(detail, sizeof detail, "unreadable");
        snprintf(error, error_capacity, "certificate %s: %s", certificate_chain_path, detail);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, private_key_path, SSL_FILETYPE_PEM) != 1) {
        char detail[160];
        describe_error_queue(detail, sizeof detail, "unreadable");
        snprintf(error, error_capacity, "private key %s: %s", private_key_path, detail);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        char detail[160];
        describe_error_queue(detail, sizeof detail, "mismatch");
        snprintf(error, error_capacity, "private key %s does not match certificate %s (%s)", private_key_path,
                 certificate_chain_path, detail);
        SSL_CTX_free(ctx);
        return NULL;
    }
    lossd_tls_context *context = malloc(sizeof *context);
    if (context == NULL) {
        SSL_CTX_free(ctx);
        snprintf(error, error_capacity, "out of memory");
        return NULL;
    }
    context->ctx = ctx;
    return context;
}

void lossd_tls_context_free(lossd_tls_context *context) {
    if (context == NULL) return;
    SSL_CTX_free(context->ctx);
    free(context);
}

lossd_tls_session *lossd_tls_session_create(lossd_tls_context *context, int fd) {
    lossd_tls_session *session = calloc(1, sizeof *session);
    if (session == NULL) return NULL;
    session->ssl = SSL_new(context->ctx);
    if (session->ssl == NULL || SSL_set_fd(session->ssl, fd) != 1) {
        ERR_clear_error();
        if (session->ssl != NULL) SSL_free(session->ssl);
        free(session);
        return NULL;
    }
    SSL_set_accept_state(session->ssl);
    return session;
}

void lossd_tls_session_free(lossd_tls_session *session) {
    if (session == NULL) return;
    SSL_free(session->ssl);
    free(session);
}

/// Maps an SSL_read/SSL_write result of <= 0 to a status.
static int classify(lossd_tls_session *session, int result) {
    int code = SSL_get_error(session->ssl, result);
    switch (code) {
    case SSL_ERROR_WANT_READ:
        return LOSSD_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return LOSSD_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return LOSSD_TLS_CLOSED;
    case SSL_ERROR_SYSCALL:
        // End of stream without close_notify, or a socket error (ECONNRESET, EPIPE).
        session->failed = 1;
        SSL_set_quiet_shutdown(session->ssl, 1);
        if (ERR_peek_error() == 0 && (result == 0 || errno == ECONNRESET || errno == EPIPE)) {
            snprintf(session->last_error, sizeof session->last_error, "peer closed the connection");
            ERR_clear_error();
            return LOSSD_TLS_CLOSED;
        }
        describe_error_queue(session->last_error, sizeof session->last_error, strerror(errno));
        return LOSSD_TLS_FAILED;
    default:
        // A fatal protocol error: SSL_shutdown must not be attempted afterwards.
        session->failed = 1;
        SSL_set_quiet_shutdown(session->ssl, 1);
        describe_error_queue(session->last_error, sizeof session->last_error, "TLS protocol error");
        return LOSSD_TLS_FAILED;
    }
}

long lossd_tls_read(lossd_tls_session *session, void *buffer, size_t capacity, int *status) {
    if (session->failed) {
        *status = LOSSD_TLS_FAILED;
        return 0;
    }
    ERR_clear_error();
    int limit = capacity > 0x7fffffff ? 0x7fffffff : (int)capacity;
    int n = SSL_read(session->ssl, buffer, limit);
    if (n > 0) {
        *status = LOSSD_TLS_OK;
        return n;
    }
    *status = classify(session, n);
    return 0;
}

long lossd_tls_write(lossd_tls_session *session, const void *bytes, size_t count, int *status) {
    if (session->failed) {
        *status = LOSSD_TLS_FAILED;
        return 0;
    }
    if (count == 0) {
        *status = LOSSD_TLS_OK;
        return 0;
    }
    ERR_clear_error();
    int limit = count > 0x7fffffff ? 0x7fffffff : (int)count;
    int n = SSL_write(session->ssl, bytes, limit);
    if (n > 0) {
        *status = LOSSD_TLS_OK;
        return n;
    }
    *status = classify(session, n);
    return 0;
}

void lossd_tls_close_notify(lossd_tls_session *session) {
    if (session->failed || !SSL_is_init_finished(session->ssl)) return;
    if (SSL_get_shutdown(session->ssl) & SSL_SENT_SHUTDOWN) return;
    ERR_clear_error();
    (void)SSL_shutdown(session->ssl);
    ERR_clear_error();
}

const char *lossd_tls_protocol(lossd_tls_session *session) {
    if (!SSL_is_init_finished(session->ssl)) return "";
    return SSL_get_version(session->ssl);
}

const char *lossd_tls_last_error(lossd_tls_session *session) { return session->last_error; }
