// The `switchyard` binary: one executable, one subcommand per role.

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "app/commands.h"
#include "runtime/version.h"

namespace switchyard::app {

bool readFile(const std::string& filename, std::string& out) {
  std::ifstream in(filename, std::ios::binary);
  if (!in) {
    std::cerr << "switchyard: cannot read '" << filename << "'\n";
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  out = text.str();
  return true;
}

}  // namespace switchyard::app

int main(int argc, char** argv) {
  using namespace switchyard::app;
  CLI::App app{"Switchyard: a per-node HTTP router that routes by delegation tables (dtabs)",
               "switchyard"};
  // At most one subcommand; "none" is reported after parsing, so that an
  // unknown flag is named as such rather than as a missing subcommand.
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", [] {
    return std::string("switchyard " SWITCHYARD_VERSION "\n") + switchyard::runtime::libraryVersions();
  });
  app.footer("Run 'switchyard <command> --help' for a command's options.");

  Run dtab = addDtabCommand(app);
  Run delegate = addDelegateCommand(app);
  Run router = addRouterCommand(app);
  Run namer = addNamerCommand(app);

  // CLI11 2.1 reads `--opt=` (an explicitly empty value) as a bare `--opt`
  // and takes the next argument as its value. Split it into `--opt ""` so an
  // empty dtab given that way stays empty.
  std::vector<std::string> args;
  for (int i = argc - 1; i > 0; --i) {
    std::string a = argv[i];
    if (a.size() > 3 && a.starts_with("--") && a.back() == '=' && a.find('=') == a.size() - 1) {
      args.emplace_back();
      a.pop_back();
    }
    args.push_back(std::move(a));
  }

  try {
    app.parse(args);  // CLI11 takes the arguments in reverse order
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, so scripts and people both see what was wrong.
    std::string what = e.what();
    for (char& c : what) {
      if (c == '\n') c = ' ';
    }
    std::cerr << "switchyard: " << what << " (see 'switchyard --help')\n";
    return 2;
  }

  if (app.got_subcommand("dtab")) return dtab();
  if (app.got_subcommand("delegate")) return delegate();
  if (app.got_subcommand("router")) return router();
  if (app.got_subcommand("namer")) return namer();
  std::cerr << "switchyard: a command is required (see 'switchyard --help')\n";
  return 2;
}
