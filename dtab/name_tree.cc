#include "dtab/name_tree.h"

#include <charconv>
#include <cmath>
#include <string_view>

namespace switchyard::dtab {

std::string formatWeight(double weight) {
  if (!std::isfinite(weight)) return weight > 0 ? "Infinity" : weight < 0 ? "-Infinity" : "NaN";
  // The shortest decimal digits that read back as this double (what Java's
  // formatter rounds from), placed by their exponent: 1e23 is
  // "100000000000000000000000", not the double's exact binary expansion.
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, std::fabs(weight), std::chars_format::scientific);
  if (ec != std::errc()) return "NaN";
  std::string_view sci(buf, static_cast<std::size_t>(end - buf));
  std::size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits += c;
  }
  int exponent = std::stoi(std::string(sci.substr(e + 1)));
  long point = 1L + exponent;  // digits before the decimal point
  std::string intPart;
  std::string frac;
  if (point <= 0) {
    intPart = "0";
    frac = std::string(static_cast<std::size_t>(-point), '0') + digits;
  } else if (static_cast<std::size_t>(point) >= digits.size()) {
    intPart = digits + std::string(static_cast<std::size_t>(point) - digits.size(), '0');
  } else {
    intPart = digits.substr(0, static_cast<std::size_t>(point));
    frac = digits.substr(static_cast<std::size_t>(point));
  }
  bool roundUp = frac.size() > 2 && frac[2] >= '5';
  frac.resize(2, '0');
  std::string all = intPart + frac;  // the value times 100, as decimal digits
  bool carry = roundUp;
  for (std::size_t i = all.size(); carry && i-- > 0;) {
    if (all[i] == '9') {
      all[i] = '0';
    } else {
      ++all[i];
      carry = false;
    }
  }
  if (carry) all.insert(all.begin(), '1');
  std::string out = weight < 0 ? "-" : "";
  out += all.substr(0, all.size() - 2) + "." + all.substr(all.size() - 2);
  return out;
}

}  // namespace switchyard::dtab
