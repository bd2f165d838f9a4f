#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""check_tree.py: fails when `meson test` changed the source tree (tests write only into the build
directory).

    check_tree.py snapshot SOURCE_DIR SNAPSHOT_FILE
    check_tree.py check    SOURCE_DIR SNAPSHOT_FILE

`snapshot` records the path, type, size and modification time of every file and symbolic link
under SOURCE_DIR, and every directory, into SNAPSHOT_FILE (in the build directory). `check`
compares the tree with that record, names every entry added, changed or removed, exits 1 if
there is any, and deletes the record. tests/meson.build runs the two as the first and the last
test of a run (highest and lowest priority, neither parallel with any other test).

Left out: .git, and every build directory, i.e. every directory holding `meson-private` or
`meson-info` (a build directory may sit inside the source tree, like build-test/).

`check` compares only against a record written by the same `meson test` process (the parent
of both); a record of an earlier, interrupted run is not compared, and `check` skips (exit 77),
as it does when there is no record (`meson test tree-check` alone)."""
import json
import os
import stat
import sys

SKIP = 77


def is_build_dir(names):
    """Whether a directory holding these names is a Meson build directory."""
    return "meson-private" in names or "meson-info" in names


def scan(root):
    """{relative path: [kind, size, mtime_ns]} of every file and link under root, and
    {relative path: ["dir", 0, 0]} of every directory (its mtime moves with its entries)."""
    tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath != root and is_build_dir(dirnames + filenames):
            dirnames[:] = []
            continue
        if dirpath != root:
            tree[os.path.relpath(dirpath, root)] = ["dir", 0, 0]
        dirnames[:] = sorted(d for d in dirnames if not (dirpath == root and d == ".git"))
        # Links to directories are listed in dirnames, but os.walk does not follow them.
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:  # removed while we looked: not there
                continue
            kind = "link" if stat.S_ISLNK(st.st_mode) else "file"
            tree[os.path.relpath(path, root)] = [kind, st.st_size, st.st_mtime_ns]
    return tree


def snapshot(root, record):
    tree = scan(root)
    with open(record, "w") as f:
        json.dump({"root": os.path.realpath(root), "runner": os.getppid(), "tree": tree}, f)
    print(f"check_tree: {root}: {len(tree)} entries recorded in {record}")
    return 0


def check(root, record):
    try:
        with open(record) as f:
            saved = json.load(f)
    except FileNotFoundError:
        print(f"check_tree: no record {record}: run the whole suite (its first test records the tree)")
        return SKIP
    if saved.get("runner") != os.getppid():
        print(f"check_tree: {record} was written by another meson test run: not compared")
        return SKIP
    before, after = saved["tree"], scan(root)
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    os.remove(record)
    if not (added or removed or changed):
        print(f"check_tree: {root}: {len(after)} entries, none added, changed or removed during the tests")
        return 0
    print(f"check_tree: the source tree {root} changed while the tests ran "
          "(tests may write only into the build directory):")
    for what, paths in (("added", added), ("changed", changed), ("removed", removed)):
        for p in paths:
            print(f"  {what}: {p}")
    return 1


def main(argv):
    if len(argv) != 4 or argv[1] not in ("snapshot", "check"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    root, record = argv[2], argv[3]
    if not os.path.isdir(root):
        print(f"check_tree: {root} is not a directory", file=sys.stderr)
        return 2
    return snapshot(root, record) if argv[1] == "snapshot" else check(root, record)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
