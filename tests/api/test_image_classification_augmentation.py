"""The image-classification kind's augmentation settings: stored only when changed, checked, and handed to
the trainer (tiny images such as the 8x8 digits train on whole images)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nastune.evaluators.image_classification import create_img_class_evaluator
from searches.evaluators import image_classification_payload
from searches.models import SearchInstance
from tests.api.expect import assert_error


def _search(space, **config) -> dict:
    return {"space": space.id, "name": "digits run", "evaluator_kind": "image_classification", "budget": 5,
            "evaluator_config": {"dataset": "/data/digits", "n_classes": 10, "epochs_hi": 2, "gpus_per_eval": 0,
                                 "image_size": 8, **config}}


def test_whole_image_training_is_stored_and_reaches_the_trainer(api, make_space, tmp_path: Path) -> None:
    response = api("owner").post("/api/searches/", _search(make_space(), min_crop_scale=1, crop_pct="1"),
                                 format="json")
    assert response.status_code == 201, response.content
    search = SearchInstance.objects.get()
    assert (search.evaluator_config["min_crop_scale"], search.evaluator_config["crop_pct"]) == (1.0, 1.0)
    payload = image_classification_payload(search, "hi", "cpu", tmp_path / "log")
    assert (payload["min_crop_scale"], payload["crop_pct"]) == (1.0, 1.0)


def test_default_augmentation_is_not_stored(api, make_space, tmp_path: Path) -> None:
    response = api("owner").post("/api/searches/", _search(make_space(), min_crop_scale=0.08), format="json")
    assert response.status_code == 201, response.content
    search = SearchInstance.objects.get()
    assert "min_crop_scale" not in search.evaluator_config and "crop_pct" not in search.evaluator_config
    assert "min_crop_scale" not in image_classification_payload(search, "hi", "cpu", tmp_path / "log")


@pytest.mark.parametrize(("name", "value"), [("min_crop_scale", 0), ("min_crop_scale", 1.5), ("crop_pct", "x")])
def test_augmentation_out_of_range_is_refused(api, make_space, name: str, value: object) -> None:
    response = api("owner").post("/api/searches/", _search(make_space(), **{name: value}), format="json")
    assert_error(response, 400, f"evaluator_config.{name}")
    assert not SearchInstance.objects.exists()


def test_the_engine_takes_and_checks_the_augmentation(tmp_path: Path) -> None:
    model = tmp_path / "model.py"
    model.write_text("def encoding_to_net(encoding, n_classes):\n    raise NotImplementedError\n")
    evaluator = create_img_class_evaluator(str(tmp_path), 10, 0, model, min_crop_scale=1.0, crop_pct=1.0,
                                           work_dir=tmp_path / "runs")
    assert (evaluator.config.min_crop_scale, evaluator.config.crop_pct) == (1.0, 1.0)
    default = create_img_class_evaluator(str(tmp_path), 10, 0, model, work_dir=tmp_path / "runs")
    assert evaluator.run_dir_for([1]) != default.run_dir_for([1])  # another training, another run
    with pytest.raises(ValueError, match="min_crop_scale=0"):
        create_img_class_evaluator(str(tmp_path), 10, 0, model, min_crop_scale=0, work_dir=tmp_path / "runs")
