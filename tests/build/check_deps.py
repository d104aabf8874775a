#!/usr/bin/env python3
"""Every file the build used must come from a Debian package that `make deps` installs.

A package installed by hand on a developer's or CI machine hides a missing install step until a
user on a fresh Debian 12 runs `make test` (issue 25: oneDNN's CMake package needed OpenCL's
files). This check reads what the build really used:
  - headers: the compiler's dependency files (*.o.d) of every entry in compile_commands.json,
    and the -I/-isystem folders of its command;
  - libraries: every target's link line (CMakeFiles/*.dir/link.txt), -lNAME resolved as the linker
    resolves it;
  - CMake packages and found files: the FILEPATH and PATH entries of CMakeCache.txt (<Pkg>_DIR,
    found libraries, headers folders and programs such as the test oracles' python3 and node);
  - the Python modules the tests' scripts import (torch, h5py, ...), as this python finds them;
and fails, naming the file, the package that owns it and what used it, unless that package is in
`make deps`' list (`make deb-packages`) or installed as a dependency of one in it (Depends and
Pre-Depends, as apt-get --no-install-recommends installs them), or is part of minbase Debian
(Essential and required packages). Files of the source and build trees pass; so does the CUDA
toolkit under /usr/local/cuda, which is not a Debian package and is built only where it exists.

Usage: check_deps.py SOURCE_DIR BUILD_DIR [--packages "p1 p2 ..."] [--drop PKG] [--dpkg-dir DIR]
"""
import argparse
import glob
import json
import os
import re
import shlex
import subprocess
import sys

# Not Debian packages: built only where they are present (README: "Without nvcc the build is CPU-only").
OPTIONAL_ROOTS = ["/usr/local/cuda"]
# Cache entries that name where the build would install, not something it used.
IGNORED_CACHE_KEYS = re.compile(r"^CMAKE_INSTALL_")
CMAKE_ITSELF = {"CMAKE_COMMAND", "CMAKE_CTEST_COMMAND", "CMAKE_ROOT"}


# ---- the Debian package database ----------------------------------------------------------

def read_status(dpkg_dir):
    """Installed packages: name -> {"depends": [[alternatives]], "base": bool}; provider map."""
    packages, provides = {}, {}
    with open(os.path.join(dpkg_dir, "status"), encoding="utf-8", errors="replace") as f:
        for stanza in f.read().split("\n\n"):
            fields, key = {}, None
            for line in stanza.splitlines():
                if line[:1] in (" ", "\t") and key:
                    fields[key] += " " + line.strip()
                elif ":" in line:
                    key, _, value = line.partition(":")
                    fields[key] = value.strip()
            if "install ok installed" not in fields.get("Status", ""):
                continue
            name = fields["Package"]
            deps = []
            for field in ("Pre-Depends", "Depends"):
                for clause in filter(None, (c.strip() for c in fields.get(field, "").split(","))):
                    deps.append([package_name(alt) for alt in clause.split("|")])
            base = fields.get("Essential") == "yes" or fields.get("Priority") == "required"
            packages[name] = {"depends": deps, "base": base}
            for p in filter(None, (c.strip() for c in fields.get("Provides", "").split(","))):
                provides.setdefault(package_name(p), []).append(name)
    return packages, provides


def package_name(spec):
    """'libc6 (>= 2.34)' or 'python3:any' -> 'libc6', 'python3'."""
    return re.split(r"[\s(:]", spec.strip(), maxsplit=1)[0]


def installed_as(name, packages, provides):
    """The installed package that satisfies NAME (itself, or one that provides it), or None."""
    if name in packages:
        return name
    return next((p for p in provides.get(name, []) if p in packages), None)


def closure(roots, packages, provides):
    """ROOTS and everything installed to satisfy their Depends/Pre-Depends, transitively. Of a
    clause's alternatives the first one installed here is the one that counts."""
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for alternatives in packages[name]["depends"]:
            got = next(filter(None, (installed_as(a, packages, provides) for a in alternatives)), None)
            if got:
                todo.append(got)
    return seen


def read_owners(dpkg_dir):
    """Path -> packages whose file lists hold it (what `dpkg -S` reads)."""
    owners = {}
    for lst in glob.glob(os.path.join(dpkg_dir, "info", "*.list")):
        name = package_name(os.path.basename(lst)[:-len(".list")])
        with open(lst, encoding="utf-8", errors="replace") as f:
            for line in f:
                owners.setdefault(line.rstrip("\n"), set()).add(name)
    return owners


