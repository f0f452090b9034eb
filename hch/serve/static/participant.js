// A participant's page: long-polls for the workspace given to this link, shows exactly it, sends one action.
// Every piece of text goes into the page with textContent: nothing from the server is parsed as markup.
"use strict";
(function () {
  const base = location.pathname.replace(/\/+$/, "");
  const $ = (id) => document.getElementById(id);
  let seen = "";
  let current = null; // the assignment shown, or null
  let deadline = null; // performance.now() at which its time runs out
  let busy = false;

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function say(text) {
    const box = $("message");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function addAsk(value) {
    const box = el("textarea");
    box.rows = 2;
    box.className = "ask-input";
    box.setAttribute("aria-label", "Subquestion");
    if (value) box.value = value;
    $("asks").appendChild(box);
    return box;
  }

  function render(view) {
    say(view.message);
    if (view.state !== "working") {
      current = null;
      deadline = null;
      $("work").hidden = true;
      $("idle").hidden = false;
      return;
    }
    const ws = view.workspace;
    current = view.assignment;
    $("idle").hidden = true;
    $("work").hidden = false;
    $("question").textContent = ws.question;
    $("depth").dataset.n = String(ws.depth);
    $("depth").textContent = ws.depth > 0
      ? "n=" + ws.depth + ": you may ask subquestions; each is answered by HCH_" + (ws.depth - 1)
      : "n=0: you cannot ask subquestions; answer directly (or guess)";
    const budget = [];
    if (ws.depth > 0) budget.push(ws.steps_left + " steps of asking left, up to " + ws.max_asks + " subquestions per step");
    else budget.push("no asking at depth 0");
    if (ws.budget !== undefined) budget.push(ws.budget + " policy calls left for this workspace and below");
    if (ws.bandwidth_left !== undefined) budget.push(ws.bandwidth_left + " characters of bandwidth left");
    $("budget").textContent = budget.join(" · ");
    $("context").hidden = !ws.context;
    $("context-text").textContent = ws.context || "";
    const steps = $("steps");
    steps.replaceChildren();
    (ws.steps || []).forEach((step, index) => {
      const part = el("section", null, "step");
      part.appendChild(el("h3", "Step " + (index + 1)));
      const list = el("ol");
      step.forEach((sub) => {
        const line = el("li", null, "status-" + (sub.status || "ok"));
        line.appendChild(el("span", sub.question, "sub-q"));
        line.appendChild(document.createTextNode(" → "));
        line.appendChild(el("span", sub.answer, "sub-a"));
        if (sub.status && sub.status !== "ok") line.appendChild(el("span", "[" + sub.status + "]", "status-tag"));
        list.appendChild(line);
      });
      part.appendChild(list);
      steps.appendChild(part);
    });
    $("refusal").hidden = !ws.refusal;
    $("refusal").textContent = ws.refusal ? "Your last action was refused: " + ws.refusal : "";
    const canAsk = ws.depth > 0 && ws.steps_left > 0;
    $("ask-part").hidden = !canAsk;
    $("asks").replaceChildren();
    if (canAsk) addAsk();
    $("answer").value = "";
    deadline = view.seconds_left === null || view.seconds_left === undefined
      ? null : performance.now() + view.seconds_left * 1000;
    tick();
  }

  function tick() {
    const box = $("countdown");
    if (deadline === null || current === null) {
      box.hidden = true;
      return;
    }
    const left = Math.max(0, Math.ceil((deadline - performance.now()) / 1000));
    const minutes = Math.floor(left / 60);
    const seconds = String(left % 60).padStart(2, "0");
    box.textContent = left > 0 ? "Time left: " + minutes + ":" + seconds : "Time is up";
    box.hidden = false;
  }
  setInterval(tick, 1000);

  async function poll() {
    let fresh = true; // after a failure, ask for an answer at once (not a long wait) to learn the server is back
    for (;;) {
      try {
        const query = "?seen=" + encodeURIComponent(fresh ? "" : seen);
        const response = await fetch(base + "/api/work" + query, { cache: "no-store" });
        if (!response.ok) throw new Error("status " + response.status);
        const view = await response.json();
        $("connection").hidden = true;
        fresh = false;
        if (view.view !== seen) {
          seen = view.view;
          render(view);
          document.body.dataset.view = seen; // what is shown (for scripts driving the page, e.g. tests)
        }
      } catch (error) {
        $("connection").textContent = "Connection lost: trying again…";
        $("connection").hidden = false;
        fresh = true;
        await sleep(1000);
      }
    }
  }

  async function send(path, body) {
    if (busy || current === null) return;
    const sentFor = current; // the poll may show the next workspace before this reply arrives
    busy = true;
    document.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      for (let attempt = 0; attempt < 30; attempt++) {
        let response;
        try {
          response = await fetch(base + path, {
            method: "POST", headers: { "Content-Type": "application/json" },
            body: JSON.stringify(Object.assign({ assignment: sentFor }, body)),
          });
        } catch (error) {
          say("The server cannot be reached: sending again…");
          await sleep(1000);
          continue;
        }
        const data = await response.json().catch(() => ({}));
        if (response.ok) {
          document.body.dataset.sent = String(Number(document.body.dataset.sent || "0") + 1);
          if (current === sentFor) { // not yet replaced by the next workspace
            say("Sent. Thank you.");
            current = null;
            deadline = null;
            $("work").hidden = true;
            $("idle").hidden = false;
          }
          return;
        }
        if (data.retry) {
          say(data.error || "Sending again…");
          await sleep(1000);
          continue;
        }
        say(data.error || "Not taken (status " + response.status + ")");
        return;
      }
    } finally {
      busy = false;
      document.querySelectorAll("button").forEach((b) => { b.disabled = false; });
    }
  }

  $("add-ask").addEventListener("click", () => addAsk().focus());
  $("send-ask").addEventListener("click", () => {
    const questions = Array.from(document.querySelectorAll(".ask-input")).map((b) => b.value).filter((q) => q.trim());
    send("/api/act", { kind: "ask", questions: questions });
  });
  $("send-answer").addEventListener("click", () => send("/api/act", { kind: "answer", answer: $("answer").value }));
  $("send-guess").addEventListener("click", () => send("/api/act", { kind: "guess", answer: $("answer").value }));
  $("pass").addEventListener("click", () => send("/api/pass", {}));
  poll();
})();
