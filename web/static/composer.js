// Tayori composer: autosave, the live lint and preview, reordering by drag
// (SortableJS) and by the ↑ ↓ buttons, and a copy of unsaved typing in this
// browser. The page works without this script as plain forms; the script
// posts the same form fields to the same server.
//
// Typing through an input method (Japanese IME) is never disturbed: while
// a composition is open nothing is scheduled, and no field's value is ever
// set from the server's answers (only the notes beside fields change).
"use strict";
(function () {
  const form = document.getElementById("composer");
  if (!form) return;
  document.documentElement.classList.add("js");
  const slug = form.dataset.slug;
  const base = document.getElementById("base");
  const csrf = form.querySelector('input[name="csrf"]').value;
  const status = document.getElementById("status");
  const reader = document.getElementById("preview-reader");
  const msg = (k) => status.dataset[k] || k;
  // The lint's problems come worded in English (as `tayori compose check`
  // prints them) and in Japanese; the console shows the editor's language.
  const english = document.documentElement.lang === "en";
  const say = (p) => (english || !p.message_ja ? p.message : p.message_ja);
  const storeKey = "tayori:draft:" + slug;

  // ---- state ----
  let composing = false; // an IME composition is open
  let pendingProblems = null; // lint results held back while composing
  let lastSaved = serialize(); // what the server has
  let stopped = ""; // "conflict", "locked" or "expired": autosave waits
  let timers = {};
  let firstChange = 0;
  let backoff = 0;

  function serialize() {
    const fd = new FormData(form);
    fd.delete("csrf");
    fd.delete("base");
    return new URLSearchParams(fd).toString();
  }

  function setStatus(text, cls) {
    status.textContent = text;
    status.className = "status" + (cls ? " " + cls : "");
  }

  function later(name, ms, fn) {
    clearTimeout(timers[name]);
    timers[name] = setTimeout(fn, ms);
  }

  // ---- requests ----
  async function post(path, body) {
    const res = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json", "X-CSRF-Token": csrf },
      body: body,
    });
    let data = null;
    if ((res.headers.get("Content-Type") || "").startsWith("application/json")) data = await res.json();
    return { status: res.status, data: data };
  }

  // ---- the copy in this browser ----
  function keepLocal() {
    const now = serialize();
    if (now === lastSaved) {
      localStorage.removeItem(storeKey);
      return;
    }
    try {
      localStorage.setItem(storeKey, JSON.stringify({ base: base.value, form: now, at: Date.now() }));
    } catch (e) { /* storage full or disabled: the server copy still comes */ }
  }

  function offerLocal() {
    let saved = null;
    try { saved = JSON.parse(localStorage.getItem(storeKey) || "null"); } catch (e) { saved = null; }
    if (!saved || !saved.form || saved.form === serialize()) {
      localStorage.removeItem(storeKey);
      return;
    }
    const box = document.getElementById("restore-local");
    box.hidden = false;
    document.getElementById("restore-local-yes").onclick = () => {
      box.hidden = true;
      fill(new URLSearchParams(saved.form));
      changed();
    };
    document.getElementById("restore-local-no").onclick = () => {
      box.hidden = true;
      localStorage.removeItem(storeKey);
    };
  }

  // fill rebuilds the sections, items and links to match params and sets
  // every field's value.
  function fill(params) {
    const count = (re) => {
      let n = -1;
      for (const k of params.keys()) {
        const m = re.exec(k);
        if (m) n = Math.max(n, +m[1]);
      }
      return n + 1;
    };
    const secs = () => form.querySelectorAll("[data-sec]");
    const nsec = count(/^s(\d+)\.heading$/);
    while (secs().length < nsec) addSection(false);
    while (secs().length > nsec) secs()[secs().length - 1].remove();
    secs().forEach((sec, si) => {
      const items = () => sec.querySelectorAll("[data-item]");
      const nit = count(new RegExp("^s" + si + "\\.i(\\d+)\\.headline$"));
      while (items().length < nit) addItem(sec, false);
      while (items().length > nit) items()[items().length - 1].remove();
      items().forEach((it, ii) => {
        const rows = () => it.querySelectorAll("[data-link]");
        const nl = Math.max(count(new RegExp("^s" + si + "\\.i" + ii + "\\.l(\\d+)\\.url$")), 1);
        while (rows().length < nl) addLink(it, false);
        while (rows().length > nl) rows()[rows().length - 1].remove();
      });
    });
    renumber();
    for (const el of form.elements) {
      if (el.name && params.has(el.name) && el.type !== "hidden" && el.type !== "submit") el.value = params.get(el.name);
    }
  }

  // ---- saving ----
  async function save(kind) {
    clearTimeout(timers.save);
    if (composing) return later("save", 1000, () => save(kind));
    const now = serialize();
    if (kind === "autosave" && (now === lastSaved || stopped === "conflict" || stopped === "locked")) return;
    const body = "action=" + kind + "&base=" + encodeURIComponent(base.value) + "&" + now;
    let r;
    try {
      r = await post("/admin/issues/" + encodeURIComponent(slug) + "/edit", body);
    } catch (e) {
      backoff = Math.min(backoff ? backoff * 2 : 5000, 60000);
      setStatus(msg("offline"), "warn");
      later("save", backoff, () => save("autosave"));
      return;
    }
    backoff = 0;
    firstChange = 0;
    if (r.status === 200 && r.data) {
      base.value = r.data.revision;
      lastSaved = now;
      stopped = "";
      keepLocal();
      setStatus((kind === "save" ? msg("saved") : msg("autosaved")).replace("{n}", r.data.revision).replace("{at}", r.data.saved_at));
      document.getElementById("rev-line").dataset.rev = r.data.revision;
      showProblems(r.data.problems);
      return;
    }
    if (r.status === 401) {
      stopped = "expired";
      const a = r.data && r.data.login ? r.data.login : "/admin/login";
      setStatus(msg("expired"), "error");
      const link = document.createElement("a");
      link.href = a;
      link.textContent = " " + msg("signin");
      link.id = "signin-again";
      status.appendChild(link);
      return;
    }
    if (r.status === 409 && r.data && r.data.error && r.data.error.code === "locked") {
      stopped = "locked";
      setStatus(r.data.error.message, "error");
      return;
    }
    if (r.status === 409) {
      stopped = "conflict";
      setStatus(r.data && r.data.error ? r.data.error.message : msg("conflict"), "error");
      const b = document.createElement("button");
      b.type = "submit";
      b.name = "action";
      b.value = "save";
      b.id = "resolve-conflict";
      b.className = "primary";
      b.textContent = msg("merge");
      status.appendChild(document.createTextNode(" "));
      status.appendChild(b);
      // The button submits the form itself: the server shows both
      // versions side by side.
      b.setAttribute("form", "composer");
      return;
    }
    setStatus(r.data && r.data.error ? r.data.error.message : msg("failed"), "error");
  }

  // ---- lint ----
  async function lint() {
    if (composing) return later("lint", 800, lint);
    try {
      const r = await post("/admin/issues/" + encodeURIComponent(slug) + "/lint", serialize());
      if (r.status === 200 && r.data) showProblems(r.data.problems);
    } catch (e) { /* offline: the save will say so */ }
  }

  const fieldId = (name) => "f-" + name.replace(/\./g, "-");

  function showProblems(problems) {
    if (composing) {
      pendingProblems = problems;
      return;
    }
    pendingProblems = null;
    form.querySelectorAll(".field-problems.js, ul.field-problems").forEach((ul) => {
      if (!ul.closest(".summary")) ul.remove();
    });
    form.querySelectorAll('[aria-invalid="true"]').forEach((el) => el.removeAttribute("aria-invalid"));
    let errors = 0;
    const list = document.getElementById("lint-list");
    list.textContent = "";
    for (const p of problems || []) {
      if (p.severity === "error") errors++;
      const li = document.createElement("li");
      li.className = p.severity;
      let target = null;
      if (p.field) target = form.querySelector('[name="' + CSS.escape(p.field) + '"]');
      if (target) {
        const a = document.createElement("a");
        a.href = "#" + target.id;
        a.textContent = p.text;
        li.appendChild(a);
        const wrap = target.closest(".field") || target.parentElement;
        let ul = wrap.querySelector(":scope > ul.field-problems");
        if (!ul) {
          ul = document.createElement("ul");
          ul.className = "field-problems js";
          ul.id = target.id + "-problems";
          wrap.appendChild(ul);
        }
        const item = document.createElement("li");
        item.className = p.severity;
        item.title = p.text;
        const sev = document.createElement("span");
        sev.className = "sev";
        sev.textContent = p.severity === "error" ? msg("error") : msg("warning");
        item.appendChild(sev);
        item.appendChild(document.createTextNode(" " + say(p)));
        ul.appendChild(item);
        target.setAttribute("aria-describedby", ul.id);
        if (p.severity === "error") target.setAttribute("aria-invalid", "true");
      } else {
        li.textContent = english || !p.message_ja ? p.text : (p.line ? p.line + " 行目: " : "") + p.message_ja;
      }
      list.appendChild(li);
    }
    const n = (problems || []).length;
    document.getElementById("lint-counts").textContent = n
      ? msg("counts").replace("{errors}", errors).replace("{warnings}", n - errors)
      : msg("clean");
    document.getElementById("lint-summary").classList.toggle("danger", errors > 0);
  }

  // ---- preview ----
  const frame = document.getElementById("preview-frame");
  async function preview() {
    if (composing) return later("preview", 1000, preview);
    const extra = reader ? new URLSearchParams(new FormData(reader)).toString() : "";
    let r;
    try {
      r = await post("/admin/issues/" + encodeURIComponent(slug) + "/preview", serialize() + (extra ? "&" + extra : ""));
    } catch (e) {
      return;
    }
    const d = r.data || {};
    const message = document.getElementById("preview-message");
    message.hidden = !d.message;
    message.textContent = d.message || "";
    if (!d.ok || d.nothing) {
      if (d.nothing) {
        frame.removeAttribute("src");
        document.getElementById("preview-text").textContent = "";
        document.getElementById("preview-size").textContent = "";
      }
      document.getElementById("preview-reader-label").textContent = d.reader ? msg("for").replace("{reader}", d.reader) : "";
      return;
    }
    frame.src = d.html_url;
    document.getElementById("preview-text").textContent = d.text;
    document.getElementById("preview-size").textContent = d.sizes;
    document.getElementById("preview-reader-label").textContent = msg("for").replace("{reader}", d.reader);
    const clip = document.getElementById("preview-clip");
    clip.hidden = !d.clip;
    clip.textContent = d.clip === "over" ? msg("clipover") : d.clip === "near" ? msg("clipnear") : "";
  }
  if (reader) {
    reader.addEventListener("submit", (e) => e.preventDefault());
    reader.addEventListener("change", () => later("preview", 200, preview));
    reader.addEventListener("input", (e) => {
      if (e.target.type === "email") later("preview", 800, preview);
    });
  }
  const tabs = [document.getElementById("tab-html"), document.getElementById("tab-text")];
  tabs.forEach((tab) => tab && tab.addEventListener("click", () => {
    tabs.forEach((t) => {
      const on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    });
  }));

  // ---- typing ----
  function changed() {
    if (composing) return;
    later("local", 300, keepLocal);
    later("lint", 700, lint);
    later("preview", 1200, preview);
    if (!firstChange) firstChange = Date.now();
    // Autosave 2 s after the typing stops, and at least every 15 s.
    const wait = Math.max(0, Math.min(2000, 15000 - (Date.now() - firstChange)));
    later("save", wait, () => save("autosave"));
  }
  form.addEventListener("compositionstart", () => { composing = true; });
  form.addEventListener("compositionend", () => {
    composing = false;
    if (pendingProblems) showProblems(pendingProblems);
    changed();
  });
  form.addEventListener("input", (e) => {
    if (e.isComposing || composing) return;
    changed();
  });
  form.addEventListener("change", (e) => {
    if (e.target.tagName === "SELECT" || e.target.type === "checkbox") changed();
  });
  form.addEventListener("submit", (e) => {
    const b = e.submitter;
    if (b && b.name === "action" && b.value === "save" && stopped !== "conflict") {
      e.preventDefault();
      save("save");
    }
    // Otherwise (the conflict button) the form goes to the server as is.
  });
  // Leaving the page: what is not saved yet goes to the server in a beacon
  // (and stays in this browser until the server has it).
  window.addEventListener("pagehide", () => {
    keepLocal();
    const now = serialize();
    if (now !== lastSaved && !stopped && navigator.sendBeacon) {
      navigator.sendBeacon("/admin/issues/" + encodeURIComponent(slug) + "/edit",
        new URLSearchParams("csrf=" + encodeURIComponent(csrf) + "&action=autosave&base=" + encodeURIComponent(base.value) + "&" + now));
    }
  });

  // ---- structure: add, delete, move ----
  const tpl = (id) => document.getElementById(id).content.firstElementChild.cloneNode(true);
  const sectionsBox = document.getElementById("sections");

  function addSection(focus) {
    const sec = tpl("tpl-section");
    sectionsBox.appendChild(sec);
    sortItems(sec.querySelector("[data-items]"));
    renumber();
    if (focus) sec.querySelector("input").focus();
    return sec;
  }
  function addItem(sec, focus) {
    const it = tpl("tpl-item");
    sec.querySelector("[data-items]").appendChild(it);
    renumber();
    if (focus) it.querySelector("input").focus();
    return it;
  }
  function addLink(it, focus) {
    const row = tpl("tpl-link");
    const links = it.querySelector("[data-links]");
    links.insertBefore(row, links.querySelector('[data-op="add-link"]'));
    renumber();
    if (focus) row.querySelector("input").focus();
    return row;
  }

  function suffix(el) {
    return el.dataset.name || el.name.split(".").pop();
  }
  function setName(el, name) {
    el.name = name;
    el.id = fieldId(name);
    const wrap = el.closest(".field");
    if (wrap) {
      wrap.dataset.field = name;
      const label = wrap.querySelector("label");
      if (label) label.htmlFor = el.id;
    }
  }

  // renumber gives every field the name of its place: s0.heading,
  // s0.i1.headline, s0.i1.l2.url… and renumbers the headings and buttons.
  function renumber() {
    form.querySelectorAll("[data-sec]").forEach((sec, si) => {
      sec.id = "sec-" + si;
      sec.querySelector(".sec-title [data-n]").textContent = si + 1;
      for (const el of sec.querySelectorAll("input, select, textarea")) {
        if (el.closest("[data-item]")) continue;
        setName(el, "s" + si + "." + suffix(el));
      }
      sec.querySelectorAll(":scope > .bar button[data-op]").forEach((b) => { b.value = b.dataset.op + ":s" + si; });
      const addIt = sec.querySelector(':scope > button[data-op="add-item"]');
      if (addIt) addIt.value = "add-item:s" + si;
      sec.querySelectorAll("[data-item]").forEach((it, ii) => {
        const p = "s" + si + ".i" + ii;
        it.id = "item-" + si + "-" + ii;
        it.querySelector(".item-title [data-n]").textContent = ii + 1;
        it.querySelectorAll(":scope > .bar button[data-op]").forEach((b) => { b.value = b.dataset.op + ":" + p; });
        for (const el of it.querySelectorAll("input, select, textarea")) {
          if (el.closest("[data-link]")) continue;
          setName(el, p + "." + suffix(el));
        }
        it.querySelectorAll("[data-link]").forEach((row, li) => {
          for (const el of row.querySelectorAll("input")) setName(el, p + ".l" + li + "." + suffix(el));
        });
      });
    });
  }

  function announce(key) {
    setStatus(msg(key));
  }

  form.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-op]");
    if (!b || !form.contains(b)) return;
    e.preventDefault();
    const op = b.dataset.op;
    const item = b.closest("[data-item]");
    const sec = b.closest("[data-sec]");
    const link = b.closest("[data-link]");
    const unit = op === "add-item" || op === "add-section" || op === "add-link" || op === "del-link" ? null : item || sec;
    switch (op) {
      case "add-section": addSection(true); break;
      case "add-item": addItem(sec, true); break;
      case "add-link": addLink(item, true); break;
      case "del-link": {
        const rows = item.querySelectorAll("[data-link]");
        if (rows.length > 1) link.remove();
        else link.querySelectorAll("input").forEach((el) => { el.value = ""; });
        renumber();
        break;
      }
      case "del": {
        const next = unit.nextElementSibling || unit.previousElementSibling;
        unit.remove();
        renumber();
        if (next && next.querySelector) (next.querySelector('button[data-op="del"]') || b).focus();
        announce("deleted");
        break;
      }
      case "up":
      case "down": {
        const sib = op === "up" ? unit.previousElementSibling : unit.nextElementSibling;
        if (sib && sib.matches(unit.matches("[data-item]") ? "[data-item]" : "[data-sec]")) {
          if (op === "up") unit.parentNode.insertBefore(unit, sib);
          else unit.parentNode.insertBefore(sib, unit);
        } else if (unit.matches("[data-item]")) {
          // Past the end of its section: into the next or previous one.
          const secs = [...form.querySelectorAll("[data-sec]")];
          const i = secs.indexOf(sec) + (op === "up" ? -1 : 1);
          if (i >= 0 && i < secs.length) {
            const ol = secs[i].querySelector("[data-items]");
            if (op === "up") ol.appendChild(unit);
            else ol.insertBefore(unit, ol.firstElementChild);
          }
        }
        renumber();
        b.focus();
        announce(op === "up" ? "movedup" : "moveddown");
        break;
      }
    }
    changed();
  });

  // ---- drag and drop ----
  function sortItems(ol) {
    if (!window.Sortable || !ol) return;
    window.Sortable.create(ol, {
      group: "items", handle: ".item-handle", draggable: "[data-item]", animation: 150, forceFallback: true,
      onEnd: () => { renumber(); changed(); },
    });
  }
  function sortable() {
    if (!window.Sortable) return;
    window.Sortable.create(sectionsBox, {
      handle: ".sec-handle", draggable: "[data-sec]", animation: 150, forceFallback: true,
      onEnd: () => { renumber(); changed(); },
    });
    form.querySelectorAll("[data-items]").forEach(sortItems);
  }

  // ---- start ----
  const locked = form.dataset.locked === "1";
  const correction = document.getElementById("correction");
  function lockFields(on) {
    for (const el of form.elements) {
      if (el.closest("#correction-box") || el.type === "hidden") continue;
      el.disabled = on;
    }
  }
  if (locked && correction) {
    lockFields(!correction.checked);
    correction.addEventListener("change", () => lockFields(!correction.checked));
  }
  sortable();
  offerLocal();
  preview();
})();
