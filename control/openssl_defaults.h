/* OpenSSL defaults for the TLS contexts that the gRPC C core makes for ringmesh-control's server.
 *
 * gRPC makes its OpenSSL SSL_CTX itself and offers no way to set its options, but every SSL_CTX takes the
 * "system_default" settings of OpenSSL's ssl_conf configuration module. Through that module the control plane turns
 * TLS 1.3 session tickets off: OpenSSL 3.0 sends two after every handshake, and making each one copies the session,
 * decoding the client's certificate and key again (about a fifth of the control plane's CPU per new connection,
 * bench/RESULTS.md), for tickets nobody presents: the sidecars do not resume sessions. It also takes TLS 1.2 and
 * older off (`Protocol = -TLSv1.2`): gRPC 1.51's C API cannot set a minimum version and sets TLS 1.2 itself on
 * each SSL_CTX, which overrides a `MinProtocol`, but not a protocol turned off. Sidecars speak TLS 1.3 only, and
 * the other TLS client in the process (libcurl, to the Kubernetes API) gets TLS 1.3 from any current API server. */
#ifndef RINGMESH_CONTROL_OPENSSL_DEFAULTS_H
#define RINGMESH_CONTROL_OPENSSL_DEFAULTS_H

/** Initialises OpenSSL for the process without its exit-time cleanup (OPENSSL_INIT_NO_ATEXIT). Call it first in
 * main, before anything can use OpenSSL: only the first initialisation decides. OpenSSL's cleanup, run by exit(),
 * frees its state while gRPC's detached threads may still be ending; it deletes the key of the per-thread state, so
 * a thread that ends after it leaks its error state, and one that still calls OpenSSL uses what was freed. Without
 * the cleanup, a thread's state is freed when the thread ends, and what is left at exit is reachable. Returns 0, or
 * -1 when OpenSSL could not initialise. */
int rm_openssl_process_init(void);

/** Applies the settings once, before any SSL_CTX is made. When the process's OpenSSL configuration file already
 * sets ssl_conf (an administrator's TLS policy), that is left in force and nothing is changed. Returns 1 when
 * applied, 0 when left to the file, -1 on an OpenSSL failure; *reason says which, in words, for the log. */
int rm_openssl_server_defaults(const char **reason);

#endif
