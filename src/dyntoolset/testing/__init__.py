"""Helpers for testing detectors, renderers and controllers built on dyntoolset.

For plugin authors and for dyntoolset's own tests. The library itself never
imports this package. Typical detector test::

    from dyntoolset.testing import check_detector, make_service, run_detector

    def test_contract():
        check_detector(LokiDetector)

    def test_finds_loki():
        svc = make_service("loki", "logging", labels={"app.kubernetes.io/name": "loki"},
                           ports=[(3100, "http-metrics")])
        found = run_detector(LokiDetector, svc)
        assert found.endpoint == "http://loki.logging.svc.cluster.local:3100"

The Kubernetes API emulator lives in :mod:`dyntoolset.testing.apiserver`; its
pytest fixtures in :mod:`dyntoolset.testing.pytest_plugin`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
import yaml

from dyntoolset.config import load_config_text
from dyntoolset.convert import structure
from dyntoolset.detector import DetectContext, Detector
from dyntoolset.errors import ConfigError, InvalidService
from dyntoolset.model import Discovered, Port, Service, ToolsetSpec
from dyntoolset.pipeline import Engine
from dyntoolset.plugins import PluginSet, load_plugins, validate_extension
from dyntoolset.renderer import Renderer
from dyntoolset.snapshot import service_from_object
from dyntoolset.urlpolicy import health_path_problem

__all__ = [
    "check_detector",
    "check_entry_point",
    "discover_fixture",
    "fake_distribution",
    "fixture_documents",
    "helm_service",
    "make_engine",
    "make_plugin_set",
    "make_service",
    "on_sys_path",
    "prefilter_problems",
    "run_detector",
    "service_manifest",
]

PortLike = Port | int | tuple[int, str] | tuple[int, str, str]


def _port(spec: PortLike) -> Port:
    if isinstance(spec, Port):
        return spec
    if isinstance(spec, int):
        return Port(port=spec)
    if len(spec) == 2:
        return Port(port=spec[0], name=spec[1])
    return Port(port=spec[0], name=spec[1], app_protocol=spec[2])


def make_service(
    name: str,
    namespace: str = "default",
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    ports: Iterable[PortLike] = ((80, "http"),),
    service_type: str = "ClusterIP",
    cluster_ip: str | None = "10.96.0.10",
) -> Service:
    """A :class:`Service` snapshot; ports as numbers, ``(number, name)`` or :class:`Port`.

    ``cluster_ip=None`` (or ``"None"``, as Kubernetes spells it) makes a
    headless Service; ``""`` means none assigned (an ExternalName Service).
    """
    return Service(
        name=name,
        namespace=namespace,
        labels=MappingProxyType(dict(labels or {})),
        annotations=MappingProxyType(dict(annotations or {})),
        ports=tuple(_port(p) for p in ports),
        type=service_type,
        cluster_ip="None" if cluster_ip is None else cluster_ip,
    )


def helm_service(
    chart: str, version: str, component: str, port: PortLike, namespace: str = "shop"
) -> Service:
    """A Service of an (unrelated) Helm chart, labelled as Helm renders it.

    Release ``<namespace>-<chart>``, Service ``<release>-<component>``, the
    recommended ``app.kubernetes.io/*`` labels, ``helm.sh/chart:
    <chart>-<version>`` and Helm's ownership annotations: the near misses a
    detector's prefilter must keep out (a Bitnami ``redis``, a chart whose
    name only starts like yours).
    """
    release = f"{namespace}-{chart}"
    return make_service(
        f"{release}-{component}",
        namespace,
        labels={
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/instance": release,
            "app.kubernetes.io/managed-by": "Helm",
            "app.kubernetes.io/name": chart,
            "app.kubernetes.io/version": "1.0.0",
            "helm.sh/chart": f"{chart}-{version}",
        },
        annotations={
            "meta.helm.sh/release-name": release,
            "meta.helm.sh/release-namespace": namespace,
        },
        ports=[port],
    )


def service_manifest(service: Service) -> dict[str, Any]:
    """The ``v1/Service`` JSON object for ``service`` (to seed the API emulator)."""
    spec: dict[str, Any] = {
        "type": service.type,
        "ports": [
            {
                "port": p.port,
                "protocol": p.protocol,
                **({"name": p.name} if p.name else {}),
                **({"appProtocol": p.app_protocol} if p.app_protocol else {}),
            }
            for p in service.ports
        ],
    }
    if service.cluster_ip:
        spec["clusterIP"] = service.cluster_ip
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service.name,
            "namespace": service.namespace,
            "labels": dict(service.labels),
            "annotations": dict(service.annotations),
        },
        "spec": spec,
    }


def run_detector(
    detector: type[Detector[Any]],
    service: Service,
    config: Mapping[str, Any] | None = None,
    *,
    cluster_domain: str = "cluster.local",
    health_path: str | None = None,
    allowed_hosts: Sequence[str] = (),
    health_check: str | None = None,
) -> Discovered | None:
    """Run one detector on one Service as the engine would, exceptions included.

    ``config`` is the detector's ``config:`` block, structured through the
    real (strict) configuration converter: a bad value raises
    :class:`ConfigError` with the same ``$.path: message`` text users see.
    """
    settings, problems = structure(
        dict(config or {}), detector.Settings, f"$.detectors.{detector.name}.config"
    )
    if problems:
        raise ConfigError(problems)
    instance = detector()
    ctx: DetectContext[Any] = DetectContext(
        settings=settings,
        cluster_domain=cluster_domain,
        health_path=health_path if health_path is not None else instance.health_path,
        health_path_configured=health_path is not None,
        allowed_hosts=tuple(allowed_hosts),
        health_check=health_check or instance.health_check,
    )
    found = instance.detect(service, ctx)
    if found is None:
        return None
    return attrs.evolve(found, toolsets=tuple(instance.toolsets(found, settings)))


def _probe_services() -> list[Service]:
    """Awkward Services every detector must handle without crashing."""
    odd = "x\n: #!!python/object &a *a" + "y" * 10_000
    return [
        make_service("plain", ports=()),
        make_service("headless", cluster_ip="None", ports=[(9090, "web")]),
        make_service("many", ports=[(p, f"p{p}") for p in range(1, 40)]),
        make_service("odd", labels={"app": odd}, annotations={"kubernaut.io/toolset": odd}),
        make_service(
            "opted-in",
            annotations={"kubernaut.io/toolset": "enabled", "kubernaut.io/toolset-type": "x"},
        ),
        make_service("web", labels={"app.kubernetes.io/name": "nginx"}, ports=[(443, "https")]),
    ]


# What a non-HTTP backend's endpoint looks like: "<scheme>://<host>:<port>" (Kafka's
# "kafka://bootstrap.ns.svc.cluster.local:9092"), no path.
_NON_HTTP_ENDPOINT = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s@?#:]+:[0-9]+")


def _endpoint_problem(endpoint: str, health_check: str) -> str | None:
    """Why ``endpoint`` breaks the contract, or ``None``.

    A backend checked over HTTP gives an http(s) base URL without a trailing
    ``/``; one that does not speak HTTP (``health_check`` ``tcp`` or
    ``none``) may name its own protocol instead: ``<scheme>://<host>:<port>``.
    """
    if endpoint.startswith(("http://", "https://")) and not endpoint.endswith("/"):
        return None
    if health_check == "http":
        return f"endpoint {endpoint!r} must be an http(s) URL without trailing /"
    if _NON_HTTP_ENDPOINT.fullmatch(endpoint):
        return None
    return (
        f"endpoint {endpoint!r} must be an http(s) URL without trailing / "
        f"or <scheme>://<host>:<port> (health_check {health_check!r})"
    )


def check_detector(detector: type[Detector[Any]], samples: Sequence[Service] = ()) -> None:
    """Assert that ``detector`` honours the :class:`Detector` contract.

    Checks the class attributes (as plugin loading does), that its
    ``Settings`` have defaults, and that on ``samples`` plus a set of awkward
    Services ``detect`` returns ``None``, a well-formed :class:`Discovered`
    or raises :class:`InvalidService`, the same answer twice (purity), and
    that ``toolsets`` returns :class:`ToolsetSpec` values. Raises
    ``AssertionError`` listing every violation.
    """
    problems: list[str] = []
    problem = validate_extension("detector", detector)
    if problem:
        raise AssertionError(problem)
    try:
        detector.Settings()
    except TypeError as exc:
        problems.append(
            f"{detector.__name__}.Settings() needs arguments; give every field a default ({exc})"
        )
    for service in [*samples, *_probe_services()]:
        try:
            first = run_detector(detector, service)
            second = run_detector(detector, service)
        except InvalidService:
            continue
        except Exception as exc:  # noqa: BLE001 - reporting is the point
            problems.append(f"detect({service.key}) raised {exc!r}")
            continue
        if first != second:
            problems.append(f"detect({service.key}) is not deterministic")
        if first is None:
            continue
        if first.detector != detector.name:
            problems.append(f"Discovered.detector is {first.detector!r}, not {detector.name!r}")
        endpoint_problem = _endpoint_problem(first.endpoint, detector.health_check)
        if endpoint_problem:
            problems.append(endpoint_problem)
        path_problem = health_path_problem(first.health_path)
        if path_problem:
            problems.append(path_problem)
        if not first.toolsets or not all(isinstance(t, ToolsetSpec) for t in first.toolsets):
            problems.append(f"toolsets() for {service.key} must return ToolsetSpec values")
    problems.extend(prefilter_problems(detector, [*samples, *_probe_services()]))
    if problems:
        raise AssertionError("\n".join(problems))


def _variants(service: Service) -> Iterator[Service]:
    """``service`` and each of its one-step reductions: one label, one
    annotation or one port name fewer.

    A detector that takes a Service on either of two labels must still take
    it with one of them gone, and the prefilter must then admit it too.
    """
    yield service
    for key in service.labels:
        labels = {k: v for k, v in service.labels.items() if k != key}
        yield attrs.evolve(service, labels=MappingProxyType(labels))
    for key in service.annotations:
        annotations = {k: v for k, v in service.annotations.items() if k != key}
        yield attrs.evolve(service, annotations=MappingProxyType(annotations))
    for position, port in enumerate(service.ports):
        if port.name:
            ports = list(service.ports)
            ports[position] = attrs.evolve(port, name="")
            yield attrs.evolve(service, ports=tuple(ports))


def prefilter_problems(detector: type[Detector[Any]], samples: Sequence[Service]) -> list[str]:
    """Where ``detector`` breaks its :class:`~dyntoolset.prefilter.Prefilter` promise.

    For each sample and each of its one-step reductions (a label, an
    annotation or a port name removed) that ``detect`` matches or refuses as
    invalid, the prefilter must admit the Service: discovery never shows the
    detector a Service it does not admit. Empty for a detector without a
    prefilter. :func:`check_detector` runs it on its samples.
    """
    prefilter = detector.prefilter
    if prefilter is None:
        return []
    problems: list[str] = []
    for sample in samples:
        for service in _variants(sample):
            if prefilter.admits(service):
                continue
            try:
                found = run_detector(detector, service)
            except InvalidService:
                verdict = "refuses as invalid"
            except Exception:  # noqa: BLE001 - check_detector reports the exception itself
                continue
            else:
                if found is None:
                    continue
                verdict = "matches"
            problems.append(
                f"{detector.__name__}.prefilter does not admit a Service that detect() "
                f"{verdict} ({service.key}, labels {dict(service.labels)}, annotations "
                f"{sorted(service.annotations)}, ports {[p.name for p in service.ports]}): "
                f"add the condition it meets, or discovery never shows it to the detector"
            )
    return problems


def fixture_documents(directory: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """``(id, document)`` for every document of every ``*.yaml`` file in ``directory``.

    Files are read in name order and ``id`` is ``<file stem>:<namespace>/<name>``
    (``default`` when the document names no namespace), for
    ``pytest.mark.parametrize(..., ids=...)``. A detector's fixture is a
    Service manifest as a chart or an operator renders it, plus an ``expect:``
    block the test asserts (the API server would drop that unknown field).
    """
    documents = []
    for path in sorted(Path(directory).glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document:
                meta = document["metadata"]
                key = f"{meta.get('namespace', 'default')}/{meta['name']}"
                documents.append((f"{path.stem}:{key}", document))
    return documents


def discover_fixture(engine: Engine, document: Mapping[str, Any]) -> Discovered | None:
    """Run a fixture document (see :func:`fixture_documents`) through ``engine``.

    Checks the ``expect:`` keys every detector fixture shares and returns
    what was found, for the plugin's own assertions:

    * ``none: <why>``: a near miss; asserts nothing is discovered, returns ``None``;
    * otherwise asserts exactly one Service is discovered, and that its
      ``detector`` (when given), ``endpoint`` and ``port`` equal the block's.
    """
    expect = document["expect"]
    result = engine.discover([service_from_object(dict(document))])
    if "none" in expect:
        if result.discovered:
            raise AssertionError(f"near miss ({expect['none']}) was matched: {result.discovered}")
        return None
    if len(result.discovered) != 1:
        raise AssertionError(f"expected one Service found, got {result.discovered}")
    (found,) = result.discovered
    port = found.port.port if found.port is not None else None
    seen = {"detector": found.detector, "endpoint": found.endpoint, "port": port}
    wrong = {k: (expect[k], v) for k, v in seen.items() if k in expect and expect[k] != v}
    if wrong:
        raise AssertionError(
            "; ".join(f"{k}: expected {want!r}, found {got!r}" for k, (want, got) in wrong.items())
        )
    return found


def check_entry_point(distribution: str, detector: type[Detector[Any]]) -> None:
    """Assert that the installed ``distribution`` registers ``detector`` for dyntoolset.

    Exactly one entry point in the ``dyntoolset`` group, named after the
    detector and pointing at its module, and :func:`dyntoolset.load_plugins`
    loads it from that distribution alone without a failure.
    """
    dist = importlib.metadata.distribution(distribution)
    entry_points = [(ep.name, ep.value) for ep in dist.entry_points if ep.group == "dyntoolset"]
    wanted = (detector.name, detector.__module__.split(".")[0])
    if entry_points != [wanted]:
        raise AssertionError(
            f"{distribution}: dyntoolset entry points {entry_points}, expected [{wanted}]"
        )
    plugins = load_plugins(only=[distribution])
    if plugins.failures:
        raise AssertionError(f"{distribution} failed to load: {plugins.failures}")
    info = plugins.detectors.get(detector.name)
    if info is None or (info.cls, info.distribution) != (detector, distribution):
        raise AssertionError(f"{distribution} does not provide {detector.__qualname__}: {info}")


def make_engine(plugins: PluginSet, config: str = "") -> Engine:
    """An :class:`Engine` over ``plugins`` configured by the YAML text ``config``."""
    return Engine(load_config_text(config, "<test>", plugins), plugins)


def make_plugin_set(
    *detectors: type[Detector[Any]],
    renderers: Iterable[type[Renderer]] = (),
    builtin_detectors: bool = True,
    builtin_renderers: bool = True,
) -> PluginSet:
    """An isolated :class:`PluginSet`: the built-ins plus the given classes.

    ``builtin_detectors`` / ``builtin_renderers`` keep dyntoolset's own
    detectors (prometheus, grafana, ...) and renderers (holmesgpt,
    kubernaut); turn one off to test your classes alone. Third-party
    distributions installed in the environment are *not* loaded, so tests
    see the same plugins on every machine.
    """
    plugin_set = load_plugins(only=[])
    if not builtin_detectors:
        plugin_set.detectors.clear()
    if not builtin_renderers:
        plugin_set.renderers.clear()
    for cls in detectors:
        plugin_set.add_detector(cls, plugin="test")
    for renderer in renderers:
        plugin_set.add_renderer(renderer, plugin="test")
    return plugin_set


def fake_distribution(
    root: Path,
    name: str,
    entry_points: Mapping[str, str],
    *,
    version: str = "1.0",
    modules: Mapping[str, str] | None = None,
) -> importlib.metadata.Distribution:
    """Write an installed-looking distribution under ``root`` and return it.

    ``entry_points`` maps entry-point names to modules (``dyntoolset`` group);
    ``modules`` maps module names to source code written beside it. Put
    ``root`` on ``sys.path`` (see :func:`on_sys_path`) to make them importable.
    """
    dist_info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = ["[dyntoolset]", *(f"{k} = {v}" for k, v in entry_points.items())]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for module, source in (modules or {}).items():
        (root / f"{module}.py").write_text(source, encoding="utf-8")
    return importlib.metadata.PathDistribution(dist_info)


@contextlib.contextmanager
def on_sys_path(path: Path) -> Iterator[None]:
    """Temporarily put ``path`` first on ``sys.path`` and forget modules imported from it."""
    before = set(sys.modules)
    sys.path.insert(0, str(path))
    try:
        yield
    finally:
        sys.path.remove(str(path))
        root = Path(path).resolve()
        for name in set(sys.modules) - before:
            module_file = getattr(sys.modules[name], "__file__", None)
            if module_file and root in Path(module_file).resolve().parents:
                del sys.modules[name]
