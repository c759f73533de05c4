from pathlib import Path

import pytest

from attnfer.errors import ConfigError
from attnfer.train.config import load_recipe

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").rglob("*.yaml"))


def test_there_is_a_recipe_per_paper():
    papers = {p.parent.name for p in RECIPES} | {p.parent.parent.name for p in RECIPES}
    assert {"paper000", "paper001", "paper002", "paper003", "quick"} <= papers


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_shipped_recipe_parses(path):
    recipe = load_recipe(path)
    assert recipe.name
    assert recipe.total_epochs > 0
    if recipe.paper:
        assert isinstance(recipe.paper.get("result"), float)


def test_overrides_and_stages(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: r\ndata: {source: x}\nstages:\n"
        "  - {epochs: 2, trainable_convs: 0, lr: 0.001}\n"
        "  - {epochs: 3, trainable_convs: 1, lr: 0.0001}\n"
    )
    recipe = load_recipe(path, ["trainer.batch_size=32", "optimizer.name=adam", "augment=null"])
    assert recipe.trainer.batch_size == 32
    assert recipe.optimizer.name == "adam"
    assert recipe.augment is None
    assert recipe.total_epochs == 5
    assert load_recipe(path, ["stages=null"]).total_epochs == 30


@pytest.mark.parametrize(
    "text, overrides, message",
    [
        ("name: r\ndata: {source: x}\nmodle: {}\n", [], "unknown section"),
        ("name: r\ndata: {source: x}\n", ["trainer.epoch=3"], "unknown key"),
        ("name: r\ndata: {source: x}\n", ["trainer.epochs=many"], "expected a number"),
        ("name: r\ndata: {source: x}\n", ["optimizer.name=rmsprop"], "is not one of"),
        ("name: r\n", [], "data.source is required"),
        ("name: r\ndata: [1, 2\n", [], "not valid YAML"),
        ("name: r\ndata: {source: x}\n", ["trainer.epochs"], "not key=value"),
        ("name: r\ndata: {source: x}\n", ["augment.final_scale=2"], "final_scale must be in"),
        ("name: r\ndata: {source: x}\n", ["loss.soft_labels=-0.5"], "soft_labels must be in"),
        ("name: r\ndata: {source: x}\n", ["loss.mixup=-1"], "mixup must be >= 0"),
        ("name: r\ndata: {source: x}\nloss: {mixup: 0.2, feature_loss: center}\n", [], "cannot"),
    ],
)
def test_bad_recipes_name_the_file_and_key(tmp_path, text, overrides, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_recipe(path, overrides)
    assert "bad.yaml" in str(info.value)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read recipe"):
        load_recipe(tmp_path / "nope.yaml")
