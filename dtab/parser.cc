#include "dtab/parser.h"

#include <charconv>
#include <cmath>
#include <utility>
#include <vector>

#include "dtab/hex.h"

namespace switchyard::dtab {
namespace {

// Java's Character.isWhitespace for ASCII, which Finagle's reader uses.
bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' ||
         (c >= '\x1c' && c <= '\x1f');
}

bool isLabelStart(char c) { return Path::isShowable(c) || c == '\\'; }

}  // namespace

void Parser::skipSpace() {
  while (!atEnd()) {
    char c = peek();
    if (isSpace(c)) {
      ++pos_;
    } else if (c == '#') {
      while (!atEnd() && peek() != '\n') ++pos_;
    } else {
      return;
    }
  }
}

bool Parser::fail(std::string expected) {
  if (!error_) error_ = ParseError::at(in_, pos_, std::move(expected));
  return false;
}

bool Parser::failLimit(std::string what) {
  if (!error_) error_ = ParseError::limit(in_, pos_, std::move(what));
  return false;
}

bool Parser::expectEnd() {
  // Point at the first byte that is not allowed, even if it is a space:
  // `/foo bar` fails at the space, which is what the user must remove.
  std::size_t stop = pos_;
  skipSpace();
  if (atEnd()) return true;
  pos_ = stop;
  return fail("end of input");
}

bool Parser::label(std::string& out) {
  out.clear();
  while (!atEnd()) {
    char c = peek();
    if (Path::isShowable(c)) {
      out.push_back(c);
      ++pos_;
    } else if (c == '\\') {
      ++pos_;
      if (peek() != 'x') return fail("'x'");
      ++pos_;
      int hi = hexValue(peek());
      if (hi < 0) return fail("hex digit");
      ++pos_;
      int lo = hexValue(peek());
      if (lo < 0) return fail("hex digit");
      ++pos_;
      out.push_back(static_cast<char>(hi * 16 + lo));
    } else {
      break;
    }
  }
  return !out.empty() || fail("label");
}

bool Parser::path(Path& out) {
  skipSpace();
  if (peek() != '/') return fail("'/'");
  ++pos_;
  std::vector<std::string> elems;
  if (isLabelStart(peek())) {
    while (true) {
      std::string elem;
      if (!label(elem)) return false;
      elems.push_back(std::move(elem));
      if (peek() != '/') break;
      ++pos_;
      // After an inner '/', a label is required: `/a/` and `/a//b` are errors.
      if (!isLabelStart(peek())) return fail("label");
    }
  }
  out = Path(std::move(elems));
  return true;
}

bool Parser::prefix(Dentry::Prefix& out) {
  skipSpace();
  if (peek() != '/') return fail("'/'");
  ++pos_;
  std::vector<Dentry::Prefix::Elem> elems;
  auto elemStart = [this] { return peek() == '*' || isLabelStart(peek()); };
  if (elemStart()) {
    while (true) {
      if (peek() == '*') {
        ++pos_;
        // `*` stands alone: `/a/*b` is an error.
        if (isLabelStart(peek()) || peek() == '*') return fail("'/' or '=>'");
        elems.push_back({"", true});
      } else {
        std::string elem;
        if (!label(elem)) return false;
        elems.push_back({std::move(elem), false});
      }
      if (peek() != '/') break;
      ++pos_;
      if (!elemStart()) return fail("label or '*'");
    }
  }
  out = Dentry::Prefix(std::move(elems));
  return true;
}

bool Parser::number(double& out) {
  std::size_t start = pos_;
  bool dot = false;
  bool digit = false;
  while (!atEnd()) {
    char c = peek();
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
    ++pos_;
  }
  if (!digit) {
    pos_ = start;
    return fail("weight");
  }
  std::string_view text = in_.substr(start, pos_ - start);
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec == std::errc::result_out_of_range &&
      text.substr(0, text.find('.')).find_first_not_of('0') == std::string_view::npos) {
    out = 0.0;  // underflow: a weight too small for a double reads as 0, as in Java
    return true;
  }
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(out)) {
    pos_ = start;
    return failLimit("weight out of range");
  }
  return true;
}

