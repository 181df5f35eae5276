// `switchyard dtab check`: reads a dtab (or a path, or a name tree) and prints
// its canonical form, or the syntax error with line and column.

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "app/commands.h"
#include "dtab/dentry.h"
#include "dtab/dtab.h"
#include "dtab/path.h"

namespace switchyard::app {
namespace {

struct CheckOptions {
  std::string dtab;
  std::string file;
  std::string path;
  std::string tree;
  // What was given on the command line (an empty dtab is a valid dtab).
  CLI::Option* dtabOpt = nullptr;
  CLI::Option* fileOpt = nullptr;
  CLI::Option* pathOpt = nullptr;
  CLI::Option* treeOpt = nullptr;
};

template <class Parsed, class Show>
int report(const Parsed& parsed, Show&& show) {
  if (!parsed) {
    std::cerr << "switchyard: " << parsed.error().message() << "\n";
    return 1;
  }
  std::cout << show(*parsed) << "\n";
  return 0;
}

int runCheck(const CheckOptions& o) {
  std::size_t given = o.dtabOpt->count() + o.fileOpt->count() + o.pathOpt->count() + o.treeOpt->count();
  if (given != 1) {
    std::cerr << "switchyard: dtab check needs exactly one of DTAB, -f FILE, --path, --tree\n";
    return 2;
  }
  if (o.pathOpt->count()) {
    return report(dtab::Path::parse(o.path), [](const dtab::Path& p) { return p.show(); });
  }
  if (o.treeOpt->count()) {
    return report(dtab::parseNameTree(o.tree),
                  [](const dtab::NameTree<dtab::Path>& t) { return dtab::show(t); });
  }
  std::string text = o.dtab;
  if (o.fileOpt->count() && !readFile(o.file, text)) return 2;
  return report(dtab::Dtab::parse(text), [](const dtab::Dtab& d) { return d.show(); });
}

}  // namespace

Run addDtabCommand(CLI::App& parent) {
  auto opts = std::make_shared<CheckOptions>();
  CLI::App* dtab = parent.add_subcommand("dtab", "Work with delegation tables");
  dtab->require_subcommand(1);
  CLI::App* check = dtab->add_subcommand(
      "check",
      "Print the canonical form of a dtab, path (--path) or name tree (--tree); exit 1 with the "
      "position of a syntax error");
  opts->dtabOpt = check->add_option("DTAB", opts->dtab, "Dtab text, e.g. '/svc => /#/io.l5d.fs'");
  opts->fileOpt = check->add_option("-f,--file", opts->file, "Read the dtab from FILE");
  opts->pathOpt = check->add_option("--path", opts->path, "Check a path instead, e.g. '/svc/hello'");
  opts->treeOpt = check->add_option("--tree", opts->tree, "Check a name tree instead, e.g. '/a | 0.3*/b & 0.7*/c'");
  auto remote = addDtabRemoteCommands(dtab);
  return [opts, check, remote] { return check->parsed() ? runCheck(*opts) : remote(); };
}

}  // namespace switchyard::app
