#include "router/failure.h"

namespace switchyard::router {

int Failure::status() const {
  if (statusOverride != 0) return statusOverride;
  switch (kind) {
    case Kind::BadRequest:
    case Kind::BadDtab:
    case Kind::TooDeep:
      return 400;
    case Kind::DtabTooLarge:
      return 431;
    case Kind::NoHosts:
    case Kind::NamingFailed:
    case Kind::ConnectFailed:
    case Kind::BadResponse:
      return 502;
    case Kind::HeadTimeout:
      return 408;
    case Kind::RequestTooLarge:
      return 413;
    case Kind::Timeout:
      return 503;
  }
  return 502;
}

FailureResponse respond(const Failure& failure, bool close) {
  FailureResponse r;
  r.head.status = failure.status();
  // A header value is one line of visible text: control bytes become spaces.
  std::string err = failure.message;
  for (char& c : err) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  if (err.size() > 1024) err = err.substr(0, 1021) + "...";
  r.head.headers.add("l5d-err", err);
  r.head.headers.add("Content-Type", "text/plain");
  r.body = err + "\n";
  r.head.headers.add("Content-Length", std::to_string(r.body.size()));
  if (close) r.head.headers.add("Connection", "close");
  return r;
}

}  // namespace switchyard::router
