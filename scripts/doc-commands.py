#!/usr/bin/env python3
"""Every `attention` command shown in README.md and docs/*.md still means what it shows.

    scripts/doc-commands.py          # check every command against the command's own option table
    scripts/doc-commands.py --run    # and run the cheap ones; each must exit 0
    scripts/doc-commands.py --list   # print the commands found, where, and whether they would run

The commands are the lines of fenced `sh`/`console` blocks that start with `attention`, `$ attention`
or `swift run [-c release] attention` (a trailing `\\` joins the next line; `# comments` end a line).
Each is checked against `attention --experimental-dump-help` (the release build's): the subcommand
exists and every `--option` it uses is one of that subcommand's. With --run, the commands whose
subcommand is cheap (RUN below) and whose input files exist run one after another, with the release
build's `attention`, in a scratch folder holding a link to Tests/ (fixtures) and an empty docs/ (so
that `--svg docs/x.svg` writes there, not into the repository); each must exit 0 within TIMEOUT.
What does not run (a server, a chat, training, files of the reader's own) is listed with why.
"""
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / ".build" / "release" / "attention"
TIMEOUT = 180
# Subcommands that finish in seconds on a laptop once the models are installed.
RUN = {
    ("demo",), ("experiment", "scaling"), ("experiment", "patterns"), ("experiment", "heads"),
    ("experiment", "retrieval"), ("experiment", "cross"), ("model", "fetch"), ("embed",), ("similarity",),
    ("explain",), ("heatmap",), ("attend",), ("generate",), ("help",), (),
}
# What the others need, for the listing.
WHY_NOT = {
    ("serve",): "a server: runs until stopped",
    ("chat",): "interactive",
    ("train", "recall"): "training: minutes",
    ("train", "gpt"): "training: minutes",
    ("bench",): "a benchmark: minutes, and its numbers are the point",
}
INPUT_SUFFIXES = (".npy", ".txt", ".jsonl", ".gguf", ".safetensors", ".json")
INPUT_OPTIONS = {"--model-dir", "--model", "--input", "--weights", "--text"}
# Options that read a file only in some subcommands (`similarity --query` is a sentence).
INPUTS = {("attend",): {"--query", "--key", "--value"}}
# The options that name a file the command writes, by subcommand (--svg everywhere).
OUTPUTS = {("attend",): {"--output", "--weights", "--lse"}, ("embed",): {"--output"}, ("train", "gpt"): {"--output"}}


def documents():
    yield ROOT / "README.md"
    yield from sorted((ROOT / "docs").glob("*.md"))


def commands(path):
    """(line number, argument list or None, note) of every attention command in the fenced blocks of
    `path`: every line of a shell block (`sh`, `console`), and the `$ attention` lines of a plain block
    (a transcript). A transcript line followed by `Error:` shows a mistake on purpose: it is listed,
    not checked."""
    lines = path.read_text(encoding="utf-8").splitlines()
    fence = None
    pending, start = "", 0
    for index, line in enumerate(lines):
        number, stripped = index + 1, line.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else stripped[3:].strip()
            continue
        if fence is None:
            continue
        shell = fence in ("sh", "console", "bash", "shell")
        if not shell and not (pending or stripped.startswith("$ attention")):
            continue
        if pending:
            text = pending + " " + stripped
        else:
            text, start = stripped, number
        if text.endswith("\\"):
            pending = text[:-1].rstrip()
            continue
        pending = ""
        if text.startswith("$ "):
            text = text[2:]
        text = re.sub(r"^(swift run (-c release )?|mpirun -np [0-9]+ )attention\b", "attention", text)
        if not text.startswith("attention ") and text != "attention":
            continue
        if not shell and index + 1 < len(lines) and lines[index + 1].strip().startswith("Error:"):
            yield start, None, "mistake"
            continue
        try:
            words = shlex.split(text, comments=True)
        except ValueError as error:
            yield start, None, f"does not parse as a shell line: {error}"
            continue
        # A pipe or a redirection ends the command.
        for position, word in enumerate(words):
            if word in ("|", "&&", ";") or word.startswith(">") or word.startswith("2>"):
                words = words[:position]
                break
        yield start, words[1:], None


def option_table():
    dump = subprocess.run([str(BINARY), "--experimental-dump-help"], capture_output=True, text=True, check=True)
    table = {}

    def walk(command, path):
        names = set()
        for argument in command.get("arguments", []):
            for name in argument.get("names", []):
                names.add(("--" if name["kind"] == "long" else "-") + name["name"])
        table[path] = names
        for sub in command.get("subcommands", []):
            walk(sub, path + (sub["commandName"],))

    walk(json.loads(dump.stdout)["command"], ())
    return table


