"""Record torchvision's reference data into tests/models/fixtures/ and check juanji against torchvision.

torchvision does not install beside the tests' torch 2.13, so run this in a separate virtual
environment (x86_64, Python 3.11; several GB, a CUDA build that runs on the CPU):

    python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy
    /tmp/tv/bin/python tests/models/make_torchvision_fixtures.py            # every model (slow)
    /tmp/tv/bin/python tests/models/make_torchvision_fixtures.py resnet18   # just some

For each model of tv_reference.TORCHVISION_MODELS it
1. checks juanji directly: torchvision's own randomly initialised state_dict goes into juanji via
   ``from_torch``; logits and the full input gradient (float64, a 2×3×224×224 batch) must agree to 1e-8
   relative to their largest magnitude;
2. records torchvision's key → shape table and parameter count into fixtures/torchvision.json;
3. loads the seeded weights of tv_reference.seeded_state_dict into torchvision and records its logits
   and input-gradient summary into fixtures/<name>.npz, which test_torchvision_equality.py compares
   with juanji in CI, where torchvision is absent.
"""
from __future__ import annotations

import json
import pathlib
import sys
import time

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parents[2]), str(pathlib.Path(__file__).parent)]

import numpy as np
import torch
import torchvision
import tv_reference as ref

TOLERANCE = 1e-8


def torchvision_model(name, kwargs):
    return getattr(torchvision.models, name)(**kwargs).double().eval()


def torch_outputs(model, x, dy, directions) -> dict:
    xt = torch.tensor(x, requires_grad=True)
    logits = model(xt)
    logits.backward(torch.tensor(dy))
    return {"logits": logits.detach().numpy(), **ref.summarize_gradient(xt.grad.numpy(), directions)}


def compare(label, ours, theirs) -> float:
    worst = max(ref.relative_error(ours[key], theirs[key]) for key in theirs)
    status = "ok" if worst <= TOLERANCE else "MISMATCH"
    print(f"  {label}: max relative error {worst:.1e} {status}", flush=True)
    if worst > TOLERANCE:
        raise SystemExit(f"{label}: juanji differs from torchvision")
    return worst


def table_entry(model, kwargs) -> dict:
    return {"kwargs": kwargs, "num_parameters": sum(p.numel() for p in model.parameters()),
            "state_dict": {k: list(v.shape) for k, v in model.state_dict().items()}}


def main(names):
    torch.set_num_threads(2)
    table = ref.load_table() if ref.TABLE.exists() else {"models": {}}
    table.update(torch=torch.__version__, torchvision=torchvision.__version__, seed=ref.SEED,
                 batch=ref.BATCH, size=ref.SIZE)
    x, dy, directions = ref.seeded_inputs()
    for name in names:
        start = time.time()
        print(name, flush=True)
        tv = torchvision_model(name, ref.TORCHVISION_MODELS[name])
        # 1. torchvision's own initialisation, full gradient
        ours = ref.juanji_model(name, tv.state_dict())
        xt = torch.tensor(x, requires_grad=True)
        logits = tv(xt)
        logits.backward(torch.tensor(dy))
        compare("torchvision init, full dx", {"logits": ours(x), "dx": ours.backward(dy)},
                {"logits": logits.detach().numpy(), "dx": xt.grad.numpy()})
        # 2. the key/shape table
        table["models"][name] = table_entry(tv, ref.TORCHVISION_MODELS[name])
        # 3. seeded weights, the fixture
        seeded = ref.seeded_state_dict(table["models"][name]["state_dict"])
        tv.load_state_dict({k: torch.from_numpy(v) for k, v in seeded.items()})
        theirs = torch_outputs(tv, x, dy, directions)
        compare("seeded weights, fixture", ref.juanji_outputs(ref.juanji_model(name, seeded), x, dy, directions),
                theirs)
        np.savez_compressed(ref.FIXTURES / f"{name}.npz", **theirs)
        print(f"  {time.time() - start:.0f} s", flush=True)
    for key, (name, _, tv_kwargs) in ref.TABLE_ONLY.items():
        table["models"][key] = table_entry(getattr(torchvision.models, name)(**tv_kwargs), tv_kwargs)
    ref.TABLE.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:] or list(ref.TORCHVISION_MODELS))
