// smtpd-sim explorer: plain DOM + SVG, no library. The data (a JSON script element) is what
// smtpd_sim.studies.explore computed by running the model; this script only shows it.
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("explore-data").textContent);
  const $ = (id) => document.getElementById(id);
  const SVGNS = "http://www.w3.org/2000/svg";
  const state = { era: DATA.eras[0].era, kind: "local", pos: 0, timer: null, owned: null, merged: [] };

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }
  const era = () => DATA.eras.find((e) => e.era === state.era);
  const msg = () => era().messages[state.kind];
  const fmtT = (t) => (t * 1e3).toFixed(3) + " ms";
  function fnLink(f) {
    if (!f || !f.name) return document.createTextNode(f && f.event ? "(" + f.event + ")" : "(not named)");
    const label = (f.file ? f.file + ":" : "") + f.name + "()";
    const a = f.url ? el("a", { href: f.url, target: "_blank", rel: "noopener", title: f.doc || "" }, label)
      : el("code", { title: f.doc || "" }, label);
    return a;
  }

  // ---- header ----------------------------------------------------------------------------
  $("seed").textContent = DATA.seed;
  const sw = $("era-switch");
  for (const e of DATA.eras) {
    sw.append(el("button", { type: "button", role: "radio", "data-era": e.era, "aria-checked": "false",
      onclick: () => setEra(e.era) }, e.era + " (" + e.version + ")"));
  }
  sw.addEventListener("keydown", (ev) => {
    if (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft") return;
    const i = DATA.eras.findIndex((e) => e.era === state.era);
    const j = (i + (ev.key === "ArrowRight" ? 1 : DATA.eras.length - 1)) % DATA.eras.length;
    setEra(DATA.eras[j].era); sw.querySelector(`[data-era="${DATA.eras[j].era}"]`).focus();
    ev.preventDefault(); ev.stopPropagation();
  });
  // the page's JSON has sorted keys: orders come from the lists the study gives
  for (const k of DATA.message_kinds) $("kind").append(el("option", { value: k }, k));
  $("kind").value = state.kind;
  $("kind").addEventListener("change", () => { state.kind = $("kind").value; resetMessage(); });

  function setEra(name) {
    stop();
    state.era = name; state.owned = null; state.merged = [];
    for (const b of sw.children) {
      const on = b.dataset.era === name;
      b.setAttribute("aria-checked", on ? "true" : "false"); b.tabIndex = on ? 0 : -1;
    }
    const e = era();
    $("era-title").textContent = `${e.title} — source: OpenSMTPD ${e.tag}`;
    drawGraph(); fillVictims(); fillMerge(); resetMessage(); drawCharts();
    $("attack-out").textContent = ""; $("proc-info").textContent = "";
  }

  // ---- the process graph ----------------------------------------------------------------
  const pos = {};
  function layout(procs) {
    const n = procs.length, cx = 300, cy = 220, rx = 225, ry = 165;
    procs.forEach((p, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / n;
      pos[p.name] = [cx + rx * Math.cos(a), cy + ry * Math.sin(a)];
    });
  }
  function drawGraph() {
    const g = $("graph"); g.textContent = "";
    const e = era(), procs = e.graph.processes;
    layout(procs);
    const chans = svg("g", {}); g.append(chans);
    for (const [a, b] of e.graph.channels) {
      if (!pos[a] || !pos[b]) continue;
      chans.append(svg("line", { class: "chan", "data-chan": [a, b].sort().join("|"),
        x1: pos[a][0], y1: pos[a][1], x2: pos[b][0], y2: pos[b][1] }));
    }
    for (const p of procs) {
      const [x, y] = pos[p.name];
      const cls = ["node"]; if (p.network_facing) cls.push("net"); if (p.root) cls.push("root");
      const n = svg("g", { class: cls.join(" "), "data-proc": p.name, tabindex: "0", role: "button",
        "aria-label": `${p.name} (${p.title}): user ${p.user}${p.root ? ", root" : ""}${p.network_facing ? ", network-facing" : ""}` });
      n.append(svg("rect", { x: x - 62, y: y - 26, width: 124, height: 52 }));
      const t1 = svg("text", { x: x, y: y - 9, "text-anchor": "middle" }); t1.textContent = p.name;
      const flags = [p.root ? "ROOT" : "", p.network_facing ? "NET" : "", p.serving_secrets.length ? "KEY" : ""].filter(Boolean).join(" ");
      const t2 = svg("text", { x: x, y: y + 5, "text-anchor": "middle", class: "small" }); t2.textContent = `${p.user} ${p.chroot || "no chroot"}`;
      const t3 = svg("text", { x: x, y: y + 18, "text-anchor": "middle", class: "small" }); t3.textContent = `[${p.roles.join(",")}] ${flags}`;
      n.append(t1, t2, t3);
      const pick = () => { showProc(p.name); $("victim").value = p.name; };
      n.addEventListener("click", pick);
      n.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { pick(); ev.preventDefault(); ev.stopPropagation(); } });
      g.append(n);
    }
    const lay = svg("g", { id: "anim" }); g.append(lay);
  }
  function showProc(name) {
    const p = era().graph.processes.find((q) => q.name === name);
    document.querySelectorAll("#graph .node").forEach((n) => n.classList.toggle("selected", n.dataset.proc === name));
    const box = $("proc-info"); box.textContent = "";
    box.append(el("h3", {}, `${p.name} — “${p.title}”`),
      el("p", {}, `roles: ${p.roles.join(", ")}; user ${p.user}; chroot ${p.chroot || "none"}; ${p.root ? "runs as root" : "not root"}; ${p.network_facing ? "network-facing" : "exposure: " + p.exposure}${p.network_inputs.length ? " (" + p.network_inputs.join(", ") + ")" : ""}`),
      el("p", {}, "secrets: " + (p.secrets.map((s) => s.item + (s.when !== "serving" ? " (" + s.when + " only)" : "") + (s.condition ? " (if " + s.condition + ")" : "")).join(", ") || "none")),
      el("p", {}, "peers accept from it: " + (Object.entries(p.peers_accept).map(([d, n]) => `${d} ${n} kinds`).join(", ") || "nothing")));
  }

  // ---- one message, imsg by imsg ----------------------------------------------------------
  function resetMessage() {
    stop(); state.pos = 0; $("hops").textContent = ""; renderDialog(); renderCurrent();
    const lay = $("anim"); if (lay) lay.textContent = "";
    document.querySelectorAll("#graph .chan").forEach((c) => c.classList.remove("active", "mfa", "fcrdns"));
  }
  function hopItem(h) {
    const li = el("li", { "data-imsg": h.imsg, "data-from": h.from, "data-to": h.to, "data-i": h.i,
      class: h.marks.join(" ") });
    li.append(el("strong", {}, `${h.from} → ${h.to} `), el("code", {}, h.imsg));
    for (const m of h.marks) li.append(el("span", { class: "mark " + m, "data-mark": m }, m === "mfa" ? "smtp↔mfa" : m === "fcrdns" ? "FCrDNS" : "filter"));
    li.append(el("br"), document.createTextNode(`t=${fmtT(h.t)} · ${h.len} B${h.fd ? " + fd" : ""}${h.answer_to != null ? " · answers #" + (h.answer_to + 1) : ""} · sent in `),
      fnLink(h.sender), document.createTextNode(" · handled by "), fnLink(h.handler));
    if (h.payload) li.append(el("br"), el("code", { class: "payload", "data-payload": "" }, h.payload));
    return li;
  }
  function renderCurrent() {
    const m = msg(), box = $("current");
    $("counter").textContent = `hop ${state.pos} of ${m.n_hops} (non-stat; ${m.stat_hops} IMSG_STAT_* hops to control not shown)` +
      (m.n_mfa ? ` · ${m.n_mfa} smtp↔mfa` : "") + (m.n_fcrdns ? ` · ${m.n_fcrdns} FCrDNS` : "") + (m.n_filter ? ` · ${m.n_filter} filter` : "") +
      (m.filter_lines ? ` · ${m.filter_lines} lines between lka and the filter process (not imsgs)` : "");
    $("counter").dataset.shown = String(state.pos);
    box.textContent = "";
    if (state.pos === 0) { box.append("Press Play or Step to send the first imsg."); return; }
    const h = m.hops[state.pos - 1];
    box.append(el("strong", {}, `#${h.i + 1} ${h.imsg}`), document.createTextNode(` ${h.from} → ${h.to}, ${h.len} bytes${h.fd ? " with a file descriptor" : ""}${h.answer_to != null ? ", the answer to #" + (h.answer_to + 1) : ""}, sent at ${fmtT(h.t)}, received at ${fmtT(h.t_recv)}.`),
      el("br"), document.createTextNode("Composed in "), fnLink(h.sender),
      document.createTextNode(h.sender.event ? ` (after ${h.sender.event})` : ""),
      document.createTextNode("; handled by "), fnLink(h.handler), el("br"),
      document.createTextNode("Payload: "), el("code", { class: "payload" }, h.payload || "(none)"), el("br"),
      el("span", { class: "hint" }, h.handler.doc || ""));
  }
  function renderDialog() {
    const m = msg(), ol = $("dialog"); ol.textContent = "";
    const t = state.pos ? m.hops[state.pos - 1].t_recv : -1;
    const cur = state.pos ? state.pos - 1 : -1;
    m.replies.forEach((r, k) => {
      const done = r.t <= t || (r.hops.length && r.hops.every((j) => j < state.pos));
      const li = el("li", { class: (done ? "done" : "") + (r.hops.includes(cur) ? " lit" : ""), "data-reply": k },
        el("strong", {}, r.code), document.createTextNode(` to ${r.step}`),
        el("span", { class: "hint" }, r.hops.length ? ` ← hops ${r.hops.map((j) => "#" + (j + 1)).join(" ")} (${r.round_trips} round trips)` : " ← no imsg"));
      ol.append(li);
    });
  }
  function animate(h) {
    const lay = $("anim"); lay.textContent = "";
    document.querySelectorAll("#graph .chan").forEach((c) => c.classList.remove("active", "mfa", "fcrdns"));
    const key = [h.from, h.to].sort().join("|");
    const line = document.querySelector(`#graph .chan[data-chan="${key}"]`);
    if (line) { line.classList.add("active"); h.marks.forEach((m) => line.classList.add(m)); }
    const a = pos[h.from], b = pos[h.to]; if (!a || !b) return;
    const dot = svg("circle", { r: 7, cx: a[0], cy: a[1], class: "dot " + h.marks.join(" ") });
    const lab = svg("text", { x: (a[0] + b[0]) / 2, y: (a[1] + b[1]) / 2 - 8, "text-anchor": "middle", class: "label" });
    lab.textContent = h.imsg.replace(/^IMSG_/, "");
    lay.append(dot, lab);
    const dur = Math.max(30, Math.min(500, Number($("speed").value) * 0.7)), t0 = performance.now();
    const tick = (now) => {
      const f = Math.min(1, (now - t0) / dur);
      dot.setAttribute("cx", a[0] + (b[0] - a[0]) * f); dot.setAttribute("cy", a[1] + (b[1] - a[1]) * f);
      if (f < 1 && dot.isConnected) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }
  function step() {
    const m = msg();
    if (state.pos >= m.n_hops) { stop(); return false; }
    const h = m.hops[state.pos];
    state.pos += 1;
    const ol = $("hops");
    ol.querySelectorAll("li.now").forEach((li) => li.classList.remove("now"));
    const li = hopItem(h); li.classList.add("now"); ol.append(li);
    ol.scrollTop = ol.scrollHeight;  // the list's own scroll only (embedded, the docs page stays put)
    animate(h); renderCurrent(); renderDialog();
    return true;
  }
  function back() {
    stop(); if (state.pos === 0) return;
    state.pos -= 1; const ol = $("hops"); ol.lastElementChild && ol.lastElementChild.remove();
    if (ol.lastElementChild) ol.lastElementChild.classList.add("now");
    if (state.pos) animate(msg().hops[state.pos - 1]); else resetMessage();
    renderCurrent(); renderDialog();
  }
  function play() {
    if (state.timer) { stop(); return; }
    if (state.pos >= msg().n_hops) resetMessage();
    $("play").textContent = "Pause"; $("play").setAttribute("aria-pressed", "true");
    const go = () => { if (!step()) return; state.timer = setTimeout(go, Number($("speed").value)); };
    go();
  }
  function stop() {
    if (state.timer) clearTimeout(state.timer);
    state.timer = null; $("play").textContent = "Play"; $("play").setAttribute("aria-pressed", "false");
  }
  $("play").addEventListener("click", play);
  $("step").addEventListener("click", () => { stop(); step(); });
  $("back").addEventListener("click", back);
  $("reset").addEventListener("click", resetMessage);
  document.addEventListener("keydown", (ev) => {
    const t = ev.target; if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
    if (t && t.tagName === "BUTTON" && (ev.key === " " || ev.key === "Enter")) return;
    if (ev.key === " ") { play(); ev.preventDefault(); }
    else if (ev.key === "ArrowRight") { stop(); step(); ev.preventDefault(); }
    else if (ev.key === "ArrowLeft") { back(); ev.preventDefault(); }
    else if (ev.key === "Home") { resetMessage(); ev.preventDefault(); }
  });

  // ---- between eras: small bar charts of compare's numbers --------------------------------
  function barChart(title, rows, fmt) {
    const w = 300, bh = 18, gap = 6, left = 110, h = rows.length * (bh + gap) + 8;
    const max = Math.max(...rows.map((r) => r[1]), 1e-12);
    const s = svg("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": title + ": " + rows.map((r) => r[0] + " " + fmt(r[1])).join(", ") });
    rows.forEach(([name, v], i) => {
      const y = 4 + i * (bh + gap);
      const t = svg("text", { x: 0, y: y + 13 }); t.textContent = name; s.append(t);
      s.append(svg("rect", { class: "bar" + (name === state.era ? " cur" : ""), x: left, y: y, height: bh, width: Math.max(1, (w - left - 60) * v / max) }));
      const n = svg("text", { x: left + Math.max(1, (w - left - 60) * v / max) + 4, y: y + 13 }); n.textContent = fmt(v); s.append(n);
    });
    return el("div", { class: "chart" }, el("h3", {}, title), s);
  }
  function drawCharts() {
    const c = DATA.compare, box = $("charts"); box.textContent = "";
    $("cmp-note").textContent = `smtpd-sim compare's numbers: one-message probes for hops and round trips; workload '${c.workload}' (seed ${c.seed}, ${c.cores} cores, calibration ${c.calibration}) for idle and latency.`;
    const es = c.eras;
    box.append(barChart("hops per local message", es.map((e) => [e.era, e.hops_per_message.local]), String));
    box.append(barChart("hops per relayed message", es.map((e) => [e.era, e.hops_per_message.relay]), String));
    for (const step of c.steps) {
      if (es.every((e) => !e.round_trips[step])) continue;
      box.append(barChart(`round trips before the ${step} reply`, es.map((e) => [e.era, e.round_trips[step] || 0]), (v) => String(v)));
    }
    box.append(barChart("DATA-end → 250, mean (ms)", es.map((e) => [e.era, e.latency_s.mean * 1e3]), (v) => v.toFixed(3)));
    box.append(barChart("DATA-end → 250, p99 (ms)", es.map((e) => [e.era, e.latency_s.p99 * 1e3]), (v) => v.toFixed(3)));
    const cur = es.find((e) => e.era === state.era);
    if (cur) box.append(barChart(`idle fraction per process (${cur.era})`, Object.entries(cur.idle_fraction), (v) => v.toFixed(4)));
  }

  // ---- compromise -----------------------------------------------------------------------
  function fillVictims() {
    const s = $("victim"); s.textContent = "";
    for (const p of era().graph.processes) s.append(el("option", { value: p.name }, `${p.name}${p.network_facing ? " (network-facing)" : ""}`));
    const net = era().graph.processes.find((p) => p.network_facing); if (net) s.value = net.name;
  }
  function markGraph(owned, reached) {
    document.querySelectorAll("#graph .node").forEach((n) => {
      n.classList.toggle("owned", owned.includes(n.dataset.proc));
      n.classList.toggle("reached", reached.includes(n.dataset.proc) && !owned.includes(n.dataset.proc));
    });
  }
  function showBlast(b, label) {
    const out = $("attack-out"); out.textContent = "";
    const who = Array.isArray(b.compromised) ? b.compromised : [b.compromised];
    markGraph(who, b.reachable_processes);
    out.append(el("h3", {}, `${era().era}: ${label} in ${who.join(", ") || "(no network-facing process)"}`));
    const ul = el("ul", { class: "secrets", "data-testid": "exposed-secrets" });
    for (const s of b.exposed_secrets) ul.append(el("li", { "data-secret": s }, s));
    if (!b.exposed_secrets.length) ul.append(el("li", { class: "ok" }, "no secret exposed"));
    out.append(el("p", {}, "Exposed secrets:"), ul);
    if (b.conditional_secrets.length) out.append(el("p", {}, "Exposed only under some configurations: " + b.conditional_secrets.join(", ")));
    if (b.exposures.length) {
      const t = el("table", {}, el("tr", {}, el("th", {}, "secret"), el("th", {}, "held by"), el("th", {}, "how"), el("th", {}, "source")));
      for (const x of b.exposures) t.append(el("tr", {}, el("td", {}, x.secret), el("td", {}, x.holder), el("td", {}, x.how + (x.condition ? ` (if ${x.condition})` : "")), el("td", {}, el("code", {}, x.source))));
      out.append(el("div", { class: "scroll" }, t));
    }
    out.append(el("p", {}, "Reachable processes: " + (b.reachable_processes.join(", ") || "none")),
      el("p", {}, "Capabilities: " + (b.capabilities.join(", ") || "none")));
    if ("root_reached" in b) out.append(el("p", {}, "Root: ", el("span", { class: b.root_reached ? "no" : "ok" }, b.root_reached ? "reached" : "not reached")));
    if (b.paths.length) {
      const t = el("table", {}, el("tr", {}, el("th", {}, "path"), el("th", {}, "imsg it can send"), el("th", {}, "what the peer does for it"), el("th", {}, "seen")));
      for (const p of b.paths) t.append(el("tr", {}, el("td", {}, p.path.join(" → ")), el("td", {}, el("code", {}, p.imsg)), el("td", {}, `${p.receiver}: ${p.capability}`), el("td", {}, p.origin)));
      out.append(el("div", { class: "scroll" }, t));
    }
  }
  $("compromise").addEventListener("click", () => {
    const name = $("victim").value, mode = document.querySelector('input[name="attack"]:checked').value;
    const c = era().compromise.processes[name][mode];
    showBlast(c, mode === "code" ? "code execution" : "memory disclosure");
  });
  $("heartbleed").addEventListener("click", () => showBlast(era().compromise.heartbleed, "Heartbleed (memory disclosure)"));
  $("clear-attack").addEventListener("click", () => { markGraph([], []); $("attack-out").textContent = ""; });

  // ---- merge ----------------------------------------------------------------------------
  function fillMerge() {
    const box = $("merge-roles"), pre = $("merge-presets"); box.textContent = ""; pre.textContent = "";
    const roles = Object.keys(era().host);
    for (const r of roles) {
      const id = "merge-" + r;
      box.append(el("label", { for: id }, el("input", { type: "checkbox", id: id, value: r, onchange: showMerge }), ` ${r}`));
    }
    pre.append(document.createTextNode("Computed merges: "));
    for (const m of era().merges) {
      pre.append(el("button", { type: "button", "data-merge": m.merge.join("+"), onclick: () => {
        box.querySelectorAll("input").forEach((i) => { i.checked = m.merge.includes(i.value); }); showMerge();
      } }, m.merge.join(" + ")));
    }
    $("merge-out").textContent = "";
  }
  function showMerge() {
    const chosen = [...$("merge-roles").querySelectorAll("input:checked")].map((i) => i.value);
    const out = $("merge-out"); out.textContent = "";
    const host = era().host, procs = [...new Set(chosen.map((r) => host[r]))];
    document.querySelectorAll("#graph .node").forEach((n) => n.classList.toggle("merged", procs.includes(n.dataset.proc)));
    if (chosen.length < 2) { out.append(el("p", { class: "hint" }, "Choose at least two roles.")); return; }
    const key = [...chosen].sort().join("+");
    const m = era().merges.find((x) => [...x.merge].sort().join("+") === key);
    if (!m) {
      out.append(el("p", {}, "Not computed when this page was built. Ask the model: ",
        el("code", {}, `smtpd-sim privsep ${era().era} --merge ${chosen.join(",")}`)));
      return;
    }
    out.append(el("p", {}, `Merging ${m.merge.join(", ")} (processes ${m.processes.join(", ")}) is `,
      el("span", { class: m.safe ? "ok" : "no" }, m.safe ? "safe" : "unsafe"),
      m.already_one_process ? " (the era already hosts them in one process)" : ""));
    const hb = m.hops_per_message;
    out.append(el("p", {}, `Hops per message: local ${hb.before.local} → ${hb.after.local} (saves ${m.hops_saved_per_message.local}), relay ${hb.before.relay} → ${hb.after.relay} (saves ${m.hops_saved_per_message.relay}).`));
    if (m.erased_boundaries.length) {
      const ul = el("ul");
      m.erased_boundaries.forEach((b, i) => {
        const deciding = m.deciding_boundaries.includes(i);
        let d;
        if (["user", "root", "chroot"].includes(b.kind)) d = `${b.kind} differs between ${b.between.join(" and ")}: ${JSON.stringify(b.values)}`;
        else if (b.kind === "imsg") d = `${b.gained_by.join(", ")} gains ${b.held_by}'s imsgs: ${b.imsgs.join("; ")}`;
        else d = `${b.kind} ${b.item} of ${b.held_by} shared with ${b.gained_by.join(", ")}${b.condition ? " (if " + b.condition + ")" : ""}`;
        ul.append(el("li", { class: deciding ? "no" : "" }, (deciding ? "! " : "") + d));
      });
      out.append(el("p", {}, "Privilege boundaries erased (! decides):"), ul);
    } else out.append(el("p", {}, "No privilege boundary is erased."));
    m.root_requests.forEach((q, i) => {
      if (m.deciding_requests.includes(i)) out.append(el("p", { class: "no" }, `! ${q.name} → ${q.to} (${q.capability}) would be sent from a network-facing process`));
    });
    out.append(el("p", { class: "hint" }, "Rule: " + m.rule));
  }

  // ---- exercises ------------------------------------------------------------------------
  const norm = (s) => String(s).trim().toLowerCase().replace(/\s+/g, " ");
  DATA.exercises.forEach((x, n) => {
    const id = "ex-" + x.id;
    let input;
    if (x.type === "choice") {
      input = el("select", { id: id, "data-testid": id });
      input.append(el("option", { value: "" }, "choose…"));
      for (const c of x.choices) input.append(el("option", { value: c }, c));
    } else input = el("input", { id: id, "data-testid": id, type: "text", inputmode: x.type === "number" ? "decimal" : "text", autocomplete: "off" });
    const res = el("span", { "aria-live": "polite", "data-testid": id + "-result" });
    const check = () => {
      const ok = x.answer.map(norm).includes(norm(input.value)) ||
        (x.type === "number" && x.answer.some((a) => input.value.trim() !== "" && Number(a) === Number(input.value)));
      res.textContent = ok ? "Correct. " + x.explain : "Not quite, try again.";
      res.className = ok ? "ok" : "no"; res.dataset.verdict = ok ? "correct" : "wrong";
    };
    input.addEventListener("keydown", (ev) => { if (ev.key === "Enter") check(); });
    $("exercises").append(el("div", { class: "exercise" }, el("label", { for: id }, `${n + 1}. ${x.question}`), el("div", { class: "row" }, input,
      el("button", { type: "button", "data-testid": id + "-check", onclick: check }, "Check"), res)));
  });

  // ---- the tour -------------------------------------------------------------------------
  let tourAt = 0;
  function showTour(i) {
    const steps = DATA.tour; if (!steps.length) return;
    tourAt = Math.max(0, Math.min(steps.length - 1, i));
    const s = steps[tourAt];
    $("tour").hidden = false;
    $("tour-title").textContent = s.title; $("tour-text").textContent = s.text;
    $("tour-pos").textContent = `${tourAt + 1} / ${steps.length}`;
    if (DATA.eras.some((e) => e.era === s.era)) setEra(s.era);
    if (s.kind) { state.kind = s.kind; $("kind").value = s.kind; resetMessage(); }
    if (s.focus.startsWith("compromise:")) { $("victim").value = s.focus.split(":")[1]; $("compromise").click(); }
    else if (s.focus === "heartbleed") $("heartbleed").click();
    else if (s.focus.startsWith("merge:")) { const b = document.querySelector(`[data-merge="${s.focus.split(":")[1]}"]`); if (b) b.click(); }
    else if (s.focus === "charts") $("charts").scrollIntoView({ block: "nearest" });
    $("tour").dataset.era = state.era;
    $("tour").scrollIntoView({ block: "nearest" });
  }
  $("tour-open").addEventListener("click", () => { showTour(0); $("tour-next").focus(); });
  $("tour-next").addEventListener("click", () => showTour(tourAt + 1));
  $("tour-prev").addEventListener("click", () => showTour(tourAt - 1));
  $("tour-close").addEventListener("click", () => { $("tour").hidden = true; $("tour-open").focus(); });
  if (!DATA.tour.length) $("tour-open").hidden = true;

  setEra(state.era);
  document.body.dataset.ready = "1";
})();
