#pragma once

// Header rules of a proxy (RFC 9110 section 7.6.1, RFC 9112): hop-by-hop
// fields describe one connection and are never forwarded, including any
// field the Connection header names.

#include <string_view>

#include "runtime/http_message.h"

namespace switchyard::router {

// Removes Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
// Transfer-Encoding, Upgrade and every field named in Connection. With
// `keepUpgrade`, Upgrade stays (the caller sets `Connection: Upgrade`).
void stripHopByHop(runtime::HttpHeaders& headers, bool keepUpgrade);

// The number of hops a Via header lists (comma-separated, all fields).
std::size_t viaHops(const runtime::HttpHeaders& headers);

// True when the message asks for a protocol upgrade (`Connection: upgrade`
// and an Upgrade field).
bool wantsUpgrade(const runtime::HttpHeaders& headers);

}  // namespace switchyard::router
