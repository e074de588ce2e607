// The cluster page: draws each view the server pushes on /events.
"use strict";
(() => {
  const NAMED_MAX = 24; // a group this small shows its members by name
  const CHIPS_MAX = 400; // beyond this a group shows a count instead
  const LIST_MAX = 8; // names in a line of text before "and N more"

  const LEGEND = `<div class="legend"><span><span class="chip ok"></span>on the current revision</span>` +
    `<span><span class="chip old"></span>pending</span><span><span class="chip err"></span>problem</span>` +
    `<span><span class="chip none"></span>no status yet</span><span><span class="chip relay"></span>relay</span></div>`;

  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) =>
    ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const plural = (n, one, many) => `${n} ${n === 1 ? one : (many || one + "s")}`;

  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 || n >= 100 ? Math.round(n) : n.toFixed(1).replace(/\.0$/, "")) + " " + units[i];
  }

  function ago(t, now) {
    const ms = now - Date.parse(t);
    if (!isFinite(ms) || Date.parse(t) <= 0) return "never";
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 90) return s + "s ago";
    if (s < 5400) return Math.round(s / 60) + "m ago";
    return Math.round(s / 3600) + "h ago";
  }

  function names(list, fmt) {
    const shown = list.slice(0, LIST_MAX).map(fmt || ((m) => m.node)).join(", ");
    return list.length > LIST_MAX ? `${shown} and ${list.length - LIST_MAX} more` : shown;
  }

  // notes are what is wrong with a member, for its tooltip and the lists.
  function notes(m) {
    const out = [];
    if (m.last_error) out.push(m.last_error);
    if (m.saved_state) out.push("runs on its saved state: " + m.saved_state);
    if (m.gossip) out.push("gossip " + m.gossip);
    for (const e of m.endpoints || []) {
      if (e.recent && !e.healthy) out.push("sees " + e.url + " unhealthy" + (e.last_error ? ": " + e.last_error : ""));
    }
    return out;
  }

  // state is a member's colour: none (no status yet), err (something is
  // wrong), old (not on the current config revision) or ok.
  function state(m, rev) {
    if (!m.reported) return "none";
    if (notes(m).length) return "err";
    if (m.config_revision !== rev) return "old";
    return "ok";
  }

  function tooltip(m, rev, now) {
    const lines = [`${m.node} (${m.kind})`];
    if (!m.reported) {
      lines.push("no status written yet");
    } else {
      lines.push(`config revision ${m.config_revision}` + (m.config_revision !== rev ? ` (current: ${rev})` : ""));
      lines.push(`budget ${bytes(m.budget_bytes_per_second)}/s, queue ${m.queue_batches}`);
      lines.push("upstreams " + (m.upstreams.join(" → ") || "none"));
      if (m.targets != null) lines.push(`${m.targets} targets`);
      lines.push("status " + ago(m.updated, now));
    }
    if (m.http) lines.push("http://" + m.http + "/metrics");
    return lines.concat(notes(m)).join("\n");
  }

  const AUTO_OPEN_MAX = 12; // a cluster this small shows its lists open
  const open = new Set(); // groups whose member list was opened
  const closed = new Set(); // or closed
  const scroll = new Map(); // and how far it was scrolled
  let small = false; // the cluster has at most AUTO_OPEN_MAX members
  const isOpen = (g) => open.has(g) || (small && !closed.has(g));
  document.addEventListener("toggle", (e) => {
    const g = e.target.dataset && e.target.dataset.group;
    if (g === undefined || e.target.open === isOpen(g)) return;
    if (e.target.open) { open.add(g); closed.delete(g); } else { open.delete(g); closed.add(g); }
  }, true);

  function chips(group, rev, now) {
    if (!group.length) return `<div class="chips dim">no members write here first</div>`;
    if (group.length > CHIPS_MAX) {
      const by = {};
      for (const m of group) by[state(m, rev)] = (by[state(m, rev)] || 0) + 1;
      return `<div class="chips">${Object.entries(by).map(([s, n]) =>
        `<span class="more"><span class="chip ${s}"></span> ${n}</span>`).join("")}</div>`;
    }
    const named = group.length <= NAMED_MAX;
    return `<div class="chips${named ? " named" : ""}">` + group.map((m) =>
      `<span class="chip ${state(m, rev)}${m.kind === "relay" ? " relay" : ""}" data-node="${esc(m.node)}" data-kind="${esc(m.kind)}"` +
      ` title="${esc(tooltip(m, rev, now))}">${named ? esc(m.node) : ""}</span>`).join("") + "</div>";
  }

  function table(key, group, rev, now, withTargets) {
    if (!group.length) return "";
    const rows = group.map((m) => {
      const n = notes(m);
      return `<tr class="${n.length ? "err" : ""}"><td title="${esc(m.node)}">${esc(m.node)}${m.kind === "relay" ? " <span class=dim>(relay)</span>" : ""}</td>` +
        `<td class="num">${m.reported ? m.config_revision + (m.config_revision !== rev ? " ⟲" : "") : "–"}</td>` +
        `<td class="num">${m.reported ? bytes(m.budget_bytes_per_second) + "/s" : "–"}</td>` +
        `<td class="num">${m.reported ? m.queue_batches : "–"}</td>` +
        (withTargets ? `<td class="num">${m.targets ?? "–"}</td>` : "") +
        `<td title="${esc(m.upstreams.join(" → "))}">${esc(m.upstreams.slice(1).join(", ") || "–")}</td>` +
        `<td>${m.reported ? ago(m.updated, now) : "–"}</td>` +
        `<td class="error" title="${esc(n.join("\n"))}">${esc(n.join("; "))}</td></tr>`;
    }).join("");
    return `<details data-group="${esc(key)}"${isOpen(key) ? " open" : ""}><summary>list ${plural(group.length, "member")}</summary>` +
      `<div class="list" data-group="${esc(key)}"><table><colgroup><col data-w="22%"><col data-w="9%"><col data-w="13%"><col data-w="7%">` +
      (withTargets ? `<col data-w="8%">` : "") + `<col data-w="13%"><col data-w="10%"><col></colgroup>` +
      `<tr><th>member</th><th class="num">rev</th><th class="num">budget</th><th class="num">queue</th>` +
      (withTargets ? `<th class="num">targets</th>` : "") + `<th>fallbacks</th><th>status</th><th>problems</th></tr>${rows}</table></div></details>`;
  }

  function renderUpstreams(v, groups, now, withTargets) {
    const rev = v.config_revision;
    $("upstreams").innerHTML = v.upstreams.map((u) => {
      const group = groups.get(u.name) || [];
      const agents = group.filter((m) => m.kind === "agent").length;
      const pct = u.capacity_bytes_per_second ? 100 * u.budget_bytes_per_second / u.capacity_bytes_per_second : 0;
      let health = `<span class="health ok">healthy</span>`;
      let title = u.reports ? `${u.reports - u.unhealthy} of ${u.reports} members that sent here lately see it healthy` : "no member sent here lately";
      if (!u.healthy || u.down_votes > 0) {
        const why = [];
        if (!u.healthy) why.push(`${u.unhealthy} of ${u.reports} see it failing`);
        if (u.down_votes > 0) why.push(`held down by the gossip for ${plural(u.down_votes, "member")}`);
        health = `<span class="health bad">${u.healthy ? "held down" : "unhealthy"}</span>`;
        title = why.join("; ");
      }
      const kind = u.relay ? "relay" + (u.served_by ? " " + u.served_by.join(", ") : "") : "VictoriaMetrics";
      return `<article class="box upstream${u.healthy && !u.down_votes ? "" : " down"}" data-name="${esc(u.name)}" data-agents="${agents}" data-relays="${group.length - agents}"` +
        ` data-budget="${u.budget_bytes_per_second}" data-capacity="${u.capacity_bytes_per_second}">` +
        `<header><h2 title="${esc(u.name)}">${esc(u.name)}</h2><span class="kind">${esc(kind)}</span><span title="${esc(title)}">${health}</span></header>` +
        `<div class="url" title="${esc(u.url)}">${esc(u.url)}</div>` +
        `<div class="bar" title="${pct.toFixed(0)}% of the capacity given out as budgets"><div class="fill${pct > 100.5 ? " over" : ""}" data-w="${Math.min(100, pct)}%"></div></div>` +
        `<div class="barlabel">budgets ${bytes(u.budget_bytes_per_second)}/s of ${bytes(u.capacity_bytes_per_second)}/s capacity (${pct.toFixed(0)}%)</div>` +
        `<div class="counts"><b>${plural(agents, "agent")}</b>` + (group.length > agents ? `, <b>${plural(group.length - agents, "relay")}</b>` : "") +
        ` write here first</div>` + chips(group, rev, now) + table(u.name, group, rev, now, withTargets) + `</article>`;
    }).join("");
  }

  function renderRollout(v, members) {
    const rev = v.config_revision;
    const el = $("rollout");
    const reported = members.filter((m) => m.reported);
    const on = reported.filter((m) => m.config_revision === rev);
    const pending = members.filter((m) => !m.reported || m.config_revision !== rev);
    el.className = "box";
    el.dataset.current = rev;
    el.dataset.onCurrent = on.length;
    el.dataset.members = members.length;
    const counts = new Map();
    for (const m of reported) counts.set(m.config_revision, (counts.get(m.config_revision) || 0) + 1);
    const revs = [...counts.entries()].sort((a, b) => b[0] - a[0]);
    const none = members.length - reported.length;
    const seg = (cls, n, title) => n ? `<span class="${cls}" data-w="${100 * n / members.length}%" title="${esc(title)}"></span>` : "";
    const bar = `<div class="revbar">` + revs.map(([r, n]) => seg(r === rev ? "cur" : "old", n, `revision ${r}: ${plural(n, "member")}`)).join("") +
      seg("none", none, `no status yet: ${plural(none, "member")}`) + `</div>`;
    let text;
    if (!members.length) {
      text = `config revision <b>${rev}</b>; no members registered`;
    } else if (!pending.length) {
      text = `config revision <b>${rev}</b> applied by ` + (members.length === 1 ? "its one member" : `all ${members.length} members`);
    } else {
      const refused = pending.filter((m) => m.reported && m.last_error);
      text = `config revision <b>${rev}</b> applied by ${on.length}/${members.length} members; pending: ` +
        esc(names(pending, (m) => m.node + (m.reported ? ` (${m.config_revision})` : " (no status)")));
      if (refused.length) text += `; errors: ` + esc(names(refused, (m) => `${m.node}: ${m.last_error}`));
    }
    el.innerHTML = `<div class="line"><h2>Rollout</h2>${bar}<div class="text" title="${esc(pending.map((m) => m.node).join(" "))}">${text}</div></div>` +
      `<div class="under"><div class="revs">${revs.map(([r, n]) => `revision ${r}: ${n}`).join(" · ")}${none ? ` · no status yet: ${none}` : ""}` +
      `${v.config_error ? " · " + esc(v.config_error) : ""}</div>${LEGEND}</div>`;
  }

  function renderProblems(v, members) {
    const items = [];
    if (v.error) items.push(v.error + " (showing the last view)");
    if (v.config_error) items.push(v.config_error);
    for (const u of v.upstreams) {
      if (!u.healthy) items.push(`${u.name}: unhealthy for ${u.unhealthy} of the ${u.reports} members that sent there lately`);
      if (u.down_votes) items.push(`${u.name}: held down by the gossip's votes, as ${plural(u.down_votes, "member")} count them`);
    }
    const bad = members.filter((m) => notes(m).length);
    for (const m of bad.slice(0, 6)) items.push(`${m.node}: ${notes(m).join("; ")}`);
    if (bad.length > 6) items.push(`and ${bad.length - 6} more members with problems (see the lists)`);
    const el = $("problems");
    el.hidden = !items.length;
    el.className = "box";
    el.innerHTML = `<h2>Problems</h2><ul>${items.map((i) => `<li title="${esc(i)}">${esc(i)}</li>`).join("")}</ul>`;
  }

  function renderUnassigned(v, members, now, withTargets) {
    const known = new Set(v.upstreams.map((u) => u.name));
    const group = members.filter((m) => !m.upstreams.length || !known.has(m.upstreams[0]));
    const el = $("unassigned");
    el.hidden = !group.length;
    el.className = "box upstream";
    el.dataset.name = "";
    el.dataset.agents = group.filter((m) => m.kind === "agent").length;
    el.innerHTML = `<header><h2>Not assigned</h2><span class="dim">${plural(group.length, "member")} without an upstream of this config yet</span></header>` +
      chips(group, v.config_revision, now) + table("", group, v.config_revision, now, withTargets);
  }

  function render(p) {
    const v = p.view;
    const now = Date.parse(p.now);
    const members = v.agents.concat(v.relays);
    const withTargets = members.some((m) => m.targets != null);
    small = members.length <= AUTO_OPEN_MAX;
    const groups = new Map();
    for (const m of members) {
      if (!m.upstreams.length) continue;
      if (!groups.has(m.upstreams[0])) groups.set(m.upstreams[0], []);
      groups.get(m.upstreams[0]).push(m);
    }
    document.querySelectorAll(".list[data-group]").forEach((l) => scroll.set(l.dataset.group, l.scrollTop));
    $("cluster").textContent = v.cluster;
    document.title = `procfleet ${v.cluster}`;
    const sum = $("summary");
    sum.dataset.agents = v.agents.length;
    sum.dataset.relays = v.relays.length;
    sum.dataset.upstreams = v.upstreams.length;
    sum.textContent = `config revision ${v.config_revision} · ${plural(v.agents.length, "agent")} · ` +
      `${plural(v.relays.length, "relay")} · ${plural(v.upstreams.length, "upstream")}`;
    renderProblems(v, members);
    renderRollout(v, members);
    renderUpstreams(v, groups, now, withTargets);
    renderUnassigned(v, members, now, withTargets);
    // Widths go through the CSSOM: the page's policy refuses inline styles.
    document.querySelectorAll("[data-w]").forEach((e) => { e.style.width = e.dataset.w; });
    document.querySelectorAll(".list[data-group]").forEach((l) => { l.scrollTop = scroll.get(l.dataset.group) || 0; });
    const conn = $("conn");
    conn.className = "conn " + (v.error ? "bad" : "live");
    conn.textContent = v.error ? "etcd unreachable" : "live";
    conn.title = "last update " + new Date().toLocaleTimeString();
    document.body.dataset.etcdRevision = v.etcd_revision;
  }

  function connect() {
    const es = new EventSource("/events");
    es.addEventListener("view", (e) => render(JSON.parse(e.data)));
    es.onerror = () => {
      const conn = $("conn");
      conn.className = "conn wait";
      conn.textContent = "reconnecting";
    };
  }
  connect();
})();
