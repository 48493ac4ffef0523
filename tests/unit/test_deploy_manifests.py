"""The deployment files under deploy/ (Dockerfile, compose.yaml, Kubernetes kustomizations) parsed and checked
for the properties a deployment depends on: probes, hardening, settings names, references, network policies.

Kustomizations are rendered with `kubectl kustomize` where kubectl is installed; otherwise the base resources are
read as they are (patches not applied) and the overlay-specific checks are skipped. The compose file is also
validated by a Compose CLI where one is installed (`docker compose` or `docker-compose`; neither needs an engine
for `config`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from services.shared import config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
KUSTOMIZATIONS = sorted(p.parent for p in K8S.rglob("kustomization.yaml"))
KUSTOMIZATION_IDS = [str(p.relative_to(K8S)) for p in KUSTOMIZATIONS]

SERVICES = ("control", "tracker", "executor", "gateway")
GRPC_SERVICES = ("control", "tracker", "executor")
COMPONENT = "app.kubernetes.io/component"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
# The call graph of the design (gateway -> control, tracker; control -> tracker; executor -> tracker); the gateway
# also asks the executor for its health.
CALLS = [("gateway", "control"), ("gateway", "tracker"), ("gateway", "executor"), ("control", "tracker")]
CALLS += [("executor", "tracker")]
REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")

Doc = dict[str, Any]


# ---------------------------------------------------------------------------------------------------------- helpers


@cache
def settings_names() -> frozenset[str]:
    """Every environment variable some settings class of services/shared/config.py reads."""
    names: set[str] = set()
    for value in vars(config).values():
        if isinstance(value, type) and issubclass(value, BaseSettings) and value is not BaseSettings:
            prefix = str(value.model_config.get("env_prefix", ""))
            names |= {f"{prefix}{field}".upper() for field in value.model_fields}
    return frozenset(names)


def load_yaml_docs(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def read_kustomization(directory: Path) -> Doc:
    doc = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def read_resources(directory: Path) -> list[Doc]:
    """The resources of a kustomization as written, following directories; patches are not applied."""
    docs: list[Doc] = []
    for entry in read_kustomization(directory).get("resources", []):
        target = directory / entry
        docs += read_resources(target) if target.is_dir() else load_yaml_docs(target)
    return docs


@cache
def kubectl() -> str | None:
    return shutil.which("kubectl")


@cache
def render(directory: Path) -> tuple[Doc, ...]:
    binary = kubectl()
    if binary is None:
        return tuple(read_resources(directory))
    result = subprocess.run(
        [binary, "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(docs: tuple[Doc, ...], *kinds: str) -> list[Doc]:
    return [d for d in docs if d.get("kind") in kinds]


def named(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    matches = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def pod_spec(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Doc) -> list[Doc]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def deployment_of(docs: tuple[Doc, ...], service: str) -> Doc:
    return named(docs, "Deployment", f"autoloader-{service}")


def data_of(doc: Doc) -> dict[str, str]:
    return {**doc.get("data", {}), **doc.get("stringData", {})}


def container_env(docs: tuple[Doc, ...], container: Doc) -> dict[str, str]:
    """The plain values a container sees: envFrom ConfigMaps, then env `value`s (references left as written)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(data_of(named(docs, "ConfigMap", source["configMapRef"]["name"])))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
    return env


def port_number(container: Doc, port: int | str) -> int:
    if isinstance(port, int):
        return port
    found = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert found, f"container {container['name']} has no port named {port}"
    return int(found[0])


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """Label selector semantics (matchLabels and In/NotIn/Exists/DoesNotExist)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not ok:
            return False
    return True


def pod_labels(service: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "autoloader", COMPONENT: service}


def rule_allows(rule: Doc, peers_key: str, port: int, peer: dict[str, str] | None) -> bool:
    """Whether one ingress/egress rule admits `port` with a pod of this namespace (peer labels) or, for peer
    None, an address outside the cluster's pods."""
    ports = rule.get("ports")
    if ports and not any(p.get("port") == port and p.get("protocol", "TCP") == "TCP" for p in ports):
        return False
    peers = rule.get(peers_key)
    if not peers:
        return True
    for candidate in peers:
        if peer is None:
            if "ipBlock" in candidate:
                return True
        elif "podSelector" in candidate and "namespaceSelector" not in candidate:
            if selects(candidate["podSelector"], peer):
                return True
        elif candidate.get("namespaceSelector") == {} and selects(candidate.get("podSelector", {}), peer):
            return True
    return False


