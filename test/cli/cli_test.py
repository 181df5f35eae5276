#!/usr/bin/env python3
"""Integration test of the `switchyard` binary's command line.

Usage: cli_test.py SWITCHYARD_BINARY DTAB_CASES_JSON

Runs the real binary (never a library) and checks:
  * --help / --version / unknown flags (exit codes, stdout/stderr shape);
  * `dtab check` (inline, --path, --tree, -f FILE) against every parse_dtab,
    parse_path and parse_tree vector of the conformance corpus;
  * `delegate` (json and text output) against every delegate and
    delegate_tree vector;
  * exit code 2 for bad `delegate` arguments.

Expected values always come from the corpus (test/conformance/dtab-cases.json,
format in test/conformance/dtab-semantics.md section 0 and 8). Prints one line
per failed check and a summary; exits 1 if anything failed, 0 otherwise.
Python 3 standard library only.
"""

import json
import os
import shlex
import subprocess
import sys
import tempfile

TIMEOUT_S = 10


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def fmt_arg(arg):
    """Quotes one argument for a shell, on one line ($'..' for control chars)."""
    if arg.isprintable():
        return shlex.quote(arg)
    out = []
    for ch in arg:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif not ch.isprintable():
            out.append("\\x%02x" % ord(ch) if ord(ch) < 256 else "\\u%04x" % ord(ch))
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"


def short(text, limit=300):
    """repr() of a value, cut to `limit` characters so a failure stays one line."""
    r = repr(text)
    return r if len(r) <= limit else r[:limit] + "...(%d chars)" % len(r)


def opt(name, value):
    """An option with its value as `--name=VALUE`, which lets a value start with
    '-' and keeps an empty value empty (see check_empty_option_value)."""
    return [name + "=" + value]


def strip_one_newline(text):
    return text[:-1] if text.endswith("\n") else text


def json_diff(expected, got, where="$"):
    """First difference between two JSON values, as 'where: expected X, got Y'."""
    if isinstance(expected, dict) and isinstance(got, dict):
        for key in sorted(set(expected) | set(got)):
            if key not in got:
                return "%s.%s: missing (expected %s)" % (where, key, short(expected[key], 120))
            if key not in expected:
                return "%s.%s: unexpected (got %s)" % (where, key, short(got[key], 120))
            d = json_diff(expected[key], got[key], "%s.%s" % (where, key))
            if d:
                return d
        return None
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return "%s: expected %d items, got %d" % (where, len(expected), len(got))
        for i, (e, g) in enumerate(zip(expected, got)):
            d = json_diff(e, g, "%s[%d]" % (where, i))
            if d:
                return d
        return None
    # bool is an int in Python; keep true != 1.
    if expected != got or type(expected) is not type(got):
        if not (isinstance(expected, (int, float)) and isinstance(got, (int, float))
                and not isinstance(expected, bool) and not isinstance(got, bool)
                and expected == got):
            return "%s: expected %s, got %s" % (where, short(expected, 120), short(got, 120))
    return None


class Result:
    def __init__(self, rc, out, err, problem=None):
        self.rc, self.out, self.err, self.problem = rc, out, err, problem


class Runner:
    """Runs the binary and records checks and failures."""

    def __init__(self, binary, tmpdir):
        self.binary = binary
        self.tmpdir = tmpdir
        self.checks = 0
        self.failures = []

    def cmd_line(self, args):
        return " ".join(fmt_arg(a) for a in [self.binary] + list(args))

    def run(self, args):
        try:
            p = subprocess.run([self.binary] + list(args), stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return Result(None, "", "", "timed out after %d s" % TIMEOUT_S)
        except OSError as e:
            return Result(None, "", "", "cannot run: %s" % e)
        dec = lambda b: b.decode("utf-8", errors="replace")
        return Result(p.returncode, dec(p.stdout), dec(p.stderr))

    def check(self, group, args, problems):
        """Records one check; `problems` is a list of strings (empty = pass)."""
        self.checks += 1
        if problems:
            line = "FAIL [%s] %s: %s" % (group, self.cmd_line(args), "; ".join(problems))
            self.failures.append(line)
            print(line, flush=True)

    def write_temp(self, text, suffix):
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=suffix,
                                         dir=self.tmpdir, delete=False) as f:
            f.write(text)
            return f.name


