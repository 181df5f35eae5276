#include "dtab/path.h"

#include <algorithm>

#include "dtab/parser.h"

namespace switchyard::dtab {

Path::Path(std::vector<std::string> elems) : elems_(std::move(elems)) {}

Expected<Path, ParseError> Path::parse(std::string_view text) { return Parser(text).wholePath(); }

bool Path::isShowable(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
         c == ':' || c == '.' || c == '#' || c == '$' || c == '%' || c == '-';
}

void Path::showElem(std::string_view elem, std::string& out) {
  if (std::all_of(elem.begin(), elem.end(), isShowable)) {
    out += elem;
    return;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : elem) {
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
}

bool Path::startsWith(const Path& prefix) const {
  return prefix.size() <= size() && std::equal(prefix.elems_.begin(), prefix.elems_.end(), elems_.begin());
}

Path Path::take(std::size_t n) const {
  n = std::min(n, size());
  return Path(std::vector<std::string>(elems_.begin(), elems_.begin() + static_cast<long>(n)));
}

Path Path::drop(std::size_t n) const {
  n = std::min(n, size());
  return Path(std::vector<std::string>(elems_.begin() + static_cast<long>(n), elems_.end()));
}

Path Path::operator+(const Path& suffix) const {
  std::vector<std::string> out;
  out.reserve(size() + suffix.size());
  out.insert(out.end(), elems_.begin(), elems_.end());
  out.insert(out.end(), suffix.elems_.begin(), suffix.elems_.end());
  return Path(std::move(out));
}

std::string Path::show() const {
  if (elems_.empty()) return "/";
  std::string out;
  for (const auto& e : elems_) {
    out += '/';
    showElem(e, out);
  }
  return out;
}

}  // namespace switchyard::dtab
