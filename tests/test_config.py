"""Configuration loading: schema, strictness, defaults, and exact error text."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from dyntoolset.config import MAX_CONFIG_BYTES, load_config, parse_config
from dyntoolset.errors import ConfigError
from dyntoolset.testing import make_plugin_set
from dyntoolset.values import parse_duration
from tests.helpers import BetaDetector, LabelDetector, ListRenderer, PickyDetector

SEED = Path(__file__).parent / "fixtures" / "seed"


@pytest.fixture
def plugins():
    return make_plugin_set(
        LabelDetector,
        BetaDetector,
        PickyDetector,
        renderers=[ListRenderer],
        builtin_detectors=False,
        builtin_renderers=False,
    )


def problems_of(text: str, plugins) -> list[str]:
    with pytest.raises(ConfigError) as info:
        from dyntoolset.config import load_config_text

        # The test plugin set has one renderer; name it unless the text sets output itself.
        prefix = "" if text.startswith("output:") else "output: {formats: [lines]}\n"
        load_config_text(prefix + text, "test.yaml", plugins)
    return [str(p) for p in info.value.problems]


def test_defaults_enable_every_detector_at_its_default_priority(plugins):
    config = load_config(None, plugins)
    assert [(d.name, d.priority) for d in config.enabled_detectors()] == [
        ("picky", 5),
        ("alpha", 10),
        ("beta", 20),
    ]
    assert config.cluster_domain == "cluster.local"
    assert config.resync_interval == 300.0
    assert config.output.name == "kubernaut-toolset-config"
    assert config.output.namespace == "kubernaut-system"
    assert config.source == "defaults"


def test_a_missing_file_named_explicitly_is_an_error_not_the_defaults(plugins, tmp_path):
    # A typo in the path once ran every detector with the defaults, silently.
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.yaml", plugins)
    assert info.value.source == str(tmp_path / "absent.yaml")
    assert [str(p) for p in info.value.problems] == [
        "$: no such file (leave the path out to use the defaults)"
    ]
    assert load_config(None, plugins).source == "defaults"  # only "no path" means defaults


def test_empty_file_and_empty_detectors_section_mean_defaults(plugins):
    for text in ("", "detectors:\n", "detectors: {}\n"):
        raw, problems = parse_config(text)
        assert problems == [] and raw is not None


def test_priority_orders_detectors_ties_broken_by_name(plugins):
    from dyntoolset.config import load_config_text

    config = load_config_text(
        "output: {formats: [lines]}\n"
        "detectors:\n  beta: {priority: 1}\n  alpha: {priority: 1}\n  picky: {enabled: false}\n",
        "t",
        plugins,
    )
    assert [d.name for d in config.enabled_detectors()] == ["alpha", "beta"]
    assert config.detectors["picky"].enabled is False


def test_every_problem_is_reported_at_once_with_exact_text(plugins):
    problems = problems_of(
        "cluster_domain: Cluster.Local\n"
        "resync_interval: 0s\n"
        "bogus: 1\n"
        "health_checks: {mode: fast, concurrency: 0, proxy_connections: 0}\n"
        "detectors:\n"
        "  alpha:\n"
        '    enabled: "false"\n'
        "    priority: high\n"
        "    health_check: {path: no-slash, timeout: -1, retries: -1, extra: 1}\n"
        '    namespaces: ["prod-*", "!kube-*", "Bad_NS"]\n'
        '    required_annotations: ["kubernaut.io/toolset | x.io/a=b", "bad key!"]\n',
        plugins,
    )
    assert problems == [
        "$.cluster_domain: 'Cluster.Local' is not a valid DNS name (lowercase letters, digits, '-', '.')",
        "$.resync_interval: must be a positive duration, got '0s'",
        "$.bogus: unknown key; expected one of: api, cluster_domain, detectors, health_checks, "
        "output, resync_interval",
        "$.health_checks.mode: expected one of 'auto', 'direct', 'apiserver-proxy', got 'fast'",
        "$.health_checks.concurrency: must be between 1 and 1000000000, got 0",
        "$.health_checks.proxy_connections: must be between 1 and 1000000000, got 0",
        "$.detectors.alpha.enabled: expected bool (true or false), got 'false'",
        "$.detectors.alpha.priority: expected int, got 'high'",
        "$.detectors.alpha.health_check.path: health path 'no-slash' must start with '/'",
        "$.detectors.alpha.health_check.timeout: must be a positive duration, got -1",
        "$.detectors.alpha.health_check.retries: must be between 0 and 1000, got -1",
        "$.detectors.alpha.health_check.extra: unknown key; expected one of: kind, path, retries, timeout",
        "$.detectors.alpha.namespaces[2]: invalid namespace pattern 'Bad_NS': use lowercase letters, "
        "digits, '-', '*' and '?', optionally prefixed by '!' to exclude",
        "$.detectors.alpha.required_annotations[1]: invalid annotation key 'bad key!': the name must "
        "be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter "
        "or digit",
    ]


def test_schema_and_plugin_problems_are_reported_together(plugins):
    problems = problems_of(
        "resync_interval: soon\ndetectors:\n  nope: {}\n  alpha: {enabled: 1}\n  picky: {config: {mode: 1}}\n",
        plugins,
    )
    assert problems == [
        "$.resync_interval: expected a duration such as 5s, 500ms, 1m30s or a number of seconds, got 'soon'",
        "$.detectors.alpha.enabled: expected bool (true or false), got 1",
        "$.detectors.nope: unknown detector 'nope'; installed detectors: alpha, beta, picky",
        "$.detectors.picky.config.mode: expected str, got 1",
    ]


def test_resolution_problems_are_listed_together(plugins):
    problems = problems_of(
        "detectors:\n  jaeger: {enabled: false}\n  picky:\n    config: {mode: 5, zzz: 1}\n",
        plugins,
    )
    assert problems == [
        "$.detectors.jaeger: unknown detector 'jaeger'; installed detectors: alpha, beta, picky",
        "$.detectors.picky.config.mode: expected str, got 5",
        "$.detectors.picky.config.zzz: unknown key; expected one of: limit, mode",
    ]


def test_error_message_names_the_source_and_counts(plugins):
    with pytest.raises(ConfigError) as info:
        from dyntoolset.config import load_config_text

        load_config_text("detectors: {alpha: {priority: high, enabled: 1}}", "cfg.yaml", plugins)
    assert str(info.value).splitlines() == [
        "invalid configuration in cfg.yaml (2 problems):",
        "  $.detectors.alpha.enabled: expected bool (true or false), got 1",
        "  $.detectors.alpha.priority: expected int, got 'high'",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a: [",
            "$: invalid YAML at line 1, column 5: expected the node content, but found '<stream end>'",
        ),
        ("a: 1\n b: 2", "$: invalid YAML at line 2, column 3: mapping values are not allowed here"),
        ("- 1", "$: expected a mapping, got [1]"),
    ],
)
def test_document_level_problems(text, expected):
    raw, problems = parse_config(text)
    assert raw is None
    assert [str(p) for p in problems] == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("detectors: 5", "$.detectors: expected a mapping, got 5"),
        ("detectors:\n  alpha: 3", "$.detectors.alpha: expected a mapping, got 3"),
        (
            "detectors:\n  alpha: {namespaces: monitoring}",
            "$.detectors.alpha.namespaces: expected a list of strings, got 'monitoring'",
        ),
        ("output: {formats: lines}", "$.output.formats: expected a list, got 'lines'"),
        ("output: {formats: [lines, lines]}", "$.output.formats: lists a format more than once"),
        (
            "output: {formats: [yaml]}",
            "$.output.formats[0]: unknown output format 'yaml'; installed: lines",
        ),
        (
            "output: {name: Bad_Name}",
            "$.output.name: 'Bad_Name' is not a valid DNS name (lowercase letters, digits, '-', '.')",
        ),
        (
            "detectors: {alpha: {priority: true}}",
            "$.detectors.alpha.priority: expected int, got True",
        ),
        (
            "detectors: {alpha: {priority: -1}}",
            "$.detectors.alpha.priority: must be between 0 and 1000000, got -1",
        ),
        (
            "detectors: {alpha: {health_check: {timeout: 5x}}}",
            "$.detectors.alpha.health_check.timeout: expected a duration such as 5s, 500ms, 1m30s or a number of seconds, got '5x'",
        ),
        (
            "detectors: {alpha: {health_check: {path: /a/../b}}}",
            "$.detectors.alpha.health_check.path: health path '/a/../b' must not contain '..'",
        ),
        (
            "detectors: {picky: {config: {mode: a}, plugin: {config: {mode: b}}}}",
            "$.detectors.picky: set the detector's settings in 'config' or 'plugin.config', not both",
        ),
        (
            "detectors: {picky: {plugin: {config: {limit: '3'}}}}",
            "$.detectors.picky.plugin.config.limit: expected int, got '3'",
        ),
        (
            "health_checks: {include_unhealthy: 'no'}",
            "$.health_checks.include_unhealthy: expected bool (true or false), got 'no'",
        ),
        (
            "health_checks: {allowed_hosts: ['Example.com']}",
            "$.health_checks.allowed_hosts[0]: 'Example.com' is not a host name pattern: use "
            "lowercase letters, digits, '-', '.' and '*' wildcards, like '*.example.com'",
        ),
        (
            "health_checks: {allowed_networks: ['10.0.0.0/33']}",
            "$.health_checks.allowed_networks[0]: '10.0.0.0/33' is not an IP network such as "
            "127.0.0.0/8 or ::1",
        ),
    ],
)
def test_single_problem_text(plugins, text, expected):
    assert problems_of(text, plugins) == [expected]


def test_yaml_alias_bomb_is_refused(plugins):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(12)
    )
    problems = problems_of(bomb, plugins)
    assert problems == [
        "$: invalid YAML at line 6, column 8: aliases expand this document by more than "
        "10000 nodes (a 'billion laughs' document); write the values out instead"
    ]


def test_oversized_file_is_refused_before_parsing(plugins, tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("#" * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigError) as info:
        load_config(big, plugins)
    assert [str(p) for p in info.value.problems] == [
        f"$: file is larger than {MAX_CONFIG_BYTES} bytes"
    ]


def test_unreadable_and_non_utf8_files_are_errors_not_defaults(plugins, tmp_path):
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary, plugins)
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(tmp_path, plugins)  # a directory


def test_detector_settings_are_structured_by_its_own_class(plugins):
    from dyntoolset.config import load_config_text

    config = load_config_text(
        "output: {formats: [lines]}\ndetectors: {picky: {config: {mode: loose, limit: 7}}}",
        "t",
        plugins,
    )
    settings = config.detectors["picky"].settings
    assert (settings.mode, settings.limit) == ("loose", 7)
    plugin_form = load_config_text(
        "output: {formats: [lines]}\ndetectors: {picky: {plugin: {config: {mode: loose}}}}",
        "t",
        plugins,
    )
    assert plugin_form.detectors["picky"].settings.mode == "loose"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(5, 5.0), (0.5, 0.5), ("5s", 5.0), ("500ms", 0.5), ("1m30s", 90.0), ("2h", 7200.0)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_seed_examples_are_accepted_as_written(plugins):
    builtin = make_plugin_set()
    for name in ("ac-037-01.yaml", "ac-038-01.yaml"):
        config = load_config(SEED / name, builtin)
        assert config.source.endswith(name)
    ac037 = load_config(SEED / "ac-037-01.yaml", builtin)
    assert [d.name for d in ac037.enabled_detectors()] == ["prometheus", "grafana", "custom"]
    ac038 = load_config(SEED / "ac-038-01.yaml", builtin)
    prom = ac038.detectors["prometheus"].health_check
    assert (prom.path, prom.timeout, prom.retries) == ("/-/healthy", 5.0, 3)
    custom = ac038.detectors["custom"]
    assert custom.namespaces.allows("production") and not custom.namespaces.allows("staging")
    assert custom.required_annotations.satisfied_by(
        {"kubernaut.io/toolset": "enabled", "kubernaut.io/toolset-type": "x"}
    )


def test_seed_plugin_example_loads_and_survives_a_missing_plugin_file(caplog):
    builtin = make_plugin_set()
    caplog.set_level(logging.WARNING)
    config = load_config(SEED / "ac-040-03.yaml", builtin)
    assert "custom-plugin" not in config.detectors
    assert "prometheus" in [d.name for d in config.enabled_detectors()]
    assert [f.plugin for f in builtin.failures] == ["custom-plugin"]
    assert (
        "cannot load /plugins/custom-detector.so: no such file or directory"
        in builtin.failures[0].reason
    )
    assert (
        "detector custom-plugin (plugin.path /plugins/custom-detector.so) failed to load"
        in caplog.text
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "detectors:\n  alpha: {priority: 1}\n  alpha: {priority: 2}\n",
            "$: invalid YAML at line 3, column 3: found duplicate key 'alpha'",
        ),
        (
            "detectors: {alpha: {enabled: true, enabled: false}}\n",
            "$: invalid YAML at line 1, column 36: found duplicate key 'enabled'",
        ),
    ],
)
def test_duplicate_keys_are_errors_not_last_one_wins(text, expected):
    # PyYAML keeps the last value silently: a priority or enabled flag written
    # twice would take effect without anyone noticing the first was ignored.
    raw, problems = parse_config(text)
    assert raw is None
    assert [str(p) for p in problems] == [expected]


def test_yaml_merge_keys_may_still_be_overridden():
    raw, problems = parse_config(
        "output: &o {name: a, namespace: b}\nhealth_checks: {<<: {enabled: true}, enabled: false}\n"
    )
    assert problems == [] and raw is not None
    assert raw.health_checks.enabled is False


@pytest.mark.parametrize("opener", ["[", "{a: "])
def test_very_deep_nesting_is_a_problem_not_a_recursion_error(opener):
    closer = "]" if opener == "[" else "}"
    raw, problems = parse_config("a: " + opener * 5000 + closer * 5000)
    assert raw is None
    assert len(problems) == 1
    assert str(problems[0]).startswith("$: invalid YAML at line 1, column ")
    assert str(problems[0]).endswith(": nested deeper than 100 levels")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (".nan", "must be a positive duration, got nan"),
        (".inf", "must be at most 7 days (604800 seconds), got inf"),
        ("-.inf", "must be a positive duration, got -inf"),
        ("1.0e+400", "must be at most 7 days (604800 seconds), got inf"),
        ("9" * 400, "must be at most 7 days (604800 seconds), got " + "9" * 57 + "..."),
        ("'999999999999h'", "must be at most 7 days (604800 seconds), got '999999999999h'"),
        ("'8d'", "expected a duration such as 5s, 500ms, 1m30s or a number of seconds, got '8d'"),
    ],
)
def test_durations_must_be_finite_and_bounded(plugins, value, expected):
    # NaN passed "<= 0" unnoticed, and inf or 1e300 seconds reach socket and
    # thread timeouts, which raise OverflowError long after the file was accepted.
    assert problems_of(f"health_checks: {{deadline: {value}}}", plugins) == [
        f"$.health_checks.deadline: {expected}"
    ]


def test_the_longest_duration_is_accepted():
    assert parse_duration("168h") == 604800.0
    assert parse_duration(604800) == 604800.0


def test_an_endless_stream_is_refused_without_reading_it_all(plugins):
    # stat() says 0 bytes for a device or a pipe; reading it whole never ended.
    with pytest.raises(ConfigError) as info:
        load_config("/dev/zero", plugins)
    assert [str(p) for p in info.value.problems] == [
        f"$: file is larger than {MAX_CONFIG_BYTES} bytes"
    ]


def test_control_characters_are_a_problem_not_a_traceback():
    # PyYAML checks the characters when the loader is built, before parsing.
    raw, problems = parse_config("a: \x07\n")
    assert raw is None
    assert [str(p) for p in problems] == [
        "$: invalid YAML at line 1, column 4: unacceptable character #x0007: "
        "special characters are not allowed"
    ]


def test_plugin_path_for_an_installed_detector_is_an_error_not_ignored(tmp_path):
    # The installed detector used to run and the file was silently never loaded.
    plugin = tmp_path / "mine.py"
    plugin.write_text("raise RuntimeError('never imported')\n")
    text = f"detectors:\n  prometheus:\n    plugin: {{path: {plugin}}}\n"
    with pytest.raises(ConfigError) as info:
        from dyntoolset.config import load_config_text

        load_config_text(text, "cfg.yaml", make_plugin_set())
    [problem] = info.value.problems
    assert str(problem) == (
        "$.detectors.prometheus.plugin.path: detector 'prometheus' is already installed "
        "(from dyntoolset); remove plugin.path, or give the detector in the file another name"
    )


@pytest.mark.parametrize("namespace", ["kubernaut.system", "a" * 64, "-x"])
def test_output_namespace_must_be_a_dns_label(plugins, namespace):
    # A namespace is a DNS label (no dots, at most 63): anything else was
    # accepted here and refused by the API server at the first write.
    assert problems_of(f"output: {{namespace: {namespace!r}}}", plugins) == [
        f"$.output.namespace: {namespace!r} is not a valid namespace name: lowercase letters, "
        f"digits and '-', at most 63 characters"
    ]


def test_each_bad_list_item_is_reported_at_its_index(plugins):
    # One joined message for the whole list made the user hunt for the item.
    assert problems_of(
        "detectors:\n  alpha:\n    namespaces: [ok, 1, 'Prod_*']\n"
        "    required_annotations: ['a=b', 'a=b |', null]\n",
        plugins,
    ) == [
        "$.detectors.alpha.namespaces[1]: expected a string, got 1",
        "$.detectors.alpha.namespaces[2]: invalid namespace pattern 'Prod_*': use lowercase "
        "letters, digits, '-', '*' and '?', optionally prefixed by '!' to exclude",
        "$.detectors.alpha.required_annotations[1]: invalid annotation key '': the name must be "
        "1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter "
        "or digit",
        "$.detectors.alpha.required_annotations[2]: expected a string, got None",
    ]


def test_api_section_defaults_to_kubernetes_auth(plugins):
    from dyntoolset.config import load_config_text

    config = load_config_text("output: {formats: [lines]}\n", "test.yaml", plugins)
    assert config.api.auth.mode == "kubernetes"
    assert config.api.auth.token_file is None
    assert config.api.auth.audiences == ()
    assert config.api.auth.cache_ttl == 10


def test_api_section_is_read(plugins):
    from dyntoolset.config import load_config_text

    text = (
        "output: {formats: [lines]}\n"
        "api: {auth: {mode: static, token_file: /etc/tokens, cache_ttl: 0}}\n"
    )
    auth = load_config_text(text, "test.yaml", plugins).api.auth
    assert (auth.mode, auth.token_file, auth.cache_ttl) == ("static", "/etc/tokens", 0)
    text = "output: {formats: [lines]}\napi: {auth: {audiences: [dyntoolset, other]}}\n"
    assert load_config_text(text, "test.yaml", plugins).api.auth.audiences == (
        "dyntoolset",
        "other",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "api: {auth: {mode: static}}",
            "$.api.auth.token_file: required when mode is static: the file holding the "
            "accepted tokens, one per line",
        ),
        ("api: {auth: {mode: open}}", "$.api.auth.mode: "),
        ("api: {auth: {cache_ttl: -1}}", "$.api.auth.cache_ttl: "),
        ("api: {auth: {audiences: dyntoolset}}", "$.api.auth.audiences: "),
        ("api: {auth: {token: x}}", "$.api.auth.token: "),
    ],
)
def test_api_section_problems_name_the_field(plugins, text, expected):
    found = problems_of(text, plugins)
    assert len(found) == 1 and found[0].startswith(expected), found