def expect_rc(res, want, problems):
    """Appends a problem if the exit code is not `want` (an int or a tuple)."""
    if res.problem:
        problems.append(res.problem)
        return False
    wanted = want if isinstance(want, tuple) else (want,)
    if res.rc not in wanted:
        problems.append("exit code %s, expected %s (stderr: %s)"
                        % (res.rc, " or ".join(map(str, wanted)), short(res.err, 200)))
        return False
    return True


# --------------------------------------------------------------------------
# 1-3. Help, unknown flags, version
# --------------------------------------------------------------------------

def check_help(r):
    for args, needs_usage in ((["--help"], True), (["delegate", "--help"], True),
                              (["dtab", "check", "--help"], True)):
        res = r.run(args)
        problems = []
        if expect_rc(res, 0, problems) and needs_usage and "Usage" not in res.out:
            problems.append("stdout has no 'Usage': %s" % short(res.out, 200))
        r.check("help", args, problems)


def check_unknown_flags(r):
    for args in (["--bogus"], ["delegate", "--bogus", "/x"], ["dtab", "check", "--bogus"]):
        res = r.run(args)
        problems = []
        if expect_rc(res, 2, problems):
            lines = res.err.splitlines()
            if len(lines) != 1:
                problems.append("expected exactly 1 stderr line, got %d: %s"
                                % (len(lines), short(res.err)))
            elif "--bogus" not in lines[0]:
                problems.append("stderr does not mention '--bogus': %s" % short(res.err))
            if res.out:
                problems.append("expected empty stdout, got %s" % short(res.out))
        r.check("unknown-flag", args, problems)


def check_version(r):
    args = ["--version"]
    res = r.run(args)
    problems = []
    if expect_rc(res, 0, problems):
        first = res.out.splitlines()[0] if res.out else ""
        if not first.startswith("switchyard "):
            problems.append("first stdout line %s does not start with 'switchyard '" % short(first))
    r.check("version", args, problems)


# --------------------------------------------------------------------------
# 4-5. dtab check
# --------------------------------------------------------------------------

def check_parse_result(case, res, problems):
    if case["ok"]:
        if expect_rc(res, 0, problems):
            got = strip_one_newline(res.out)
            if got != case.get("show"):
                problems.append("stdout %s, expected %s" % (short(got), short(case.get("show"))))
    else:
        if expect_rc(res, 1, problems):
            if "line " not in res.err or "column " not in res.err:
                problems.append("stderr lacks 'line '/'column ': %s" % short(res.err))


def dtab_check_args(r, text):
    """`dtab check` arguments for a dtab given inline (via -f if CLI11 can't take it)."""
    if text.startswith("-"):
        return ["dtab", "check", "-f", r.write_temp(text, ".dtab")]
    return ["dtab", "check", "--", text]


def check_dtab_check(r, cases):
    for case in cases:
        kind = case["kind"]
        if kind == "parse_dtab":
            args = dtab_check_args(r, case["input"])
        elif kind == "parse_path":
            args = ["dtab", "check"] + opt("--path", case["input"])
        elif kind == "parse_tree":
            args = ["dtab", "check"] + opt("--tree", case["input"])
        else:
            continue
        res = r.run(args)
        problems = []
        check_parse_result(case, res, problems)
        r.check(kind, args, problems)


