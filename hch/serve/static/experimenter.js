// The experimenter's page: runs, trees (with links into the trace viewer), the queue and who works on what.
// Text goes into the page with textContent only.
"use strict";
(function () {
  const base = location.pathname.replace(/\/+$/, "");
  const $ = (id) => document.getElementById(id);

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }
  function fill(id, rows, build) {
    const body = $(id).querySelector("tbody");
    body.replaceChildren();
    rows.forEach((data) => {
      const row = document.createElement("tr");
      build(row, data);
      body.appendChild(row);
    });
  }
  function say(text) {
    $("message").textContent = text || "";
    $("message").hidden = !text;
  }

  function render(state) {
    const s = state.settings;
    $("settings").textContent = "barrier: " + s.barrier + " (" + (s.barrier === "tree"
      ? "nobody gets two workspaces of one tree" : "nobody gets two workspaces on one root-to-leaf path")
      + ") · time budget per workspace: " + (s.time_budget ? s.time_budget + " s" : "none");
    fill("jobs", state.jobs, (row, job) => {
      cell(row, job.id); cell(row, job.kind); cell(row, job.title); cell(row, job.status);
      cell(row, job.outcome);
    });
    fill("trees", state.trees, (row, tree) => {
      cell(row, tree.seq); cell(row, tree.label); cell(row, tree.job);
      const td = cell(row, "");
      const link = document.createElement("a");
      link.href = base + "/" + tree.viewer;
      link.textContent = "trace";
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      td.appendChild(link);
    });
    fill("queue", state.queue, (row, item) => {
      cell(row, item.item); cell(row, item.tree); cell(row, item.node); cell(row, item.depth);
      cell(row, item.question); cell(row, item.waiting); cell(row, item.participant || "—");
      cell(row, item.seconds_left === null ? "" : Math.ceil(item.seconds_left));
    });
    fill("people", state.people, (row, person) => {
      cell(row, person.id); cell(row, person.name); cell(row, person.state);
      cell(row, person.working_on ? person.working_on.tree + " #" + person.working_on.node + ": "
        + person.working_on.question : "");
      cell(row, person.answered);
      cell(row, person.link, "link");
    });
  }

  async function refresh() {
    try {
      const response = await fetch(base + "/api/state", { cache: "no-store" });
      if (!response.ok) throw new Error("status " + response.status);
      render(await response.json());
    } catch (error) {
      say("Connection lost: trying again…");
      return;
    }
    if ($("message").textContent.startsWith("Connection lost")) say("");
  }

  async function post(path, body) {
    const response = await fetch(base + path, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    say(response.ok ? "" : (data.error || "refused (status " + response.status + ")"));
    await refresh();
    return response.ok;
  }

  $("new-person").addEventListener("submit", (event) => {
    event.preventDefault();
    post("/api/participants", { name: $("person-name").value }).then((ok) => { if (ok) $("person-name").value = ""; });
  });
  $("new-run").addEventListener("submit", (event) => {
    event.preventDefault();
    post("/api/runs", {
      question: $("run-question").value, depth: Number($("run-depth").value), policy: $("run-policy").value,
    }).then((ok) => { if (ok) $("run-question").value = ""; });
  });
  refresh();
  setInterval(refresh, 1500);
})();
