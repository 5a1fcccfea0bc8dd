// tokenroll viewer: plain script, no build step, no network.
// The run page reads the column table in #run-data; a trajectory's JSON (#t<index>) is parsed
// only when that trajectory is opened, and only its tapes are drawn. Colours and tooltips follow
// tokenroll/viewer/tapes.py and colours.py exactly (the browser tests compare both).
(function () {
  "use strict";

  const byId = (id) => document.getElementById(id);
  const RUN = JSON.parse(byId("run-data").textContent);
  const PAL = RUN.palette;
  const ROWS = RUN.rows;
  const N = ROWS.id.length;
  const ROW_HEIGHT = 26;
  const CELL_LIMIT = 20000; // cells drawn per tape before a "show all" button
  const CACHE_SIZE = 16;
  const has = (object, key) => Object.prototype.hasOwnProperty.call(object, key);

  // --- small helpers -----------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const SVG = "http://www.w3.org/2000/svg";
  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function escapeHTML(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  function num(value, digits) {
    if (value === null || value === undefined) return "—";
    if (Number.isInteger(value)) return String(value);
    return String(Number(value.toFixed(digits === undefined ? 4 : digits)));
  }

  function unruns(flat) {
    if (flat === null || flat === undefined) return null;
    const out = [];
    for (let k = 0; k < flat.length; k += 2) for (let c = 0; c < flat[k + 1]; c++) out.push(flat[k]);
    return out;
  }

  function kvTable(object) {
    const table = el("table", { class: "kv" });
    for (const [key, value] of Object.entries(object)) {
      let cell;
      if (value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length) {
        cell = el("td", null, kvTable(value));
      } else {
        cell = el("td", { class: "mono" }, typeof value === "string" ? value : JSON.stringify(value));
      }
      table.append(el("tr", null, el("th", null, key), cell));
    }
    return table;
  }

  // --- data ----------------------------------------------------------------------------------

  let vocab = null;
  function tokenInfo(id) {
    if (vocab === null) {
      const data = JSON.parse(byId("vocab-data").textContent);
      vocab = { text: data.text, special: new Set(data.special), newline: new Set(data.newline) };
    }
    const text = has(vocab.text, id) ? vocab.text[id] : "#" + id;
    return { text: text, special: vocab.special.has(id), newline: vocab.newline.has(id) };
  }

  const cache = new Map();
  function trajectory(index) {
    if (cache.has(index)) return cache.get(index);
    const data = JSON.parse(byId("t" + index).textContent);
    data.decoded = data.tapes.map(decodeTape);
    cache.set(index, data);
    if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value);
    return data;
  }

  function decodeTape(p) {
    const n = p.ids.length;
    const completion = new Uint8Array(n);
    const stepOf = new Int32Array(n);
    const lp = new Array(n).fill(null);
    const adv = new Array(n).fill(null);
    const advantages = unruns(p.adv);
    let c = 0;
    for (const [step, start, completionStart, end] of p.spans) {
      for (let i = start; i < end; i++) stepOf[i] = step;
      for (let i = completionStart; i < end; i++, c++) {
        completion[i] = 1;
        lp[i] = p.lp[c];
        adv[i] = advantages[c];
      }
    }
    return {
      payload: p, n: n, ids: p.ids, loss: unruns(p.loss), msg: unruns(p.msg), sampled: unruns(p.sampled),
      content: unruns(p.content), roles: p.roles, tools: p.tools, completion: completion, stepOf: stepOf,
      lp: lp, adv: adv, drawn: 0,
    };
  }

  // --- colours and tooltips (tapes.py: token_colour, tooltip) --------------------------------

  function hexRGB(colour) {
    if (colour.startsWith("rgb(")) return colour.slice(4, -1).split(",").map(Number);
    return [1, 3, 5].map((k) => parseInt(colour.slice(k, k + 2), 16));
  }
  function mix(start, end, t) {
    const a = hexRGB(start), b = hexRGB(end);
    const c = a.map((x, k) => Math.floor(x + (b[k] - x) * t + 0.5));
    return "rgb(" + c[0] + ", " + c[1] + ", " + c[2] + ")";
  }
  function textColour(background) {
    const [r, g, b] = hexRGB(background);
    return 0.299 * r + 0.587 * g + 0.114 * b < 140 ? "#fff" : "#1f2328";
  }
  function roleOf(T, i) {
    if (T.msg === null) return T.completion[i] ? "assistant" : null;
    return T.msg[i] < 0 ? null : T.roles[T.msg[i]];
  }
  function roleColour(role) {
    if (role === null) return PAL.scaffold;
    return has(PAL.roles, role) ? PAL.roles[role] : PAL.other_role;
  }
  function boolColour(value) {
    return value === null ? PAL.unknown : value ? PAL.true : PAL.false;
  }

  function colourOf(T, i, mode, scale) {
    switch (mode) {
      case "role":
        if (T.msg === null && !T.completion[i]) return PAL.unknown;
        return roleColour(roleOf(T, i));
      case "message":
        if (T.msg === null) return PAL.unknown;
        return T.msg[i] < 0 ? PAL.scaffold : PAL.messages[T.msg[i] % PAL.messages.length];
      case "sampled":
        return boolColour(T.sampled === null ? null : T.sampled[i]);
      case "content":
        return boolColour(T.content === null ? null : T.content[i]);
      case "loss":
        return boolColour(T.loss[i]);
      case "advantage": {
        const v = T.adv[i];
        if (v === null || v === undefined) return PAL.no_value;
        const t = scale > 0 ? Math.min(1, Math.abs(v) / scale) : 0;
        return mix(PAL.neutral, v >= 0 ? PAL.positive : PAL.negative, t);
      }
      case "logprob": {
        const v = T.lp[i];
        if (v === null || v === undefined) return PAL.no_value;
        return mix(PAL.logprob_high, PAL.logprob_low, Math.min(1, Math.max(0, v / PAL.logprob_floor)));
      }
    }
    throw new Error("unknown colouring mode " + mode);
  }

  function yesNo(value) {
    return value === null ? "—" : value ? "yes" : "no";
  }

  function tooltipText(T, i) {
    const id = T.ids[i];
    const info = tokenInfo(id);
    let message = "—";
    if (T.msg !== null) message = T.msg[i] < 0 ? "scaffolding" : String(T.msg[i]);
    let role = roleOf(T, i);
    if (role !== null && T.msg !== null && T.msg[i] >= 0 && T.tools[T.msg[i]]) role += " (" + T.tools[T.msg[i]] + ")";
    const lp = T.lp[i], adv = T.adv[i];
    return [
      "token " + i + " · id " + id,
      "text: " + info.text + (info.special ? " (special)" : ""),
      "message: " + message,
      "role: " + (role || "—"),
      "step: " + T.stepOf[i] + " (" + (T.completion[i] ? "completion" : "prompt") + ")",
      "sampled: " + yesNo(T.sampled === null ? null : T.sampled[i]) + " · content: " +
        yesNo(T.content === null ? null : T.content[i]) + " · loss: " + yesNo(T.loss[i]),
      "logprob: " + (lp === null ? "—" : lp.toFixed(4)),
      "advantage: " + (adv === null ? "—" : (adv >= 0 ? "+" : "") + adv.toFixed(4)),
    ].join("\n");
  }

  // --- run page ------------------------------------------------------------------------------

  const list = { sort: "index", descending: false, order: [], body: null, spacer: null, count: null, head: null };

  function renderRun() {
    const page = byId("run-page");
    const meta = RUN.metadata || {};
    const cards = el("div", { class: "cards", id: "cards" }, RUN.headline.map(([label, value, detail]) =>
      el("div", { class: "card" }, el("div", { class: "label" }, label), el("div", { class: "value" }, value),
        detail ? el("div", { class: "detail" }, detail) : null)));
    const scalars = {}, sections = [];
    for (const [key, value] of Object.entries(meta)) {
      if (value !== null && typeof value === "object" && !Array.isArray(value)) sections.push([key, value]);
      else scalars[key] = value;
    }
    const config = el("details", { class: "config", id: "config", open: true },
      el("summary", null, "Configuration and metadata"),
      Object.keys(meta).length ? el("div", { class: "sections" },
        Object.keys(scalars).length ? el("div", { class: "section" }, el("h4", null, "run"), kvTable(scalars)) : null,
        sections.map(([key, value]) => el("div", { class: "section", "data-key": key }, el("h4", null, key),
          Object.keys(value).length ? kvTable(value) : el("p", { class: "note" }, "empty"))))
        : el("p", { class: "note" }, "This run has no metadata.json."));
    page.append(
      el("h2", null, "Run ", el("span", { class: "muted" }, RUN.title)),
      cards, config,
      el("h2", null, "Figures"),
      el("div", { class: "figures", id: "figures" }, RUN.figures.map(barChart)),
      metricsSection(),
      el("h2", null, "Trajectories"),
      listSection());
  }

  function metricsSection() {
    const box = el("div", { id: "metrics" });
    for (const [title, values] of [["Metrics (mean over rollouts)", RUN.metrics],
      ["Trace metrics (mean over traced rollouts)", RUN.trace_metrics]]) {
      const names = Object.keys(values);
      if (!names.length) continue;
      const table = el("table", { class: "kv" });
      for (const name of names) table.append(el("tr", null, el("th", null, name), el("td", { class: "num" }, num(values[name]))));
      box.append(el("h3", null, title), table);
    }
    return box;
  }

  function barChart(fig) {
    const W = 380, H = 200, L = 44, R = 8, T = 16, B = 46;
    const figure = el("figure", { class: "fig", id: "fig-" + fig.id, "data-bars": fig.bars.length },
      el("figcaption", null, fig.title));
    if (!fig.bars.length) {
      figure.append(el("p", { class: "note" }, fig.note || "nothing to show"));
      return figure;
    }
    const svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H });
    const top = Math.max(...fig.bars.map((b) => b[1])) || 1;
    const n = fig.bars.length, width = (W - L - R) / n, plot = H - T - B;
    const fraction = fig.bars.every((b) => b[1] <= 1) && fig.bars.some((b) => !Number.isInteger(b[1]));
    svg.append(svgEl("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
    svg.append(svgEl("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
    svg.append(svgEl("text", { x: L - 4, y: T + 4, "text-anchor": "end" }, fraction ? top.toFixed(2) : num(top)));
    svg.append(svgEl("text", { x: L - 4, y: H - B + 3, "text-anchor": "end" }, "0"));
    const every = n <= 12 ? 1 : Math.ceil(n / 10);
    fig.bars.forEach(([label, value, detail], k) => {
      const h = plot * value / top, x = L + k * width;
      const rect = svgEl("rect", { class: "bar", x: x + 1, y: H - B - h, width: Math.max(1, width - 2), height: h,
        "data-label": label, "data-value": value });
      rect.append(svgEl("title", {}, detail || label + ": " + value));
      svg.append(rect);
      if (n <= 24 && value > 0) {
        svg.append(svgEl("text", { x: x + width / 2, y: H - B - h - 3, "text-anchor": "middle" },
          fraction ? value.toFixed(3) : num(value, 3)));
      }
      if (k % every === 0) {
        const short = label.length > 14 ? label.slice(0, 13) + "…" : label;
        const rotate = n > 6 || fig.bars.some((b) => b[0].length > 6);
        svg.append(svgEl("text", {
          x: x + width / 2, y: H - B + 12, "text-anchor": rotate ? "end" : "middle",
          transform: rotate ? "rotate(-35 " + (x + width / 2) + " " + (H - B + 12) + ")" : "",
        }, short));
      }
    });
    svg.append(svgEl("text", { x: L + (W - L - R) / 2, y: H - 2, "text-anchor": "middle" }, fig.x));
    svg.append(svgEl("text", { x: 10, y: T + plot / 2, "text-anchor": "middle",
      transform: "rotate(-90 10 " + (T + plot / 2) + ")" }, fig.y));
    figure.append(svg);
    if (fig.note) figure.append(el("p", { class: "note" }, fig.note));
    return figure;
  }

  const COLUMNS = [
    ["index", "#", true], ["id", "id", false], ["example", "example", false], ["rollout", "roll", true],
    ["reward", "reward", true], ["stop", "stop reason", false], ["turns", "turns", true],
    ["tokens", "tokens", true], ["sampled", "sampled", true], ["seconds", "seconds", true], ["error", "error / notes", false],
  ];

  function listSection() {
    const stops = [...new Set(ROWS.stop.map((s) => s === null ? "none" : s))].sort();
    const box = el("div", { id: "trajectories" });
    const filters = el("div", { class: "filters" },
      el("label", null, "stop reason ", el("select", { id: "f-stop", onchange: applyFilters },
        el("option", { value: "" }, "any"), stops.map((s) => el("option", { value: s }, s)))),
      el("label", null, "error ", el("select", { id: "f-error", onchange: applyFilters },
        el("option", { value: "" }, "any"), el("option", { value: "yes" }, "errored"), el("option", { value: "no" }, "no error"))),
      el("label", null, "example ", el("input", { id: "f-example", type: "search", size: 10, oninput: applyFilters })),
      el("label", null, "reward ≥ ", el("input", { id: "f-rmin", type: "number", step: "any", oninput: applyFilters })),
      el("label", null, "≤ ", el("input", { id: "f-rmax", type: "number", step: "any", oninput: applyFilters })),
      el("label", null, "with trace ", el("input", { id: "f-trace", type: "checkbox", onchange: applyFilters })),
      list.count = el("span", { id: "list-count", class: "muted" }));
    list.head = el("div", { class: "list-head" }, COLUMNS.map(([key, label, numeric]) =>
      el("button", { "data-sort": key, class: numeric ? "num" : "", onclick: () => sortBy(key) }, label)));
    list.spacer = el("div", { class: "list-spacer" });
    list.body = el("div", { class: "list-body", id: "list-body", onscroll: renderRows }, list.spacer);
    box.append(filters, el("div", { class: "list" }, list.head, list.body));
    return box;
  }

  function sortBy(key) {
    if (list.sort === key) list.descending = !list.descending;
    else { list.sort = key; list.descending = key === "reward" || key === "tokens" || key === "turns"; }
    applyFilters();
  }

  function cellValue(key, i) {
    return key === "index" ? i : ROWS[key][i];
  }

  function applyFilters() {
    const stop = byId("f-stop").value, error = byId("f-error").value, example = byId("f-example").value.trim();
    const rmin = parseFloat(byId("f-rmin").value), rmax = parseFloat(byId("f-rmax").value);
    const traced = byId("f-trace").checked;
    const order = [];
    for (let i = 0; i < N; i++) {
      if (stop && (ROWS.stop[i] === null ? "none" : ROWS.stop[i]) !== stop) continue;
      if (error === "yes" && ROWS.error[i] === null) continue;
      if (error === "no" && ROWS.error[i] !== null) continue;
      if (example && !ROWS.example[i].includes(example)) continue;
      const reward = ROWS.reward[i];
      if (!Number.isNaN(rmin) && (reward === null || reward < rmin)) continue;
      if (!Number.isNaN(rmax) && (reward === null || reward > rmax)) continue;
      if (traced && !ROWS.trace[i]) continue;
      order.push(i);
    }
    const key = list.sort, sign = list.descending ? -1 : 1;
    if (key !== "index" || list.descending) {
      order.sort((a, b) => {
        const x = cellValue(key, a), y = cellValue(key, b);
        if (x === y) return a - b;
        if (x === null) return 1; // missing values last in either direction
        if (y === null) return -1;
        return (x < y ? -1 : 1) * sign;
      });
    }
    list.order = order;
    for (const button of list.head.children) {
      button.classList.toggle("sorted", button.dataset.sort === key);
      button.classList.toggle("asc", button.dataset.sort === key && !list.descending);
    }
    list.count.textContent = order.length + " of " + N + " trajectories";
    list.spacer.style.height = order.length * ROW_HEIGHT + "px";
    list.body.style.height = Math.min(420, Math.max(order.length, 1) * ROW_HEIGHT + 2) + "px";
    list.body.scrollTop = 0;
    renderRows();
  }

  function renderRows() {
    const height = list.body.clientHeight || 420;
    const first = Math.max(0, Math.floor(list.body.scrollTop / ROW_HEIGHT) - 5);
    const last = Math.min(list.order.length, first + Math.ceil(height / ROW_HEIGHT) + 10);
    const rows = [];
    for (let k = first; k < last; k++) {
      const i = list.order[k];
      const reward = ROWS.reward[i];
      rows.push(el("a", { class: "list-row", href: "#t=" + i, "data-index": i, style: "top:" + k * ROW_HEIGHT + "px" },
        el("span", { class: "num" }, i),
        el("span", { class: "mono", title: ROWS.id[i] }, ROWS.id[i]),
        el("span", null, ROWS.example[i]),
        el("span", { class: "num" }, ROWS.rollout[i]),
        el("span", { class: "num" }, num(reward)),
        el("span", null, ROWS.stop[i] === null ? "—" : ROWS.stop[i]),
        el("span", { class: "num" }, ROWS.turns[i]),
        el("span", { class: "num" }, ROWS.tokens[i]),
        el("span", { class: "num" }, ROWS.sampled[i]),
        el("span", { class: "num" }, ROWS.seconds[i] === null ? "—" : ROWS.seconds[i].toFixed(2)),
        ROWS.error[i] !== null ? el("span", { class: "err", title: ROWS.error[i] }, ROWS.error[i])
          : el("span", { class: "muted" }, rowNotes(i))));
    }
    list.spacer.replaceChildren(...rows);
  }

  function rowNotes(i) {
    const notes = [];
    if (ROWS.rerendered[i]) notes.push(ROWS.rerendered[i] + " re-rendered");
    if (ROWS.trace[i]) notes.push("trace");
    return notes.join(" · ");
  }

  // --- trajectory page -----------------------------------------------------------------------

  const view = { index: null, mode: "role", data: null };

  function showTrajectory(index) {
    const started = performance.now();
    const data = trajectory(index);
    view.index = index;
    view.data = data;
    const page = byId("trajectory-page");
    page.dataset.ready = "";
    const position = list.order.indexOf(index);
    const previous = position > 0 ? list.order[position - 1] : null;
    const next = position >= 0 && position + 1 < list.order.length ? list.order[position + 1] : null;
    const go = (i) => () => { location.hash = "#t=" + i; };
    const parts = [
      el("div", { class: "nav" },
        el("a", { href: "#", id: "back" }, "← run"),
        el("button", { id: "prev", disabled: previous === null, onclick: go(previous) }, "◂ previous"),
        el("button", { id: "next", disabled: next === null, onclick: go(next) }, "next ▸"),
        el("span", { class: "muted" }, position >= 0 ? (position + 1) + " of " + list.order.length + " in the list" : "")),
      el("h2", null, "Trajectory ", el("span", { class: "mono" }, data.id)),
      factsTable(data),
      data.error ? el("div", { class: "error-box", id: "error" }, el("b", null, "error: "), el("pre", null, data.error)) : null,
      stepsTable(data),
      el("h3", null, "Messages"),
      messagesList(data),
      tapesSection(data),
      data.trace ? traceSection(data.trace) : null,
      Object.keys(data.input || {}).length ? el("details", { class: "config" }, el("summary", null, "input"),
        el("pre", null, JSON.stringify(data.input, null, 1))) : null,
      Object.keys(data.extras || {}).length ? el("details", { class: "config" }, el("summary", null, "extras"),
        el("pre", null, JSON.stringify(data.extras, null, 1))) : null];
    page.replaceChildren(...parts.filter((part) => part !== null));
    drawTapes();
    page.dataset.ready = String(index);
    window.tokenroll.lastOpen = performance.now() - started;
  }

  function factsTable(data) {
    const facts = {
      example: data.example === null ? "—" : String(data.example),
      rollout: String(data.rollout),
      reward: num(data.reward),
      "stop reason": data.stop || "—",
      turns: String(data.steps.length),
      samples: String(data.tapes.length),
    };
    for (const [k, v] of Object.entries(data.timing || {})) facts["time " + k] = typeof v === "number" ? v.toFixed(3) + " s" : String(v);
    for (const [k, v] of Object.entries(data.metrics || {})) facts[k] = num(v);
    return el("div", { id: "facts" }, kvTable(facts));
  }

  function stepsTable(data) {
    if (!data.steps.length) return el("p", { class: "note" }, "This rollout made no model call.");
    const head = ["step", "prompt", "reason", "finish", "prompt tokens", "completion tokens", "truncated", "drift", "advantage", "notes"];
    const table = el("table", { class: "steps", id: "steps" }, el("tr", null, head.map((h) => el("th", null, h))));
    for (const s of data.steps) {
      table.append(el("tr", null,
        el("td", null, s.step), el("td", null, s.built || "—"), el("td", null, s.reason || "—"),
        el("td", null, s.finish || "—"), el("td", { class: "num" }, s.prompt), el("td", { class: "num" }, s.completion),
        el("td", null, s.overlong ? "prompt cut" : s.truncated ? "yes" : ""),
        el("td", { class: "num" }, s.drift === null ? "" : s.drift),
        el("td", { class: "num" }, s.advantage === null ? "" : num(s.advantage)),
        el("td", { class: "mono" }, [s.skipped ? "skipped: " + s.skipped : "",
          Object.keys(s.notes).length ? JSON.stringify(s.notes) : ""].filter(Boolean).join(" "))));
    }
    return el("div", null, el("h3", null, "Steps"), table);
  }

  function messagesList(data) {
    if (!data.messages.length) return el("p", { class: "note" }, "No messages.");
    return el("div", { class: "messages", id: "messages" }, data.messages.map((m, k) => {
      const content = m.content === null ? "" : typeof m.content === "string" ? m.content
        : m.content.map((part) => part.type === "text" ? part.text : JSON.stringify(part)).join("");
      return el("div", { class: "msg", "data-role": m.role, style: "border-left-color:" + roleColour(m.role) },
        el("div", { class: "head" }, "#" + k + " ", el("b", null, m.role), m.name ? " · " + m.name : "",
          m.tool_call_id ? " · " + m.tool_call_id : ""),
        m.reasoning ? el("details", null, el("summary", null, "reasoning"), el("pre", null, m.reasoning)) : null,
        content ? el("pre", null, content) : null,
        (m.tool_calls || []).map(([name, args]) => el("pre", { class: "call" }, "→ " + name + "(" + args + ")")));
    }));
  }

  function tapesSection(data) {
    const modes = el("div", { class: "modes", id: "modes" }, el("span", { class: "muted" }, "colour by:"),
      PAL.modes.map(([mode, label]) => el("button", { "data-mode": mode, class: mode === view.mode ? "on" : "",
        onclick: () => setMode(mode) }, label)));
    const box = el("div", { id: "tapes" }, el("h3", null, "Token tapes"), modes, el("div", { class: "legend", id: "legend" }));
    if (!data.tapes.length) box.append(el("p", { class: "note" }, "No training samples."));
    data.tapes.forEach((p, k) => {
      const tape = el("div", { class: "tape", "data-sample": k });
      tape.addEventListener("mouseover", onTokenOver);
      tape.addEventListener("mousemove", moveTip);
      tape.addEventListener("mouseleave", hideTip);
      box.append(el("div", { class: "sample", id: "sample-" + k },
        el("h4", null, p.title), p.ids.length ? tape : el("p", { class: "note" }, "no tokens (a text-only step)")));
    });
    return box;
  }

  function drawTapes() {
    view.data.decoded.forEach((T, k) => {
      T.drawn = Math.min(T.n, CELL_LIMIT);
      drawTape(k);
    });
    legend();
  }

  function drawTape(k) {
    const T = view.data.decoded[k];
    const box = document.querySelector('.tape[data-sample="' + k + '"]');
    if (!box) return;
    const marks = T.payload.marks;
    const parts = [];
    let m = 0;
    const scale = view.data.adv_scale;
    for (let i = 0; i < T.drawn; i++) {
      while (m < marks.length && marks[m][0] <= i) parts.push(markHTML(marks[m++]));
      const info = tokenInfo(T.ids[i]);
      const background = colourOf(T, i, view.mode, scale);
      parts.push('<span class="tok' + (info.special ? " special" : "") + '" data-i="' + i +
        '" style="background-color:' + background + ";color:" + textColour(background) + '">' +
        escapeHTML(info.text) + "</span>");
      if (info.newline) parts.push('<span class="br"></span>');
    }
    if (T.drawn === T.n) while (m < marks.length) parts.push(markHTML(marks[m++]));
    box.innerHTML = parts.join("");
    const sample = box.parentElement;
    const old = sample.querySelector(".more");
    if (old) old.remove();
    if (T.drawn < T.n) {
      sample.append(el("button", { class: "more", onclick: () => { T.drawn = T.n; drawTape(k); } },
        "show all " + T.n + " tokens (" + (T.n - T.drawn) + " more)"));
    }
  }

  function markHTML(mark) {
    return '<span class="mark mark-' + mark[1] + '" data-position="' + mark[0] + '">' + escapeHTML(mark[2]) + "</span>";
  }

  function setMode(mode) {
    view.mode = mode;
    for (const button of byId("modes").querySelectorAll("button")) button.classList.toggle("on", button.dataset.mode === mode);
    const scale = view.data.adv_scale;
    view.data.decoded.forEach((T, k) => {
      const box = document.querySelector('.tape[data-sample="' + k + '"]');
      if (!box) return;
      for (const cell of box.getElementsByClassName("tok")) {
        const background = colourOf(T, +cell.dataset.i, mode, scale);
        cell.style.backgroundColor = background;
        cell.style.color = textColour(background);
      }
    });
    legend();
  }

  function legend() {
    const box = byId("legend");
    const items = [];
    const swatch = (colour, label) => el("span", { class: "item" }, el("span", { class: "sw", style: "background:" + colour }), label);
    const tapes = view.data.decoded;
    const unattributed = tapes.some((T) => T.msg === null);
    if (view.mode === "role") {
      const roles = new Set();
      for (const T of tapes) for (let i = 0; i < T.n; i++) roles.add(roleOf(T, i));
      for (const role of roles) if (role !== null) items.push(swatch(roleColour(role), role));
      items.push(swatch(PAL.scaffold, "template scaffolding"));
      if (unattributed) items.push(swatch(PAL.unknown, "not attributed"));
    } else if (view.mode === "message") {
      const count = Math.max(0, ...tapes.map((T) => T.roles.length));
      for (let k = 0; k < Math.min(count, PAL.messages.length); k++) items.push(swatch(PAL.messages[k], "#" + k));
      if (count > PAL.messages.length) items.push(el("span", { class: "muted" }, "(colours repeat)"));
      items.push(swatch(PAL.scaffold, "scaffolding"));
      if (unattributed) items.push(swatch(PAL.unknown, "not attributed"));
    } else if (view.mode === "advantage") {
      const s = view.data.adv_scale;
      items.push(el("span", null, num(-s)), el("span", { class: "ramp", style: "background:linear-gradient(90deg," +
        PAL.negative + "," + PAL.neutral + "," + PAL.positive + ")" }), el("span", null, "+" + num(s)),
        swatch(PAL.no_value, "no advantage (prompt)"));
    } else if (view.mode === "logprob") {
      items.push(el("span", null, "0"), el("span", { class: "ramp", style: "background:linear-gradient(90deg," +
        PAL.logprob_high + "," + PAL.logprob_low + ")" }), el("span", null, "≤ " + PAL.logprob_floor),
        swatch(PAL.no_value, "not sampled"));
    } else {
      items.push(swatch(PAL.true, "yes"), swatch(PAL.false, "no"));
      if ((view.mode === "sampled" || view.mode === "content") && unattributed) items.push(swatch(PAL.unknown, "not recorded"));
    }
    box.replaceChildren(...items);
  }

  const tip = byId("tip");
  function onTokenOver(event) {
    const cell = event.target.closest(".tok");
    if (!cell) { hideTip(); return; }
    const k = +event.currentTarget.dataset.sample;
    tip.textContent = tooltipText(view.data.decoded[k], +cell.dataset.i);
    tip.hidden = false;
    moveTip(event);
  }
  function moveTip(event) {
    if (tip.hidden) return;
    const x = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 4);
    const y = event.clientY + 18 + tip.offsetHeight > window.innerHeight ? event.clientY - tip.offsetHeight - 8 : event.clientY + 18;
    tip.style.left = Math.max(0, x) + "px";
    tip.style.top = Math.max(0, y) + "px";
  }
  function hideTip() { tip.hidden = true; }

  // --- traces --------------------------------------------------------------------------------

  function traceSection(trace) {
    const box = el("div", { id: "trace" }, el("h3", null, "Trace: predicted vs ground truth"));
    const names = Object.keys(trace.metrics);
    if (names.length) {
      const table = el("table", { class: "kv", id: "trace-metrics" });
      for (const name of names) table.append(el("tr", null, el("th", null, name), el("td", { class: "num" }, num(trace.metrics[name]))));
      box.append(table);
    }
    const matching = trace.rows.filter(rowMatches).length;
    box.append(el("p", { class: "note" }, trace.reference.length + " reference frames, " + trace.predicted.length +
      " predicted; " + matching + " of " + trace.rows.length + " aligned rows match"));
    box.append(el("p", { class: "note legend" }, el("span", { class: "key-missing" }, "key only in ground truth"),
      el("span", { class: "key-extra" }, "key only in prediction"), el("span", { class: "val-bad" }, "wrong value"),
      el("span", { class: "act-bad" }, "wrong or missing action")));
    const table = el("table", { class: "trace", id: "trace-table" },
      el("colgroup", null, el("col", { class: "idx" }), el("col", { class: "ev" }), el("col"), el("col"),
        el("col", { class: "ev" }), el("col"), el("col")),
      el("tr", null, el("th", null, "#"), el("th", { colspan: 3 }, "ground truth"), el("th", { colspan: 3 }, "predicted")),
      el("tr", null, el("th"), el("th", null, "event"), el("th", null, "action"), el("th", null, "state / value"),
        el("th", null, "event"), el("th", null, "action"), el("th", null, "state / value")));
    trace.rows.forEach((row, k) => {
      const [r, p, actionMatch, missing, extra, wrong, valueMatch] = row;
      const tr = el("tr", { class: rowMatches(row) ? "ok" : "bad", "data-row": k }, el("td", { class: "rowno" }, k));
      tr.append(...frameCells(r === null ? null : trace.reference[r], actionMatch, new Set(missing), new Set(wrong), valueMatch, "key-missing"));
      tr.append(...frameCells(p === null ? null : trace.predicted[p], actionMatch, new Set(extra), new Set(wrong), valueMatch, "key-extra"));
      table.append(tr);
    });
    box.append(table);
    return box;
  }

  function rowMatches(row) {
    return row[2] && !row[3].length && !row[4].length && !row[5].length && row[6] !== false;
  }

  function frameCells(frame, actionMatch, oddKeys, wrongKeys, valueMatch, oddClass) {
    if (frame === null) return [el("td", { class: "empty", colspan: 3 })];
    const state = el("td");
    if (frame.state !== null) {
      const entries = Object.entries(frame.state);
      entries.forEach(([key, value], k) => {
        const cls = oddKeys.has(key) ? oddClass : wrongKeys.has(key) ? "val-bad" : null;
        state.append(el("span", { class: cls, "data-key": key }, key + ": " + value), k + 1 < entries.length ? ", " : "");
      });
      if (!entries.length) state.append("{}");
    } else if (frame.value !== null) {
      state.append(el("span", { class: valueMatch === false ? "val-bad" : null }, frame.value));
    }
    if (frame.problem) state.append(el("div", { class: "problem" }, frame.problem));
    return [el("td", null, frame.event || "?"),
      el("td", { class: actionMatch ? "act" : "act act-bad" }, frame.source === null ? "" : frame.source.replace(/\n$/, "")),
      state];
  }

  // --- routing -------------------------------------------------------------------------------

  function route() {
    const match = /^#t=(\d+)$/.exec(location.hash);
    const index = match ? Number(match[1]) : null;
    const onTrajectory = index !== null && index < N;
    byId("run-page").hidden = onTrajectory;
    byId("trajectory-page").hidden = !onTrajectory;
    hideTip();
    if (onTrajectory) {
      showTrajectory(index);
      byId("where").textContent = "trajectory " + ROWS.id[index];
      window.scrollTo(0, 0);
    } else {
      byId("where").textContent = N + " trajectories";
      renderRows();
    }
  }

  window.tokenroll = {
    ready: null, lastOpen: null,
    open: (index) => { location.hash = "#t=" + index; },
    setMode: setMode,
    mode: () => view.mode,
    order: () => list.order.slice(),
  };
  byId("run-title").textContent = RUN.title;
  renderRun();
  applyFilters();
  window.addEventListener("hashchange", route);
  route();
  window.tokenroll.ready = performance.now();
  document.documentElement.dataset.ready = "1";
})();
