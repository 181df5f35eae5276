#include "router/trace.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "runtime/base64.h"

namespace switchyard::router {

namespace {

// Finagle's flags in l5d-ctx-trace.
constexpr std::uint64_t kFlagDebug = 1;
constexpr std::uint64_t kFlagSamplingKnown = 2;
constexpr std::uint64_t kFlagSampled = 4;

std::optional<std::uint64_t> parseHex64(std::string_view s) {
  if (s.empty() || s.size() > 16) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return std::nullopt;
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  return v;
}

// A trace id of up to 32 hex digits: (high, low).
std::optional<std::pair<std::uint64_t, std::uint64_t>> parseTraceId(std::string_view s) {
  if (s.size() > 32) return std::nullopt;
  std::string_view high = s.size() > 16 ? s.substr(0, s.size() - 16) : std::string_view();
  std::string_view low = s.size() > 16 ? s.substr(s.size() - 16) : s;
  auto lo = parseHex64(low);
  auto hi = high.empty() ? std::optional<std::uint64_t>(0) : parseHex64(high);
  if (!lo || !hi || (*lo == 0 && *hi == 0)) return std::nullopt;
  return std::pair{*hi, *lo};
}

std::uint64_t readBe64(const std::string& b, std::size_t at) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}

void writeBe64(unsigned char* out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<unsigned char>(v & 0xff);
    v >>= 8;
  }
}

std::optional<TraceContext> readB3(const runtime::HttpHeaders& h) {
  if (auto single = h.get("b3")) {
    // {traceid}-{spanid}[-{sampled}[-{parentspanid}]], or just a sampling flag.
    std::string_view v = *single;
    std::vector<std::string_view> parts;
    while (true) {
      auto dash = v.find('-');
      parts.push_back(v.substr(0, dash));
      if (dash == std::string_view::npos) break;
      v.remove_prefix(dash + 1);
    }
    if (parts.size() >= 2) {
      auto tid = parseTraceId(parts[0]);
      auto sid = parseHex64(parts[1]);
      if (tid && sid && *sid != 0) {
        TraceContext ctx{tid->first, tid->second, *sid, 0, std::nullopt, false};
        if (parts.size() >= 3) {
          if (parts[2] == "1") ctx.sampled = true;
          if (parts[2] == "0") ctx.sampled = false;
          if (parts[2] == "d") ctx.debug = true;
        }
        if (parts.size() >= 4) {
          if (auto p = parseHex64(parts[3])) ctx.parentId = *p;
        }
        return ctx;
      }
    }
  }
  auto tidText = h.get("x-b3-traceid");
  auto sidText = h.get("x-b3-spanid");
  if (!tidText || !sidText) return std::nullopt;
  auto tid = parseTraceId(*tidText);
  auto sid = parseHex64(*sidText);
  if (!tid || !sid || *sid == 0) return std::nullopt;
  TraceContext ctx{tid->first, tid->second, *sid, 0, std::nullopt, false};
  if (auto p = h.get("x-b3-parentspanid")) {
    if (auto pid = parseHex64(*p)) ctx.parentId = *pid;
  }
  if (auto s = h.get("x-b3-sampled")) {
    if (*s == "1" || *s == "true") ctx.sampled = true;
    if (*s == "0" || *s == "false") ctx.sampled = false;
  }
  if (auto f = h.get("x-b3-flags")) ctx.debug = *f == "1";
  return ctx;
}

std::optional<TraceContext> readL5d(const runtime::HttpHeaders& h) {
  auto v = h.get("l5d-ctx-trace");
  if (!v) return std::nullopt;
  auto bytes = runtime::base64Decode(*v);
  if (!bytes || (bytes->size() != 32 && bytes->size() != 40)) return std::nullopt;
  TraceContext ctx;
  ctx.spanId = readBe64(*bytes, 0);
  ctx.parentId = readBe64(*bytes, 8);
  ctx.traceId = readBe64(*bytes, 16);
  std::uint64_t flags = readBe64(*bytes, 24);
  if (bytes->size() == 40) ctx.traceIdHigh = readBe64(*bytes, 32);
  if (ctx.spanId == 0 || ctx.traceId == 0) return std::nullopt;
  ctx.debug = (flags & kFlagDebug) != 0;
  if (flags & kFlagSamplingKnown) ctx.sampled = (flags & kFlagSampled) != 0;
  if (ctx.parentId == ctx.spanId) ctx.parentId = 0;  // Finagle's root spans name themselves
  return ctx;
}

}  // namespace

std::optional<TraceContext> readTraceHeaders(const runtime::HttpHeaders& headers) {
  if (auto b3 = readB3(headers)) return b3;
  return readL5d(headers);
}

void writeTraceHeaders(runtime::HttpHeaders& h, const TraceContext& ctx) {
  // The incoming context goes, in one pass over the headers.
  auto& entries = h.entries();
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [](const runtime::HttpHeaders::Entry& e) {
                                 std::string_view n = e.first;
                                 if (n.size() < 2 || n.size() > 17) return false;
                                 char c = static_cast<char>(n[0] | 0x20);
                                 if (c != 'b' && c != 'x' && c != 'l') return false;
                                 for (std::string_view name : {"b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid",
                                                               "x-b3-sampled", "x-b3-flags", "l5d-ctx-trace"}) {
                                   if (runtime::HttpHeaders::nameEquals(n, name)) return true;
                                 }
                                 return false;
                               }),
                entries.end());
  entries.reserve(entries.size() + 6);
  h.add("x-b3-traceid", traceIdHex(ctx));
  h.add("x-b3-spanid", hexId(ctx.spanId));
  if (ctx.parentId != 0) h.add("x-b3-parentspanid", hexId(ctx.parentId));
  if (ctx.sampled) h.add("x-b3-sampled", *ctx.sampled ? "1" : "0");
  if (ctx.debug) h.add("x-b3-flags", "1");
  unsigned char bytes[40];
  writeBe64(bytes, ctx.spanId);
  writeBe64(bytes + 8, ctx.parentId != 0 ? ctx.parentId : ctx.spanId);
  writeBe64(bytes + 16, ctx.traceId);
  std::uint64_t flags = (ctx.debug ? kFlagDebug : 0) | (ctx.sampled ? kFlagSamplingKnown : 0) |
                        (ctx.sampled && *ctx.sampled ? kFlagSampled : 0);
  writeBe64(bytes + 24, flags);
  writeBe64(bytes + 32, ctx.traceIdHigh);
  h.add("l5d-ctx-trace", runtime::base64Encode(std::string_view(reinterpret_cast<const char*>(bytes), ctx.traceIdHigh != 0 ? 40 : 32)));
}

std::optional<double> requestedSampleRate(const runtime::HttpHeaders& headers) {
  auto v = headers.get("l5d-sample");
  if (!v) return std::nullopt;
  std::string text(*v);
  char* end = nullptr;
  double rate = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !(rate >= 0 && rate <= 1)) return std::nullopt;
  return rate;
}

void writeHexId(char* out, std::uint64_t id) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i, id >>= 4) out[i] = kHex[id & 15];
}

std::string hexId(std::uint64_t id) {
  std::string s(16, '0');
  writeHexId(s.data(), id);
  return s;
}

std::string traceIdHex(const TraceContext& ctx) {
  return ctx.traceIdHigh != 0 ? hexId(ctx.traceIdHigh) + hexId(ctx.traceId) : hexId(ctx.traceId);
}

std::uint64_t newId(std::mt19937_64& rng) {
  std::uint64_t id;
  do {
    id = rng();
  } while (id == 0);
  return id;
}

}  // namespace switchyard::router