def owners_of(path, owners):
    """Owners of PATH as dpkg recorded it: the path itself, its /usr-merged twin (/lib is
    /usr/lib on Debian 12), then the same for the file it resolves to."""
    def twins(p):
        p = os.path.normpath(p)
        yield p
        for short in ("/lib", "/lib64", "/bin", "/sbin"):
            if p.startswith(short + "/"):
                yield "/usr" + p
            if p.startswith("/usr" + short + "/"):
                yield p[len("/usr"):]
    for candidate in list(twins(path)) + list(twins(os.path.realpath(path))):
        if candidate in owners:
            return owners[candidate]
    return set()


# ---- what the build used ------------------------------------------------------------------

def compile_inputs(build_dir):
    """(path, used by) for headers from dependency files and include folders of every command."""
    with open(os.path.join(build_dir, "compile_commands.json")) as f:
        commands = json.load(f)
    for entry in commands:
        where = entry["directory"]
        args = expand_options_files(entry.get("arguments") or shlex.split(entry["command"]), where)
        used_by = os.path.relpath(entry["file"], start=os.path.dirname(build_dir.rstrip("/")))
        yield args[0], used_by
        for folder in include_dirs(args):
            yield os.path.join(where, folder), used_by
        output = entry.get("output") or next((args[i + 1] for i, a in enumerate(args) if a == "-o"), None)
        if output is None:
            raise SystemExit(f"check_deps: no object file in compile_commands.json for {entry['file']}")
        depfile = os.path.join(where, output + ".d")
        if not os.path.exists(depfile):
            raise SystemExit(f"check_deps: {depfile} is missing: build everything first (make build)")
        for header in read_depfile(depfile):
            yield os.path.join(where, header), used_by


def expand_options_files(args, where):
    """nvcc's --options-file FILE (CMake puts CUDA include flags there) replaced by its flags."""
    out, i = [], 0
    while i < len(args):
        if args[i] == "--options-file" and i + 1 < len(args):
            with open(os.path.join(where, args[i + 1])) as f:
                out += shlex.split(f.read())
            i += 2
        else:
            out.append(args[i])
            i += 1
    return out


def include_dirs(args):
    """Folders of -I DIR, -IDIR, -isystem DIR, -isystem=DIR (nvcc) and the like."""
    for i, a in enumerate(args):
        for flag in ("-I", "-isystem", "-iquote", "-idirafter"):
            if a == flag and i + 1 < len(args):
                yield args[i + 1]
            elif a.startswith(flag) and len(a) > len(flag) and (flag == "-I" or a[len(flag)] == "="):
                yield a[len(flag):].lstrip("=")


def read_depfile(path):
    """Prerequisites of a make-style dependency file (gcc and nvcc -MD)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read().replace("\\\n", " ")
    files = []
    for line in text.splitlines():
        target, sep, prereqs = line.partition(": ")
        if not sep:
            continue
        files += [t.replace("\\ ", " ") for t in re.findall(r"(?:\\ |[^\s])+", prereqs)]
    return files


def link_inputs(build_dir):
    """(path, used by) for every library and tool on every target's link line."""
    for link in glob.glob(os.path.join(build_dir, "**", "CMakeFiles", "*.dir", "link.txt"), recursive=True):
        target = os.path.basename(os.path.dirname(link))[:-len(".dir")]
        where = os.path.dirname(os.path.dirname(os.path.dirname(link)))
        with open(link) as f:
            args = shlex.split(f.read())
        search = [a[2:] for a in args if a.startswith("-L")]
        used_by = f"link of {target}"
        yield args[0], used_by
        for a in args[1:]:
            if a.startswith("-l") and len(a) > 2:
                yield resolve_library(a[2:], search, args[0]), used_by
            elif not a.startswith("-") and re.search(r"\.(so(\.[0-9.]+)?|a|o)$", a):
                yield os.path.join(where, a), used_by


def resolve_library(name, search, compiler):
    """-lNAME as the linker finds it: -L folders first, then the compiler's own search path."""
    for folder in search:
        for suffix in (".so", ".a"):
            candidate = os.path.join(folder, f"lib{name}{suffix}")
            if os.path.exists(candidate):
                return candidate
    for suffix in (".so", ".a"):
        found = subprocess.run([compiler, f"-print-file-name=lib{name}{suffix}"],
                               capture_output=True, text=True).stdout.strip()
        if os.path.isabs(found):
            return found
    return f"-l{name} (not found by {compiler})"


