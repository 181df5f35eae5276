#include "router/tracer.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "router/trace.h"

namespace switchyard::router {

TEST_CASE("spans are valid Zipkin v2 JSON whatever bytes their strings hold") {
  std::string path = std::string("/a\"b\\c\x01\x7f") + "\xff\xfe" + "\n";
  Span s;
  s.traceId = "463ac35c9f6413ad";
  s.id = 0x1234;
  s.parentId = 0xabcdef;
  s.kind = "CLIENT";
  s.name = "get";
  s.timestampUs = 1'700'000'000'000'000;
  s.durationUs = 0;
  s.localService = "out";
  s.remoteIp = "::1";
  s.remotePort = 8080;
  s.tag("http.path", path);
  s.tag("l5d.name", "/svc/\xc3\xa9t\xc3\xa9");
  std::string out;
  appendSpanJson(out, s);
  auto j = nlohmann::json::parse(out);  // throws if invalid
  CHECK(j["id"] == "0000000000001234");
  CHECK(j["parentId"] == "0000000000abcdef");
  CHECK(j["duration"] == 1);  // Zipkin wants at least 1 µs
  CHECK(j["remoteEndpoint"]["ipv6"] == "::1");
  CHECK(j["tags"]["http.path"] == "/a\"b\\c\x01\x7f\u00ff\u00fe\n");
  CHECK(j["tags"]["l5d.name"] == "/svc/\xc3\xa9t\xc3\xa9");  // valid UTF-8 passes as it is
}

TEST_CASE("trace context round-trips through B3 and l5d-ctx-trace") {
  TraceContext ctx{0x463ac35c9f6413ad, 0x48485a3953bb6124, 0xa2fb4a1d1a96d312, 0x1111, true, false};
  runtime::HttpHeaders h;
  writeTraceHeaders(h, ctx);
  auto b3 = readTraceHeaders(h);
  REQUIRE(b3);
  CHECK(traceIdHex(*b3) == "463ac35c9f6413ad48485a3953bb6124");
  CHECK(b3->spanId == ctx.spanId);
  CHECK(b3->parentId == ctx.parentId);
  CHECK(b3->sampled == std::optional<bool>(true));
  // Linkerd's header alone carries the same context.
  runtime::HttpHeaders only;
  only.add("l5d-ctx-trace", std::string(*h.get("l5d-ctx-trace")));
  auto l5d = readTraceHeaders(only);
  REQUIRE(l5d);
  CHECK(l5d->traceIdHigh == ctx.traceIdHigh);
  CHECK(l5d->traceId == ctx.traceId);
  CHECK(l5d->spanId == ctx.spanId);
  CHECK(l5d->parentId == ctx.parentId);
  CHECK(l5d->sampled == std::optional<bool>(true));
}

TEST_CASE("malformed trace headers are ignored") {
  for (auto [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"x-b3-traceid", "xyz"}, {"b3", "0-0"}, {"l5d-ctx-trace", "not base64!"}, {"l5d-ctx-trace", "AAAA"}}) {
    runtime::HttpHeaders h;
    h.add(name, value);
    if (name == "x-b3-traceid") h.add("x-b3-spanid", "0000000000000001");
    INFO(name << ": " << value);
    CHECK_FALSE(readTraceHeaders(h));
  }
  runtime::HttpHeaders h;
  h.add("l5d-sample", "2");
  CHECK_FALSE(requestedSampleRate(h));
  h.set("l5d-sample", "0.25");
  CHECK(requestedSampleRate(h) == 0.25);
}

}  // namespace switchyard::router
