"""`gatecrash k8s`: the rendered manifests are valid Kubernetes objects, checked offline
against the API types of the official Python client (no cluster here).

The client's own deserializer drops fields it does not know, so `strict` walks every key
against the model's attribute map first: a typo'd field fails. Then the document is
deserialized into V1Job / V1ConfigMap (enums and required fields checked by the models)
and serialized back, which must give the document unchanged: every field set survives.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes.client as k8s_models
import pytest
import yaml
from kubernetes.client import ApiClient

from harness.cli import EXIT_BAD_INPUT, EXIT_OK, build_parser, main
from harness.scale.k8s import JobOptions, k8s_name, merge_job, render, shard_job

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "scenarios/quickstart.yaml"
PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float)}


def strict(data: Any, type_name: str, where: str = "") -> None:
    """Every key of `data` is a field of the client model `type_name`, recursively."""
    if match := re.fullmatch(r"List\[(.+)\]", type_name):
        assert isinstance(data, list), f"{where}: expected a list"
        for i, item in enumerate(data):
            strict(item, match.group(1), f"{where}[{i}]")
        return
    if match := re.fullmatch(r"Dict\[str, (.+)\]", type_name):
        assert isinstance(data, dict), f"{where}: expected a mapping"
        for key, value in data.items():
            strict(value, match.group(1), f"{where}.{key}")
        return
    if type_name in PRIMITIVES:
        assert isinstance(data, PRIMITIVES[type_name]), f"{where}: {data!r} is not {type_name}"
        return
    if type_name == "object":
        return
    model = getattr(k8s_models, type_name)
    by_json = {json_key: attr for attr, json_key in model.attribute_map.items()}
    assert isinstance(data, dict), f"{where}: expected a {type_name}"
    for key, value in data.items():
        assert key in by_json, f"{where}.{key}: not a field of {type_name}"
        strict(value, model.openapi_types[by_json[key]], f"{where}.{key}")


def round_trip(document: dict[str, Any], type_name: str) -> Any:
    strict(document, type_name, document["kind"])
    api = ApiClient()
    obj = api.deserialize(json.dumps(document), type_name, "application/json")
    assert api.sanitize_for_serialization(obj) == document
    return obj


def options(**changes: Any) -> JobOptions:
    base = dict(
        scenario_name="quickstart",
        scenario_text=QUICKSTART.read_text(),
        shards=6,
        image="registry.example/gatecrash:1",
        parallelism=3,
        volume_claim="results-rwx",
    )
    return JobOptions(**{**base, **changes})


def test_strict_check_rejects_a_typo() -> None:
    job = shard_job(options())
    job["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {"privileged": True}
    with pytest.raises(AssertionError, match="securityContex: not a field of V1Container"):
        strict(job, "V1Job")
    job = shard_job(options())
    job["spec"]["completions"] = "6"
    with pytest.raises(AssertionError, match="is not int"):
        strict(job, "V1Job")


def test_shard_job_is_a_valid_indexed_job() -> None:
    config_map, job_doc = render(options())
    round_trip(config_map, "V1ConfigMap")
    job = round_trip(job_doc, "V1Job")
    spec = job.spec
    assert (spec.completion_mode, spec.completions, spec.parallelism) == ("Indexed", 6, 3)
    assert spec.backoff_limit_per_index == 1 and spec.max_failed_indexes == 1
    rules = {r.action: r for r in spec.pod_failure_policy.rules}
    fail_index = rules["FailIndex"].on_exit_codes
    assert (fail_index.container_name, fail_index.operator, fail_index.values) == (
        "gatecrash",
        "In",
        [3],
    )
    assert rules["FailJob"].on_exit_codes.values == [2]
    assert [c.type for c in rules["Ignore"].on_pod_conditions] == ["DisruptionTarget"]
    pod = spec.template.spec
    assert pod.restart_policy == "Never"
    (container,) = pod.containers
    assert container.security_context.privileged is True
    argv = [*container.command, *container.args]
    assert argv[:6] == ["gatecrash", "run", "/scenario/scenario.yaml", "--shards", "6", "--out"]
    assert argv[6] == "/results/shard-$(JOB_COMPLETION_INDEX)"
    (env,) = container.env
    assert env.name == "JOB_COMPLETION_INDEX"
    assert "job-completion-index" in env.value_from.field_ref.field_path
    volumes = {v.name: v for v in pod.volumes}
    assert volumes["results"].persistent_volume_claim.claim_name == "results-rwx"
    assert volumes["scenario"].config_map.name == config_map["metadata"]["name"]
    assert volumes["run"].empty_dir.medium == "Memory"
    mounts = {m.mount_path: m.name for m in container.volume_mounts}
    assert mounts == {"/results": "results", "/scenario": "scenario", "/run": "run"}
    assert yaml.safe_load(config_map["data"]["scenario.yaml"])["name"] == "quickstart"


def test_merge_job_merges_every_shard_directory() -> None:
    job = round_trip(merge_job(options(allow_partial=True)), "V1Job")
    (container,) = job.spec.template.spec.containers
    assert container.command[:2] == ["sh", "-c"]
    assert container.command[2] == (
        "exec gatecrash merge --allow-partial /results/merged /results/shard-*"
    )
    assert job.spec.backoff_limit == 0
    assert job.spec.template.spec.volumes[0].persistent_volume_claim.claim_name == "results-rwx"


def test_cli_prints_the_manifests(capsys) -> None:
    argv = ["k8s", str(QUICKSTART), "--shards", "4", "--image", "img:1", "--out-volume", "pvc"]
    assert main(argv) == EXIT_OK
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["kind"] for d in documents] == ["ConfigMap", "Job"]
    round_trip(documents[1], "V1Job")
    assert documents[0]["data"]["scenario.yaml"] == QUICKSTART.read_text()
    assert main([*argv, "--merge"]) == EXIT_OK
    (merge,) = yaml.safe_load_all(capsys.readouterr().out)
    assert merge["metadata"]["name"] == "gatecrash-quickstart-merge"
    round_trip(merge, "V1Job")


def test_cli_refuses_more_shards_than_trials(capsys) -> None:
    argv = ["k8s", str(QUICKSTART), "--shards", "61", "--image", "img:1"]
    assert main(argv) == EXIT_BAD_INPUT
    assert "has 60 trials" in capsys.readouterr().err


def test_names_are_dns_labels() -> None:
    assert k8s_name("gatecrash-My_Suite 2026!") == "gatecrash-my-suite-2026"
    assert len(k8s_name("x" * 100)) == 40 and k8s_name("__") == "scenario"


def test_the_pods_commands_are_gatecrash_commands() -> None:
    """What the containers run parses as gatecrash parses it; the shard pod's index is
    the one Kubernetes substitutes into $(JOB_COMPLETION_INDEX)."""
    (container,) = shard_job(options())["spec"]["template"]["spec"]["containers"]
    args = [a.replace("$(JOB_COMPLETION_INDEX)", "5") for a in container["args"]]
    run = build_parser().parse_args(args)
    assert (run.command, run.shards, run.out, run.shard) == ("run", 6, "/results/shard-5", None)
    (merger,) = merge_job(options())["spec"]["template"]["spec"]["containers"]
    words = merger["command"][2].split()
    assert words[:2] == ["exec", "gatecrash"]
    merge = build_parser().parse_args(words[2:])
    assert (merge.command, merge.out, merge.dirs) == (
        "merge",
        "/results/merged",
        ["/results/shard-*"],
    )
