/* aspdigest review site: platform tabs, and, when `aspdigest preview` serves the page, live
   reload and Approve buttons. Works without it too: from the file system the page is static. */
(function () {
  "use strict";
  var root = document.documentElement;
  root.classList.add("js");

  /* ---- platform tabs (WAI-ARIA tabs pattern, automatic activation) ---- */
  function setupTabs(list) {
    var tabs = Array.prototype.slice.call(list.querySelectorAll('[role="tab"]'));
    if (!tabs.length) return;
    var panels = tabs.map(function (tab) {
      return document.getElementById(tab.getAttribute("aria-controls"));
    });
    tabs.forEach(function (tab) {
      var panel = document.getElementById(tab.getAttribute("aria-controls"));
      if (panel) panel.setAttribute("aria-labelledby", tab.id);
    });

    function select(index, focus, remember) {
      tabs.forEach(function (tab, i) {
        var on = i === index;
        tab.setAttribute("aria-selected", on ? "true" : "false");
        tab.tabIndex = on ? 0 : -1;
        if (panels[i]) panels[i].hidden = !on;
      });
      if (focus) tabs[index].focus();
      if (remember && panels[index]) {
        var hash = "#" + panels[index].id;
        if (window.history && history.replaceState) {
          history.replaceState(null, "", hash);
        }
        keepHash(hash);
      }
    }

    tabs.forEach(function (tab, i) {
      tab.addEventListener("click", function () { select(i, false, true); });
      tab.addEventListener("keydown", function (event) {
        var next = null;
        if (event.key === "ArrowRight") next = (i + 1) % tabs.length;
        else if (event.key === "ArrowLeft") next = (i - 1 + tabs.length) % tabs.length;
        else if (event.key === "Home") next = 0;
        else if (event.key === "End") next = tabs.length - 1;
        if (next !== null) {
          event.preventDefault();
          select(next, true, true);
        }
      });
    });

    var start = 0;
    panels.forEach(function (panel, i) {
      if (panel && location.hash === "#" + panel.id) start = i;
    });
    list.hidden = false;
    select(start, false, false);
    if (location.hash) keepHash(location.hash);
  }

  /* Links to other days keep the chosen platform. */
  function keepHash(hash) {
    if (!/^#thread-[a-z0-9-]+$/.test(hash)) return;
    document.querySelectorAll("a[data-day]").forEach(function (a) {
      a.setAttribute("href", a.getAttribute("href").split("#")[0] + hash);
    });
  }

  /* ---- served by `aspdigest preview` ---- */
  var mode = document.querySelector('meta[name="aspdigest-mode"]');
  var served = mode && mode.getAttribute("content") === "served";
  var live = document.getElementById("live");

  function say(text, isError) {
    if (!live) return;
    live.hidden = false;
    live.textContent = text;
    live.classList.toggle("live-error", !!isError);
  }

  function pollVersion(version) {
    var failures = 0;
    function tick() {
      fetch("/_version", { cache: "no-store", credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (data) {
          failures = 0;
          if (String(data.version) !== version) {
            say("The drafts changed; reloading…");
            location.reload();
            return;
          }
          setTimeout(tick, 1000);
        })
        .catch(function () {
          failures += 1;
          if (failures === 3) say("Lost contact with aspdigest preview; is it still running?", true);
          setTimeout(tick, 2000);
        });
    }
    setTimeout(tick, 1000);
  }

  function approvable(row) {
    var status = row.getAttribute("data-status");
    return status === "planned" || status === "held" || status === "failed" ||
      row.getAttribute("data-changed") === "yes";
  }

  function post(fields, button, where) {
    var body = new URLSearchParams();
    Object.keys(fields).forEach(function (k) { body.append(k, fields[k]); });
    body.append("version", mode.getAttribute("data-version") || "");
    body.append("csrf", mode.getAttribute("data-csrf") || "");
    button.disabled = true;
    var old = where.querySelector(".approve-error");
    if (old) old.remove();
    return fetch("/approve", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "X-Aspdigest-Preview": "1" },
      body: body.toString()
    }).then(function (r) {
      return r.json().then(function (data) { return { ok: r.ok, data: data }; });
    }).then(function (res) {
      if (res.ok) {
        say(res.data.message || "Approved; reloading…");
        location.reload();
        return;
      }
      var p = document.createElement("p");
      p.className = "approve-error";
      p.setAttribute("role", "alert");
      p.textContent = (res.data.errors || ["Approval failed"]).join("\n");
      where.appendChild(p);
      button.disabled = false;
    }).catch(function () {
      button.disabled = false;
      say("Could not reach aspdigest preview.", true);
    });
  }

  function addApproveButtons() {
    document.querySelectorAll("table.deliveries").forEach(function (table) {
      var head = table.querySelector("thead tr");
      if (head) {
        var th = document.createElement("th");
        th.scope = "col";
        th.textContent = "Action";
        head.appendChild(th);
      }
      var any = false;
      table.querySelectorAll("tbody tr[data-delivery]").forEach(function (row) {
        var cell = document.createElement("td");
        row.appendChild(cell);
        if (!approvable(row)) return;
        any = true;
        var button = document.createElement("button");
        button.type = "button";
        button.className = "approve";
        button.textContent = "Approve";
        button.setAttribute("aria-label", "Approve " + row.getAttribute("data-label"));
        button.addEventListener("click", function () {
          post({
            date: row.getAttribute("data-date"),
            channel: row.getAttribute("data-channel"),
            platform: row.getAttribute("data-platform")
          }, button, cell);
        });
        cell.appendChild(button);
      });
      if (any) {
        var wrap = document.createElement("p");
        wrap.className = "approve-all";
        var all = document.createElement("button");
        all.type = "button";
        all.className = "approve";
        all.textContent = "Approve everything for this day";
        all.addEventListener("click", function () {
          post({ date: table.getAttribute("data-date") }, all, wrap);
        });
        wrap.appendChild(all);
        var scroll = table.closest(".table-scroll") || table;
        scroll.parentNode.insertBefore(wrap, scroll);
      }
    });
  }

  function start() {
    document.querySelectorAll('[role="tablist"]').forEach(setupTabs);
    if (served) {
      root.classList.add("served");
      say("Live preview: this page reloads when content, templates or schedules change.");
      addApproveButtons();
      pollVersion(mode.getAttribute("data-version") || "");
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
