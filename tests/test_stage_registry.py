"""Every stage is declared once (jettag.commands) and reaches the CLI, its settings and a rule.

The rules are read as text: each `rule` block's shell runs `jettag <stage> --config ...` and
its params call `settings("<stage>", ...)`; both must name a declared stage, the same one,
and pass every wildcard the stage requires. A stage that no rule runs, or a rule that runs
an undeclared one, fails here.
"""

from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path

import pytest

from jettag import stages
from jettag.cli import _parser
from jettag.commands import STAGES, stage_settings
from jettag.commands.registry import Stage, path
from jettag.config import load_config
from tests.conftest import REPO

RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
SHELL_STAGE = re.compile(r"jettag ([a-z][a-z-]*) --config")
SETTINGS_STAGE = re.compile(r"settings\(\s*\"([a-z][a-z-]*)\"")


def rule_blocks(texts: list[str]) -> dict[str, str]:
    """Each rule's text, by rule name."""
    blocks = {}
    for text in texts:
        parts = re.split(r"^rule (\w+):\n", text, flags=re.MULTILINE)
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            blocks[name] = body.split("\n\n\n")[0]  # up to the next top-level statement
    return blocks


def registry_problems(declared: dict[str, Stage], texts: list[str]) -> list[str]:
    """What is missing or inconsistent between the declared stages and the rules' texts."""
    problems = []
    run = {m for t in texts for m in SHELL_STAGE.findall(t)}
    read = {m for t in texts for m in SETTINGS_STAGE.findall(t)}
    problems += [f"stage '{s}' is run by no rule" for s in sorted(set(declared) - run)]
    problems += [f"a rule runs undeclared stage '{s}'" for s in sorted(run - set(declared))]
    problems += [f"a rule's params read undeclared '{s}'" for s in sorted(read - set(declared))]
    for rule, body in rule_blocks(texts).items():
        shell, params = SHELL_STAGE.findall(body), SETTINGS_STAGE.findall(body)
        if "shell:" not in body:  # a target rule (all, plots): it runs nothing
            continue
        if len(shell) != 1:
            problems.append(f"rule {rule} runs {len(shell)} jettag commands")
            continue
        if params and params != shell:
            problems.append(f"rule {rule} runs {shell[0]} with the settings of {params}")
        stage = declared.get(shell[0])
        for wildcard in stage.wildcards if stage else ():
            if wildcard not in _defaulted(stage) and f"--{wildcard} " not in body:
                problems.append(f"rule {rule} does not pass --{wildcard} to {shell[0]}")
    return problems


def _defaulted(stage: Stage) -> set[str]:
    """The wildcards of a stage that have a default (the CLI does not require them)."""
    params = inspect.signature(stage.settings).parameters
    return {n for n, p in params.items() if p.default is not inspect.Parameter.empty}


def test_every_stage_is_in_the_cli_the_settings_and_a_rule():
    texts = [p.read_text() for p in RULE_FILES]
    assert registry_problems(STAGES, texts) == []
    choices = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(choices.choices) == set(STAGES) | {"check-config"}
    assert len(STAGES) == 40


def test_the_check_finds_a_stage_without_a_rule_and_a_rule_without_a_stage():
    texts = [p.read_text() for p in RULE_FILES]
    extra = Stage("plot-extra", "", lambda a, s: None, stages.model_figure, (), {}, False, {})
    problems = registry_problems({**STAGES, "plot-extra": extra}, texts)
    assert problems == ["stage 'plot-extra' is run by no rule"]
    without = {k: v for k, v in STAGES.items() if k != "evaluate"}
    problems = registry_problems(without, texts)
    assert "a rule runs undeclared stage 'evaluate'" in problems
    assert "a rule's params read undeclared 'evaluate'" in problems
    broken = texts[0] + (
        '\n\nrule broken:\n    params:\n        settings=lambda w: settings("evaluate"),\n'
        '    shell:\n        "jettag predict --config {CONFIG_FILE} --test x"\n'
    )
    problems = registry_problems(STAGES, [broken, *texts[1:]])
    assert "rule broken runs predict with the settings of ['evaluate']" in problems
    assert "rule broken does not pass --tagger to predict" in problems


def test_wildcards_come_from_the_settings_function():
    assert STAGES["ingest"].wildcards == ("sample", "part")
    assert STAGES["train"].wildcards == ("model", "variant", "member")
    assert STAGES["evaluate"].wildcards == ()
    assert STAGES["plot-roc"].wildcards == ("dataset",)
    parser = _parser()
    args = parser.parse_args(["ingest", "--config", "c.yaml", "--sample", "ttbar", "--output",
                              "o.h5", "a.root"])  # fmt: skip
    assert (args.sample, args.part, args.inputs) == ("ttbar", None, [Path("a.root")])
    args = parser.parse_args(["generate", "--config", "c.yaml", "--sample", "ttbar", "--shard",
                              "3", "--output", "o.root"])  # fmt: skip
    assert args.shard == 3
    with pytest.raises(SystemExit):  # a required wildcard
        parser.parse_args(["generate", "--config", "c.yaml", "--sample", "ttbar", "--output",
                           "o.root"])  # fmt: skip


def test_the_command_gets_the_settings_the_rule_records():
    """stage_settings (the rule's params) and Stage.settings_of (the command) agree."""
    config = load_config(REPO / "workflow" / "configs" / "ci.yaml")
    parser = _parser()
    args = parser.parse_args(["train", "--config", "c.yaml", "--model", "dips", "--member", "0",
                              "--data-dir", "d", "--output-dir", "o"])  # fmt: skip
    by_cli = args.stage_entry.settings_of(config, args)
    assert by_cli == stage_settings("train", config, model="dips", variant="member", member=0)


def test_an_option_helper_requires_paths_without_a_default():
    assert path("--output").options["required"] is True
    assert path("--pretrained", default=None).options["required"] is False
    assert "required" not in path("inputs").options  # a positional


def test_a_command_gets_typed_sections_and_only_the_keys_its_stage_reads():
    from jettag import config as cfg
    from jettag.commands import settings_json, stage_params

    config = load_config(REPO / "workflow" / "configs" / "ci.yaml")
    evaluate = stage_settings("evaluate", config)
    assert isinstance(evaluate.evaluation.roc_b_efficiencies, cfg.RocGrid)
    assert evaluate.evaluation.working_points == tuple(config["evaluation"]["working_points"])
    with pytest.raises(AttributeError, match="only the keys this stage reads, not 'pt_bins_gev'"):
        evaluate.evaluation.pt_bins_gev  # noqa: B018 (performance reads it, evaluate does not)
    with pytest.raises(AttributeError, match=r"hold \['evaluation'\], not 'seed'"):
        evaluate.seed  # noqa: B018
    generate = stage_settings("generate", config, sample="ttbar", shard=0)
    assert isinstance(generate.sample, cfg.GenerationConfig)
    assert generate.seed == config["seed"]
    plot = stage_settings("plot-roc", config, dataset="ttbar")
    assert (
        plot.plots.experiment_label.experiment == config["plots"]["experiment_label"]["experiment"]
    )
    # the rule's params hash the dict form, which the settings function returned
    assert stage_params("evaluate", config) == settings_json(evaluate.as_dict())
    assert evaluate.as_dict() == {"evaluation": {
        k: config["evaluation"][k] for k in ("discriminant", "working_points", "roc_b_efficiencies")
    }}  # fmt: skip
