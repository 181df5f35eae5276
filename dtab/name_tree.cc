#include "dtab/name_tree.h"

#include <charconv>
#include <cmath>

namespace switchyard::dtab {

std::string formatWeight(double weight) {
  if (!std::isfinite(weight)) return weight > 0 ? "Infinity" : weight < 0 ? "-Infinity" : "NaN";
  // The shortest decimal digits that read back as this double (what Java's
  // formatter rounds from), in fixed notation.
  char buf[400];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, std::fabs(weight), std::chars_format::fixed);
  if (ec != std::errc()) return "NaN";
  std::string digits(buf, end);
  std::string intPart = digits;
  std::string frac;
  if (auto dot = digits.find('.'); dot != std::string::npos) {
    intPart = digits.substr(0, dot);
    frac = digits.substr(dot + 1);
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
