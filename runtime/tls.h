#pragma once

// TLS for the control-plane clients (the Kubernetes API server in a
// cluster): a client context that says whom to trust, and a session that
// runs TLS over memory buffers. The session never touches a socket: bytes
// read from the network go in through receive(), bytes to write come out of
// takeOutput(), so it sits between a TcpStream and the HTTP codec and the
// TLS library (BoringSSL, or OpenSSL 3) stays inside tls.cc.
//
// A session belongs to one loop. A context is immutable once made and may
// be shared by sessions on any thread.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "dtab/expected.h"

namespace switchyard::runtime {

class TlsClientContext {
 public:
  // Peers are verified against the PEM certificates in `caFile` (TLS 1.2 at
  // least). An unreadable or empty file fails here, with the file's name in
  // the message, so a bad mount is found at start and not at the first call.
  static Expected<std::shared_ptr<const TlsClientContext>, std::string> create(
      const std::string& caFile);
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;

 private:
  friend class TlsSession;
  explicit TlsClientContext(void* ctx) : ctx_(ctx) {}
  void* ctx_;  // SSL_CTX
};

class TlsSession {
 public:
  // A client session to `serverName`: a numeric address is checked against
  // the certificate's IP SANs; a host name against its DNS names, and sent
  // as SNI. The ClientHello is ready in takeOutput() at once.
  static Expected<std::unique_ptr<TlsSession>, std::string> client(const TlsClientContext& ctx,
                                                                   const std::string& serverName);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Network bytes in; whatever plaintext they complete is appended to
  // `plain`. Returns why the session failed (a handshake refused, with the
  // certificate check's reason; a corrupt record), or nullopt.
  std::optional<std::string> receive(std::string_view cipher, std::string& plain);
  // Plaintext to send: encrypted at once, or held until the handshake ends.
  std::optional<std::string> send(std::string_view plain);
  // Ciphertext waiting to be written to the network (may be empty).
  std::string takeOutput();
  bool established() const { return established_; }
  // The peer sent close_notify: no more plaintext will come.
  bool closedByPeer() const { return closedByPeer_; }

 private:
  TlsSession() = default;
  std::optional<std::string> advance(std::string& plain);
  std::string failure(int ret, const char* during);

  void* ssl_ = nullptr;   // SSL
  void* wbio_ = nullptr;  // BIO the session writes into (owned by ssl_)
  void* rbio_ = nullptr;  // BIO the session reads from (owned by ssl_)
  std::string pending_;   // plaintext held until the handshake ends
  bool established_ = false;
  bool closedByPeer_ = false;
};

}  // namespace switchyard::runtime