def check_dtab_file(r, cases):
    """`dtab check -f FILE` behaves exactly like the inline dtab, for every
    parse_dtab vector (multi-line ones with comments included)."""
    dtab_cases = [c for c in cases if c["kind"] == "parse_dtab"]
    if not any(c["ok"] and "\n" in c["input"] and "#" in c["input"] for c in dtab_cases):
        r.check("dtab-file", ["dtab", "check", "-f"],
                ["corpus has no multi-line parse_dtab case with comments"])
    for case in dtab_cases:
        path = r.write_temp(case["input"], ".dtab")
        args = ["dtab", "check", "-f", path]
        res = r.run(args)
        problems = []
        check_parse_result(case, res, problems)
        if not problems and not case["input"].startswith("-"):
            inline = r.run(["dtab", "check", "--", case["input"]])
            if (inline.rc, inline.out, inline.err) != (res.rc, res.out, res.err):
                problems.append("differs from inline: file gives (%s, %s, %s), inline (%s, %s, %s)"
                                % (res.rc, short(res.out, 100), short(res.err, 100),
                                   inline.rc, short(inline.out, 100), short(inline.err, 100)))
        r.check("dtab-file", args, problems)


# --------------------------------------------------------------------------
# 6-7. delegate
# --------------------------------------------------------------------------

def delegate_args(r, case, fmt):
    args = ["delegate"]
    if fmt:
        args += ["--format", fmt]
    args += opt("--dtab", case["dtab"])
    if "local_dtab" in case:
        args += opt("--local-dtab", case["local_dtab"])
    if case.get("namers") is not None:
        args += ["--namers", r.write_temp(json.dumps(case["namers"]), ".json")]
    return args + ["--", case["path"]]


def run_json(r, args, problems):
    """Runs a `--format json` command; returns the parsed stdout or None."""
    res = r.run(args)
    if res.problem:
        problems.append(res.problem)
        return res, None
    try:
        return res, json.loads(res.out)
    except ValueError as e:
        problems.append("stdout is not JSON (%s): %s; stderr %s"
                        % (e, short(res.out, 150), short(res.err, 150)))
        return res, None


def check_delegate(r, cases):
    for case in (c for c in cases if c["kind"] == "delegate"):
        success = case["bound"] is not None
        want_rc = 0 if success else 1

        args = delegate_args(r, case, "json")
        problems = []
        res, doc = run_json(r, args, problems)
        expect_rc(res, want_rc, problems)
        if isinstance(doc, dict):
            if success:
                if doc.get("bound") != case["bound"]:
                    problems.append("bound %s, expected %s"
                                    % (short(doc.get("bound")), short(case["bound"])))
                if "residual" in case:
                    d = json_diff(case["residual"], doc.get("residual"), "residual")
                    if d:
                        problems.append(d)
            else:
                if doc.get("bound") is not None:
                    problems.append("bound %s, expected null" % short(doc.get("bound")))
                if doc.get("errorKind") != case.get("error"):
                    problems.append("errorKind %s, expected %s (error: %s)"
                                    % (short(doc.get("errorKind")), short(case.get("error")),
                                       short(doc.get("error"), 150)))
        elif doc is not None:
            problems.append("JSON output is not an object: %s" % short(doc))
        r.check("delegate-json", args, problems)

        args = delegate_args(r, case, None)
        res = r.run(args)
        problems = []
        if expect_rc(res, want_rc, problems):
            lines = res.out.splitlines()
            last = lines[-1] if lines else ""
            if success and last != "bound: " + case["bound"]:
                problems.append("last line %s, expected %s"
                                % (short(last), short("bound: " + case["bound"])))
            if not success and not last.startswith("error: "):
                problems.append("last line %s does not start with 'error: '" % short(last))
        r.check("delegate-text", args, problems)


def check_delegate_tree(r, cases):
    for case in (c for c in cases if c["kind"] == "delegate_tree"):
        args = delegate_args(r, case, "json")
        problems = []
        res, doc = run_json(r, args, problems)
        expect_rc(res, (0, 1), problems)
        if isinstance(doc, dict):
            if "delegation" not in doc:
                problems.append("no 'delegation' in JSON output")
            else:
                d = json_diff(case["expected_json"], doc["delegation"], "delegation")
                if d:
                    problems.append(d)
        elif doc is not None:
            problems.append("JSON output is not an object: %s" % short(doc))
        r.check("delegate_tree", args, problems)


# --------------------------------------------------------------------------
# 8. delegate: bad arguments
# --------------------------------------------------------------------------

