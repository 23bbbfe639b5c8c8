// atoll web UI. One page, hash routes (#/cluster, #/apps, #/app/<id>,
// #/events), one EventSource shared by every page. The state shown is
// fetched from the public API and refreshed only when an event says that
// part changed: no polling. Bursts of events are coalesced into one
// refetch per thing touched (see schedule/flush).

const EVENT_TYPES = [
  'event_stream_attached', 'event_stream_detached', 'api_post_event', 'app_terminated_event',
  'status_update_event', 'health_status_changed_event', 'deployment_info', 'deployment_step_success',
  'deployment_step_failure', 'deployment_success', 'deployment_failed', 'instance_changed_event',
  'failed_health_check_event', 'unhealthy_instance_kill_event', 'group_change_success',
  'lb_report_event', 'agent_update_event', 'resync',
];
const MAX_EVENTS = 1000; // kept in memory for the Events page
const MAX_EVENT_ROWS = 500; // rows in its table
const COALESCE_MS = 100; // how long a burst of events is gathered before refetching

// ---- small DOM helpers ----

const tid = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);

// h builds an element: h('td', {class: 'x', dataset: {a: 1}}, 'text', child).
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const num = (n) => (n === undefined || n === null ? '–' : String(Math.round(n * 1000) / 1000));
const dash = (s) => (s === undefined || s === null || s === '' ? '–' : String(s));

function fmtTime(t) {
  if (!t) return '–';
  const d = typeof t === 'number' ? new Date(t * 1000) : new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleTimeString();
}

// ---- API ----

// api calls the master; mutating calls carry JSON. Credentials, when the
// master wants them, are the browser's business (same origin, basic auth).
async function api(method, path, body) {
  const opts = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (err) {
    return { ok: false, status: 0, body: { message: `network error: ${err.message}` } };
  }
  const text = await res.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { message: text };
  }
  return { ok: res.ok, status: res.status, body: parsed };
}

const appPath = (id) => '/v2/apps' + id.split('/').map(encodeURIComponent).join('/');
const APP_EMBED = 'embed=app.tasks&embed=app.counts&embed=app.deployments';
const APPS_EMBED = 'embed=apps.tasks&embed=apps.counts&embed=apps.deployments';

// ---- state ----

const S = {
  info: null,
  leader: null, // "ip:port" or null
  mstate: null, // /master/state
  apps: new Map(), // id -> app with tasks
  appsLoaded: false,
  missing: new Set(), // app ids the API answered 404 for
  versions: new Map(), // app id -> its versions, newest first (the app page's)
  deployments: [],
  route: { page: 'cluster', appId: '' },
  sort: { key: 'hostname', dir: 1 },
  region: '',
  events: [], // newest last
  held: [], // arrived while paused
  paused: false,
  types: new Set(EVENT_TYPES),
  clusterStale: true,
};

async function loadCluster() {
  const [info, leader, st] = await Promise.all([
    api('GET', '/v2/info'), api('GET', '/v2/leader'), api('GET', '/master/state'),
  ]);
  if (info.ok) S.info = info.body;
  S.leader = leader.ok ? leader.body.leader : null;
  if (st.ok) S.mstate = st.body;
  S.clusterStale = false;
}

async function loadApps() {
  const r = await api('GET', `/v2/apps?${APPS_EMBED}`);
  if (!r.ok) return;
  S.apps = new Map(r.body.apps.map((a) => [a.id, a]));
  S.missing.clear();
  S.appsLoaded = true;
}

async function loadApp(id) {
  const r = await api('GET', `${appPath(id)}?${APP_EMBED}`);
  if (r.ok) {
    S.apps.set(id, r.body.app);
    S.missing.delete(id);
  } else if (r.status === 404) {
    S.apps.delete(id);
    S.missing.add(id);
  }
  if (S.route.page === 'app' && S.route.appId === id) await loadVersions(id);
}

// loadVersions fetches the versions of the app on screen: every change
// is one, and the page offers to roll back to each.
async function loadVersions(id) {
  const r = await api('GET', `${appPath(id)}/versions`);
  if (r.ok) S.versions.set(id, r.body.versions || []);
  else if (r.status === 404) S.versions.delete(id);
}

