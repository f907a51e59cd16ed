"""Bundles: round trip with profile and surrogate, checksums per member, versions, no code run on load."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from nastune import BundleError, create_search_space, load_search_space, surrogate
from nastune.bundle import FORMAT_VERSION, read_bundle, read_manifest

SAMPLE = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def rewrite(
    src: Path, dst: Path, *, change: dict[str, bytes | None] | None = None, add: dict[str, bytes] | None = None
) -> None:
    """Copy a bundle, replacing (bytes) or dropping (None) some members, adding others."""
    change = change or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = change.get(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)
        for name, data in (add or {}).items():
            zout.writestr(name, data)


@pytest.fixture
def profiled_bundle(make_tiny_space) -> Path:
    ss = make_tiny_space()
    ss.preprocess(sample_input=SAMPLE, pretrain=False, progress=False, latency_repeats=1, proxies=True)
    ss.failures = {3: "ValueError: something\n  line 2"}
    ss.save()
    return ss.save_filename


def test_round_trip_keeps_encodings_features_profile_failures_and_source(
    make_tiny_space, profiled_bundle: Path, tiny_module: ModuleType
) -> None:
    original = make_tiny_space()
    loaded = load_search_space(profiled_bundle)
    assert loaded.name == "tiny"
    assert loaded.encodings == original.encodings and loaded.encodings.kinds == original.encodings.kinds
    # the encoding features come first; the profiling pass added the architecture features read from the networks
    d = original.features.shape[1]
    np.testing.assert_array_equal(loaded.features[:, :d], original.features)
    assert loaded.features.shape[1] > d and loaded.describe()["features"]["groups"]["architecture"] > 0
    assert loaded.feature_spec == original.feature_spec
    assert set(loaded.profile) == {"params", "params_test", "flops", "latency", "memory", "naswot", "log_synflow"}
    assert np.isfinite(loaded.profile["params"]).all()
    assert loaded.failures == {3: "ValueError: something\n  line 2"}
    assert loaded.module_source == Path(tiny_module.__file__).read_text()
    assert loaded.function_name == "encoding_to_net" and loaded.module_name == tiny_module.__name__
    assert loaded.encoding_to_net is None and loaded.surrogate is None
    manifest = read_manifest(profiled_bundle)
    assert manifest["format_version"] == FORMAT_VERSION and manifest["name"] == "tiny"
    assert set(manifest["members"]) == {
        "space.json", "encodings.json", "encoding_to_net.py", "profile.csv", "failures.json", "architecture.safetensors"
    }


def test_custom_features_travel_as_safetensors(tmp_path: Path) -> None:
    encodings = [(a, b) for a in range(3) for b in range(4)]
    features = np.random.default_rng(0).normal(size=(12, 5)).astype(np.float32)
    path = create_search_space("f", tmp_path / "f.nastune", encodings, features=features).save()
    _, members = read_bundle(path)
    assert "features.safetensors" in members
    assert not any(b"\x80\x04" in members[m][:2] for m in members)  # no pickle protocol header anywhere
    np.testing.assert_array_equal(load_search_space(path).features, features)


def test_bundle_is_written_atomically_and_replaces_the_old_one(make_tiny_space, tmp_path: Path) -> None:
    ss = make_tiny_space()
    path = ss.save()
    before = path.read_bytes()
    ss.profile["params"] = np.arange(len(ss), dtype=float)
    ss.save()
    assert path.read_bytes() != before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    np.testing.assert_array_equal(load_search_space(path).profile["params"], np.arange(len(ss)))


MEMBERS = ["space.json", "encodings.json", "encoding_to_net.py", "profile.csv", "failures.json"]


@pytest.mark.parametrize("member", MEMBERS)
def test_a_tampered_member_fails_its_checksum_by_name(profiled_bundle: Path, tmp_path: Path, member: str) -> None:
    with zipfile.ZipFile(profiled_bundle) as zf:
        data = zf.read(member)
    tampered = tmp_path / "tampered.nastune"
    rewrite(profiled_bundle, tampered, change={member: data.replace(b"1", b"7", 1) + b" "})
    with pytest.raises(BundleError, match=rf"'{member}'.*(checksum|bytes)"):
        load_search_space(tampered)


def test_same_length_tampering_is_caught_by_the_checksum(profiled_bundle: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(profiled_bundle) as zf:
        source = zf.read("encoding_to_net.py")
    evil = source.replace(b"return nn.Sequential(*layers)", b"return __import__('os').system('x')   ")[: len(source)]
    assert len(evil) == len(source) and evil != source
    tampered = tmp_path / "evil.nastune"
    rewrite(profiled_bundle, tampered, change={"encoding_to_net.py": evil})
    with pytest.raises(BundleError, match=r"'encoding_to_net\.py' .* fails its sha256 checksum"):
        load_search_space(tampered)


def test_missing_extra_and_corrupt_members_are_named(profiled_bundle: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.nastune"
    rewrite(profiled_bundle, broken, change={"profile.csv": None})
    with pytest.raises(BundleError, match=r"lacks member 'profile\.csv'"):
        load_search_space(broken)
    rewrite(profiled_bundle, broken, add={"payload.pkl": b"\x80\x04."})
    with pytest.raises(BundleError, match=r"'payload\.pkl'.*does not list"):
        load_search_space(broken)
    rewrite(profiled_bundle, broken, change={"manifest.json": b"{not json"})
    with pytest.raises(BundleError, match=r"'manifest\.json'"):
        load_search_space(broken)


def test_format_versions_and_non_bundles_are_rejected(profiled_bundle: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(profiled_bundle) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    newer = tmp_path / "newer.nastune"
    rewrite(profiled_bundle, newer, change={"manifest.json": json.dumps(manifest | {"format_version": 99}).encode()})
    with pytest.raises(BundleError, match=r"version 99, newer .* upgrade nastune"):
        load_search_space(newer)
    not_zip = tmp_path / "x.nastune"
    not_zip.write_text("hello")
    with pytest.raises(BundleError, match="not a zip"):
        load_search_space(not_zip)
    with pytest.raises(BundleError, match="does not exist"):
        load_search_space(tmp_path / "missing.nastune")


SIDE_EFFECT_MODULE = '''
from pathlib import Path
Path(__file__).with_name("ran.txt").write_text("module code ran")
from torch import nn


def encoding_to_net(encoding):
    return nn.Linear(encoding[0], 2)
'''


def test_loading_never_runs_module_code_and_load_encoding_to_net_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    source_dir = tmp_path / "src"
    source_dir.mkdir()
    (source_dir / "side_effect_space.py").write_text(SIDE_EFFECT_MODULE)
    monkeypatch.syspath_prepend(str(source_dir))
    module = importlib.import_module("side_effect_space")
    try:
        (source_dir / "ran.txt").unlink()
        path = create_search_space("se", tmp_path / "se.nastune", [(1,), (2,)], module.encoding_to_net).save()
        run_dir = tmp_path / "run"
        loaded = load_search_space(path)
        assert not (run_dir / "ran.txt").exists() and not (source_dir / "ran.txt").exists()
        assert "ran.txt" in loaded.module_source
        fn = loaded.load_encoding_to_net(run_dir)
        assert (run_dir / "ran.txt").read_text() == "module code ran"
        assert isinstance(fn((3,)), torch.nn.Linear) and loaded.encoding_to_net is fn
    finally:
        import sys

        sys.modules.pop("side_effect_space", None)


def test_a_space_from_an_interactive_function_has_no_source_and_says_so(tmp_path: Path) -> None:
    path = create_search_space("l", tmp_path / "l.nastune", [(1,), (2,)], lambda e: torch.nn.Linear(1, 1)).save()
    loaded = load_search_space(path)
    assert loaded.module_source is None
    with pytest.raises(BundleError, match="pass encoding_to_net yourself"):
        loaded.load_encoding_to_net()


def test_round_trip_with_a_pretrained_surrogate_predicts_the_same(make_tiny_space, tmp_path: Path) -> None:
    assert hasattr(surrogate, "DeepEnsemble")
    ss = make_tiny_space()
    ss.preprocess(sample_input=SAMPLE, progress=False, latency_repeats=1, n_members=2, seed=0)
    assert ss.surrogate is not None
    _, members = read_bundle(ss.save_filename)
    assert {"surrogate.safetensors", "surrogate.json"} <= set(members)
    loaded = load_search_space(ss.save_filename)
    before = ss.predict(np.arange(len(ss)))
    after = loaded.predict(np.arange(len(ss)))
    assert set(before) == set(after) and "params" in before
    for metric in before:
        torch.testing.assert_close(torch.as_tensor(after[metric][0]), torch.as_tensor(before[metric][0]))
        torch.testing.assert_close(torch.as_tensor(after[metric][1]), torch.as_tensor(before[metric][1]))
    tampered = tmp_path / "t.nastune"
    with zipfile.ZipFile(ss.save_filename) as zf:
        weights = bytearray(zf.read("surrogate.safetensors"))
    weights[-1] ^= 0xFF
    rewrite(ss.save_filename, tampered, change={"surrogate.safetensors": bytes(weights)})
    with pytest.raises(BundleError, match=r"'surrogate\.safetensors'"):
        load_search_space(tampered)


class ContractEnsemble:
    """A least-squares stand-in with DeepEnsemble's contract (state_dict/config/from_state/predict_metrics)."""

    def __init__(self, n_features: int, metric_names: list[str], n_members: int = 5, seed: int = 0, **hyper):
        self.n_features, self.metric_names, self.n_members, self.seed = n_features, list(metric_names), n_members, seed
        self.weights = torch.zeros(len(self.metric_names), n_features + 1, dtype=torch.float64)

    def pretrain(self, X, targets, *, simultaneous=True, progress=True) -> dict:
        A = np.hstack([X, np.ones((len(X), 1))])
        for k, metric in enumerate(self.metric_names):
            y = targets[metric]
            ok = np.isfinite(y)
            self.weights[k] = torch.from_numpy(np.linalg.lstsq(A[ok], y[ok], rcond=None)[0])
        return {"loss": 0.0}

    def predict_metrics(self, X):
        A = torch.from_numpy(np.hstack([X, np.ones((len(X), 1))]).astype(np.float64))
        out = (A @ self.weights.T).numpy()
        return {m: (out[:, k], np.zeros(len(X))) for k, m in enumerate(self.metric_names)}

    def state_dict(self):
        return {"weights": self.weights}

    def config(self) -> dict:
        return {"n_features": self.n_features, "metric_names": self.metric_names, "n_members": self.n_members,
                "seed": self.seed}

    @classmethod
    def from_state(cls, config, tensors):
        ensemble = cls(**config)
        ensemble.weights = tensors["weights"]
        return ensemble


def test_surrogate_travels_through_the_bundle_per_the_contract(
    make_tiny_space, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import types

    fake = types.ModuleType("nastune.surrogate")
    fake.DeepEnsemble = ContractEnsemble  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nastune.surrogate", fake)
    ss = make_tiny_space()
    ss.preprocess(sample_input=SAMPLE, progress=False, latency_repeats=1, n_members=3, seed=7)
    assert isinstance(ss.surrogate, ContractEnsemble) and ss.surrogate.n_members == 3
    # params_test duplicates params here, so it is not a separate pretraining target
    assert ss.pretrain_info["metrics"] == ["params", "flops", "latency", "memory"]
    loaded = load_search_space(ss.save_filename)
    assert loaded.pretrain_info["seed"] == 7
    torch.testing.assert_close(loaded.surrogate.weights, ss.surrogate.weights)
    before, after = ss.predict([0, 5]), loaded.predict([(2, 1, "relu", "ok"), (4, 1, "gelu", "ok")])
    for metric in before:
        np.testing.assert_allclose(after[metric][0], before[metric][0])
