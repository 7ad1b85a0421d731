/* aspdigest review site: platform tabs, and, when `aspdigest preview` serves the page, live
   reload, live approval status and Approve buttons. Works without it too: from the file system
   the page is static, built from the content alone, and says where to see approvals. */
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
        say(res.data.message || "Approved.");
        refreshStatus();
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

  function addApproveButtons(scope) {
    scope.querySelectorAll("table.deliveries").forEach(function (table) {
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

  /* ---- live approval status: the store is read by the preview, never by the build ---- */
  var approvalPanel = document.getElementById("approval");
  var storePanel = document.getElementById("store");
  var lastStatus = null;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function builtHashes() {
    try {
      return JSON.parse(approvalPanel.getAttribute("data-built") || "{}");
    } catch (e) {
      return {};
    }
  }

  /* The approved files against this page's build, file by file. */
  function fileStates(delivery, built) {
    return Object.keys(delivery.approved || {}).sort().map(function (path) {
      var current = Object.prototype.hasOwnProperty.call(built, path) ? built[path] : null;
      return { path: path, approved: delivery.approved[path], current: current,
               same: current === delivery.approved[path] };
    });
  }

  function statusCell(d, changed) {
    var cell = el("td");
    var badge = el("span", "badge badge-" + String(d.status).replace(/[^a-z-]/g, ""),
                   d.status + (changed ? ", changed since approval" : ""));
    if (changed) badge.classList.add("badge-changed");
    cell.appendChild(badge);
    if (d.last_error) cell.appendChild(el("p", "problem", d.last_error));
    return cell;
  }

  function approvedCell(d, files, changed) {
    var cell = el("td");
    if (d.approved_by) {
      cell.appendChild(el("p", null, "By " + d.approved_by + (d.approved_at ? ", " + d.approved_at : "")));
    }
    if (files.length) {
      var details = el("details", "hashes");
      var summary = el("summary", null, files.length + " approved file" + (files.length !== 1 ? "s" : "") + ", ");
      if (changed) summary.appendChild(el("strong", null, "changed since"));
      else summary.appendChild(document.createTextNode("all as built"));
      details.appendChild(summary);
      var list = el("ul");
      files.forEach(function (f) {
        var item = el("li");
        item.appendChild(el("code", null, f.path));
        item.appendChild(document.createTextNode(" "));
        item.appendChild(el("span", "hash-state hash-" + (f.same ? "same" : "changed"),
          f.same ? "matches this build" : f.current === null ? "no longer built" : "differs from this build"));
        item.appendChild(el("br"));
        item.appendChild(el("span", "hash", "sha256 " + f.approved));
        list.appendChild(item);
      });
      details.appendChild(list);
      cell.appendChild(details);
    } else if (!d.approved_by) {
      cell.appendChild(el("p", "not-yet", "Not yet"));
    }
    return cell;
  }

  function renderDay(data) {
    var box = approvalPanel.querySelector(".approval-live");
    if (!box) {
      box = el("div", "approval-live");
      approvalPanel.appendChild(box);
    }
    box.textContent = "";
    var pointer = approvalPanel.querySelector(".approval-pointer");
    if (pointer) pointer.hidden = true;
    if (data.state !== "ok") {
      box.appendChild(el("p", "note", data.message));
      return;
    }
    if (!data.deliveries.length) {
      var note = el("p", "note", "Nothing is planned for this day yet. Run ");
      note.appendChild(el("code", null, "aspdigest schedule plan " + data.event));
      note.appendChild(document.createTextNode(" to plan it."));
      box.appendChild(note);
      return;
    }
    var built = builtHashes();
    var scroll = el("div", "table-scroll");
    var table = el("table", "deliveries");
    table.setAttribute("data-date", approvalPanel.getAttribute("data-date"));
    table.appendChild(el("caption", "visually-hidden", "Deliveries planned for this day"));
    var head = el("tr");
    ["Delivery", "Sends at (" + data.timezone + ")", "Status", "Approved"].forEach(function (text) {
      var th = el("th", null, text);
      th.scope = "col";
      head.appendChild(th);
    });
    var thead = el("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    var body = el("tbody");
    data.deliveries.forEach(function (d) {
      var files = fileStates(d, built);
      var changed = files.some(function (f) { return !f.same; });
      var row = el("tr");
      row.setAttribute("data-delivery", d.id);
      row.setAttribute("data-date", d.date);
      row.setAttribute("data-channel", d.channel);
      row.setAttribute("data-platform", d.platform);
      row.setAttribute("data-status", d.status);
      row.setAttribute("data-changed", changed ? "yes" : "no");
      row.setAttribute("data-label", d.label);
      var th = el("th", null, d.label);
      th.scope = "row";
      row.appendChild(th);
      var sends = el("td");
      sends.appendChild(el("span", "cell-label", "Sends "));
      sends.appendChild(document.createTextNode(d.send_at || "not set"));
      row.appendChild(sends);
      row.appendChild(statusCell(d, changed));
      row.appendChild(approvedCell(d, files, changed));
      body.appendChild(row);
    });
    table.appendChild(body);
    scroll.appendChild(table);
    box.appendChild(scroll);
    addApproveButtons(box);
  }

  function renderIndex(data) {
    var pointer = storePanel.querySelector(".approval-pointer");
    var line = storePanel.querySelector(".approval-live");
    if (!line) {
      line = el("p", "approval-live");
      storePanel.appendChild(line);
    }
    if (pointer) pointer.hidden = true;
    line.textContent = data.state === "ok" && data.planned
      ? data.approved + " of " + data.planned + " planned deliveries approved."
      : data.message;
    document.querySelectorAll("dl[data-facts-day]").forEach(function (facts) {
      var day = data.days[facts.getAttribute("data-facts-day")];
      var div = facts.querySelector(".live-approved");
      if (data.state !== "ok") {
        if (div) div.remove();
        return;
      }
      if (!div) {
        div = el("div", "live-approved");
        div.appendChild(el("dt", null, "Approved"));
        div.appendChild(el("dd"));
        facts.appendChild(div);
      }
      div.querySelector("dd").textContent = day ? day.approved + " of " + day.planned : "Nothing planned";
    });
  }

  function refreshStatus() {
    if (!approvalPanel && !storePanel) return;
    var url = "/_status.json";
    if (approvalPanel) url += "?date=" + encodeURIComponent(approvalPanel.getAttribute("data-date"));
    fetch(url, { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (text) {
        if (text === lastStatus) return;  // unchanged: keep focus and open details as they are
        lastStatus = text;
        var data = JSON.parse(text);
        if (approvalPanel) renderDay(data);
        else renderIndex(data);
      })
      .catch(function () { /* the version poll reports a lost preview */ });
  }

  function pollStatus() {
    /* Approvals also come from `aspdigest approve` and other pages: look again now and then. */
    setInterval(function () {
      if (!document.hidden) refreshStatus();
    }, 5000);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) refreshStatus();
    });
  }

  function start() {
    document.querySelectorAll('[role="tablist"]').forEach(setupTabs);
    if (served) {
      root.classList.add("served");
      say("Live preview: this page reloads when content, templates or schedules change.");
      refreshStatus();
      pollStatus();
      pollVersion(mode.getAttribute("data-version") || "");
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
