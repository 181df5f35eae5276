#include "runtime/http1_parser.h"

#include <catch2/catch.hpp>

using namespace switchyard::runtime;

namespace {

struct Recorder : Http1Parser::Handler {
  std::vector<RequestHead> requests;
  std::vector<ResponseHead> responses;
  std::vector<BodyFraming> framings;
  std::string body;
  int ends = 0;
  void onRequestHead(RequestHead&& h, const BodyFraming& f) override {
    requests.push_back(std::move(h));
    framings.push_back(f);
  }
  void onResponseHead(ResponseHead&& h, const BodyFraming& f) override {
    responses.push_back(std::move(h));
    framings.push_back(f);
  }
  void onBody(std::string_view d) override { body += d; }
  void onMessageEnd() override { ++ends; }
};

}  // namespace

TEST_CASE("requests are parsed one message at a time", "[http1]") {
  Recorder r;
  Http1Parser p(Http1Parser::Type::Request, r, {});
  std::string in =
      "POST /a?b=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: h\r\n\r\n";
  auto first = p.feed(in);
  REQUIRE(first.status == Http1Parser::Status::MessageEnd);
  CHECK(r.requests.size() == 1);
  CHECK(r.requests[0].method == "POST");
  CHECK(r.requests[0].target == "/a?b=1");
  CHECK(r.requests[0].path() == "/a");
  CHECK(r.requests[0].headers.get("host") == "h");
  CHECK(r.framings[0].kind == BodyFraming::ContentLength);
  CHECK(r.body == "hello");
  // The pipelined request waits until asked for.
  auto second = p.feed(std::string_view(in).substr(first.consumed));
  CHECK(second.status == Http1Parser::Status::MessageEnd);
  CHECK(r.requests.size() == 2);
  CHECK(first.consumed + second.consumed == in.size());
}

TEST_CASE("chunked bodies arrive decoded, split anywhere", "[http1]") {
  Recorder r;
  Http1Parser p(Http1Parser::Type::Request, r, {});
  std::string in = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  Http1Parser::Result res{Http1Parser::Status::NeedMore, 0, {}, 0};
  for (char c : in) res = p.feed(std::string_view(&c, 1));
  CHECK(res.status == Http1Parser::Status::MessageEnd);
  CHECK(r.framings[0].kind == BodyFraming::Chunked);
  CHECK(r.body == "abcde");
}

TEST_CASE("limits and malformed input give the status to answer", "[http1]") {
  struct Case {
    std::string in;
    int status;
  };
  const Case cases[] = {
      {"GET /" + std::string(5000, 'a') + " HTTP/1.1\r\n\r\n", 414},
      {"GET / HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n", 431},
      {"GARBAGE\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400},
  };
  for (const auto& c : cases) {
    INFO(c.in.substr(0, 60));
    Recorder r;
    Http1Parser p(Http1Parser::Type::Request, r, {});
    auto res = p.feed(c.in);
    REQUIRE(res.status == Http1Parser::Status::Error);
    CHECK(res.httpStatus == c.status);
    CHECK_FALSE(res.error.empty());
  }
}

TEST_CASE("responses: HEAD, interim and close-delimited bodies", "[http1]") {
  Recorder r;
  Http1Parser p(Http1Parser::Type::Response, r, {});
  p.expectHeadResponse();
  auto head = p.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
  CHECK(head.status == Http1Parser::Status::MessageEnd);
  CHECK(r.body.empty());
  auto interim = p.feed("HTTP/1.1 100 Continue\r\n\r\n");
  CHECK(interim.status == Http1Parser::Status::MessageEnd);
  CHECK(r.responses.back().status == 100);
  auto until = p.feed("HTTP/1.1 200 OK\r\n\r\npartial");
  CHECK(until.status == Http1Parser::Status::NeedMore);
  CHECK(r.framings.back().kind == BodyFraming::UntilClose);
  CHECK(p.finish().status == Http1Parser::Status::MessageEnd);
  CHECK(r.body == "partial");
}

TEST_CASE("an upgrade ends HTTP on the connection", "[http1]") {
  Recorder r;
  Http1Parser p(Http1Parser::Type::Request, r, {});
  std::string in = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nRAW";
  auto res = p.feed(in);
  CHECK(res.status == Http1Parser::Status::Upgrade);
  CHECK(in.substr(res.consumed) == "RAW");
}

TEST_CASE("serialized heads", "[http1]") {
  RequestHead h;
  h.method = "GET";
  h.target = "/x";
  h.headers.add("Host", "a");
  CHECK(serializeRequestHead(h) == "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
  ResponseHead r;
  r.status = 502;
  CHECK(serializeResponseHead(r) == "HTTP/1.1 502 Bad Gateway\r\n\r\n");
  CHECK(chunkHeader(255) == "ff\r\n");
}
