"""`gatecrash k8s`: the manifests that run a scenario's shards as a Kubernetes Indexed Job.

Kubernetes does the scheduling, retries and bookkeeping; gatecrash only renders:
  - a ConfigMap holding the scenario file,
  - an Indexed Job: pod I runs `gatecrash run --shards N` (shard I, from
    JOB_COMPLETION_INDEX) into /results/shard-I on a shared volume. Each pod builds its
    trials' network namespaces inside itself (privileged: netns, iptables, NFQUEUE, tc),
    on an in-memory /run (namespace mounts, run markers);
  - with --merge, a merge Job, applied once the first completed: `gatecrash merge` over
    /results/shard-* into /results/merged (summary.json, report.html).

Exit codes of `gatecrash run` drive the pod failure policy: 3 (harness faults remained
after the runner's own retries) fails that index without retrying it, 2 (bad input: every
pod would fail alike) fails the Job, and a node disruption (preemption, drain) is ignored,
so the index simply runs again (and continues its shard directory). backoffLimitPerIndex
and the FailIndex action need Kubernetes 1.29 or later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from harness.scale.shard import INDEX_ENV

EXIT_HARNESS_FAULT, EXIT_BAD_INPUT = 3, 2
CONTAINER = "gatecrash"
SCENARIO_DIR, SCENARIO_FILE, RESULTS_DIR = "/scenario", "scenario.yaml", "/results"
INDEX_ANNOTATION = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
NAME_MAX = 40  # room for "-merge" and the pod suffixes within 63 characters


def k8s_name(text: str) -> str:
    """A DNS-1123 label from a scenario name: lower case, [a-z0-9-], at most NAME_MAX."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:NAME_MAX].strip("-")
    return name or "scenario"


@dataclass(frozen=True)
class JobOptions:
    scenario_name: str  # the scenario's own name (labels)
    scenario_text: str  # the scenario file as given, put in the ConfigMap
    shards: int
    image: str
    parallelism: int
    volume_claim: str = "gatecrash-results"
    name: str = ""  # default gatecrash-<scenario>
    jobs: int = 1  # trials side by side in each pod
    retries: int = 2  # the runner's attempts after a harness fault, per trial
    backoff_limit_per_index: int = 1  # pod restarts of one shard (other failures)
    max_failed_indexes: int | None = None  # default: a quarter of the shards, at least 1
    allow_partial: bool = False  # merge what there is when shards failed

    @property
    def job_name(self) -> str:
        return self.name or k8s_name(f"gatecrash-{self.scenario_name}")


def _labels(opts: JobOptions, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "gatecrash",
        "app.kubernetes.io/component": component,
        "gatecrash/scenario": k8s_name(opts.scenario_name),
    }


def _results_volume(opts: JobOptions) -> dict[str, Any]:
    return {"name": "results", "persistentVolumeClaim": {"claimName": opts.volume_claim}}


def config_map(opts: JobOptions) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{opts.job_name}-scenario", "labels": _labels(opts, "scenario")},
        "data": {SCENARIO_FILE: opts.scenario_text},
    }


def shard_job(opts: JobOptions) -> dict[str, Any]:
    max_failed = opts.max_failed_indexes or max(1, opts.shards // 4)
    args = [
        "run", f"{SCENARIO_DIR}/{SCENARIO_FILE}",
        "--shards", str(opts.shards),
        "--out", f"{RESULTS_DIR}/shard-$({INDEX_ENV})",
        "--jobs", str(opts.jobs),
        "--retries", str(opts.retries),
    ]  # fmt: skip
    container = {
        "name": CONTAINER,
        "image": opts.image,
        "command": ["gatecrash"],
        "args": args,
        # Kubernetes sets it too; declared here so $(JOB_COMPLETION_INDEX) in args expands.
        "env": [{"name": INDEX_ENV, "valueFrom": {"fieldRef": {"fieldPath": INDEX_ANNOTATION}}}],
        # Network namespaces, veths, iptables, NFQUEUE and tc inside the pod.
        "securityContext": {"privileged": True},
        "resources": {"requests": {"cpu": str(opts.jobs), "memory": f"{opts.jobs}Gi"}},
        "volumeMounts": [
            {"name": "results", "mountPath": RESULTS_DIR},
            {"name": "scenario", "mountPath": SCENARIO_DIR, "readOnly": True},
            {"name": "run", "mountPath": "/run"},
        ],
    }
    rules = [
        {
            "action": "FailIndex",
            "onExitCodes": {
                "containerName": CONTAINER,
                "operator": "In",
                "values": [EXIT_HARNESS_FAULT],
            },
        },
        {
            "action": "FailJob",
            "onExitCodes": {
                "containerName": CONTAINER,
                "operator": "In",
                "values": [EXIT_BAD_INPUT],
            },
        },
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
    ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": opts.job_name, "labels": _labels(opts, "shards")},
        "spec": {
            "completionMode": "Indexed",
            "completions": opts.shards,
            "parallelism": opts.parallelism,
            "backoffLimitPerIndex": opts.backoff_limit_per_index,
            "maxFailedIndexes": max_failed,
            "podFailurePolicy": {"rules": rules},
            "template": {
                "metadata": {"labels": _labels(opts, "shards")},
                "spec": {
                    "restartPolicy": "Never",  # required by podFailurePolicy
                    "containers": [container],
                    "volumes": [
                        _results_volume(opts),
                        {"name": "scenario", "configMap": {"name": f"{opts.job_name}-scenario"}},
                        # A tmpfs /run: `ip netns` mounts there, and run markers live there.
                        {"name": "run", "emptyDir": {"medium": "Memory"}},
                    ],
                },
            },
        },
    }


def merge_job(opts: JobOptions) -> dict[str, Any]:
    partial = " --allow-partial" if opts.allow_partial else ""
    script = f"exec gatecrash merge{partial} {RESULTS_DIR}/merged {RESULTS_DIR}/shard-*"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"{opts.job_name}-merge", "labels": _labels(opts, "merge")},
        "spec": {
            "backoffLimit": 0,  # its exit status is the verdict: 1 = an expectation failed
            "template": {
                "metadata": {"labels": _labels(opts, "merge")},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "merge",
                            "image": opts.image,
                            "command": ["sh", "-c", script],
                            "volumeMounts": [{"name": "results", "mountPath": RESULTS_DIR}],
                        }
                    ],
                    "volumes": [_results_volume(opts)],
                },
            },
        },
    }


def render(opts: JobOptions, merge: bool = False) -> list[dict[str, Any]]:
    """The ConfigMap and the shard Job; with `merge`, the merge Job alone (applied once
    the shard Job completed: applied together it would merge nothing)."""
    return [merge_job(opts)] if merge else [config_map(opts), shard_job(opts)]


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the scenario file) as literal blocks, readable in the output."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(documents: list[dict[str, Any]]) -> str:
    return yaml.dump_all(
        documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100
    )