def first_bad_input(cases, kind):
    """A non-empty input the corpus says does not parse (not starting with '-')."""
    for c in cases:
        if c["kind"] == kind and not c["ok"] and c["input"] and not c["input"].startswith("-"):
            return c["input"]
    return None


def first_good(cases, kind):
    """A non-blank input the corpus says parses."""
    for c in cases:
        if c["kind"] == kind and c["ok"] and c["input"].strip():
            return c["input"]
    return None


def check_delegate_bad_args(r, cases):
    bad_dtab = first_bad_input(cases, "parse_dtab")
    bad_path = first_bad_input(cases, "parse_path")
    good_dtab = first_good(cases, "parse_dtab")
    good_path = first_good(cases, "parse_path")
    missing = os.path.join(r.tmpdir, "no-such-dir", "namers.json")

    tests = []  # (args, substrings stderr must contain)
    if bad_dtab is None or bad_path is None or good_dtab is None or good_path is None:
        r.check("delegate-bad-args", ["delegate"],
                ["corpus lacks a bad/good parse_dtab or parse_path input to build the checks"])
        return
    tests.append((["delegate"] + opt("--dtab", bad_dtab) + ["--", good_path], ["--dtab", "column"]))
    tests.append((["delegate"] + opt("--dtab", good_dtab) + ["--", bad_path], []))
    tests.append((["delegate"] + opt("--dtab", good_dtab) + ["--namers", missing, "--", good_path], []))
    tests.append((["delegate", "--format", "xml"] + opt("--dtab", good_dtab) + ["--", good_path], []))

    for args, needles in tests:
        res = r.run(args)
        problems = []
        if expect_rc(res, 2, problems):
            for n in needles:
                if n not in res.err:
                    problems.append("stderr does not mention %s: %s" % (short(n), short(res.err)))
            if res.out:
                problems.append("expected empty stdout, got %s" % short(res.out))
        r.check("delegate-bad-args", args, problems)


def check_empty_option_value(r):
    """`--dtab=` is an explicitly empty dtab, not a request for the next
    argument (CLI11 2.1 reads it that way; the binary works around it)."""
    args = ["delegate", "--dtab=", "--local-dtab=", "--format=json", "/a/b"]
    res = r.run(args)
    problems = []
    if expect_rc(res, 0, problems):
        try:
            got = json.loads(res.out)
            if got.get("path") != "/a/b" or got.get("dtab") != "" or got.get("bound") != "~":
                problems.append("expected path /a/b, empty dtab, bound ~; got %s" % short(res.out))
        except ValueError:
            problems.append("stdout is not JSON: %s" % short(res.out))
    r.check("empty-option-value", args, problems)


# --------------------------------------------------------------------------

REQUIRED_KINDS = ("parse_dtab", "parse_path", "parse_tree", "delegate", "delegate_tree")


def main(argv):
    if len(argv) != 3:
        print("usage: %s SWITCHYARD_BINARY DTAB_CASES_JSON" % argv[0], file=sys.stderr)
        return 2
    binary, corpus_path = argv[1], argv[2]
    with open(corpus_path, encoding="utf-8") as f:
        cases = json.load(f)
    if isinstance(cases, dict):
        cases = cases.get("cases", [])

    with tempfile.TemporaryDirectory(prefix="switchyard-cli-test-") as tmpdir:
        r = Runner(binary, tmpdir)
        # A corpus without some kind would make its checks pass vacuously.
        for kind in REQUIRED_KINDS:
            r.check("corpus", [], [] if any(c.get("kind") == kind for c in cases)
                    else ["corpus %s has no %s case" % (corpus_path, kind)])
        check_help(r)
        check_unknown_flags(r)
        check_version(r)
        check_dtab_check(r, cases)
        check_dtab_file(r, cases)
        check_delegate(r, cases)
        check_delegate_tree(r, cases)
        check_delegate_bad_args(r, cases)
        check_empty_option_value(r)

    passed = r.checks - len(r.failures)
    print("%d checks, %d passed, %d failed" % (r.checks, passed, len(r.failures)))
    return 1 if r.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
