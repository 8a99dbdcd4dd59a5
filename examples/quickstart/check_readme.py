"""README.md's C, Python and Rust code blocks are the quick-start files.

Every fenced block in README.md whose language is c, python or rust (and a
toml block when it names a file) must come right after a line naming its
file as a link, e.g.

    [`examples/quickstart/c/consumer.c`](examples/quickstart/c/consumer.c):

and hold that file's text byte for byte; every file of the quick starts must
be shown that way exactly once. So what README shows is what `make test`
builds and runs, and the two cannot drift apart.

Usage: python check_readme.py [README.md]. Prints one line per file and
"N passed, N failed"; exit status 0 when all match.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = Path("examples/quickstart")
FILES = [
    QUICKSTART / "c" / "consumer.c",
    QUICKSTART / "c" / "producer.c",
    QUICKSTART / "c" / "epoll_consumer.c",
    QUICKSTART / "python" / "consumer.py",
    QUICKSTART / "python" / "producer.py",
    QUICKSTART / "python" / "rpc_server.py",
    QUICKSTART / "python" / "rpc_client.py",
    QUICKSTART / "python" / "asyncio_consumer.py",
    QUICKSTART / "rust" / "Cargo.toml",
    QUICKSTART / "rust" / "src" / "main.rs",
    QUICKSTART / "rust-tokio" / "Cargo.toml",
    QUICKSTART / "rust-tokio" / "src" / "main.rs",
]
CODE_LANGUAGES = {"c", "python", "rust"}  # always a quick-start file
FILE_LANGUAGES = CODE_LANGUAGES | {"toml"}  # checked when a file line names them
FILE_LINE = re.compile(r"^\[`([^`]+)`\]\(([^)]+)\):$")
FENCE = re.compile(r"^```(\S*)\s*$")


def code_blocks(text):
    """(language, body, the line naming its file or None, line number) for
    every fenced block; the body keeps its final newline."""
    lines = text.split("\n")
    blocks, i, named = [], 0, None
    while i < len(lines):
        line = lines[i]
        m = FENCE.match(line)
        if not m:
            if line.strip():
                named = line
            i += 1
            continue
        start, body = i + 1, []
        i += 1
        while i < len(lines) and lines[i] != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise SystemExit(f"README.md:{start}: a code block is never closed")
        blocks.append((m.group(1), "\n".join(body) + "\n", named, start))
        named = None
        i += 1
    return blocks


def check(readme):
    text = readme.read_text(encoding="utf-8")
    shown, problems = {}, []
    for lang, body, named, line in code_blocks(text):
        m = FILE_LINE.match(named or "")
        if lang not in FILE_LANGUAGES or (lang not in CODE_LANGUAGES and not m):
            continue
        if not m or m.group(1) != m.group(2):
            problems.append(f"README.md:{line}: a {lang} block that does not follow a "
                            f"[`path`](path): line naming its quick-start file")
            continue
        shown.setdefault(Path(m.group(1)), []).append((body, line))
    passed = failed = 0
    for path in FILES:
        blocks = shown.pop(path, [])
        want = (ROOT / path).read_text(encoding="utf-8")
        if len(blocks) != 1:
            print(f"FAIL {path}: shown {len(blocks)} times in README.md (once expected)")
            failed += 1
        elif blocks[0][0] != want:
            print(f"FAIL {path}: README.md:{blocks[0][1]} differs from the file")
            failed += 1
        else:
            print(f"ok   {path} is README.md:{blocks[0][1]}, byte for byte")
            passed += 1
    for path, blocks in shown.items():
        problems.append(f"README.md:{blocks[0][1]}: names {path}, which is not a quick-start file")
    for p in problems:
        print(f"FAIL {p}")
    failed += len(problems)
    print(f"readme: {passed} passed, {failed} failed")
    return failed == 0


if __name__ == "__main__":
    sys.exit(0 if check(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "README.md") else 1)
