"""Export a trained generator and load it back without the training code's state.

``ganforge export RUN_DIR --out DIR`` writes three files:

    model.safetensors  the weights of the game's sampling networks (its ``ema_roles``: G, and
                       BiGAN's encoder E, ...; the EMA copies when the run kept them) and the
                       game's own buffers (e.g. the class frequencies of a conditional GAN)
    config.yaml        the run's resolved config
    manifest.json      format, game, each exported net's factory arguments, data shape,
                       step, the weights' SHA-256

``ganforge.load(PATH)`` (an export folder, a run directory or a checkpoint file)
returns an ``ExportedModel`` that samples, interpolates, encodes (games with an
encoder), translates (cyclegan, stargan) and super-resolves (srgan). It holds no critic, optimizer or
data. Loading reads JSON, YAML (safe loader) and safetensors only: it never
unpickles, so it cannot run code from the files.

Loading trusts nothing in the folder. In order, before any weight is read: the
manifest's types and names (game, roles of that game, registered nets, sizes
up to ``MAX_INT``), the SHA-256 of the weights, the networks' size (built on
PyTorch's meta device, which allocates nothing; refused above ``MAX_VALUES``),
and every tensor's name, dtype and shape in the safetensors header against
those networks. Then the weights are read and refused if any is NaN or
infinite. Each failure is a CheckpointError naming the key or tensor
(the checks live in ``ganforge.export_checks``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
import yaml

from ganforge.errors import CheckpointError, ConfigError
from ganforge.export_checks import check_finite, check_manifest, check_tensors, expected_state, read_header

FORMAT = "ganforge-export"
VERSION = 1
WEIGHTS, MANIFEST, CONFIG = "model.safetensors", "manifest.json", "config.yaml"


# ------------------------------------------------------------------------------ export
def _build_recording(cfg):
    """Build the game like training does, recording each net's factory arguments by role."""
    from ganforge.penalties import build_penalties
    from ganforge.registry import GAMES, OBJECTIVES
    from ganforge.training.build import build_data

    data = build_data(cfg)
    oparams = dict(cfg["objective"])
    objective = OBJECTIVES.build(oparams.pop("name"), **oparams)
    gparams = dict(cfg["game"])
    game = GAMES.build(gparams.pop("name"), **gparams)
    specs: dict[str, dict] = {}
    build_one = game._net

    def recording(role, spec, *, in_shape, out_shape, n_classes=0):
        specs[role] = {"net": dict(spec), "in_shape": [int(s) for s in in_shape],
                       "out_shape": [int(s) for s in out_shape], "n_classes": int(n_classes)}
        return build_one(role, spec, in_shape=in_shape, out_shape=out_shape, n_classes=n_classes)

    game._net = recording  # an instance attribute: this game object only
    try:
        game.build(data, cfg["nets"], objective, build_penalties(cfg["penalties"], objective))
    finally:
        del game._net
    return game, specs, data


def collect(path: str | Path, *, use_ema: bool = True) -> tuple[dict, dict[str, torch.Tensor], dict]:
    """(manifest, tensors, resolved config) of the sampling networks of a run directory or checkpoint."""
    from ganforge import __version__
    from ganforge.config import resolve
    from ganforge.training import checkpoint as ckpt
    from ganforge.training.ema import EMA

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"no run directory or checkpoint at {p}")
    state, src = ckpt.load_latest(p) if p.is_dir() else (ckpt.load(p), p)
    cfg = resolve(state["config"])
    game, specs, data = _build_recording(cfg)
    game.load_state_dict(state["game"])
    ema_used = False
    if use_ema and state.get("ema"):
        ema = EMA(game.nets, game.ema_roles, cfg.train.ema or 0.999)
        ema.load_state_dict(state["ema"])
        for r, m in ema.shadow.items():
            game.nets[r] = m
        ema_used = True
    roles = list(game.ema_roles) or list(game.nets)
    unknown = [r for r in roles if r not in specs]
    if unknown:
        raise ConfigError(f"game {cfg['game']['name']!r} builds {unknown} outside Game._net; cannot export them")
    tensors = {}
    for k, v in game.state_dict().items():
        parts = k.split(".")
        if (parts[0] == "nets" and parts[1] in roles) or len(parts) == 1:
            tensors[k] = v.detach().to("cpu").clone().contiguous()
    manifest = {
        "format": FORMAT, "version": VERSION, "ganforge_version": __version__,
        "game": cfg["game"], "roles": {r: specs[r] for r in roles}, "ema": ema_used,
        "step": int(state["step"]), "source": str(src),
        "data": {"name": data.name, "shape": list(data.shape), "image": data.is_image,
                 "uint8": data.x.dtype == torch.uint8, "n_classes": data.n_classes,
                 "class_names": data.class_names},
    }
    return manifest, tensors, cfg.data


