// Tayori console: live progress of a send, without reloading the page.
// The page marks the element with data-progress-url; this script polls it
// every two seconds and fills the elements named by data-field.
"use strict";
document.documentElement.classList.add("js");
(function () {
  const box = document.querySelector("[data-progress-url]");
  if (!box) return;
  const url = box.getAttribute("data-progress-url");
  const set = (name, value) => {
    for (const el of box.querySelectorAll('[data-field="' + name + '"]')) el.textContent = value;
  };
  async function tick() {
    let done = false;
    try {
      const res = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (res.ok) {
        const p = await res.json();
        for (const k of Object.keys(p)) set(k, p[k]);
        const badge = box.querySelector('[data-field="state_label"]');
        if (badge) badge.className = "badge " + p.state;
        // A finished send offers nothing to pause or cancel.
        const actions = document.getElementById("send-actions");
        if (actions && p.final) actions.hidden = true;
        const bar = box.querySelector("progress");
        if (bar) bar.value = p.percent;
        box.setAttribute("data-state", p.state);
        done = p.final;
      }
    } catch (e) { /* network hiccup: try again */ }
    if (!done) setTimeout(tick, 2000);
  }
  tick();
})();
