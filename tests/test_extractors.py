"""Feature extractors: the shipped classifier, the FID Inception layout, conversions, evaluate()."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from ganforge.errors import ConfigError
from ganforge.metrics import evaluate, extractors
from ganforge.metrics.extractors import INCEPTION_FILE, build_extractor
from ganforge.metrics.inception import FIDInceptionV3
from ganforge.registry import EXTRACTORS


def _fmnist_test(limit: int):
    from ganforge.data.fmnist import fmnist

    try:
        return fmnist(split="test", limit=limit)
    except ConfigError as e:
        pytest.skip(f"Fashion-MNIST not installed (apt-get install dataset-fashion-mnist): {e}".splitlines()[0])


def test_registered_names() -> None:
    assert {"fmnist-cnn", "inception-v3", "pixels", "module"} <= set(EXTRACTORS.names())


def test_shipped_classifier_accuracy() -> None:
    data = _fmnist_test(2000)
    ex = build_extractor("fmnist-cnn")
    feats, logits = ex.extract(data.x)
    assert feats.shape == (2000, 128) and logits.shape == (2000, 10)
    acc = (logits.argmax(1) == data.y.numpy()).mean()
    assert acc >= 0.92, f"shipped fmnist-cnn accuracy {acc:.4f} < 0.92"
    meta = json.loads((extractors.WEIGHTS_DIR / "fmnist_cnn.json").read_text())
    assert meta["sha256"] == ex.weights_sha256  # the recorded hash is the shipped file's


def test_uint8_and_float_inputs_give_the_same_features() -> None:
    ex = build_extractor("fmnist-cnn")
    x = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    f_u8, z_u8 = ex.extract(x)
    f_fl, z_fl = ex.extract(x.float() / 127.5 - 1.0)
    assert_allclose(f_u8, f_fl, rtol=1e-5, atol=1e-5)
    assert_allclose(z_u8, z_fl, rtol=1e-5, atol=1e-5)


def test_conversion_is_recorded() -> None:
    ex = build_extractor("fmnist-cnn")
    conv = ex.conversion((4, 3, 32, 32), torch.float32)
    assert conv["channels"] == "3->1 luma BT.601"
    assert conv["resize"] == {"from": [32, 32], "to": [28, 28], "mode": "bilinear", "align_corners": False,
                              "antialias": True}
    assert conv["input"]["range"] == [-1.0, 1.0] and conv["range"] == [-1.0, 1.0]
    assert ex.convert(torch.zeros(2, 3, 32, 32)).shape == (2, 1, 28, 28)
    assert build_extractor("fmnist-cnn").conversion((1, 1, 28, 28), torch.uint8)["resize"] is None


def test_pixels_extractor() -> None:
    x = torch.randint(0, 256, (3, 1, 5, 5), dtype=torch.uint8)
    f, z = build_extractor("pixels").extract(x)
    assert z is None
    assert_allclose(f, x.reshape(3, -1).double().numpy() / 255.0, rtol=1e-6)


def test_user_module_with_channel_conversion() -> None:
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    ex = build_extractor(net, in_channels=1, resolution=4, value_range=(0.0, 1.0))
    x = torch.rand(2, 3, 4, 4) * 2 - 1
    f, _ = ex.extract(x)
    grey = ((x + 1) / 2 * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    assert_allclose(f, net(grey).detach().double().numpy(), rtol=1e-5, atol=1e-6)
    assert len(ex.weights_sha256) == 64
    with pytest.raises(ConfigError, match="cannot convert 2 channels"):
        ex.conversion((1, 2, 4, 4), torch.float32)


def test_inception_architecture_with_random_weights() -> None:
    torch.manual_seed(0)
    net = FIDInceptionV3().eval()
    with torch.no_grad():
        f, z = net.features_and_logits(torch.rand(2, 3, 75, 75) * 2 - 1)  # 75 = smallest valid input
    assert f.shape == (2, 2048) and z.shape == (2, 1008)
    keys = [k for k in net.state_dict() if not k.endswith("num_batches_tracked")]
    assert len(keys) == 472  # the entries of pt_inception-2015-12-05-6726825d.pth
    assert sum(p.numel() for p in net.parameters()) == 23_850_960
    for k in ("Conv2d_1a_3x3.conv.weight", "Conv2d_4a_3x3.bn.running_var", "Mixed_5b.branch5x5_2.conv.weight",
              "Mixed_6e.branch7x7dbl_5.bn.bias", "Mixed_7a.branch7x7x3_4.conv.weight",
              "Mixed_7c.branch3x3dbl_3b.bn.running_mean", "fc.weight", "fc.bias"):
        assert k in keys
    assert not any(k.startswith("AuxLogits") for k in keys)
    assert net.state_dict()["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert net.fc.weight.shape == (1008, 2048)


def test_inception_extractor_loads_weights_file(tmp_path) -> None:
    torch.manual_seed(1)
    net = FIDInceptionV3().eval()
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / INCEPTION_FILE
    torch.save(state, path)
    ex = EXTRACTORS.build("inception-v3", weights=str(path))
    assert ex.resolution == 299 and ex.feature_dim == 2048 and ex.n_classes == 1008
    x = torch.rand(1, 3, 80, 80) * 2 - 1
    conv = ex.conversion(tuple(x.shape), x.dtype)
    assert conv["resize"]["to"] == [299, 299]
    small = torch.rand(1, 3, 75, 75) * 2 - 1
    with torch.no_grad():
        assert_allclose(ex.net(small)[0].numpy(), net.features_and_logits(small)[0].numpy(), rtol=1e-5, atol=1e-6)
    torch.save({"not": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ConfigError, match="not an FID Inception state dict"):
        EXTRACTORS.build("inception-v3", weights=str(tmp_path / "bad.pth"))


def test_inception_missing_weights_message(monkeypatch) -> None:
    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(ConfigError) as err:
        EXTRACTORS.build("inception-v3")
    msg = str(err.value)
    assert INCEPTION_FILE in msg and "GANFORGE_INCEPTION_WEIGHTS" in msg and "weights=" in msg
    monkeypatch.setenv("GANFORGE_INCEPTION_WEIGHTS", "/nonexistent/x.pth")
    with pytest.raises(ConfigError, match="/nonexistent/x.pth does not exist"):
        EXTRACTORS.build("inception-v3")


def test_evaluate_on_given_reference() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (300, 1, 6, 6), dtype=torch.uint8, generator=g)
    out = evaluate(real[:200], ref=real[100:], extractor="pixels", n=200, metrics=("fid", "kid", "pr", "dc", "is"))
    assert {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage"} <= set(out)
    p = out["protocol"]
    assert p["skipped"] == {"is": "extractor 'pixels' has no logits"}
    assert p["n_real"] == 200 and p["n_fake"] == 200 and p["params"]["kid_subset_size"] == 200
    assert p["params"]["covariance"] == "unbiased (n-1)" and p["ganforge_version"]
    with pytest.raises(ConfigError, match="Valid metrics: fid, kid"):
        evaluate(real, ref=real, extractor="pixels", metrics=("fid", "lpips"))


def test_evaluate_fmnist_reference(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path))
    data = _fmnist_test(600)
    fake = data.x[:300].float() / 127.5 - 1.0
    out = evaluate(fake, ref="fmnist-test", n=300, metrics=("fid", "is", "classes"), kid_subset_size=100)
    again = evaluate(fake, ref="fmnist-test", n=300, metrics=("fid", "is", "classes"))  # from the disk cache
    assert list((tmp_path / "stats").glob("fmnist-test-fmnist-cnn-n300-*.npz"))
    assert_allclose(again["fid"], out["fid"], rtol=1e-12)
    assert_allclose(out["fid"], 0.0, atol=1e-6)  # the same 300 images on both sides
    assert out["classes_covered"] == 10 and out["is"] > 5
    p = out["protocol"]
    assert p["reference"] == "fmnist/test" and p["extractor"]["name"] == "fmnist-cnn"
    assert p["conversion_fake"]["input"]["dtype"] == "float32" and p["conversion_real"]["input"]["dtype"] == "uint8"
    with pytest.raises(ConfigError, match="'<dataset>-<split>'"):
        evaluate(fake, ref="fmnist-val", n=10)


def test_load_images_from_folder_and_npy(tmp_path) -> None:
    from PIL import Image

    from ganforge.metrics import load_images

    rgb = np.random.default_rng(0).integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    for i, a in enumerate(rgb):
        Image.fromarray(a).save(tmp_path / f"{i:02d}.png")
    x = load_images(tmp_path)
    assert x.shape == (3, 3, 8, 8) and x.dtype == torch.uint8
    np.testing.assert_array_equal(x.permute(0, 2, 3, 1).numpy(), rgb)
    np.save(tmp_path / "fake.npy", rgb)  # channels last is detected
    assert torch.equal(load_images(tmp_path / "fake.npy"), x)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no .png/.jpg images"):
        load_images(tmp_path / "empty")