bool Parser::simple(NameTree<Path>& out, int nesting) {
  skipSpace();
  switch (peek()) {
    case '(': {
      if (nesting >= kMaxNesting) {
        return failLimit("parentheses nested deeper than " + std::to_string(kMaxNesting));
      }
      ++pos_;
      if (!tree(out, nesting + 1)) return false;
      skipSpace();
      if (peek() != ')') return fail("')'");
      ++pos_;
      return true;
    }
    case '/': {
      Path p;
      if (!path(p)) return false;
      out = NameTree<Path>::leaf(std::move(p));
      return true;
    }
    case '!':
      ++pos_;
      out = NameTree<Path>::fail();
      return true;
    case '~':
      ++pos_;
      out = NameTree<Path>::neg();
      return true;
    case '$':
      ++pos_;
      out = NameTree<Path>::empty();
      return true;
    default:
      return fail("'(' or path or '!' or '~' or '$'");
  }
}

bool Parser::tree1(NameTree<Path>& out, int nesting) {
  std::vector<NameTree<Path>::Weighted> parts;
  while (true) {
    skipSpace();
    double weight = 1.0;
    char c = peek();
    if ((c >= '0' && c <= '9') || c == '.') {
      if (!number(weight)) return false;
      skipSpace();
      if (peek() != '*') return fail("'*'");
      ++pos_;
    }
    NameTree<Path> t;
    if (!simple(t, nesting)) return false;
    parts.push_back({weight, std::move(t)});
    skipSpace();
    if (peek() != '&') break;
    ++pos_;
  }
  // A weight on a lone tree means nothing and is dropped, as in Finagle.
  out = parts.size() == 1 ? std::move(parts.front().tree)
                          : NameTree<Path>::unionOf(std::move(parts));
  return true;
}

bool Parser::tree(NameTree<Path>& out, int nesting) {
  std::vector<NameTree<Path>> parts;
  while (true) {
    NameTree<Path> t;
    if (!tree1(t, nesting)) return false;
    parts.push_back(std::move(t));
    skipSpace();
    if (peek() != '|') break;
    ++pos_;
  }
  out = parts.size() == 1 ? std::move(parts.front()) : NameTree<Path>::alt(std::move(parts));
  return true;
}

bool Parser::dentry(std::optional<Dentry>& out) {
  Dentry::Prefix p;
  if (!prefix(p)) return false;
  skipSpace();
  if (in_.substr(pos_, 2) != "=>") return fail("'=>'");
  pos_ += 2;
  NameTree<Path> dst;
  if (!tree(dst, 0)) return false;
  out.emplace(std::move(p), std::move(dst));
  return true;
}

Expected<Path, ParseError> Parser::wholePath() {
  Path p;
  if (path(p) && expectEnd()) return p;
  return Unexpected(std::move(*error_));
}

Expected<NameTree<Path>, ParseError> Parser::wholeTree() {
  NameTree<Path> t;
  if (tree(t, 0) && expectEnd()) return t;
  return Unexpected(std::move(*error_));
}

Expected<Dentry, ParseError> Parser::wholeDentry() {
  std::optional<Dentry> d;
  if (dentry(d) && expectEnd()) return std::move(*d);
  return Unexpected(std::move(*error_));
}

Expected<Dtab, ParseError> Parser::wholeDtab() {
  std::vector<Dentry> entries;
  skipSpace();
  while (!atEnd()) {
    std::optional<Dentry> d;
    if (!dentry(d)) return Unexpected(std::move(*error_));
    entries.push_back(std::move(*d));
    skipSpace();
    if (atEnd()) break;
    if (peek() != ';') {
      fail("';' or end of input");
      return Unexpected(std::move(*error_));
    }
    ++pos_;
    skipSpace();  // a trailing ';' may end the dtab
  }
  return Dtab(std::move(entries));
}

}  // namespace switchyard::dtab