def split(arguments, table):
    """The subcommand path and the options used, or an error."""
    path = ()
    for word in arguments:
        if word.startswith("-") or path + (word,) not in table:
            break
        path += (word,)
    rest = arguments[len(path):]
    options = [w.split("=", 1)[0] for w in rest if w.startswith("-") and not re.fullmatch(r"-[0-9.e]+", w)]
    unknown = [o for o in options if o not in table[path]]
    return path, rest, unknown


def missing_inputs(path, rest):
    """Files and folders the command reads that are not there (a reader's own, or made by an earlier
    step the check does not run): the values of input options and any argument naming such a file."""
    outputs = OUTPUTS.get(path, set()) | {"--svg"}
    missing = []
    previous = None
    for word in rest:
        value = not word.startswith("-") and previous is not None and previous.startswith("--")
        inputs = INPUT_OPTIONS | INPUTS.get(path, set())
        reads = value and previous not in outputs and (previous in inputs or word.endswith(INPUT_SUFFIXES))
        if (reads or (not value and word.endswith(INPUT_SUFFIXES))) and not (ROOT / os.path.expanduser(word)).exists():
            missing.append(word)
        previous = word
    return missing


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "--check"
    if mode not in ("--check", "--run", "--list"):
        sys.exit(__doc__)
    if not BINARY.exists():
        sys.exit(f"no {BINARY.relative_to(ROOT)}: build it first (swift build -c release --product attention)")
    table = option_table()
    failures, planned = [], []
    for document in documents():
        name = document.relative_to(ROOT)
        for line, arguments, problem in commands(document):
            where = f"{name}:{line}"
            if problem == "mistake":
                planned.append((where, "(a mistake shown with its error)", [], "not run: shows an error on purpose"))
                continue
            if problem:
                failures.append(f"{where}: {problem}")
                continue
            path, rest, unknown = split(arguments, table)
            shown = "attention " + " ".join(shlex.quote(a) for a in arguments)
            if arguments and arguments[0] not in ("-h", "--help", "--version") and not path:
                failures.append(f"{where}: `{shown}`: no subcommand '{arguments[0]}'")
                continue
            if unknown:
                failures.append(f"{where}: `{shown}`: {' '.join(unknown)} not an option of `attention {' '.join(path)}`")
                continue
            if path not in RUN:
                why = WHY_NOT.get(path, WHY_NOT.get(path[:1], "not in the cheap set"))
                planned.append((where, shown, arguments, f"not run: {why}"))
            elif missing := missing_inputs(path, rest):
                planned.append((where, shown, arguments, f"not run: needs {', '.join(missing)}"))
            else:
                planned.append((where, shown, arguments, None))
    if mode == "--list":
        for where, shown, _, why in planned:
            print(f"{where:24} {'run' if why is None else why:50.50} {shown[:100]}")
    ran = 0
    if mode == "--run" and not failures:
        with tempfile.TemporaryDirectory(prefix="attention-doc-commands-") as scratch:
            os.symlink(ROOT / "Tests", Path(scratch) / "Tests")
            os.mkdir(Path(scratch) / "docs")
            for where, shown, arguments, why in planned:
                if why is not None:
                    continue
                try:
                    result = subprocess.run([str(BINARY)] + arguments, cwd=scratch, capture_output=True, text=True,
                                            timeout=TIMEOUT, stdin=subprocess.DEVNULL)
                except subprocess.TimeoutExpired:
                    failures.append(f"{where}: `{shown}` did not finish in {TIMEOUT} s")
                    continue
                ran += 1
                if result.returncode != 0:
                    output = (result.stdout + result.stderr).strip().splitlines()
                    failures.append(f"{where}: `{shown}` exited {result.returncode}: " + " / ".join(output[-3:]))
                else:
                    print(f"ok   {where}: {shown[:90]}")
    for failure in failures:
        print("FAIL:", failure, file=sys.stderr)
    skipped = sum(1 for p in planned if p[3] is not None)
    print(f"{len(planned) + len(failures)} documented commands: {len(failures)} wrong, {len(planned) - skipped} cheap"
          f"{f' ({ran} run)' if mode == '--run' else ''}, {skipped} checked by their options only")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
