"""HolmesGPT 0.45 loads what the queue plugins (rabbitmq, kafka) add to the example cluster.

The engine runs the built-ins plus the plugins (as ``make_plugin_set`` classes)
over ``examples/cluster`` with the plugins' credentials configured; the
HolmesGPT document is then loaded by ``holmes_probe.py`` under the holmes
interpreter (see ``test_holmesgpt_loads.py``): no invalid toolset, no config
the toolsets' config classes reject, and each toolset built with its tools.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from dyntoolset_kafka import KafkaDetector
from dyntoolset_rabbitmq import RabbitMQDetector
from test_holmesgpt_loads import holmes_python, probe

from dyntoolset import Engine, load_config_text, read_manifests, service_from_object
from dyntoolset.model import Discovered
from dyntoolset.render.holmesgpt import HolmesGPTRenderer
from dyntoolset.testing import make_plugin_set

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cluster"
# RABBITMQ_PASSWORD and KAFKA_PASSWORD are set in the probe's environment
# (test_holmesgpt_loads.probe).
CONFIG = (
    "detectors:\n"
    "  rabbitmq:\n    config:\n"
    "      username: holmes\n      password_env: RABBITMQ_PASSWORD\n"
    "  kafka:\n    config:\n"
    "      username: holmes\n      password_env: KAFKA_PASSWORD\n"
)
PLUGIN_FINDS = {"messaging/production": "rabbitmq", "kafka/my-cluster-kafka-bootstrap": "kafka"}


def _discovered() -> list[Discovered]:
    plugins = make_plugin_set(RabbitMQDetector, KafkaDetector)
    engine = Engine(load_config_text(CONFIG, "<test>", plugins), plugins)
    report = read_manifests([str(EXAMPLE)])
    services = [service_from_object(o.obj) for o in report.objects if o.kind == "Service"]
    return list(engine.cycle(services, formats=["holmesgpt"], configmap=False).emitted)


def test_the_plugins_find_their_services_and_the_built_ins_keep_theirs() -> None:
    taken = {d.key: d.detector for d in _discovered()}
    assert {k: v for k, v in taken.items() if v in PLUGIN_FINDS.values()} == PLUGIN_FINDS
    # The seven backends of the built-ins stay with them.
    assert len(taken) == 7 + len(PLUGIN_FINDS)


def test_holmesgpt_loads_the_queue_toolsets(tmp_path: Path) -> None:
    document = HolmesGPTRenderer().render(_discovered())
    toolsets: dict[str, Any] = yaml.safe_load(document)["toolsets"]
    assert toolsets["rabbitmq/core"] == {
        "enabled": True,
        "config": {
            "clusters": [
                {
                    "id": "messaging/production",
                    "api_url": "http://production.messaging.svc.cluster.local:15672",
                    "username": "holmes",
                    "password": "{{ env.RABBITMQ_PASSWORD }}",
                }
            ]
        },
    }

    assert toolsets["kafka/admin"] == {
        "enabled": True,
        "config": {
            "clusters": [
                {
                    "name": "kafka/my-cluster-kafka-bootstrap",
                    "broker": "my-cluster-kafka-bootstrap.kafka.svc.cluster.local:9092",
                    "security_protocol": "SASL_PLAINTEXT",
                    "sasl_mechanism": "SCRAM-SHA-512",
                    "username": "holmes",
                    "password": "{{ env.KAFKA_PASSWORD }}",
                }
            ]
        },
    }

    report = probe(holmes_python(), tmp_path, document)

    assert report["invalid"] == {}
    assert report["missing"] == []
    assert report["config_errors"] == {}
    rabbitmq = report["loaded"]["rabbitmq/core"]
    assert rabbitmq["class"] == "RabbitMQToolset"
    assert rabbitmq["error"] is None
    assert "get_rabbitmq_cluster_status" in rabbitmq["tools"]
    kafka = report["loaded"]["kafka/admin"]
    assert kafka["class"] == "KafkaToolset"
    assert kafka["error"] is None
    assert "list_kafka_consumers" in kafka["tools"]
