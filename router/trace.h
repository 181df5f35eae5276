#pragma once

// Trace context, as it travels between hops: Zipkin's B3 headers
// (x-b3-traceid, x-b3-spanid, x-b3-parentspanid, x-b3-sampled, x-b3-flags,
// or the single `b3` header) and Linkerd's `l5d-ctx-trace` (Finagle's 32 or
// 40 bytes, base64: span id, parent id, trace id, flags, then the trace id's
// high half). A request that arrives with a trace continues it; one that
// arrives without starts one.
//
// A router records two spans per forwarded request: a SERVER span that
// shares the caller's span id (Zipkin v2's `shared`), and a CLIENT span, a
// child of it with a new id, which is what the next hop receives.

#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "runtime/http_message.h"

namespace switchyard::router {

struct TraceContext {
  std::uint64_t traceIdHigh = 0;  // 0: a 64-bit trace id
  std::uint64_t traceId = 0;
  std::uint64_t spanId = 0;
  std::uint64_t parentId = 0;      // 0: none
  std::optional<bool> sampled;     // unset: the receiver decides
  bool debug = false;              // always sampled
};

// The context the request carries, if any (B3 first, then l5d-ctx-trace).
// Malformed values are ignored, as if absent.
std::optional<TraceContext> readTraceHeaders(const runtime::HttpHeaders& headers);

// Removes every trace header and writes `ctx` as B3 and l5d-ctx-trace.
void writeTraceHeaders(runtime::HttpHeaders& headers, const TraceContext& ctx);

// The sampling rate a request asks for with `l5d-sample` (0 to 1), if valid.
std::optional<double> requestedSampleRate(const runtime::HttpHeaders& headers);

// Zipkin's lower-hex ids: 16 digits, or 32 for a 128-bit trace id.
// 16 lower-hex digits, written at `out` (no terminator).
void writeHexId(char* out, std::uint64_t id);
std::string hexId(std::uint64_t id);
std::string traceIdHex(const TraceContext& ctx);

// A random non-zero id.
std::uint64_t newId(std::mt19937_64& rng);

}  // namespace switchyard::router
