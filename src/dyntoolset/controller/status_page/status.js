// The status page: reads /api/v1/statistics and /api/v1/services and shows them.
//
// Everything shown comes from Services that anyone allowed to edit a Service
// controls (names, annotations quoted in reasons), so data only ever goes into
// the page through textContent and properties, never parsed as markup. The
// bearer token stays in this tab's sessionStorage.
"use strict";

(function () {
  const TOKEN_KEY = "dyntoolset.token";
  const VERDICTS = ["emitted", "unhealthy", "namespace_filtered", "annotation_filtered", "invalid"];

  function $(id) {
    return document.getElementById(id);
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    if (className) {
      node.className = className;
    }
    return node;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      tr.appendChild(cell instanceof Node ? cell : element("td", cell));
    }
    return tr;
  }

  function clear(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
  }

  function token() {
    return window.sessionStorage.getItem(TOKEN_KEY) || "";
  }

  // A failed request, with the problem document's detail when there is one.
  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  async function api(path) {
    const headers = { Accept: "application/json" };
    if (token()) {
      headers.Authorization = "Bearer " + token();
    }
    const response = await fetch(path, { headers: headers, credentials: "omit", cache: "no-store" });
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (!response.ok) {
      const detail = body && typeof body.detail === "string" ? body.detail : response.statusText;
      throw new ApiError(response.status, response.status + " " + (detail || "request failed"));
    }
    return body;
  }

  function showProblem(error) {
    const message = error instanceof ApiError ? error.message : "cannot reach the API: " + error;
    if (error instanceof ApiError && error.status === 401) {
      $("auth-message").textContent = message;
      $("auth").hidden = false;
      $("content").hidden = true;
      $("problem").hidden = true;
      return;
    }
    $("problem").textContent = message;
    $("problem").hidden = false;
  }

  function summary(stats) {
    const list = $("summary");
    clear(list);
    const last = stats.last_reconcile;
    const health = stats.health_checks;
    const entries = [
      ["leader", stats.is_leader ? "yes (this replica writes the ConfigMap)" : "no (a follower)"],
      ["Service cache", stats.synced ? "synced" : "not synced: nothing is written until it is"],
      ["last discovery", stats.last_discovery || "none yet"],
      ["discoveries", stats.discoveries_total],
      ["services discovered", stats.services_discovered],
      ["last reconcile", last ? last.result + " at " + last.time : "none yet"],
      ["configuration", "generation " + stats.config.generation + " from " + stats.config.source],
      ["configuration reloads", reloadsText(stats.config)],
      [
        "health checks",
        health
          ? health.healthy + " healthy, " + health.unhealthy + " unhealthy (" + health.mode + ", " + health.rounds + " rounds)"
          : "off",
      ],
    ];
    for (const [name, value] of entries) {
      list.appendChild(element("dt", name));
      list.appendChild(element("dd", value));
    }
    const error = $("reconcile-error");
    if (last && last.error) {
      error.textContent = "last reconcile failed (" + last.error_type + "): " + last.error;
      error.hidden = false;
    } else {
      error.hidden = true;
    }
    const reload = stats.config.last_reload;
    const reloadError = $("reload-error");
    if (reload && reload.result === "failure") {
      reloadError.textContent =
        "last configuration reload (" + reload.trigger + ") failed at " + reload.time +
        ", generation " + stats.config.generation + " stays in force: " + reload.problems.join("; ");
      reloadError.hidden = false;
    } else {
      reloadError.hidden = true;
    }
    const plugins = $("plugin-errors");
    clear(plugins);
    for (const failure of stats.plugin_load_errors) {
      plugins.appendChild(element("li", "plugin not loaded: " + failure.error));
    }
    const body = $("detectors").tBodies[0];
    clear(body);
    for (const name of Object.keys(stats.detectors)) {
      const d = stats.detectors[name];
      body.appendChild(row([name, d.enabled ? "yes" : "no", d.services, (d.success_rate * 100).toFixed(0) + " %"]));
    }
  }

  function reloadsText(config) {
    const counts = config.reloads;
    let text = counts.success + " applied, " + counts.unchanged + " unchanged, " + counts.failure + " failed";
    const last = config.last_reload;
    text += last ? "; last: " + last.result + " (" + last.trigger + ") at " + last.time : "; none yet";
    return text;
  }

  function healthText(check) {
    if (!check) {
      return "not checked";
    }
    let text = check.result + " at " + check.time;
    if (check.consecutive_failures) {
      text += " (" + check.consecutive_failures + " failures in a row)";
    }
    return check.detail ? text + ": " + check.detail : text;
  }

  function services(document_) {
    const toolsets = $("toolsets").tBodies[0];
    const table = $("services").tBodies[0];
    clear(toolsets);
    clear(table);
    for (const s of document_.services) {
      const key = s.namespace + "/" + s.name;
      if (s.verdict === "emitted") {
        toolsets.appendChild(row([key, s.detector, s.toolsets.join(", "), s.endpoint || ""]));
      }
      const tr = row([
        key,
        s.detector,
        element("td", s.verdict, "verdict-" + s.verdict),
        s.detail,
        s.endpoint || "",
        healthText(s.last_health_check),
      ]);
      tr.className = "service";
      tr.dataset.verdict = s.verdict;
      tr.dataset.search = [key, s.detector, s.verdict, s.detail].join(" ").toLowerCase();
      table.appendChild(tr);
    }
    const counts = document_.counts;
    $("counts").textContent = VERDICTS.map((v) => v + ": " + (counts[v] || 0)).join(", ");
    filter();
  }

  function filter() {
    const words = $("search").value.toLowerCase().split(/\s+/).filter((w) => w);
    const verdict = $("verdict").value;
    for (const tr of $("services").tBodies[0].rows) {
      const text = tr.dataset.search || "";
      tr.hidden = (verdict && tr.dataset.verdict !== verdict) || !words.every((w) => text.includes(w));
    }
  }

  async function load() {
    try {
      const [stats, list] = await Promise.all([api("/api/v1/statistics"), api("/api/v1/services")]);
      $("auth").hidden = true;
      $("problem").hidden = true;
      summary(stats);
      services(list);
      $("content").hidden = false;
    } catch (error) {
      showProblem(error);
    }
  }

  function start() {
    const select = $("verdict");
    for (const verdict of VERDICTS) {
      const option = element("option", verdict);
      option.value = verdict;
      select.appendChild(option);
    }
    const wanted = new URLSearchParams(window.location.search);
    $("search").value = wanted.get("q") || "";
    select.value = VERDICTS.includes(wanted.get("verdict")) ? wanted.get("verdict") : "";
    $("search").addEventListener("input", filter);
    select.addEventListener("change", filter);
    $("filters").addEventListener("submit", (event) => event.preventDefault());
    $("refresh").addEventListener("click", load);
    $("auth-form").addEventListener("submit", (event) => {
      event.preventDefault();
      window.sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
      $("token").value = "";
      load();
    });
    load();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
