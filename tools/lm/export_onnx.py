"""Export the shipped byte model as the one-step ONNX graph the LM codec drives.

Contract (the codec is written against it; do not change it):
  file ``plugins/models/<name>.onnx``, opset 17, one step per call, batch B dynamic;
  inputs  ``byte`` int64 [B] (0..255, 256 = start of segment), ``state`` float32 [L, B, H] (zeros at start);
  outputs ``logits`` float32 [B, 256] (unnormalised natural-log scores), ``state_out`` float32 [L, B, H].
A JSON card ``<name>.json`` beside it records shape, size, hash, training facts and evaluation.
A shipped file is never replaced (archives record its hash): a new model gets a new ``--name``.

The export is checked against torch with onnxruntime on random inputs before anything is written over
the shipped files, so a broken export never replaces a working one.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import BOS, VOCAB_IN, ByteGRU, ByteGRUStep, ModelConfig, build  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "plugins" / "models"
NAME = "bytegru-v3"
OPSET = 17


def load_checkpoint(path: Path) -> tuple[ByteGRU, dict[str, Any]]:
    """Rebuild the model from a training checkpoint; returns it with the checkpoint's training facts."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = ByteGRU(ModelConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model, ckpt.get("training", {})


def export(model: ByteGRU, out: Path) -> None:
    """Trace the one-step module into ONNX with a dynamic batch axis."""
    model.eval()
    cfg = model.config
    step = ByteGRUStep(model)
    b = 3
    byte = torch.full((b,), BOS, dtype=torch.int64)
    state = torch.zeros(cfg.layers, b, cfg.hidden)
    torch.onnx.export(
        step,
        (byte, state),
        str(out),
        input_names=["byte", "state"],
        output_names=["logits", "state_out"],
        dynamic_axes={"byte": {0: "B"}, "state": {1: "B"}, "logits": {0: "B"}, "state_out": {1: "B"}},
        opset_version=OPSET,
        dynamo=False,
    )


def verify(model: ByteGRU, onnx_path: Path, trials: int = 5, tol: float = 1e-4) -> float:
    """Compare onnxruntime and torch on random bytes/states and short rollouts; returns max abs error."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()], [o.name for o in sess.get_outputs()]
    if names != (["byte", "state"], ["logits", "state_out"]):
        raise RuntimeError(f"unexpected ONNX signature {names}")
    cfg = model.config
    step = ByteGRUStep(model).eval()
    rng = np.random.default_rng(1)
    worst = 0.0
    for t in range(trials):
        b = int(rng.choice([1, 2, 16, 64, 256]))
        byte = rng.integers(0, VOCAB_IN, size=b).astype(np.int64)
        if t == 0:
            byte[:] = BOS
        state = (rng.standard_normal((cfg.layers, b, cfg.hidden)) * 0.5).astype(np.float32)
        if t == 0:
            state[:] = 0.0
        # A short rollout also checks that state_out feeds back correctly.
        s_ort, s_pt = state, torch.from_numpy(state)
        for _ in range(4):
            lo, s_ort = sess.run(None, {"byte": byte, "state": s_ort})
            with torch.no_grad():
                lt, s_pt = step(torch.from_numpy(byte), s_pt)
            if lo.shape != (b, 256) or lo.dtype != np.float32 or s_ort.shape != (cfg.layers, b, cfg.hidden):
                raise RuntimeError(f"bad output shapes {lo.shape} {s_ort.shape}")
            worst = max(worst, float(np.abs(lo - lt.numpy()).max()), float(np.abs(s_ort - s_pt.numpy()).max()))
            byte = lo.argmax(axis=1).astype(np.int64)
    if worst > tol:
        raise RuntimeError(f"onnxruntime differs from torch by {worst:.3g} (> {tol})")
    return worst


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def card(model: ByteGRU, onnx_path: Path, training: dict[str, Any], name: str = NAME) -> dict[str, Any]:
    """The JSON card; ``eval`` stays empty until ``eval_bpb.py`` measures this exact file."""
    cfg = model.config
    return {
        "name": name,
        "arch": "gru",
        "layers": cfg.layers,
        "hidden": cfg.hidden,
        "embed": cfg.embed,
        "vocab_in": VOCAB_IN,
        "bos": BOS,
        "params": model.num_params(),
        "opset": OPSET,
        "onnx_sha256": sha256(onnx_path),
        "onnx_bytes": onnx_path.stat().st_size,
        "training": {
            "corpus": training.get("corpus", "none (randomly initialised placeholder)"),
            "bytes_seen": int(training.get("bytes_seen", 0)),
            "wall_seconds": round(float(training.get("wall_seconds", 0.0)), 1),
            "torch_version": torch.__version__,
            "date": training.get("date", datetime.now(timezone.utc).strftime("%Y-%m-%d")),
            **{k: v for k, v in training.items() if k not in {"corpus", "bytes_seen", "wall_seconds", "date"}},
        },
        "eval": {},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "work-data" / "ckpt.pt")
    ap.add_argument("--random", action="store_true", help="export a randomly initialised model (placeholder)")
    ap.add_argument("--out-dir", type=Path, default=MODELS)
    ap.add_argument("--name", default=NAME, help="file name of the export (a new model gets a new name: archives "
                    "coded with an older one still need it)")
    args = ap.parse_args(argv)

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if args.random:
        model, training = build(), {}
    else:
        model, training = load_checkpoint(args.checkpoint)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out_dir / f"{args.name}.onnx"
    if onnx_path.exists() and args.out_dir.resolve() == MODELS.resolve():
        raise SystemExit(f"{onnx_path} is shipped and archives depend on it; export under a new --name")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_onnx = Path(tmp) / f"{args.name}.onnx"
        export(model, tmp_onnx)
        err = verify(model, tmp_onnx)
        onnx_path.write_bytes(tmp_onnx.read_bytes())
    info = card(model, onnx_path, training, args.name)
    (args.out_dir / f"{args.name}.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"exported {onnx_path} ({info['onnx_bytes']} bytes, {info['params']} params); max |ort - torch| = {err:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
