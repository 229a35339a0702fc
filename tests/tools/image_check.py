#!/usr/bin/env python3
"""Checks of the container image that need no container engine (tests/k8s/test_dockerfile.sh).

    image_check.py dockerfile FILE
        Parses a Dockerfile (line continuations, comments, ARG defaults substituted in FROM) and prints its stages
        as JSON: [{"from": IMAGE, "as": NAME|null, "instructions": [[KEYWORD, ARGUMENTS], ...]}, ...].

    image_check.py libraries --packages LIST [--binary FILE]... [--program NAME]...
        Every shared library each binary loads (ldd) and every program (looked up in PATH, symbolic links
        followed) must belong to a Debian package (dpkg -S) that is in LIST or that a package of LIST depends on
        (Depends and Pre-Depends, recursively, as installed on this machine). LIST is a file of package names, one
        per line, '#' starting a comment. Prints "ok WHAT PACKAGE" or "missing WHAT PACKAGE" per file; exits 1 when
        one is missing, 2 on a usage error or when a name in LIST is not an installed package.
"""
import json
import os
import re
import shutil
import subprocess
import sys


def usage(msg):
    sys.stderr.write(f"image_check.py: {msg}\n")
    sys.exit(2)


def parse_dockerfile(path):
    logical, buf = [], ""
    for raw in open(path, encoding="utf-8"):
        line = raw.rstrip("\n")
        if not buf and re.match(r"^\s*#", line):
            continue
        if re.match(r"^\s*#", line):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            logical.append(buf.strip())
        buf = ""
    args, stages = {}, []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            image = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1), ""), rest)
            m = re.match(r"^(\S+)(\s+AS\s+(\S+))?$", image, re.IGNORECASE)
            if m is None:
                usage(f"{path}: cannot read FROM {rest}")
            stages.append({"from": m.group(1), "as": m.group(3), "instructions": []})
        elif stages:
            stages[-1]["instructions"].append([keyword, re.sub(r"\s+", " ", rest)])
        else:
            usage(f"{path}: {keyword} before the first FROM")
    return stages


def candidates(path):
    """`path`, its target, and both sides of Debian's merged /usr (dpkg knows one of them)."""
    out = [path, os.path.realpath(path)]
    for p in list(out):
        if p.startswith(("/usr/lib/", "/usr/sbin/", "/usr/bin/")):
            out.append(p[len("/usr"):])
        elif p.startswith(("/lib/", "/sbin/", "/bin/")):
            out.append("/usr" + p)
    return out


def owners(paths):
    """{path: package} for the paths some installed package owns, in one dpkg-query call."""
    r = subprocess.run(["dpkg-query", "-S"] + sorted(set(paths)), capture_output=True, text=True)
    found = {}
    for line in r.stdout.splitlines():
        pkgs, _, p = line.partition(": ")
        if p and "diversion" not in pkgs:
            found[p.strip()] = pkgs.split(",")[0].split(":")[0].strip()
    return found


def closure(packages):
    """The packages and everything they depend on, as installed here."""
    seen, todo = set(), list(packages)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Depends}, ${Pre-Depends}", p],
                           capture_output=True, text=True)
        if r.returncode != 0 or "installed" not in r.stdout.split("\t")[0]:
            if p in packages:
                usage(f"{p} (in the package list) is not an installed Debian package here")
            continue  # an alternative that is not installed
        seen.add(p)
        for dep in r.stdout.split("\t", 1)[1].split(","):
            for alt in dep.split("|"):
                name = re.sub(r"\(.*?\)|:\S+", "", alt).strip()
                if name:
                    todo.append(name)
    return seen


def libraries(argv):
    pkgs_file, binaries, programs = None, [], []
    i = 0
    while i < len(argv):
        if i + 1 >= len(argv):
            usage(f"{argv[i]} needs a value")
        if argv[i] == "--packages":
            pkgs_file = argv[i + 1]
        elif argv[i] == "--binary":
            binaries.append(argv[i + 1])
        elif argv[i] == "--program":
            programs.append(argv[i + 1])
        else:
            usage(f"unexpected argument {argv[i]}")
        i += 2
    if pkgs_file is None or not (binaries or programs):
        usage("libraries --packages LIST [--binary FILE]... [--program NAME]...")
    listed = [re.sub(r"#.*", "", l).strip() for l in open(pkgs_file, encoding="utf-8")]
    listed = [l for l in listed if l]
    have = closure(listed)
    missing = 0
    files = []
    for b in binaries:
        r = subprocess.run(["ldd", b], capture_output=True, text=True)
        if r.returncode != 0:
            usage(f"ldd {b}: {r.stderr.strip()}")
        for line in r.stdout.splitlines():
            m = re.match(r"^\s*(\S+) => (/\S+)", line) or re.match(r"^\s*(/\S+) \(", line)
            if m:
                files.append((f"{os.path.basename(b)}: {m.group(1)}", m.group(m.lastindex)))
            elif "not found" in line:
                usage(f"{b}: {line.strip()}")
    for p in programs:
        found = shutil.which(p, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        if found is None:
            usage(f"program {p} is not installed here")
        files.append((f"program {p}", found))
    known = owners([c for _, path in files for c in candidates(path)])
    for what, path in files:
        pkg = next((known[c] for c in candidates(path) if c in known), None)
        if pkg is None:
            print(f"missing {what} ({path}): no Debian package owns it")
            missing += 1
        elif pkg in have:
            print(f"ok {what} {pkg}")
        else:
            print(f"missing {what} {pkg}")
            missing += 1
    sys.exit(1 if missing else 0)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "dockerfile":
        print(json.dumps(parse_dockerfile(sys.argv[2])))
    elif len(sys.argv) > 2 and sys.argv[1] == "libraries":
        libraries(sys.argv[2:])
    else:
        usage("usage: image_check.py dockerfile FILE | libraries --packages LIST [--binary FILE]... [--program NAME]...")


if __name__ == "__main__":
    main()
