"""Loss-curve diagnosis: each classic case on synthetic curves and on provoked trainings."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from jettag import config as cfg
from jettag.training.diagnosis import CASES, diagnose, summary
from jettag.training.loop import train_model

EPOCHS = np.arange(20, dtype=float)
DECAY = 0.6 + 0.5 * np.exp(-EPOCHS / 4)  # a loss that falls and levels off


def _curves(train, val):
    return {"train_loss": list(train), "val_loss": list(val)}


SYNTHETIC = {
    "diverging": _curves(0.9 + 0.1 * EPOCHS, 1.0 + 0.1 * EPOCHS),
    "not_learning": _curves(np.full(20, 1.0986) + 1e-4 * np.sin(EPOCHS), np.full(20, 1.0987)),
    "slow_start": _curves(
        np.where(EPOCHS < 5, 1.0986, 0.6 + 0.5 * np.exp(-(EPOCHS - 5) / 3)),
        np.where(EPOCHS < 5, 1.0987, 0.62 + 0.5 * np.exp(-(EPOCHS - 5) / 3)),
    ),
    "overfitting": _curves(
        DECAY - 0.01 * EPOCHS,
        0.62 + 0.5 * np.exp(-EPOCHS / 4) + 0.004 * np.maximum(EPOCHS - 8, 0) ** 1.5,
    ),
    "not_converged": _curves(1.1 - 0.02 * EPOCHS, 1.12 - 0.02 * EPOCHS),
    "healthy": _curves(DECAY, DECAY + 0.02 + 1e-3 * np.sin(3 * EPOCHS)),
}


@pytest.mark.parametrize("case", CASES)
def test_each_synthetic_case_is_recognised(case):
    result = diagnose(SYNTHETIC[case])
    assert result["case"] == case, result
    assert result["evidence"]["epochs"] == 20
    assert summary(result).startswith(case.replace("_", " "))


def test_a_run_whose_validation_loss_never_improved_is_not_learning():
    # a width-8 DIPS of the label-noise capacity scan (seed 1, 2026-12-02): the training loss
    # creeps down 3.6 %, the validation loss never goes below its first epoch's (chance, ln 3)
    # and early stopping ends the run after 7 epochs
    stuck = _curves([1.1112, 1.0973, 1.0832, 1.0730, 1.0718, 1.0715, 1.0708],
                    [1.0997, 1.1002, 1.1099, 1.1262, 1.1262, 1.1235, 1.1199])  # fmt: skip
    result = diagnose(stuck)
    assert result["case"] == "not_learning", result
    assert result["evidence"]["train_change_max"] > 0.01  # not the flat-training case
    assert result["evidence"]["val_gain_max"] == 0.0
    assert "validation never below epoch 1" in summary(result)
    # the same run, had its validation loss fallen 2 % once, is not
    recovered = _curves(stuck["train_loss"], [*stuck["val_loss"][:-1], 0.99 * 1.0997 - 0.001])
    assert diagnose(recovered)["case"] != "not_learning"


def test_overfitting_names_the_epoch_it_starts():
    result = diagnose(SYNTHETIC["overfitting"])
    val = np.asarray(SYNTHETIC["overfitting"]["val_loss"])
    assert result["evidence"]["overfitting_from_epoch"] == int(np.argmin(val)) + 2
    assert result["evidence"]["val_rise_from_min"] > 0.02


def test_non_finite_losses_are_diverging_and_json_safe():
    result = diagnose(
        [
            {"train_loss": 0.9, "val_loss": 1.0},
            {"train_loss": float("nan"), "val_loss": float("inf")},
        ]
    )
    assert result["case"] == "diverging"
    assert result["evidence"]["train_loss_last"] is None


def _provoked(config, prepared, tmp_path, learning_rate, epochs=4):
    model = cfg.model_config(config, "dips")
    training = dataclasses.replace(
        model.training, epochs=epochs, learning_rate=learning_rate, patience=epochs, batch_size=32
    )
    history = train_model("dips", dataclasses.replace(model, training=training), prepared,
                          tmp_path, seed=1)  # fmt: skip
    return diagnose(history)


@pytest.mark.parametrize(("learning_rate", "case"), [(10.0, "diverging"), (1e-8, "not_learning")])
def test_real_trainings_provoked_into_a_case(tmp_path, config, prepared, learning_rate, case):
    assert _provoked(config, prepared, tmp_path, learning_rate)["case"] == case


def test_a_loss_that_blew_up_and_settled_is_diverging():
    # Adam at a far too large rate: the first epoch explodes, later ones sit near chance
    train = [5.5e5, 2.24, 1.74, 1.73]
    result = diagnose(_curves(train, [1.5, 1.9, 2.0, 1.08]))
    assert result["case"] == "diverging" and result["evidence"]["train_blow_up"] > 1e5
