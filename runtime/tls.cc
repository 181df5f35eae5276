#include "runtime/tls.h"

#include <arpa/inet.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <algorithm>

namespace switchyard::runtime {
namespace {

SSL_CTX* ctxOf(void* p) { return static_cast<SSL_CTX*>(p); }
SSL* sslOf(void* p) { return static_cast<SSL*>(p); }
BIO* bioOf(void* p) { return static_cast<BIO*>(p); }

// The oldest queued library error as text, and the queue emptied: a stale
// error must not be blamed on the next session.
std::string takeLibraryError() {
  unsigned long code = ERR_get_error();
  std::string out;
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    out = buf;
  }
  ERR_clear_error();
  return out;
}

bool isNumericAddress(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

Expected<std::shared_ptr<const TlsClientContext>, std::string> TlsClientContext::create(
    const std::string& caFile) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  if (!ctx) return Unexpected("cannot make a TLS context: " + takeLibraryError());
  std::shared_ptr<const TlsClientContext> out(new TlsClientContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ctx, caFile.c_str(), nullptr) != 1) {
    std::string why = takeLibraryError();
    return Unexpected("cannot read the CA certificates in " + caFile +
                      (why.empty() ? "" : ": " + why));
  }
  return out;
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctxOf(ctx_)); }

Expected<std::unique_ptr<TlsSession>, std::string> TlsSession::client(
    const TlsClientContext& ctx, const std::string& serverName) {
  ERR_clear_error();
  std::unique_ptr<TlsSession> s(new TlsSession());
  SSL* ssl = SSL_new(ctxOf(ctx.ctx_));
  if (!ssl) return Unexpected("cannot start a TLS session: " + takeLibraryError());
  s->ssl_ = ssl;
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  if (!rbio || !wbio) {
    BIO_free(rbio);
    BIO_free(wbio);
    return Unexpected("cannot start a TLS session: out of memory");
  }
  // An empty read buffer means "wait for more", not end of stream.
  BIO_set_mem_eof_return(rbio, -1);
  BIO_set_mem_eof_return(wbio, -1);
  SSL_set_bio(ssl, rbio, wbio);  // the session owns both now
  s->rbio_ = rbio;
  s->wbio_ = wbio;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (isNumericAddress(serverName)) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, serverName.c_str()) != 1) {
      return Unexpected("cannot check certificates for " + serverName);
    }
  } else {
    if (X509_VERIFY_PARAM_set1_host(param, serverName.data(), serverName.size()) != 1 ||
        SSL_set_tlsext_host_name(ssl, serverName.c_str()) != 1) {
      return Unexpected("cannot check certificates for " + serverName);
    }
  }
  SSL_set_connect_state(ssl);
  std::string none;
  if (auto err = s->advance(none)) return Unexpected(*err);
  return s;
}

TlsSession::~TlsSession() {
  if (ssl_) SSL_free(sslOf(ssl_));
}

std::string TlsSession::failure(int ret, const char* during) {
  int code = SSL_get_error(sslOf(ssl_), ret);
  std::string why = takeLibraryError();
  if (!established_) {
    long verify = SSL_get_verify_result(sslOf(ssl_));
    if (verify != X509_V_OK) {
      return std::string("the server's certificate was refused: ") +
             X509_verify_cert_error_string(verify);
    }
  }
  if (code == SSL_ERROR_SYSCALL || code == SSL_ERROR_ZERO_RETURN) {
    return std::string("the TLS connection ended ") + during;
  }
  return std::string("TLS failed ") + during + (why.empty() ? "" : ": " + why);
}

std::optional<std::string> TlsSession::advance(std::string& plain) {
  // SSL_get_error reads the thread's error queue: what another session on
  // this thread left there must not be taken for this one's failure.
  ERR_clear_error();
  SSL* ssl = sslOf(ssl_);
  if (!established_) {
    int r = SSL_do_handshake(ssl);
    if (r != 1) {
      int code = SSL_get_error(ssl, r);
      if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) return std::nullopt;
      return failure(r, "during the handshake");
    }
    established_ = true;
    if (!pending_.empty()) {
      std::string held = std::move(pending_);
      pending_.clear();
      if (auto err = send(held)) return err;
    }
  }
  char buf[16 * 1024];
  while (!closedByPeer_) {
    int n = SSL_read(ssl, buf, sizeof buf);
    if (n > 0) {
      plain.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    int code = SSL_get_error(ssl, n);
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) break;
    if (code == SSL_ERROR_ZERO_RETURN) {
      closedByPeer_ = true;
      break;
    }
    return failure(n, "while reading");
  }
  return std::nullopt;
}

std::optional<std::string> TlsSession::receive(std::string_view cipher, std::string& plain) {
  while (!cipher.empty()) {
    int n = BIO_write(bioOf(rbio_), cipher.data(),
                      static_cast<int>(std::min<std::size_t>(cipher.size(), 1 << 30)));
    if (n <= 0) return "TLS failed: cannot buffer received bytes";
    cipher.remove_prefix(static_cast<std::size_t>(n));
  }
  return advance(plain);
}

std::optional<std::string> TlsSession::send(std::string_view plain) {
  if (!established_) {
    pending_.append(plain);
    return std::nullopt;
  }
  ERR_clear_error();
  while (!plain.empty()) {
    int n = SSL_write(sslOf(ssl_), plain.data(),
                      static_cast<int>(std::min<std::size_t>(plain.size(), 1 << 30)));
    if (n <= 0) return failure(n, "while writing");
    plain.remove_prefix(static_cast<std::size_t>(n));
  }
  return std::nullopt;
}

std::string TlsSession::takeOutput() {
  std::string out;
  BIO* b = bioOf(wbio_);
  std::size_t pending = BIO_ctrl_pending(b);
  if (pending == 0) return out;
  out.resize(pending);
  int n = BIO_read(b, out.data(), static_cast<int>(pending));
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return out;
}

}  // namespace switchyard::runtime