async function loadDeployments() {
  const r = await api('GET', '/v2/deployments');
  if (r.ok) S.deployments = r.body;
}

// ---- refetch scheduling: what events touched, gathered per burst ----

let dirty = freshDirty();
let timer = null;
let chain = Promise.resolve();

function freshDirty() {
  return { all: false, apps: new Set(), deployments: false, cluster: false };
}

// schedule flushes what is dirty once COALESCE_MS after the first mark;
// flushes run one at a time so that an older answer never overwrites a
// newer one.
function schedule() {
  if (timer) return;
  timer = setTimeout(() => {
    timer = null;
    chain = chain.then(flush).catch((err) => console.error('refresh failed', err));
  }, COALESCE_MS);
}

async function flush() {
  const d = dirty;
  dirty = freshDirty();
  const jobs = [];
  if (d.all) {
    jobs.push(loadApps(), loadDeployments(), loadCluster());
    if (S.route.page === 'app' && S.route.appId) jobs.push(loadVersions(S.route.appId));
  } else {
    for (const id of d.apps) jobs.push(loadApp(id));
    if (d.deployments) jobs.push(loadDeployments());
    // Agents' used resources change with tasks; refetch them only when
    // they are on screen (the app page shows agent names only).
    if (d.cluster) {
      if (S.route.page === 'cluster') jobs.push(loadCluster());
      else S.clusterStale = true;
    }
  }
  await Promise.allSettled(jobs);
  render();
}

function markAll() {
  dirty.all = true;
  schedule();
}

// appsOf lists the app ids an event is about.
function appsOf(data) {
  const ids = new Set();
  if (!data || typeof data !== 'object') return [];
  if (data.appId) ids.add(data.appId);
  if (data.appDefinition && data.appDefinition.id) ids.add(data.appDefinition.id);
  const plan = data.plan;
  if (plan && Array.isArray(plan.steps)) {
    for (const s of plan.steps) for (const a of s.actions || []) if (a.app) ids.add(a.app);
  }
  return [...ids];
}

// touch marks what an event changed.
function touch(type, data) {
  switch (type) {
    case 'resync':
    case 'event_stream_attached':
      // resync: the replay was cut; attached is not a state change, but
      // after a reconnect nothing is lost by one refetch of everything.
      if (type === 'resync') dirty.all = true;
      break;
    case 'status_update_event':
    case 'health_status_changed_event':
    case 'instance_changed_event':
      for (const id of appsOf(data)) dirty.apps.add(id);
      dirty.cluster = true;
      break;
    case 'api_post_event':
    case 'app_terminated_event':
      for (const id of appsOf(data)) dirty.apps.add(id);
      dirty.deployments = true;
      break;
    case 'agent_update_event':
      dirty.cluster = true;
      break;
    default:
      if (type.startsWith('deployment_')) {
        for (const id of appsOf(data)) dirty.apps.add(id);
        dirty.deployments = true;
      }
  }
  schedule();
}

// ---- the event stream ----

let es = null;
let fresh = true; // the next open needs a full refetch (no replay)
let retry = 1000;

function setStreamStatus(text, cls) {
  const el = tid('stream-status');
  el.textContent = text;
  el.className = 'stream ' + (cls || '');
}

// connect opens the one EventSource. The browser reconnects it by itself
// after a dropped connection and sends Last-Event-ID, so the master replays
// what was missed (or sends resync). Only when the browser gives up (an
// HTTP error, e.g. a master with no leader) is a new EventSource made; it
// cannot send Last-Event-ID, so everything is refetched when it opens.
function connect() {
  es = new EventSource('/v2/events');
  es.onopen = () => {
    retry = 1000;
    setStreamStatus('live', 'ok');
    if (fresh) markAll();
    fresh = false;
  };
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) {
      setStreamStatus(`disconnected; retrying in ${retry / 1000}s`, 'bad');
      es.close();
      fresh = true;
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    } else {
      setStreamStatus('reconnecting…', 'warn');
    }
  };
  for (const type of EVENT_TYPES) es.addEventListener(type, (e) => onEvent(type, e));
}

