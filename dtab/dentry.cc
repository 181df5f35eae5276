#include "dtab/dentry.h"

#include "dtab/parser.h"

namespace switchyard::dtab {

Dentry::Prefix::Prefix(const Path& path) {
  elems_.reserve(path.size());
  for (const auto& e : path.elems()) elems_.push_back({e, false});
}

bool Dentry::Prefix::matches(const Path& path) const {
  if (path.size() < elems_.size()) return false;
  for (std::size_t i = 0; i < elems_.size(); ++i) {
    if (!elems_[i].wildcard && elems_[i].label != path[i]) return false;
  }
  return true;
}

std::string Dentry::Prefix::show() const {
  if (elems_.empty()) return "/";
  std::string out;
  for (const auto& e : elems_) {
    out += '/';
    if (e.wildcard) {
      out += '*';
    } else {
      Path::showElem(e.label, out);
    }
  }
  return out;
}

Expected<Dentry, ParseError> Dentry::parse(std::string_view text) {
  return Parser(text).wholeDentry();
}

std::string Dentry::show() const { return prefix_.show() + "=>" + dtab::show(dst_); }

std::string show(const NameTree<Path>& tree) {
  return showTree(tree, [](const Path& p, std::string& out) { out += p.show(); });
}

Expected<NameTree<Path>, ParseError> parseNameTree(std::string_view text) {
  return Parser(text).wholeTree();
}

}  // namespace switchyard::dtab
