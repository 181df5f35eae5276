#pragma once

// NameTree<T>: the value a dtab rewrites a name into. Leaves hold T (a Path
// before binding, a BoundName after); inner nodes say how the leaves combine:
//   Alt    `a | b`       try a; if a names nothing (Neg), fall back to b
//   Union  `0.3*a & b`   split traffic between a and b by weight
//   Neg    `~`           no such name (falls back in an Alt)
//   Fail   `!`           stop: the name exists and must fail
//   Empty  `$`           the name exists and has no endpoints
// Trees are immutable and share structure: copying one copies a pointer.
// Semantics follow Finagle's NameTree; see docs/ARCHITECTURE.md.

#include <cassert>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace switchyard::dtab {

template <class T>
class NameTree {
 public:
  enum class Kind : std::uint8_t { Leaf, Alt, Union, Neg, Fail, Empty };
  struct Weighted;

  // A default-constructed tree is Neg.
  NameTree() : node_(constant(Kind::Neg)) {}

  static NameTree leaf(T value) {
    auto n = std::make_shared<Node>(Kind::Leaf);
    n->value.emplace(std::move(value));
    return NameTree(std::move(n));
  }
  static NameTree alt(std::vector<NameTree> trees) {
    auto n = std::make_shared<Node>(Kind::Alt);
    n->alts = std::move(trees);
    return NameTree(std::move(n));
  }
  static NameTree unionOf(std::vector<Weighted> trees) {
    auto n = std::make_shared<Node>(Kind::Union);
    n->weighted = std::move(trees);
    return NameTree(std::move(n));
  }
  static NameTree neg() { return NameTree(constant(Kind::Neg)); }
  static NameTree fail() { return NameTree(constant(Kind::Fail)); }
  static NameTree empty() { return NameTree(constant(Kind::Empty)); }

  Kind kind() const { return node_->kind; }
  bool isLeaf() const { return kind() == Kind::Leaf; }
  bool isNeg() const { return kind() == Kind::Neg; }
  bool isFail() const { return kind() == Kind::Fail; }
  bool isEmpty() const { return kind() == Kind::Empty; }

  // Leaf only.
  const T& value() const {
    assert(isLeaf());
    return *node_->value;
  }
  // Alt only.
  const std::vector<NameTree>& alts() const {
    assert(kind() == Kind::Alt);
    return node_->alts;
  }
  // Union only.
  const std::vector<Weighted>& weighted() const {
    assert(kind() == Kind::Union);
    return node_->weighted;
  }

  // The same shape with f applied to every leaf.
  template <class F>
  auto map(F&& f) const -> NameTree<std::invoke_result_t<F&, const T&>>;

  // Finagle's simplify: Alt drops Neg children and ends after the first Fail;
  // Union drops Neg and Fail children; a single child replaces its parent;
  // nothing left is Neg. Idempotent, and eval(simplified()) == eval().
  NameTree simplified() const;

  // The set of leaves the tree denotes, or nullopt for "no result" (Neg, or
  // Fail). Empty denotes the empty set. Weights are ignored.
  std::optional<std::set<T>> eval() const;

  friend bool operator==(const NameTree& a, const NameTree& b) {
    if (a.node_ == b.node_) return true;
    if (a.kind() != b.kind()) return false;
    switch (a.kind()) {
      case Kind::Leaf:
        return a.value() == b.value();
      case Kind::Alt:
        return a.alts() == b.alts();
      case Kind::Union:
        return a.weighted() == b.weighted();
      default:
        return true;
    }
  }

 private:
  template <class U>
  friend class NameTree;

  struct Node {
    explicit Node(Kind k) : kind(k) {}
    Kind kind;
    std::optional<T> value;
    std::vector<NameTree> alts;
    std::vector<Weighted> weighted;
  };

  explicit NameTree(std::shared_ptr<const Node> node) : node_(std::move(node)) {}

  // Neg, Fail and Empty carry no data: one shared node each.
  static std::shared_ptr<const Node> constant(Kind k) {
    static const auto neg = std::make_shared<const Node>(Kind::Neg);
    static const auto fail = std::make_shared<const Node>(Kind::Fail);
    static const auto empty = std::make_shared<const Node>(Kind::Empty);
    return k == Kind::Neg ? neg : k == Kind::Fail ? fail : empty;
  }

  enum class EvalState { Set, Neg, Fail };
  EvalState evalInto(std::set<T>& out) const;

  std::shared_ptr<const Node> node_;
};

template <class T>
struct NameTree<T>::Weighted {
  double weight = 1.0;
  NameTree tree;
  friend bool operator==(const Weighted&, const Weighted&) = default;
};

template <class T>
template <class F>
auto NameTree<T>::map(F&& f) const -> NameTree<std::invoke_result_t<F&, const T&>> {
  using U = std::invoke_result_t<F&, const T&>;
  switch (kind()) {
    case Kind::Leaf:
      return NameTree<U>::leaf(f(value()));
    case Kind::Alt: {
      std::vector<NameTree<U>> out;
      out.reserve(alts().size());
      for (const auto& t : alts()) out.push_back(t.map(f));
      return NameTree<U>::alt(std::move(out));
    }
    case Kind::Union: {
      std::vector<typename NameTree<U>::Weighted> out;
      out.reserve(weighted().size());
      for (const auto& w : weighted()) out.push_back({w.weight, w.tree.map(f)});
      return NameTree<U>::unionOf(std::move(out));
    }
    case Kind::Neg:
      return NameTree<U>::neg();
    case Kind::Fail:
      return NameTree<U>::fail();
    case Kind::Empty:
      return NameTree<U>::empty();
  }
  return NameTree<U>::neg();
}