def cache_inputs(build_dir):
    """(path, used by) for every FILEPATH and PATH entry of CMakeCache.txt naming a real file, and
    CMake itself (its programs and modules are INTERNAL entries)."""
    with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
        for line in f:
            m = re.match(r"^([A-Za-z0-9_.+-]+):(FILEPATH|PATH|INTERNAL)=(.*)$", line.rstrip("\n"))
            if not m or IGNORED_CACHE_KEYS.match(m.group(1)) or \
               (m.group(2) == "INTERNAL" and m.group(1) not in CMAKE_ITSELF):
                continue
            for value in m.group(3).split(";"):
                if os.path.isabs(value) and os.path.exists(value):
                    yield value, f"CMakeCache.txt {m.group(1)}"


def oracle_module_inputs(source_dir):
    """(path, used by) for each top-level module the tests' Python scripts import, as this python
    (the oracles' /usr/bin/python3) finds it: a pip-installed torch would pass here and fail a user."""
    import ast
    import importlib.util
    scripts = glob.glob(os.path.join(source_dir, "tests", "**", "*.py"), recursive=True)
    local = {os.path.splitext(os.path.basename(p))[0] for p in scripts}
    for script in scripts:
        with open(script) as f:
            tree = ast.parse(f.read(), script)
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        for top in sorted({n.split(".")[0] for n in names} - local - set(sys.builtin_module_names)):
            spec = importlib.util.find_spec(top)
            origin = spec and (spec.origin or next(iter(spec.submodule_search_locations or []), None))
            yield origin or f"python module {top} (not importable by {sys.executable})", \
                os.path.relpath(script, source_dir)


# ---- the check ----------------------------------------------------------------------------

def listed_packages(source_dir):
    out = subprocess.run(["make", "--no-print-directory", "-s", "-C", source_dir, "deb-packages"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source_dir")
    ap.add_argument("build_dir")
    ap.add_argument("--packages", help="the list to check against (default: `make deb-packages`)")
    ap.add_argument("--drop", default="", help="check against the list less this package (self-test)")
    ap.add_argument("--dpkg-dir", default="/var/lib/dpkg")
    opt = ap.parse_args()
    source_dir, build_dir = os.path.realpath(opt.source_dir), os.path.realpath(opt.build_dir)

    listed = opt.packages.split() if opt.packages is not None else listed_packages(source_dir)
    listed = [p for p in listed if p != opt.drop]
    packages, provides = read_status(opt.dpkg_dir)
    missing = [p for p in listed if not installed_as(p, packages, provides)]
    if missing:
        print(f"check_deps: listed in make deps but not installed: {' '.join(missing)} (run make deps)")
        return 1
    roots = [installed_as(p, packages, provides) for p in listed] + [p for p in packages if packages[p]["base"]]
    allowed = closure(roots, packages, provides)
    owners = read_owners(opt.dpkg_dir)

    trees = [source_dir, build_dir] + [os.path.realpath(r) for r in OPTIONAL_ROOTS] + OPTIONAL_ROOTS
    used = {}
    for path, used_by in [*compile_inputs(build_dir), *link_inputs(build_dir), *cache_inputs(build_dir),
                          *oracle_module_inputs(source_dir)]:
        used.setdefault(os.path.normpath(path), used_by)

    problems, checked = {}, 0
    for path, used_by in sorted(used.items()):
        if any(path == t or path.startswith(t + "/") for t in trees) or \
           any(os.path.realpath(path).startswith(t + "/") for t in trees):
            continue
        checked += 1
        own = owners_of(path, owners)
        if own & allowed:
            continue
        why = (f"from {', '.join(sorted(own))}, which is neither in make deps' list nor installed as a "
               f"dependency of a package in it" if own else "owned by no Debian package (installed by hand?)")
        problems.setdefault(why, []).append((path, used_by))

    if not problems:
        print(f"check_deps: {checked} headers, libraries, CMake packages, programs and oracle modules "
              f"come from the {len(listed)} packages of make deps and their {len(allowed)}-package closure")
        return 0
    print("check_deps: the build uses files that a fresh Debian 12 after `make deps` would not have.")
    for why, items in problems.items():
        print(f"\n{why}:")
        for path, used_by in items[:8]:
            print(f"  {path}  (used by {used_by})")
        if len(items) > 8:
            print(f"  ... and {len(items) - 8} more")
    print("\nAdd the package to DEB_PACKAGES in the Makefile (or stop using the file).")
    return 1


if __name__ == "__main__":
    sys.exit(main())
