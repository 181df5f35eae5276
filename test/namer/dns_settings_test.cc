#include "namer/dns_settings.h"

#include <catch2/catch.hpp>

namespace switchyard::namer {

TEST_CASE("DNS server addresses are numeric, canonical, with an optional port") {
  for (const char* ok : {"127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:53", "10.0.0.2:1", "8.8.8.8:65535"}) {
    INFO(ok);
    CHECK(isDnsServerAddress(ok));
  }
  for (const char* bad : {"", "dns.example", "dns.example:53", "127.1", "127.0.0.1:", "127.0.0.1:0",
                          "127.0.0.1:70000", "127.0.0.1:53x", "[::1]", "[::1]53", "[::1", "1.2.3.4:5:6"}) {
    INFO(bad);
    CHECK_FALSE(isDnsServerAddress(bad));
  }
}

}  // namespace switchyard::namer
