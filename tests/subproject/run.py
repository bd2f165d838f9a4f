#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""run.py: builds tests/subproject/outer with this source tree as its subproject `backprop`, runs
its programs, and checks that the subproject contributed only the library: no tests, benchmarks,
examples or CLI targets, and nothing to install.

    run.py OUTER_SRC BACKPROP_SRC WORK_DIR [meson setup options...]

WORK_DIR (in the build directory) is wiped and receives a copy of OUTER_SRC with
subprojects/backprop a symbolic link to BACKPROP_SRC, and the outer build directory. The outer
build is plain: none of the enclosing build's sanitizers. $MESON and $NINJA name the programs."""
import json
import os
import shutil
import subprocess
import sys

# The only targets backprop may add to an outer project's build: the library (shared and static
# share the name) and its Fortran module's library.
LIBRARY_TARGETS = {"backprop", "backprop_fortran"}


def run(cmd, quiet=False, **kw):
    """Runs cmd; quiet: its output is shown only when it fails."""
    print("$ " + " ".join(cmd), flush=True)
    if not quiet:
        return subprocess.run(cmd, check=True, **kw)
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if done.returncode != 0:
        print(done.stdout)
        done.check_returncode()
    return done


def introspect(meson, build, what):
    out = subprocess.run([meson, "introspect", build, "--" + what], check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    return json.loads(out)


def main(argv):
    outer_src, backprop_src, work = argv[1:4]
    setup_opts = argv[4:]
    meson = os.environ.get("MESON", "meson")
    ninja = os.environ.get("NINJA", "ninja")
    shutil.rmtree(work, ignore_errors=True)
    src = os.path.join(work, "outer")
    build = os.path.join(work, "build")
    shutil.copytree(outer_src, src)
    os.makedirs(os.path.join(src, "subprojects"))
    os.symlink(os.path.realpath(backprop_src), os.path.join(src, "subprojects", "backprop"))

    # The enclosing build's flags must not leak into the outer one.
    env = {k: v for k, v in os.environ.items() if k not in ("CFLAGS", "LDFLAGS", "FFLAGS", "CPPFLAGS")}
    run([meson, "setup", build, src, "--wrap-mode=nodownload", "--buildtype=plain"] + setup_opts, quiet=True, env=env)
    run([ninja, "-C", build], quiet=True, env=env)

    failures = []
    targets = introspect(meson, build, "targets")
    # Run targets (`meson compile docs`) build nothing unless asked for by name: not counted.
    ours = sorted({t["name"] for t in targets if t.get("subproject") == "backprop" and t["type"] != "run"})
    extra = [n for n in ours if n not in LIBRARY_TARGETS]
    print(f"backprop's targets in the outer build: {ours}")
    if "backprop" not in ours:
        failures.append("the library target 'backprop' is missing")
    if extra:
        failures.append(f"targets beyond the library: {extra}")
    for what in ("tests", "benchmarks"):
        names = [t["name"] for t in introspect(meson, build, what)]
        print(f"{what} in the outer build: {names}")
        if names:
            failures.append(f"{what} registered in the outer build: {names}")
    installed = introspect(meson, build, "installed")
    print(f"files to install: {sorted(installed.values())}")
    if installed:
        failures.append(f"the subproject would install {sorted(installed.values())}")

    programs = ["outer"] + (["outer_fortran"] if any(t["name"] == "outer_fortran" for t in targets) else [])
    for prog in programs:
        rc = subprocess.run([os.path.join(build, prog)]).returncode
        if rc != 0:
            failures.append(f"{prog} exited with {rc}")

    for f in failures:
        print("FAIL: " + f)
    checks = 5 + len(programs)
    print(f"subproject: {checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
