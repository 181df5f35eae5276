#include "runtime/version.h"

#include <ares.h>
#include <llhttp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>
#include <uv.h>

namespace switchyard::runtime {

std::string libraryVersions() {
  std::string out;
  out += std::string("libuv ") + uv_version_string() + "\n";
  out += "llhttp " + std::to_string(LLHTTP_VERSION_MAJOR) + "." +
         std::to_string(LLHTTP_VERSION_MINOR) + "." + std::to_string(LLHTTP_VERSION_PATCH) + "\n";
  out += std::string("nghttp2 ") + nghttp2_version(0)->version_str + "\n";
  out += std::string("c-ares ") + ares_version(nullptr) + "\n";
#if defined(SWITCHYARD_TLS_BORINGSSL)
  out += "tls BoringSSL\n";
#else
  out += std::string("tls ") + OpenSSL_version(OPENSSL_VERSION) + "\n";
#endif
  return out;
}

}  // namespace switchyard::runtime
