#include "dtab/dtab.h"

#include "dtab/parser.h"

namespace switchyard::dtab {

Expected<Dtab, ParseError> Dtab::parse(std::string_view text) { return Parser(text).wholeDtab(); }

Dtab Dtab::operator+(const Dtab& later) const {
  std::vector<Dentry> out;
  out.reserve(size() + later.size());
  out.insert(out.end(), entries_.begin(), entries_.end());
  out.insert(out.end(), later.entries_.begin(), later.entries_.end());
  return Dtab(std::move(out));
}

Dtab Dtab::operator+(const Dentry& later) const {
  std::vector<Dentry> out = entries_;
  out.push_back(later);
  return Dtab(std::move(out));
}

std::string Dtab::show() const {
  std::string out;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (i > 0) out += ';';
    out += entries_[i].show();
  }
  return out;
}

std::vector<Dtab::Match> Dtab::matches(const Path& path) const {
  std::vector<Match> out;
  for (std::size_t i = entries_.size(); i-- > 0;) {
    const Dentry& d = entries_[i];
    if (!d.prefix().matches(path)) continue;
    Path residual = path.drop(d.prefix().size());
    out.push_back({i, d.dst().map([&](const Path& leaf) { return leaf + residual; })});
  }
  return out;
}

NameTree<Path> Dtab::lookup(const Path& path) const {
  std::vector<Match> found = matches(path);
  if (found.empty()) return NameTree<Path>::neg();
  if (found.size() == 1) return std::move(found.front().tree);
  std::vector<NameTree<Path>> alts;
  alts.reserve(found.size());
  for (auto& m : found) alts.push_back(std::move(m.tree));
  return NameTree<Path>::alt(std::move(alts));
}

Dtab Dtab::simplified() const {
  std::vector<Dentry> out;
  for (const auto& d : entries_) {
    NameTree<Path> s = d.dst().simplified();
    if (!s.isNeg()) out.emplace_back(d.prefix(), std::move(s));
  }
  return Dtab(std::move(out));
}

}  // namespace switchyard::dtab