def policy_allows(
    policies: list[Doc], pod: dict[str, str], direction: str, port: int, peer: dict[str, str] | None
) -> bool:
    kind, peers_key = ("Ingress", "from") if direction == "ingress" else ("Egress", "to")
    for policy in policies:
        spec = policy["spec"]
        if kind not in spec.get("policyTypes", []) or not selects(spec["podSelector"], pod):
            continue
        if any(rule_allows(rule, peers_key, port, peer) for rule in spec.get(direction, [])):
            return True
    return False


def spark_conf(docs: tuple[Doc, ...]) -> tuple[dict[str, str], str]:
    executor = deployment_of(docs, "executor")
    container = next(c for c in containers(executor) if c["name"] == "executor")
    env = container_env(docs, container)
    parsed = json.loads(env["AUTOLOADER_SPARK_CONF"])
    assert isinstance(parsed, dict)
    return parsed, env["AUTOLOADER_SPARK_MASTER"]


@pytest.fixture(params=KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def rendered(request: pytest.FixtureRequest) -> tuple[Doc, ...]:
    directory: Path = request.param
    return render(directory)


def needs_kubectl() -> None:
    if kubectl() is None:
        pytest.skip("kubectl is not installed: overlays cannot be rendered")


# ---------------------------------------------------------------------------------------------------- kustomize


def test_there_is_a_base_and_an_overlay() -> None:
    assert K8S / "base" in KUSTOMIZATIONS
    assert any(p.parent == K8S / "overlays" for p in KUSTOMIZATIONS)


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_every_kustomization_entry_exists(directory: Path) -> None:
    kustomization = read_kustomization(directory)
    for entry in kustomization.get("resources", []):
        target = directory / entry
        assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{directory}: missing {entry}"
    for patch in kustomization.get("patches", []) + kustomization.get("patchesStrategicMerge", []):
        path = patch.get("path") if isinstance(patch, dict) else patch
        if path:
            assert (directory / path).is_file(), f"{directory}: missing patch {path}"


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_patches_target_existing_resources(directory: Path) -> None:
    """A strategic-merge patch whose target is renamed in the base would silently create a half resource."""
    kustomization = read_kustomization(directory)
    base = {(d["kind"], d["metadata"]["name"]) for d in read_resources(directory)}
    for patch in kustomization.get("patches", []):
        for doc in load_yaml_docs(directory / patch["path"]):
            assert (doc["kind"], doc["metadata"]["name"]) in base, f"{patch['path']} patches nothing"


def test_every_service_has_a_deployment(rendered: tuple[Doc, ...]) -> None:
    for service in SERVICES:
        deployment_of(rendered, service)


# ------------------------------------------------------------------------------------------------ pod hardening


def test_pods_are_hardened(rendered: tuple[Doc, ...]) -> None:
    workloads = of_kind(rendered, *WORKLOAD_KINDS)
    assert workloads
    for workload in workloads:
        pod = pod_spec(workload).get("securityContext", {})
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            context = container.get("securityContext", {})
            assert context.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, where
            assert context.get("runAsUser", pod.get("runAsUser")) not in (None, 0), f"{where}: no non-root uid"
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert "ALL" in context.get("capabilities", {}).get("drop", []), where
            assert context.get("capabilities", {}).get("add") in (None, []), where
            seccomp = context.get("seccompProfile", pod.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", where
            assert context.get("privileged") in (None, False), where


def test_pods_have_resources(rendered: tuple[Doc, ...]) -> None:
    for workload in of_kind(rendered, *WORKLOAD_KINDS):
        for container in containers(workload):
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), f"{container['name']}: {bound}"


def test_writable_paths_are_volumes(rendered: tuple[Doc, ...]) -> None:
    """A read-only root file system needs a volume at every path the process writes: /tmp always (Spark, the
    JVM, Python's tempfile), and AUTOLOADER_HOME for the services that keep state there."""
    for workload in of_kind(rendered, *WORKLOAD_KINDS):
        volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
        for container in containers(workload):
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            needed = {"/tmp"}
            if workload["kind"] == "Deployment" and container["name"] in GRPC_SERVICES:
                needed.add(container_env(rendered, container)["AUTOLOADER_HOME"])
            for path in needed:
                assert path in mounts, f"{container['name']}: nothing writable at {path}"
                volume = volumes[mounts[path]]
                assert "emptyDir" in volume, f"{container['name']}: {path} should be an emptyDir"


def test_probes(rendered: tuple[Doc, ...]) -> None:
    for service in SERVICES:
        workload = deployment_of(rendered, service)
        container = next(c for c in containers(workload) if c["name"] == service)
        env = container_env(rendered, container)
        for kind in ("readinessProbe", "livenessProbe"):
            probe = container.get(kind)
            assert probe, f"{service}: no {kind}"
            if service in GRPC_SERVICES:
                # Native gRPC probe: grpc.health.v1.Health/Check on the port the service really binds.
                assert "grpc" in probe, f"{service}: {kind} should be a gRPC probe"
                assert port_number(container, probe["grpc"]["port"]) == int(env["AUTOLOADER_GRPC_PORT"])
            else:
                assert "httpGet" in probe, f"{service}: {kind} should be an HTTP probe"
                assert port_number(container, probe["httpGet"]["port"]) == int(env["AUTOLOADER_HTTP_PORT"])
        if service == "gateway":
            assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
        else:
            assert env["AUTOLOADER_GRPC_HOST"] == "0.0.0.0", f"{service}: probes cannot reach 127.0.0.1"


# --------------------------------------------------------------------------------------------- settings and refs


def test_settings_names_are_known() -> None:
    names = settings_names()
    assert {"AUTOLOADER_DATABASE_URL", "AUTOLOADER_SPARK_CONF", "AUTOLOADER_HTTP_PORT"} <= names


def test_autoloader_variables_exist_in_settings(rendered: tuple[Doc, ...]) -> None:
    used: set[str] = set()
    for doc in of_kind(rendered, "ConfigMap", "Secret"):
        used |= set(data_of(doc))
    for workload in of_kind(rendered, *WORKLOAD_KINDS):
        for container in containers(workload):
            used |= {item["name"] for item in container.get("env", [])}
    unknown = sorted(n for n in used if n.startswith("AUTOLOADER_") and n not in settings_names())
    assert not unknown, f"no settings field reads {unknown}"


def test_env_references_resolve(rendered: tuple[Doc, ...]) -> None:
    for workload in of_kind(rendered, *WORKLOAD_KINDS):
        for container in containers(workload):
            for source in container.get("envFrom", []):
                for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    if key in source:
                        named(rendered, kind, source[key]["name"])
            for item in container.get("env", []):
                for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    ref = item.get("valueFrom", {}).get(key)
                    if ref:
                        assert ref["key"] in data_of(named(rendered, kind, ref["name"])), f"{item['name']}"


def test_variable_expansion_refers_to_earlier_variables(rendered: tuple[Doc, ...]) -> None:
    """Kubernetes expands $(NAME) only for variables defined earlier in the list (or in envFrom); a patch that
    reorders the list leaves `$(POD_IP)` literally in the Spark settings."""
    for workload in of_kind(rendered, *WORKLOAD_KINDS):
        for container in containers(workload):
            defined = {k for k in container_env(rendered, container) if k not in {e["name"] for e in container["env"]}}
            for item in container.get("env", []):
                for name in REF.findall(str(item.get("value", ""))):
                    assert name in defined, f"{container['name']}: {item['name']} uses $({name}) before it is set"
                defined.add(item["name"])


def test_services_select_deployments(rendered: tuple[Doc, ...]) -> None:
    deployments = of_kind(rendered, "Deployment")
    for service in of_kind(rendered, "Service"):
        selector = service["spec"]["selector"]
        targets = [
            d for d in deployments if selects({"matchLabels": selector}, d["spec"]["template"]["metadata"]["labels"])
        ]
        assert targets, f"Service {service['metadata']['name']} selects no Deployment"
        for target in targets:
            assert selects(target["spec"]["selector"], target["spec"]["template"]["metadata"]["labels"])
            for port in service["spec"]["ports"]:
                ports = [port_number(c, port.get("targetPort", port["port"])) for c in containers(target)[:1]]
                assert ports, f"{service['metadata']['name']}: target port {port} not on the pod"


def test_addresses_point_at_services(rendered: tuple[Doc, ...]) -> None:
    """AUTOLOADER_*_ADDRESS = <Service>:<port>, and that Service port leads to the gRPC port of its pods."""
    services = {s["metadata"]["name"]: s for s in of_kind(rendered, "Service")}
    for workload in of_kind(rendered, "Deployment"):
        for container in containers(workload):
            for key, value in container_env(rendered, container).items():
                if not (key.startswith("AUTOLOADER_") and key.endswith("_ADDRESS")) or not value:
                    continue
                host, _, port = value.rpartition(":")
                assert host in services, f"{key}={value}: no Service {host}"
                service_port = next(p for p in services[host]["spec"]["ports"] if p["port"] == int(port))
                target = deployment_of(rendered, host.removeprefix("autoloader-"))
                backend = containers(target)[0]
                grpc_port = int(container_env(rendered, backend)["AUTOLOADER_GRPC_PORT"])
                assert port_number(backend, service_port["targetPort"]) == grpc_port, f"{key}={value}"


# ---------------------------------------------------------------------------------------------- network policies


def test_network_policies_deny_by_default(rendered: tuple[Doc, ...]) -> None:
    policies = of_kind(rendered, "NetworkPolicy")
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and {"Ingress", "Egress"} <= set(p["spec"].get("policyTypes", []))
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert deny, "no default-deny NetworkPolicy for ingress and egress"


def test_network_policies_allow_what_the_services_need(rendered: tuple[Doc, ...]) -> None:
    policies = of_kind(rendered, "NetworkPolicy")
    ports = {
        s: int(container_env(rendered, containers(deployment_of(rendered, s))[0])["AUTOLOADER_GRPC_PORT"])
        for s in GRPC_SERVICES
    }
    for caller, callee in CALLS:
        port = ports[callee]
        assert policy_allows(policies, pod_labels(caller), "egress", port, pod_labels(callee)), f"{caller} -> {callee}"
        assert policy_allows(policies, pod_labels(callee), "ingress", port, pod_labels(caller)), f"{caller} -> {callee}"
    for service in SERVICES:
        assert policy_allows(policies, pod_labels(service), "egress", 53, None), f"{service}: no DNS"
    for service in GRPC_SERVICES:
        assert policy_allows(policies, pod_labels(service), "egress", 5432, None), f"{service}: no PostgreSQL"
    gateway_port = int(
        container_env(rendered, containers(deployment_of(rendered, "gateway"))[0])["AUTOLOADER_HTTP_PORT"]
    )
    assert policy_allows(policies, pod_labels("gateway"), "ingress", gateway_port, None), "gateway unreachable"
    assert not policy_allows(policies, pod_labels("tracker"), "ingress", ports["tracker"], None), "tracker is open"
    assert not policy_allows(policies, pod_labels("control"), "ingress", ports["control"], pod_labels("executor"))
    # The executor, Spark's driver: object stores, a standalone master and the cluster's executors.
    for port in (443, 9000, 7077):
        assert policy_allows(policies, pod_labels("executor"), "egress", port, None), f"executor egress {port}"
    conf, _ = spark_conf(rendered)
    for key in ("spark.driver.port", "spark.blockManager.port"):
        port = int(conf[key])
        assert policy_allows(policies, pod_labels("executor"), "ingress", port, {"spark-role": "executor"}), key
        executor = containers(deployment_of(rendered, "executor"))[0]
        assert port in {p["containerPort"] for p in executor["ports"]}, f"{key} {port} is not a container port"


# --------------------------------------------------------------------------------------------------- Spark setup


def test_executor_is_ready_for_a_cluster(rendered: tuple[Doc, ...]) -> None:
    conf, master = spark_conf(rendered)
    assert all(isinstance(v, str) for v in conf.values()), "AUTOLOADER_SPARK_CONF values must be strings"
    assert conf["spark.driver.bindAddress"] == "0.0.0.0"
    assert conf["spark.driver.host"] == "$(POD_IP)", "cluster executors must reach the driver by the pod's IP"
    assert conf["spark.driver.port"] and conf["spark.blockManager.port"]
    assert master == "local[*]" or master.startswith(("spark://", "k8s://"))


def test_production_uses_a_standalone_master() -> None:
    needs_kubectl()
    docs = render(K8S / "overlays" / "production")
    _, master = spark_conf(docs)
    assert master.startswith("spark://")
    assert deployment_of(docs, "executor")["spec"]["replicas"] > 1


def test_k8s_spark_overlay_can_create_executor_pods() -> None:
    needs_kubectl()
    docs = render(K8S / "overlays" / "k8s-spark")
    conf, master = spark_conf(docs)
    assert master.startswith("k8s://https://")
    assert conf["spark.kubernetes.driver.pod.name"] == "$(POD_NAME)"
    spec = pod_spec(deployment_of(docs, "executor"))
    account = spec["serviceAccountName"]
    assert spec["automountServiceAccountToken"] is True
    named(docs, "ServiceAccount", account)
    bindings = [
        b
        for b in of_kind(docs, "RoleBinding")
        if any(s["kind"] == "ServiceAccount" and s["name"] == account for s in b["subjects"])
    ]
    assert bindings, f"no RoleBinding for {account}"
    role = named(docs, "Role", bindings[0]["roleRef"]["name"])
    pods = [r for r in role["rules"] if "pods" in r["resources"]]
    assert pods and {"create", "get", "list", "watch", "delete"} <= set(pods[0]["verbs"])
    policies = of_kind(docs, "NetworkPolicy")
    assert policy_allows(policies, pod_labels("executor"), "egress", 6443, None), "no route to the API server"
    spark_pod = {"spark-role": "executor"}
    assert policy_allows(policies, spark_pod, "egress", int(conf["spark.driver.port"]), pod_labels("executor"))


# ---------------------------------------------------------------------------------------------------- Dockerfile


def dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    """Stage name -> its instructions (keyword, arguments), with line continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", arguments.strip(), re.IGNORECASE)
            assert match and match.group(2), f"unnamed stage: {line}"
            current = stages.setdefault(match.group(2), [])
            current.append(("FROM", match.group(1)))
        elif current is not None:
            current.append((keyword, arguments.strip()))
    return stages


def effective(stages: dict[str, list[tuple[str, str]]], stage: str) -> Iterator[tuple[str, str]]:
    """The instructions that apply to a stage, its parent stages' first."""
    instructions = stages[stage]
    parent = instructions[0][1]
    if parent in stages:
        yield from effective(stages, parent)
    yield from instructions[1:]


def stage_env(stages: dict[str, list[tuple[str, str]]], stage: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, arguments in effective(stages, stage):
        if keyword == "ENV":
            env.update(dict(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", arguments)))
    return env


@pytest.mark.parametrize("service", SERVICES)
def test_image_runs_as_non_root_with_a_healthcheck(service: str) -> None:
    stages = dockerfile_stages()
    instructions = list(effective(stages, service))
    users = [a for k, a in instructions if k == "USER"]
    assert users, f"{service}: no USER"
    assert users[-1].split(":")[0] not in ("root", "0"), f"{service} runs as root"
    checks = [a for k, a in instructions if k == "HEALTHCHECK"]
    assert checks and not checks[-1].upper().startswith("NONE"), f"{service}: no HEALTHCHECK"
    script = re.search(r"/app/(deploy/\S+\.py)", checks[-1])
    assert script and (ROOT / script.group(1)).is_file()
    kind = "grpc" if service in GRPC_SERVICES else "http"
    assert f'"{kind}"' in checks[-1], f"{service} should check {kind} health"
    assert any(k == "CMD" and (f"services.{service}" in a or f'"{service}"' in a) for k, a in instructions)
    env = stage_env(stages, service)
    assert all(n in settings_names() for n in env if n.startswith("AUTOLOADER_")), env


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    build = dockerfile_stages()["build"]
    copies = [(i, a) for i, (k, a) in enumerate(build) if k == "COPY"]
    first_pyproject = next(i for i, a in copies if "pyproject.toml" in a)
    first_source = next(i for i, a in copies if re.search(r"\b(services|gateway|autoloader)/", a))
    installs = [i for i, (k, a) in enumerate(build) if k == "RUN" and "pip install" in a]
    assert first_pyproject < installs[0] < first_source
    # The stubs come from protos/ through setup.py at install time; the protos and generator must be there.
    stub_install = next(i for i in installs if i > first_source)
    copied = " ".join(a for i, a in copies if i < stub_install)
    assert "protos/" in copied and "scripts/" in copied and "setup.py" in copied


def test_executor_image_has_java_and_the_jars() -> None:
    stages = dockerfile_stages()
    jar_stage = next(
        name for name, body in stages.items() if any("services.executor.jars" in a for k, a in body if k == "RUN")
    )
    cache = stage_env(stages, jar_stage)["AUTOLOADER_JAR_CACHE"]
    executor = list(effective(stages, "executor"))
    assert any(k == "COPY" and f"--from={jar_stage}" in a and cache in a for k, a in executor)
    assert stage_env(stages, "executor")["AUTOLOADER_JAR_CACHE"] == cache
    assert any(k == "RUN" and "openjdk-17" in a for k, a in executor), "the executor needs a Java 17 runtime"
    for service in ("control", "tracker", "gateway"):
        assert not any("openjdk" in a for _, a in effective(stages, service)), f"{service} needs no Java"


def test_build_context_has_what_the_dockerfile_copies() -> None:
    ignored = [
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {".venv", "node_modules", "build", "spark-warehouse", ".git"} <= set(ignored)
    for body in dockerfile_stages().values():
        for keyword, arguments in body:
            if keyword != "COPY" or "--from=" in arguments:
                continue
            for source in arguments.split()[:-1]:
                path = source.rstrip("/")
                assert (ROOT / path).exists(), f"COPY {source}: not in the repository"
                assert not any(path == i or path.startswith(i + "/") for i in ignored), f"{source} is ignored"


# ---------------------------------------------------------------------------------------------- Docker Compose


@cache
def compose() -> Doc:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


def compose_env(service: Doc) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: str(v) for k, v in env.items()}


def test_compose_depends_on_existing_healthy_services() -> None:
    services = compose()["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on should name conditions"
        for target, condition in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            assert set(services[target].get("profiles", [])) <= set(service.get("profiles", [])), (
                f"{name} depends on {target}, which only runs in a profile"
            )
            wanted = condition["condition"]
            assert wanted in ("service_healthy", "service_completed_successfully"), f"{name} -> {target}"
            if wanted == "service_healthy":
                assert "test" in services[target].get("healthcheck", {}), f"{target} has no healthcheck"
            else:
                assert services[target].get("restart") == "no", f"{target} is a one-shot; do not restart it"


def test_compose_runs_the_four_services_healthy() -> None:
    services = compose()["services"]
    stages = dockerfile_stages()
    for name in SERVICES:
        service = services[name]
        assert service["build"]["target"] in stages
        context = (COMPOSE.parent / service["build"]["context"]).resolve()
        assert context == ROOT and (context / service["build"]["dockerfile"]) == DOCKERFILE
        test = " ".join(service["healthcheck"]["test"])
        assert ("grpc" if name in GRPC_SERVICES else "http") in test
    assert {"postgres", "minio", "create-buckets"} <= set(services)
    assert "mc" in services["create-buckets"]["image"]
    cluster = [n for n, s in services.items() if "cluster" in s.get("profiles", [])]
    assert {"spark-master", "spark-worker"} <= set(cluster)


def test_compose_variables_exist_in_settings() -> None:
    for name, service in compose()["services"].items():
        unknown = [k for k in compose_env(service) if k.startswith("AUTOLOADER_") and k not in settings_names()]
        assert not unknown, f"{name}: no settings field reads {unknown}"


def test_compose_addresses_and_spark_conf() -> None:
    services = compose()["services"]
    for name, service in services.items():
        env = compose_env(service)
        for key, value in env.items():
            if key.startswith("AUTOLOADER_") and key.endswith("_ADDRESS"):
                host, _, port = value.rpartition(":")
                assert host in services, f"{name}: {key}={value}"
                assert compose_env(services[host])["AUTOLOADER_GRPC_PORT"] == port, f"{name}: {key}={value}"
        if "AUTOLOADER_SPARK_CONF" in env:
            conf = json.loads(env["AUTOLOADER_SPARK_CONF"])
            assert all(isinstance(v, str) for v in conf.values())
            assert conf["spark.driver.host"] == name and conf["spark.driver.bindAddress"] == "0.0.0.0"


def compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


def test_compose_file_is_valid_for_compose() -> None:
    cli = compose_cli()
    if cli is None:
        pytest.skip("no Compose CLI (docker compose or docker-compose) installed")
    env_file = DEPLOY / ".env.example"
    for profile in ([], ["--profile", "cluster"]):
        result = subprocess.run(
            [*cli, "-f", str(COMPOSE), "--env-file", str(env_file), *profile, "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