def export(path: str | Path, out: str | Path, *, use_ema: bool = True) -> Path:
    """Write model.safetensors, config.yaml and manifest.json for ``path`` into the folder ``out``.

    ``out`` must be new, empty, or an earlier export (whose three files are replaced): a folder holding
    anything else is refused, so an export never overwrites a user's own files. Each file is written to a
    temporary name and renamed, so a crash leaves the old file or the new one, and a symlink is replaced,
    not followed.
    """
    from safetensors.torch import save

    out = Path(out)
    _check_out(out)
    manifest, tensors, cfg = collect(path, use_ema=use_ema)
    blob = save(tensors, metadata={"format": FORMAT})
    manifest["weights"] = {"file": WEIGHTS, "sha256": hashlib.sha256(blob).hexdigest(),
                           "tensors": len(tensors), "parameters": int(sum(t.numel() for t in tensors.values()))}
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_atomic(out / WEIGHTS, blob)
        _write_atomic(out / CONFIG, yaml.safe_dump(cfg, sort_keys=False).encode())
        _write_atomic(out / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())  # last: marks it complete
    except OSError as e:
        raise ConfigError(f"cannot write the export to {out}: {e.strerror or e}") from None
    return out


def _check_out(out: Path) -> None:
    """Refuse an --out that is a file, or a folder holding anything but an earlier export."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a new folder for the export")
    if not out.is_dir():
        return
    names = {p.name for p in out.iterdir()}
    if not names:
        return
    earlier = names <= {WEIGHTS, MANIFEST, CONFIG} and (out / MANIFEST).is_file() and not (out / MANIFEST).is_symlink()
    if earlier:
        try:
            earlier = json.loads((out / MANIFEST).read_text()).get("format") == FORMAT
        except (OSError, ValueError, AttributeError):
            earlier = False
    if not earlier:
        shown = ", ".join(sorted(names)[:3]) + (", ..." if len(names) > 3 else "")
        raise ConfigError(f"--out {out} already holds files that are not a ganforge export ({shown}); export into "
                          "a new or empty folder (an earlier export's folder is replaced)")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -------------------------------------------------------------------------------- load
def load(path: str | Path, *, device: str = "cpu") -> ExportedModel:
    """An ``ExportedModel`` from an export folder (or, converted in memory, a run directory / checkpoint)."""
    p = Path(path)
    if (p / MANIFEST).is_file():
        return _load_export(p, device)
    if p.is_file() and p.name == MANIFEST:
        return _load_export(p.parent, device)
    if p.is_dir() and not (p / "checkpoints").is_dir():
        raise ConfigError(f"{p} is neither an export folder (no {MANIFEST}) nor a run directory (no checkpoints/)")
    manifest, tensors, cfg = collect(p)
    return ExportedModel(manifest, tensors, cfg, device=device)


def _load_export(folder: Path, device: str) -> ExportedModel:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {folder / MANIFEST}: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{folder / MANIFEST} is not a ganforge export manifest")
    missing = [k for k in ("game", "roles", "step", "data", "ema") if k not in manifest]
    if missing:
        raise CheckpointError(f"{folder / MANIFEST} lacks {', '.join(missing)}; re-export with `ganforge export`")
    version = manifest.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{folder / MANIFEST}: version must be an integer, got {version!r}")
    if version > VERSION:
        raise CheckpointError(f"{folder} is export format version {manifest['version']}; this ganforge reads "
                              f"up to {VERSION}. Upgrade ganforge.")
    check_manifest(manifest, folder / MANIFEST)
    weights = folder / manifest.get("weights", {}).get("file", WEIGHTS)
    if weights.parent != folder:
        raise CheckpointError(f"{folder / MANIFEST} points outside its folder: {weights}")
    if not weights.is_file():
        raise CheckpointError(f"cannot read {weights}: the weights file is missing")
    want = manifest.get("weights", {}).get("sha256")
    if want and _sha256(weights) != want:
        raise CheckpointError(f"{weights} does not match the SHA-256 in its manifest (damaged or replaced)")
    expected = expected_state(manifest, folder / MANIFEST)  # on the meta device: sizes checked, nothing allocated
    try:
        check_tensors(expected, read_header(weights), str(weights))
        tensors = load_file(str(weights))
    except (OSError, SafetensorError, ValueError) as e:
        raise CheckpointError(f"cannot read {weights}: {type(e).__name__}: {str(e)[:200]}") from None
    try:
        cfg = yaml.safe_load((folder / CONFIG).read_text()) if (folder / CONFIG).is_file() else {}
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise CheckpointError(f"cannot read {folder / CONFIG}: {str(e)[:200]}") from None
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{folder / CONFIG} must hold the run's config (a mapping), got {type(cfg).__name__}")
    return ExportedModel(manifest, tensors, cfg, device=device, expected=expected, where=str(weights))


class ExportedModel:
    """A trained game's sampling networks, rebuilt from their factory arguments and weights.

    ``sample`` runs the game's own sampling code, so ``load(p).sample(n, seed=s)``
    equals ``ganforge.sample(run, n, seed=s)`` for the same weights.
    """

    def __init__(self, manifest: dict, tensors: dict[str, torch.Tensor], config: dict, *,
                 device: str = "cpu", expected: dict | None = None, where: str | None = None) -> None:
        import ganforge.components  # noqa: F401  (registries)
        from ganforge.nets import build_net
        from ganforge.registry import GAMES

        where = where or f"the weights of {manifest.get('source', 'the run')}"
        if expected is None:  # built from a run in memory: the same checks as a loaded export
            check_manifest(manifest, where)
            expected = expected_state(manifest, where)
        check_tensors(expected, {k: (tuple(v.shape), v.dtype) for k, v in tensors.items()}, where)
        check_finite(tensors, where)
        self.manifest, self.config = manifest, config
        gparams = dict(manifest["game"])
        self.game = GAMES.build(gparams.pop("name"), **gparams)
        for role, spec in manifest["roles"].items():
            net = dict(spec["net"])
            self.game.nets[role] = build_net(net.pop("name"), in_shape=spec["in_shape"],
                                             out_shape=spec["out_shape"], n_classes=spec["n_classes"], **net)
        nets = {k[len("nets."):]: v for k, v in tensors.items() if k.startswith("nets.")}
        try:
            self.game.nets.load_state_dict(nets, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"exported weights do not fit the networks in the manifest: "
                                  f"{str(e).splitlines()[0][:300]}") from None
        for k, v in tensors.items():
            if k.startswith("nets."):
                continue
            if k not in self.game._buffers:
                raise CheckpointError(f"exported tensor {k!r} is not a buffer of game {self.game_name!r}")
            setattr(self.game, k, v)
        self.game.to(torch.device(device)).eval()

    # -- facts --------------------------------------------------------------------------
    @property
    def game_name(self) -> str:
        return self.manifest["game"]["name"]

    @property
    def step(self) -> int:
        return int(self.manifest["step"])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.manifest["data"]["shape"])

    @property
    def z_dim(self) -> int:
        z = getattr(self.game, "z_dim", None)
        if z is None:
            raise ConfigError(f"game {self.game_name!r} has no latent space (it maps inputs; use translate)")
        return int(z)

    def __repr__(self) -> str:
        return (f"ExportedModel(game={self.game_name!r}, roles={list(self.manifest['roles'])}, "
                f"step={self.step}, ema={self.manifest['ema']}, sample shape={self.shape})")

    # -- sampling -----------------------------------------------------------------------
    def sample(self, n: int, *, seed: int = 0, c: torch.Tensor | None = None) -> torch.Tensor:
        """n samples (network space: images in [-1, 1]); the same seed gives the same samples."""
        if n < 1:
            raise ConfigError(f"n must be >= 1, got {n}")
        if not hasattr(self.game, "z_dim"):
            ops = [f"{m}(x)" for m in ("translate", "super_resolve") if hasattr(self.game, m)]
            raise ConfigError(f"game {self.game_name!r} maps inputs rather than noise (its sample draws from the "
                              f"training data, which an export does not hold): use {' or '.join(ops) or 'game'}")
        return self.game.sample(n, generator=torch.Generator().manual_seed(seed), c=c)

    def latents(self, n: int, *, seed: int = 0) -> torch.Tensor:
        """n latent codes from the game's prior (normal or uniform), seeded."""
        return self.game.noise(n, self.z_dim, generator=torch.Generator().manual_seed(seed),
                               latent=getattr(self.game, "latent", "normal")).cpu()

    @torch.no_grad()
    def generate(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """G(z[, c]) for given latent codes (N, z_dim); c: (N,) labels for a conditional generator."""
        g = self.game.nets["g"] if "g" in self.game.nets else None
        if g is None:
            raise ConfigError(f"game {self.game_name!r} has no generator role 'g'")
        z = torch.as_tensor(z, dtype=torch.float32)
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ConfigError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        if self.manifest["roles"]["g"]["n_classes"]:
            if c is None:
                raise ConfigError("this generator is conditional: pass c, labels of shape (N,)")
            return g(z.to(self.game.device), torch.as_tensor(c).to(self.game.device)).cpu()
        return g(z.to(self.game.device)).cpu()

    def interpolate(self, steps: int = 8, *, seed: int = 0, z0: torch.Tensor | None = None,
                    z1: torch.Tensor | None = None, method: str = "slerp", c: int | None = None) -> torch.Tensor:
        """G along a path from z0 to z1 (seeded draws when not given): (steps, *shape).

        method: "slerp" (spherical, for Gaussian latents) or "linear". A conditional
        generator keeps one class ``c`` (default: class 0) along the path.
        """
        if steps < 2:
            raise ConfigError(f"steps must be >= 2, got {steps}")
        if method not in ("slerp", "linear"):
            raise ConfigError(f"method must be slerp or linear, got {method!r}")
        pair = self.latents(2, seed=seed)
        a = pair[0] if z0 is None else torch.as_tensor(z0, dtype=torch.float32).reshape(-1)
        b = pair[1] if z1 is None else torch.as_tensor(z1, dtype=torch.float32).reshape(-1)
        t = torch.linspace(0, 1, steps)[:, None]
        if method == "linear":
            z = (1 - t) * a + t * b
        else:
            omega = torch.arccos(torch.clamp(torch.dot(a / a.norm(), b / b.norm()), -1.0, 1.0))
            if omega.abs() < 1e-6:
                z = (1 - t) * a + t * b
            else:
                z = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
        labels = None
        if self.manifest["roles"]["g"]["n_classes"]:
            labels = torch.full((steps,), 0 if c is None else int(c), dtype=torch.long)
        return self.generate(z, labels)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """E(x): latent codes of data points (games with an encoder, e.g. bigan)."""
        if not hasattr(self.game, "encode"):
            raise ConfigError(f"game {self.game_name!r} has no encoder; games with one: bigan")
        return self.game.encode(self._model_input(x))

    def translate(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """A translation game's generator on x: cyclegan ``translate(x, "ab")``, stargan ``translate(x, c)``."""
        if not hasattr(self.game, "translate"):
            raise ConfigError(f"game {self.game_name!r} does not translate; games that do: cyclegan, stargan")
        return self.game.translate(self._model_input(x), *args, **kwargs)

    def super_resolve(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """A super-resolution game's generator on low-resolution images x (srgan)."""
        if not hasattr(self.game, "super_resolve"):
            raise ConfigError(f"game {self.game_name!r} does not super-resolve; the game that does: srgan")
        return self.game.super_resolve(self._model_input(x), **kwargs)

    def to_images(self, x: torch.Tensor) -> torch.Tensor:
        """Network-space images in [-1, 1] -> uint8 [0, 255] (what the training data stored)."""
        return ((x.detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)

    def _model_input(self, x: Any) -> torch.Tensor:
        x = torch.as_tensor(x)
        if x.dtype == torch.uint8:  # stored images -> network space, as Dataset.to_model does
            return x.float().div(127.5).sub(1.0)
        return x.float()