function onEvent(type, e) {
  let data = null;
  try {
    data = JSON.parse(e.data);
  } catch {
    data = { raw: e.data };
  }
  const ev = { id: e.lastEventId || '', type, data, at: new Date() };
  touch(type, data);
  if (S.paused) {
    S.held.push(ev);
    renderHeld();
    return;
  }
  addEvents([ev]);
}

// ---- routing ----

function parseRoute() {
  const hash = decodeURIComponent(location.hash.replace(/^#/, '')) || '/cluster';
  if (hash.startsWith('/app/')) return { page: 'app', appId: '/' + hash.slice(5).replace(/^\/+/, '') };
  const page = hash.replace(/^\//, '');
  return { page: ['cluster', 'apps', 'events'].includes(page) ? page : 'cluster', appId: '' };
}

function onRoute() {
  const prev = S.route;
  S.route = parseRoute();
  for (const sec of document.querySelectorAll('[data-page]')) sec.hidden = sec.dataset.page !== S.route.page;
  for (const a of document.querySelectorAll('[data-nav]')) {
    const current = a.dataset.nav === S.route.page || (S.route.page === 'app' && a.dataset.nav === 'apps');
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (S.route.page === 'cluster' && S.clusterStale) {
    dirty.cluster = true;
    schedule();
  }
  if (S.route.page === 'app') {
    if (prev.appId !== S.route.appId) {
      tid('action-status').textContent = '';
      tid('scale-input').value = '';
    }
    dirty.apps.add(S.route.appId);
    schedule();
  }
  document.title = `atoll · ${S.route.page === 'app' ? S.route.appId : S.route.page}`;
  render();
}

// ---- rendering ----

function render() {
  switch (S.route.page) {
    case 'cluster':
      renderCluster();
      break;
    case 'apps':
      renderApps();
      break;
    case 'app':
      renderApp();
      break;
  }
}

function agentIP(slave) {
  // Mesos pid: "slave(1)@ip:port"
  const hp = (slave.pid || '').split('@').pop();
  return hp.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
}

function agentRows() {
  const slaves = (S.mstate && S.mstate.slaves) || [];
  return slaves.map((s) => {
    const attrs = s.attributes || {};
    const used = s.used_resources || {};
    const res = s.resources || {};
    return {
      id: s.id, hostname: s.hostname, ip: agentIP(s),
      region: attrs.region === undefined ? '' : String(attrs.region),
      zone: attrs.zone === undefined ? '' : String(attrs.zone),
      cpus: [used.cpus || 0, res.cpus || 0], mem: [used.mem || 0, res.mem || 0], disk: [used.disk || 0, res.disk || 0],
      // What the tasks use (from their cgroups; atoll's own field), next
      // to what they were allocated; -1 sorts an agent without it first.
      cpuUse: s.usage ? s.usage.cpus : -1, memUse: s.usage ? s.usage.mem : -1,
      ports: (used.ports || '').replace(/^\[|\]$/g, ''),
      state: s.active ? 'active' : 'inactive',
      heartbeat: s.last_heartbeat || 0,
    };
  });
}

function renderCluster() {
  renderMasters();
  const rows = agentRows();
  // Region filter options: every region seen, the chosen one kept.
  const sel = tid('region-filter');
  const regions = [...new Set(rows.map((r) => r.region).filter(Boolean))].sort();
  const want = ['', ...regions].join('\n');
  if (sel.dataset.options !== want) {
    sel.replaceChildren(h('option', { value: '' }, 'all'), ...regions.map((r) => h('option', { value: r }, r)));
    sel.dataset.options = want;
    sel.value = regions.includes(S.region) ? S.region : '';
  }
  const shown = rows.filter((r) => !S.region || r.region === S.region);
  const { key, dir } = S.sort;
  const val = (r) => (Array.isArray(r[key]) ? r[key][0] : r[key]);
  shown.sort((a, b) => {
    const x = val(a), y = val(b);
    const c = typeof x === 'number' ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
    return c * dir || a.id.localeCompare(b.id);
  });
  for (const th of tid('agents-table').querySelectorAll('th[data-key]')) {
    th.setAttribute('aria-sort', th.dataset.key === key ? (dir > 0 ? 'ascending' : 'descending') : 'none');
  }
  const used = ([u, t]) => `${num(u)} / ${num(t)}`;
  tid('agents-table').tBodies[0].replaceChildren(...shown.map((r) => h('tr', { dataset: { agentId: r.id, region: r.region } },
    h('td', { class: 'mono' }, r.id),
    h('td', {}, r.hostname),
    h('td', { class: 'mono' }, r.ip),
    h('td', { 'data-testid': 'agent-region' }, dash(r.region)),
    h('td', {}, dash(r.zone)),
    h('td', { class: 'num' }, used(r.cpus)),
    h('td', { class: 'num', 'data-testid': 'agent-cpu-use' }, r.cpuUse < 0 ? '–' : r.cpuUse.toFixed(2)),
    h('td', { class: 'num' }, used(r.mem)),
    h('td', { class: 'num', 'data-testid': 'agent-mem-use' }, r.memUse < 0 ? '–' : r.memUse.toFixed(1)),
    h('td', { class: 'num' }, used(r.disk)),
    h('td', { class: 'mono' }, dash(r.ports)),
    h('td', { class: r.state === 'active' ? 'ok' : 'bad' }, r.state),
    h('td', { title: r.heartbeat ? new Date(r.heartbeat * 1000).toISOString() : '' }, fmtTime(r.heartbeat)),
  )));
  tid('agents-count').textContent = S.mstate ? `${shown.length} of ${rows.length} agents` : 'loading…';
}

function renderMasters() {
  const st = S.mstate || {};
  const info = S.info || {};
  const rows = [];
  if (Array.isArray(st.masters) && st.masters.length) {
    // Another master's view of its peers, when /master/state has it.
    for (const m of st.masters) {
      const addr = m.address && m.address.ip ? `${m.address.ip}:${m.address.port}` : m.pid ? m.pid.split('@').pop() : m.ip && m.port ? `${m.ip}:${m.port}` : '';
      const leader = m.leader === true || m.role === 'leader' || (S.leader && addr === S.leader);
      rows.push([leader ? 'leader' : (m.role || 'standby'), addr, m.hostname, m.version || info.version]);
    }
  } else if (S.leader) {
    const li = st.leader_info || {};
    rows.push(['leader', S.leader, li.hostname, li.version || info.version]);
  }
  tid('masters-table').tBodies[0].replaceChildren(...rows.map(([role, addr, host, ver]) => h('tr', { dataset: { role } },
    h('td', { class: role === 'leader' ? 'ok' : '' }, role), h('td', { class: 'mono' }, dash(addr)), h('td', {}, dash(host)), h('td', {}, dash(ver)))));
  const mc = info.marathon_config || {};
  let note = S.leader ? '' : 'No leader is known right now. ';
  if (S.info) note += `This page is served by ${mc.hostname || 'a master'}, ${info.elected ? 'the leader' : 'a standby that forwards to the leader'}.`;
  if (!Array.isArray(st.masters)) note += ' Standby masters are not listed by this master.';
  tid('masters-note').textContent = note;
}

function deploymentsOf(app) {
  return (app.deployments || []).map((d) => d.id);
}

function renderApps() {
  const apps = [...S.apps.values()].sort((a, b) => a.id.localeCompare(b.id));
  const body = tid('apps-table').tBodies[0];
  if (!apps.length) {
    body.replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, S.appsLoaded ? 'No apps yet: create one below.' : 'loading…')));
    return;
  }
  body.replaceChildren(...apps.map((a) => {
    const deps = deploymentsOf(a);
    const hc = (a.healthChecks || []).length > 0;
    return h('tr', { dataset: { appId: a.id } },
      h('td', {}, h('a', { href: `#/app${a.id}` }, a.id)),
      h('td', { class: 'num', 'data-testid': 'app-running' }, a.tasksRunning),
      h('td', { class: 'num' }, hc ? a.tasksHealthy : '–'),
      h('td', { class: 'num', 'data-testid': 'app-wanted' }, a.instances),
      h('td', { title: deps.join(', ') }, deps.length ? `${deps.length} in progress` : '–'),
      h('td', { class: 'mono clip' }, a.cmd || (a.args || []).join(' ') || '–'));
  }));
}

// taskName is the Mesos-DNS task name of an app: "/group/app" -> "app.group",
// each label sanitized as Mesos-DNS does (dnsserver/names.go).
function taskName(appId) {
  const label = (s) => s.toLowerCase().replace(/[._]/g, '-').replace(/[^a-z0-9-]/g, '').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
  return appId.split('/').filter(Boolean).reverse().map(label).filter(Boolean).join('.');
}

function renderApp() {
  const id = S.route.appId;
  const app = S.apps.get(id);
  tid('app-title').textContent = id;
  tid('app-missing').hidden = !S.missing.has(id);
  tid('app-body').hidden = !app;
  if (!app) return;

  const deps = deploymentsOf(app);
  const hc = (app.healthChecks || []).length > 0;
  const dl = tid('app-summary');
  const item = (k, v, t) => [h('dt', {}, k), h('dd', t ? { 'data-testid': t } : {}, v)];
  dl.replaceChildren(
    ...item('instances', `${app.tasksRunning} running · ${hc ? app.tasksHealthy + ' healthy' : 'no health checks'} · ${app.instances} wanted`, 'app-counts'),
    ...item('deployments', deps.length ? deps.join(', ') : 'none', 'app-deployments'),
    ...item('command', app.cmd || (app.args || []).join(' ') || '–'),
    ...item('resources', `${num(app.cpus)} cpus · ${num(app.mem)} MB mem · ${num(app.disk)} MB disk`),
    ...item('version', app.version || '–'),
  );
  const input = tid('scale-input');
  if (document.activeElement !== input && input.value === '') input.value = app.instances;

  const agents = new Map(((S.mstate && S.mstate.slaves) || []).map((s) => [s.id, s.hostname]));
  const tasks = [...(app.tasks || [])].sort((a, b) => a.id.localeCompare(b.id));
  // A bridged task's ports are on its agent; its own address is its container's.
  const bridged = (app.networks || []).some((n) => n.mode === 'container/bridge');
  const body = tid('tasks-table').tBodies[0];
  body.replaceChildren(...(tasks.length ? tasks.map((t) => {
    const ip = (!bridged && t.ipAddresses && t.ipAddresses[0] && t.ipAddresses[0].ipAddress) || t.host;
    const health = t.healthy === true ? 'healthy' : t.healthy === false ? 'unhealthy' : hc ? 'unknown' : '–';
    const cls = t.state === 'TASK_RUNNING' ? 'ok' : /FAILED|LOST|KILLED|GONE|UNREACHABLE|ERROR/.test(t.state) ? 'bad' : 'warn';
    return h('tr', { dataset: { taskId: t.id, state: t.state } },
      h('td', { class: 'mono' }, t.id),
      h('td', { title: t.slaveId }, agents.get(t.slaveId) || t.slaveId),
      h('td', { class: 'mono' }, (t.ports || []).length ? t.ports.map((p) => `${ip}:${p}`).join(', ') : ip),
      h('td', { class: cls }, t.state),
      h('td', { class: health === 'unhealthy' ? 'bad' : health === 'healthy' ? 'ok' : '' }, health),
      h('td', {}, fmtTime(t.startedAt)));
  }) : [h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No tasks.'))]));

  const pds = bridged
    ? ((app.container && app.container.portMappings) || []).map((m) => ({ port: m.servicePort, protocol: m.protocol, name: m.name }))
    : app.portDefinitions || [];
  tid('service-ports').replaceChildren(...(pds.length ? pds.map((p, i) => {
    const vhost = (app.labels || {})[`HAPROXY_${i}_VHOST`];
    return h('li', {}, h('span', { class: 'mono' }, `${p.port}/${p.protocol || 'tcp'}`), p.name ? ` (${p.name})` : '', vhost ? ` · vhost ${vhost}` : '');
  }) : [h('li', { class: 'muted' }, 'none')]));

  const fw = (S.info && S.info.marathon_config && S.info.marathon_config.framework_name) || 'marathon';
  const domain = 'mesos'; // the DNS sidecar's --domain; the API does not say
  const task = taskName(id);
  const names = [
    [`${task}.${fw}.${domain}`, 'A: the addresses of its running, healthy tasks'],
    [`${task}.${fw}.slave.${domain}`, 'A: the agents running them'],
  ];
  const protos = new Set(pds.map((p) => (p.protocol || 'tcp').split(',')).flat());
  for (const proto of pds.length ? [...protos] : []) names.push([`_${task}._${proto}.${fw}.${domain}`, 'SRV: one per task port']);
  tid('dns-names').replaceChildren(...names.map(([n, what]) => h('li', {}, h('code', {}, n), h('span', { class: 'muted' }, ` ${what}`))));

  const versions = S.versions.get(id) || [];
  tid('versions-table').tBodies[0].replaceChildren(...(versions.length ? versions.map((v) =>
    h('tr', { dataset: { version: v } },
      h('td', { class: 'mono' }, v),
      h('td', {}, v === app.version
        ? h('span', { class: 'muted' }, 'current')
        : h('button', { type: 'button', dataset: { testid: 'rollback', version: v }, onclick: () => rollBack(id, v) }, 'Roll back')))
  ) : [h('tr', {}, h('td', { colspan: 2, class: 'muted' }, 'No versions.'))]));
}

// rollBack deploys the app's definition of version v again (Marathon's
// PUT {"version": v}), as a new version.
async function rollBack(id, v) {
  const r = await api('PUT', appPath(id) + force(), { version: v });
  showActionResult(r, `roll back to ${v}`);
}

// ---- app actions ----

function showActionResult(r, what) {
  const el = tid('action-status');
  if (r.ok) {
    el.className = 'status ok';
    el.textContent = `${what}: ${r.body && r.body.deploymentId ? 'deployment ' + r.body.deploymentId : 'done'}`;
    return;
  }
  el.className = 'status error';
  let msg = `${what} failed (HTTP ${r.status}): ${(r.body && r.body.message) || 'error'}`;
  if (r.status === 409) msg += ' — tick "force" to override the running deployment.';
  for (const d of (r.body && r.body.details) || []) msg += ` ${d.path}: ${(d.errors || []).join('; ')}.`;
  el.textContent = msg;
}

function force() {
  return tid('force').checked ? '?force=true' : '';
}

async function scaleTo(n, what) {
  const id = S.route.appId;
  const r = await api('PUT', appPath(id) + force(), { instances: n });
  showActionResult(r, what);
  if (r.ok) tid('scale-input').value = n;
}

function wireApp() {
  tid('scale-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const n = parseInt(tid('scale-input').value, 10);
    if (!(n >= 0)) return;
    scaleTo(n, `scale to ${n}`);
  });
  tid('suspend').addEventListener('click', () => scaleTo(0, 'suspend'));
  tid('restart').addEventListener('click', async () => {
    const r = await api('POST', appPath(S.route.appId) + '/restart' + force());
    showActionResult(r, 'restart');
  });
  const dialog = tid('destroy-dialog');
  tid('destroy').addEventListener('click', () => {
    tid('destroy-app').textContent = S.route.appId;
    dialog.returnValue = '';
    dialog.showModal();
  });
  dialog.addEventListener('close', async () => {
    if (dialog.returnValue !== 'confirm') {
      tid('action-status').className = 'status';
      tid('action-status').textContent = 'destroy cancelled';
      return;
    }
    const id = S.route.appId;
    const r = await api('DELETE', appPath(id) + force());
    showActionResult(r, `destroy ${id}`);
    if (r.ok) {
      S.apps.delete(id);
      location.hash = '#/apps';
    }
  });
}

// ---- create form ----

const TEMPLATE = {
  id: '/example/web',
  cmd: 'atoll echo',
  instances: 1,
  cpus: 0.1,
  mem: 32,
  portDefinitions: [{ port: 0, protocol: 'tcp', name: 'http' }],
};

// topField is the top-level field a Marathon error path names:
// "/portDefinitions(0)/port" -> "portDefinitions"; "/" -> "".
function topField(path) {
  return (path || '').replace(/^\//, '').split('/')[0].replace(/[([].*$/, '');
}

function wireCreate() {
  const ta = tid('create-json');
  ta.value = JSON.stringify(TEMPLATE, null, 2);
  tid('create-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const status = tid('create-status');
    const box = tid('create-errors');
    box.hidden = true;
    ta.removeAttribute('aria-invalid');
    let def;
    try {
      def = JSON.parse(ta.value);
    } catch (err) {
      showCreateErrors(`Not valid JSON: ${err.message}`, null, []);
      return;
    }
    status.textContent = 'creating…';
    const r = await api('POST', '/v2/apps', ta.value);
    status.textContent = '';
    if (r.ok) {
      status.textContent = `created ${r.body.id}`;
      location.hash = `#/app${r.body.id}`;
      return;
    }
    const msg = `${(r.body && r.body.message) || 'error'} (HTTP ${r.status})`;
    showCreateErrors(msg, def, (r.body && r.body.details) || legacyErrors(r.body));
  });
}

// legacyErrors reads Marathon 0.x's {"errors": [{"attribute", "error"}]}.
function legacyErrors(body) {
  return ((body && body.errors) || []).map((e) => ({ path: '/' + (e.attribute || ''), errors: [e.error] }));
}

// showCreateErrors lists the definition's top-level fields with each
// message beside the field its path names; messages about the whole
// object, or a field not given, come first.
function showCreateErrors(message, def, details) {
  tid('create-json').setAttribute('aria-invalid', 'true');
  tid('create-message').textContent = message;
  const byField = new Map();
  for (const d of details) {
    const f = topField(d.path);
    if (!byField.has(f)) byField.set(f, []);
    byField.get(f).push(...(d.errors || []).map((msg) => `${d.path}: ${msg}`));
  }
  const items = [];
  const fields = def && typeof def === 'object' && !Array.isArray(def) ? Object.keys(def) : [];
  const errs = (f) => (byField.get(f) || []).map((m) => h('span', { class: 'field-error', role: 'alert' }, m));
  for (const f of byField.keys()) {
    if (!fields.includes(f)) items.push(h('li', { dataset: { field: f }, class: 'invalid' }, h('code', {}, f || '(object)'), ' ', f ? h('span', { class: 'muted' }, '(not given) ') : '', errs(f)));
  }
  for (const f of fields) {
    let v = JSON.stringify(def[f]);
    if (v && v.length > 80) v = v.slice(0, 77) + '...';
    items.push(h('li', { dataset: { field: f }, class: byField.has(f) ? 'invalid' : '' }, h('code', {}, f), ': ', h('span', { class: 'mono value' }, v), ' ', errs(f)));
  }
  tid('create-fields').replaceChildren(...items);
  tid('create-errors').hidden = false;
}

// ---- events page ----

function eventSummary(type, d) {
  if (!d) return '';
  switch (type) {
    case 'status_update_event':
      return `${d.taskId} ${d.taskStatus} on ${d.host}${(d.ports || []).length ? ':' + d.ports.join(',') : ''}${d.message ? ' — ' + d.message : ''}`;
    case 'health_status_changed_event':
      return `${d.taskId || d.instanceId} ${d.alive ? 'healthy' : 'unhealthy'}`;
    case 'api_post_event':
      return `${d.uri} (instances ${d.appDefinition ? d.appDefinition.instances : '?'})`;
    case 'app_terminated_event':
      return 'app removed';
    case 'lb_report_event':
      return d.message || d.error || JSON.stringify(d).slice(0, 120);
    case 'agent_update_event':
      return `${d.hostname || d.agentId} (${d.ip || '?'}) ${d.state}`;
    case 'resync':
      return d.reason || 'refetch the state';
    case 'event_stream_attached':
    case 'event_stream_detached':
      return d.remoteAddress || '';
  }
  if (type.startsWith('deployment_')) {
    const plan = d.plan || {};
    const step = d.currentStep ? (d.currentStep.actions || []).map((a) => `${a.action} ${a.app}`).join(', ') : '';
    return `${d.id || plan.id || ''}${step ? ' — ' + step : ''}`;
  }
  return JSON.stringify(d).slice(0, 120);
}

function eventMatches(ev) {
  const type = tid('event-type-filter').value;
  const app = tid('event-app-filter').value.trim();
  if (type && ev.type !== type) return false;
  if (app && !appsOf(ev.data).some((id) => id.includes(app))) return false;
  return true;
}

function eventRow(ev) {
  return h('tr', { dataset: { type: ev.type, id: ev.id } },
    h('td', {}, ev.at.toLocaleTimeString()),
    h('td', { class: 'mono' }, ev.id || '–'),
    h('td', { class: `mono type-${ev.type.split('_')[0]}` }, ev.type),
    h('td', { class: 'mono' }, appsOf(ev.data).join(', ') || '–'),
    h('td', {}, h('details', {}, h('summary', {}, eventSummary(ev.type, ev.data)), h('pre', {}, JSON.stringify(ev.data, null, 2)))));
}

function addEvents(evs) {
  S.events.push(...evs);
  if (S.events.length > MAX_EVENTS) S.events.splice(0, S.events.length - MAX_EVENTS);
  const body = tid('events-table').tBodies[0];
  for (const ev of evs) if (eventMatches(ev)) body.prepend(eventRow(ev));
  while (body.rows.length > MAX_EVENT_ROWS) body.lastElementChild.remove();
  updateTypeOptions(evs);
}

function renderEvents() {
  const rows = S.events.filter(eventMatches).slice(-MAX_EVENT_ROWS).reverse().map(eventRow);
  tid('events-table').tBodies[0].replaceChildren(...rows);
}

function updateTypeOptions(evs) {
  let added = false;
  for (const ev of evs) if (!S.types.has(ev.type)) S.types.add(ev.type), (added = true);
  const sel = tid('event-type-filter');
  if (!added && sel.options.length > 1) return;
  const cur = sel.value;
  sel.replaceChildren(h('option', { value: '' }, 'all'), ...[...S.types].sort().map((t) => h('option', { value: t }, t)));
  sel.value = cur;
}

function renderHeld() {
  tid('held-count').textContent = S.paused ? `${S.held.length} event${S.held.length === 1 ? '' : 's'} held back` : '';
}

function wireEvents() {
  updateTypeOptions([]);
  tid('event-type-filter').addEventListener('change', renderEvents);
  tid('event-app-filter').addEventListener('input', renderEvents);
  const btn = tid('pause');
  btn.addEventListener('click', () => {
    S.paused = !S.paused;
    btn.setAttribute('aria-pressed', String(S.paused));
    btn.textContent = S.paused ? 'Resume' : 'Pause';
    if (!S.paused) {
      const held = S.held;
      S.held = [];
      addEvents(held);
    }
    renderHeld();
  });
}

// ---- start ----

function wireCluster() {
  for (const th of tid('agents-table').querySelectorAll('th[data-key]')) {
    th.querySelector('button').addEventListener('click', () => {
      const key = th.dataset.key;
      S.sort = { key, dir: S.sort.key === key ? -S.sort.dir : 1 };
      renderCluster();
    });
  }
  tid('region-filter').addEventListener('change', (e) => {
    S.region = e.target.value;
    renderCluster();
  });
}

function start() {
  wireCluster();
  wireApp();
  wireCreate();
  wireEvents();
  window.addEventListener('hashchange', onRoute);
  onRoute();
  // Load now, and again when the stream opens (connect): what changes
  // between the two is then not missed. Both usually fall in one burst.
  markAll();
  connect();
}

start();
