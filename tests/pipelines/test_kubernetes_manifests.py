"""Every Kubernetes object the deployment ships, and the Kubernetes parts of the Helm values and
the team instance, validate against the Kubernetes API schemas (kubernetes-validate, offline).
Helm itself is not installed here, so the chart is not rendered: the values' pod and container
settings are validated as the Deployment and Job the chart renders them into."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")
from kubernetes_validate.utils import latest_version  # noqa: E402

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
VERSION = latest_version()


def _validate(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, VERSION, strict=True)  # raises naming the field


def _deployment(name: str, container: dict) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "rasteret"},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}}}


def _job(name: str, container: dict) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "rasteret"},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}}}


def _env_from(config_maps: list[dict], secrets: list[dict]) -> list[dict]:
    return ([{"configMapRef": {"name": m["name"]}} for m in config_maps]
            + [{"secretRef": {"name": s["name"]}} for s in secrets])


def test_the_pipeline_environment_config_map_validates():
    manifests = [m for m in yaml.safe_load_all((DEPLOY / "rasteret-pipeline-env.yaml").read_text()) if m]
    assert [m["kind"] for m in manifests] == ["ConfigMap"]
    for manifest in manifests:
        _validate(manifest)


def test_the_helm_values_pods_validate_as_the_chart_renders_them():
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    (code,) = values["dagster-user-deployments"]["deployments"]
    image = f"{code['image']['repository']}:{code['image']['tag']}"
    _validate(_deployment(code["name"], {
        "name": code["name"], "image": image, "imagePullPolicy": code["image"]["pullPolicy"],
        "args": ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", str(code["port"]), *code["dagsterApiGrpcArgs"]],
        "ports": [{"containerPort": code["port"]}], "resources": code["resources"],
        "envFrom": _env_from(code["envConfigMaps"], code["envSecrets"]),
    }))
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    run_container = {"name": "dagster", "image": image, "imagePullPolicy": launcher["imagePullPolicy"],
                     "envFrom": _env_from(launcher["envConfigMaps"], launcher["envSecrets"]),
                     **launcher["runK8sConfig"]["containerConfig"]}
    _validate(_job("dagster-run-example", run_container))


def test_the_team_instance_run_pods_validate():
    launcher = yaml.safe_load((DEPLOY / "dagster.team.yaml").read_text())["run_launcher"]["config"]
    container = {"name": "dagster", "image": "registry.example.com/rasteret-pipelines:0.1.0",
                 "imagePullPolicy": launcher["image_pull_policy"],
                 "envFrom": [{"configMapRef": {"name": n}} for n in launcher["env_config_maps"]]
                 + [{"secretRef": {"name": n}} for n in launcher["env_secrets"]],
                 **launcher["run_k8s_config"]["container_config"]}
    _validate(_job("dagster-run-example", container))


def test_a_broken_manifest_is_refused_naming_the_field():
    broken = _job("x", {"name": "dagster", "image": "i", "resources": {"requests": {"cpu": ["two"]}}})
    with pytest.raises(kubernetes_validate.ValidationError, match="cpu"):
        _validate(broken)
