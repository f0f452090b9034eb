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

  let budgeted = false; // the workspace shows a call budget: each subquestion may be given a share

  function addAsk(value, share) {
    const row = el("div", null, "ask-row");
    const box = el("textarea");
    box.rows = 2;
    box.className = "ask-input";
    box.setAttribute("aria-label", "Subquestion");
    if (value) box.value = value;
    row.appendChild(box);
    const calls = el("input", null, "ask-budget");
    calls.type = "number";
    calls.min = "1";
    calls.step = "1";
    calls.placeholder = "calls";
    calls.title = "Calls for this subquestion (empty: an even split)";
    calls.setAttribute("aria-label", "Calls for this subquestion");
    calls.hidden = !budgeted;
    if (share) calls.value = share;
    row.appendChild(calls);
    $("asks").appendChild(row);
    return box;
  }

  function typedAsks() {
    return Array.from(document.querySelectorAll(".ask-row")).map((row) => ({
      question: row.querySelector(".ask-input").value, share: row.querySelector(".ask-budget").value.trim() }));
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
    $("budget").textContent = budget.join(" · ");
    budgeted = ws.budget !== undefined && ws.budget !== null;
    $("calls-label").hidden = $("calls").hidden = !budgeted;
    $("calls").dataset.left = budgeted ? String(ws.budget) : "";
    $("calls").textContent = !budgeted ? "" : ws.budget <= 0 ? "0 calls left: this is your last action; answer now"
      : ws.budget + " more calls for you and your subquestions together (each subquestion needs at least 1, and "
        + "you keep 1 to answer); by default a step splits " + (ws.budget - 1) + " evenly";
    $("share-note").hidden = !budgeted;
    const limited = ws.bandwidth_left !== undefined && ws.bandwidth_left !== null;
    $("bandwidth-label").hidden = $("bandwidth").hidden = !limited;
    $("bandwidth").dataset.left = limited ? String(ws.bandwidth_left) : "";
    $("bandwidth").textContent = limited ? ws.bandwidth_left + " characters left to see in this workspace" : "";
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
    showPointers(ws);
    $("refusal").hidden = !ws.refusal;
    $("refusal").textContent = ws.refusal ? "Your last action was refused: " + ws.refusal : "";
    const canAsk = ws.depth > 0 && ws.steps_left > 0 && (!budgeted || ws.budget >= 2);
    $("ask-part").hidden = !canAsk;
    $("asks").replaceChildren();
    if (canAsk) addAsk();
    $("answer").value = "";
    restoreDrafts(ws, canAsk);
    deadline = view.seconds_left === null || view.seconds_left === undefined
      ? null : performance.now() + view.seconds_left * 1000;
    tick();
  }

  // Pointer mode: every $N the workspace shows, with its content once expanded, else a button to expand it.
  function showPointers(ws) {
    const list = $("pointers");
    list.replaceChildren();
    $("pointer-part").hidden = !ws.pointers;
    if (!ws.pointers) return;
    const contents = new Map((ws.expanded || []).map((e) => [e.pointer, e.content]));
    const texts = [ws.question, ws.context || ""].concat((ws.expanded || []).map((e) => e.content));
    (ws.steps || []).forEach((step) => step.forEach((sub) => texts.push(sub.question, sub.answer)));
    const numbers = new Set();
    texts.forEach((text) => { for (const found of String(text).matchAll(/\$(\d+)/g)) numbers.add(Number(found[1])); });
    Array.from(numbers).sort((a, b) => a - b).forEach((number) => {
      const name = "$" + number;
      const row = el("li", null, "pointer");
      row.dataset.pointer = name;
      row.appendChild(el("span", name, "pointer-name"));
      if (contents.has(name)) {
        row.appendChild(el("pre", contents.get(name), "pointer-content"));
      } else {
        const button = el("button", "Expand " + name, "expand");
        button.type = "button";
        button.addEventListener("click", () => expand(name));
        row.appendChild(button);
      }
      list.appendChild(row);
    });
  }

  // What the person typed before expanding a pointer comes back with the workspace that shows its content.
  let drafts = null;
  function expand(name) {
    const question = $("question").textContent;
    drafts = { question: question, context: $("context-text").textContent, asks: typedAsks(), answer: $("answer").value };
    send("/api/act", { kind: "expand", pointer: name }, "Expanding " + name + "…");
  }

  function restoreDrafts(ws, canAsk) {
    const kept = drafts;
    drafts = null;
    if (kept === null || kept.question !== ws.question || kept.context !== (ws.context || "")) return;
    $("answer").value = kept.answer;
    if (!canAsk) return;
    const typed = kept.asks.filter((a) => a.question.trim() || a.share);
    if (!typed.length) return;
    $("asks").replaceChildren();
    typed.forEach((a) => addAsk(a.question, a.share));
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

  async function send(path, body, note) {
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
            say(note || "Sent. Thank you.");
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
    const asks = typedAsks().filter((a) => a.question.trim());
    const action = { kind: "ask", questions: asks.map((a) => a.question) };
    if (budgeted && asks.some((a) => a.share)) {
      if (!asks.every((a) => /^[0-9]+$/.test(a.share) && Number(a.share) >= 1)) {
        say("Give every subquestion a whole number of calls, at least 1, or leave them all empty for an even split.");
        return;
      }
      action.budgets = asks.map((a) => Number(a.share));
    }
    send("/api/act", action);
  });
  $("send-answer").addEventListener("click", () => send("/api/act", { kind: "answer", answer: $("answer").value }));
  $("send-guess").addEventListener("click", () => send("/api/act", { kind: "guess", answer: $("answer").value }));
  $("pass").addEventListener("click", () => send("/api/pass", {}));
  poll();
})();
