// Real dtab files from Linkerd users (test/compat/dtabs/, see README.md there
// for their sources): every one parses, and its canonical form reads back to
// the same dtab.

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "dtab/dtab.h"

using switchyard::dtab::Dtab;

TEST_CASE("every real-world .dtab file parses and round-trips", "[compat]") {
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(SWITCHYARD_COMPAT_DIR "/dtabs")) {
    if (entry.path().extension() != ".dtab") continue;
    ++files;
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    INFO(entry.path().filename().string());
    auto d = Dtab::parse(text.str());
    if (!d) FAIL(d.error().message());
    CHECK_FALSE(d->empty());
    auto again = Dtab::parse(d->show());
    REQUIRE(again);
    CHECK(*again == *d);
  }
  CHECK(files >= 7);
}