template <class T>
NameTree<T> NameTree<T>::simplified() const {
  switch (kind()) {
    case Kind::Alt: {
      std::vector<NameTree> kept;
      for (const auto& t : alts()) {
        NameTree s = t.simplified();
        if (s.isNeg()) continue;
        kept.push_back(s);
        if (s.isFail()) break;  // nothing after a Fail is ever reached
      }
      if (kept.empty()) return neg();
      if (kept.size() == 1) return kept.front();
      return alt(std::move(kept));
    }
    case Kind::Union: {
      std::vector<Weighted> kept;
      for (const auto& w : weighted()) {
        NameTree s = w.tree.simplified();
        if (s.isNeg() || s.isFail()) continue;
        kept.push_back({w.weight, s});
      }
      if (kept.empty()) return neg();
      if (kept.size() == 1) return kept.front().tree;
      return unionOf(std::move(kept));
    }
    default:
      return *this;
  }
}

template <class T>
typename NameTree<T>::EvalState NameTree<T>::evalInto(std::set<T>& out) const {
  switch (kind()) {
    case Kind::Leaf:
      out.insert(value());
      return EvalState::Set;
    case Kind::Empty:
      return EvalState::Set;
    case Kind::Neg:
      return EvalState::Neg;
    case Kind::Fail:
      return EvalState::Fail;
    case Kind::Alt:
      for (const auto& t : alts()) {
        std::set<T> s;
        EvalState st = t.evalInto(s);
        if (st == EvalState::Neg) continue;
        if (st == EvalState::Set) out.insert(s.begin(), s.end());
        return st;
      }
      return EvalState::Neg;
    case Kind::Union: {
      bool any = false;
      for (const auto& w : weighted()) {
        std::set<T> s;
        if (w.tree.evalInto(s) == EvalState::Set) {
          any = true;
          out.insert(s.begin(), s.end());
        }
      }
      return any ? EvalState::Set : EvalState::Neg;
    }
  }
  return EvalState::Neg;
}

template <class T>
std::optional<std::set<T>> NameTree<T>::eval() const {
  std::set<T> out;
  if (evalInto(out) != EvalState::Set) return std::nullopt;
  return out;
}

// Formats a union weight as Finagle prints it: Java's "%.2f", which rounds the
// shortest decimal form of the double half-up (0.125 -> "0.13").
std::string formatWeight(double weight);

// Prints a tree in Finagle's canonical form. `showLeaf(const T&)` prints a
// leaf. Alt children are joined with " | ", Union children with " & "; an Alt
// inside an Alt or a Union, and a Union inside a Union, are parenthesised.
template <class T, class ShowLeaf>
void showTree(const NameTree<T>& tree, ShowLeaf&& showLeaf, std::string& out) {
  using Kind = typename NameTree<T>::Kind;
  // A single-child Alt or Union prints as its child, so parentheses are
  // decided on what actually prints.
  auto effective = [](const NameTree<T>* t) {
    while ((t->kind() == Kind::Alt && t->alts().size() == 1) ||
           (t->kind() == Kind::Union && t->weighted().size() == 1)) {
      t = t->kind() == Kind::Alt ? &t->alts().front() : &t->weighted().front().tree;
    }
    return t;
  };
  const NameTree<T>& t = *effective(&tree);
  switch (t.kind()) {
    case Kind::Leaf:
      showLeaf(t.value(), out);
      return;
    case Kind::Neg:
      out += '~';
      return;
    case Kind::Fail:
      out += '!';
      return;
    case Kind::Empty:
      out += '$';
      return;
    case Kind::Alt: {
      if (t.alts().empty()) {
        out += '~';
        return;
      }
      bool first = true;
      for (const auto& child : t.alts()) {
        if (!first) out += " | ";
        first = false;
        bool paren = effective(&child)->kind() == Kind::Alt;
        if (paren) out += '(';
        showTree(child, showLeaf, out);
        if (paren) out += ')';
      }
      return;
    }
    case Kind::Union: {
      if (t.weighted().empty()) {
        out += '~';
        return;
      }
      bool first = true;
      for (const auto& w : t.weighted()) {
        if (!first) out += " & ";
        first = false;
        if (w.weight != 1.0) out += formatWeight(w.weight) + "*";
        Kind k = effective(&w.tree)->kind();
        bool paren = k == Kind::Alt || k == Kind::Union;
        if (paren) out += '(';
        showTree(w.tree, showLeaf, out);
        if (paren) out += ')';
      }
      return;
    }
  }
}

template <class T, class ShowLeaf>
std::string showTree(const NameTree<T>& tree, ShowLeaf&& showLeaf) {
  std::string out;
  showTree(tree, showLeaf, out);
  return out;
}

}  // namespace switchyard::dtab
