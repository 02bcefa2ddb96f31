#!/usr/bin/env python3
"""Keeps the sans-IO rule honest.

No crate but `crates/sfu` may read the clock or spawn threads/tasks outside its tests.
Test code is: files under `tests/`, `benches/`, `examples/`, and everything in a source file
after a `#[cfg(test)]` line (by house convention test modules sit at the end of a file).
Justified exceptions are listed, one `path:pattern` per line, in `.ci/sans-io-allow.txt`.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FORBIDDEN = re.compile(
    r"Instant::now\(|SystemTime::now\(|\.elapsed\(\)|thread::spawn|tokio::spawn|spawn_blocking"
)
SKIP_DIRS = {"tests", "benches", "examples", "target"}


def allow_list():
    path = ROOT / ".ci" / "sans-io-allow.txt"
    entries = set()
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                entries.add(line)
    return entries


def main():
    allowed = allow_list()
    hits = []
    for crate in sorted((ROOT / "crates").iterdir()):
        if not crate.is_dir() or crate.name == "sfu":
            continue
        for rs in sorted(crate.rglob("*.rs")):
            rel = rs.relative_to(ROOT)
            if SKIP_DIRS.intersection(rel.parts[2:-1]):
                continue
            for number, line in enumerate(rs.read_text().splitlines(), start=1):
                if line.strip().startswith("#[cfg(test)]"):
                    break
                code = line.split("//", 1)[0]
                match = FORBIDDEN.search(code)
                if match and f"{rel}:{match.group(0)}" not in allowed:
                    hits.append(f"{rel}:{number}: {line.strip()}")
    if hits:
        print("sans-IO check failed: these lines read the clock or spawn outside crates/sfu:")
        print("\n".join(hits))
        print("Move the call to the caller, or justify it in .ci/sans-io-allow.txt.")
        return 1
    print("sans-IO check: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
