// gridpatrol command centre (一张图): one map of the district, its drones and its events,
// live over the API's Server-Sent Events. Plain JavaScript over Leaflet; no build step.
'use strict';

// ---- words, in both languages ---------------------------------------------------------
const WORDS = {
  zh: {
    title: '网格巡查 · 一张图', offline: '离线', live: '实时', reconnecting: '重连中',
    signout: '退出', signin: '登录', token: 'API 令牌', events: '事件', runs: '任务',
    alerts: '告警', patrols: '巡查计划', runlist: '任务记录', all_categories: '全部类别',
    all_states: '全部状态', cells: '网格', no_fly: '禁飞区', routes: '计划航线',
    vehicles: '无人机', tracks: '航迹', footprints: '照片覆盖', cell: '网格',
    worker: '网格员', deadline: '期限', sightings: '次发现', audit: '处置记录',
    photos: '照片', overdue: '超期', battery: '电量', link: '链路', mode: '模式',
    progress: '航点', start_now: '立即执行', pause: '暂停', resume: '继续', cancel: '取消',
    next: '下次', no_events: '暂无事件', no_alerts: '暂无告警', bad_token: '令牌无效或已撤销',
    department: '部门', handler: '处置人', feedback: '反馈', rating: '评分', close_panel: '关闭',
    link_lost: '链路丢失', link_back: '链路恢复', low_battery: '电量低', run_failed: '任务未能执行',
    show_photos: '航迹与照片', vehicle: '无人机', role: '角色', note: '备注',
    sign: '签收', dispatch: '派遣', start: '处置', transfer: '流转', resolve: '反馈',
    evaluate: '评价', close: '结案',
    incidents: '警情派机', incident: '警情', time_to_scene: '到场用时',
    inc_dispatching: '待派机', inc_en_route: '前往中', inc_on_scene: '已到场', inc_confirmed: '已确认',
    inc_not_confirmed: '未发现', inc_refused: '无法派机',
  },
  en: {
    title: 'gridpatrol · one map', offline: 'offline', live: 'live', reconnecting: 'reconnecting',
    signout: 'Sign out', signin: 'Sign in', token: 'API token', events: 'Events', runs: 'Runs',
    alerts: 'Alerts', patrols: 'Patrols', runlist: 'Runs', all_categories: 'All categories',
    all_states: 'All states', cells: 'Grid cells', no_fly: 'No-fly zones', routes: 'Planned routes',
    vehicles: 'Drones', tracks: 'Tracks', footprints: 'Photo footprints', cell: 'Cell',
    worker: 'Grid worker', deadline: 'Deadline', sightings: 'sightings', audit: 'Audit trail',
    photos: 'Photos', overdue: 'overdue', battery: 'Battery', link: 'Link', mode: 'Mode',
    progress: 'Waypoint', start_now: 'Start now', pause: 'Pause', resume: 'Resume', cancel: 'Cancel',
    next: 'next', no_events: 'No events', no_alerts: 'No alerts', bad_token: 'The token is unknown or revoked',
    department: 'Department', handler: 'Handler', feedback: 'Feedback', rating: 'Rating', close_panel: 'Close',
    link_lost: 'link lost', link_back: 'link regained', low_battery: 'low battery', run_failed: 'run failed to start',
    show_photos: 'Track and photos', vehicle: 'Drone', role: 'Role', note: 'Note',
    sign: 'Sign for', dispatch: 'Dispatch', start: 'Start work', transfer: 'Transfer', resolve: 'Resolve',
    evaluate: 'Evaluate', close: 'Close',
    incidents: 'Alert flights', incident: 'Alert', time_to_scene: 'time to scene',
    inc_dispatching: 'waiting for a drone', inc_en_route: 'drone on its way', inc_on_scene: 'drone over the point',
    inc_confirmed: 'confirmed', inc_not_confirmed: 'not confirmed', inc_refused: 'refused',
  },
};
const CATEGORIES = {
  piled_objects: ['占道堆物', 'Piled objects', '#8d6e63'],
  out_of_store_business: ['跨门经营', 'Out-of-store business', '#f57c00'],
  mobile_vendor: ['流动摊点', 'Mobile vendor', '#fbc02d'],
  bike_parking: ['非机动车乱停放', 'Bike parking', '#0288d1'],
  illegal_poster: ['城市牛皮癣', 'Illegal poster', '#7b1fa2'],
  crowd: ['人员聚集', 'Crowd', '#c2185b'],
  garbage: ['环境卫生', 'Garbage', '#388e3c'],
  fire_smoke: ['火情', 'Fire / smoke', '#d32f2f'],
};
const STATES = {
  reported: ['上报', 'reported'], signed_for: ['已签收', 'signed for'],
  dispatched: ['已派遣', 'dispatched'], in_progress: ['处置中', 'in progress'],
  transferred: ['已流转', 'transferred'], resolved: ['已反馈', 'resolved'],
  evaluated: ['已评价', 'evaluated'], closed: ['已结案', 'closed'],
};
// The closed loop, as the API enforces it: which actions each state allows.
const NEXT_ACTIONS = {
  reported: ['sign'], signed_for: ['dispatch'], dispatched: ['start', 'transfer'],
  in_progress: ['resolve', 'transfer'], transferred: ['start', 'dispatch'],
  resolved: ['evaluate'], evaluated: ['close'], closed: [],
};
const RUN_STATES = {
  waiting: ['等待', 'waiting'], preparing: ['准备', 'preparing'], executing: ['执行中', 'executing'],
  paused: ['已暂停', 'paused'], success: ['完成', 'success'], failed_to_start: ['未能执行', 'failed to start'],
  terminated: ['已终止', 'terminated'], timeout: ['超时', 'timeout'], partially_done: ['部分完成', 'partially done'],
  skipped: ['跳过', 'skipped'],
};
const ROLE_RANK = { viewer: 0, grid_worker: 1, operator: 2, admin: 3 };

// ---- state --------------------------------------------------------------------------
const gp = {
  lang: localStorage.getItem('gp-lang') || (navigator.language.startsWith('zh') ? 'zh' : 'en'),
  token: localStorage.getItem('gp-token') || '',
  me: null, config: null, map: null, layers: {}, cells: {}, cellInfo: {},
  vehicles: {}, events: {}, runs: [], patrols: [], alerts: [], lastId: null,
  selected: null, streamAbort: null, connected: false, seenAt: {},
};
window.gp = gp; // for the browser test and the curious

const t = (k) => (WORDS[gp.lang] && WORDS[gp.lang][k]) || k;
const catName = (c) => (CATEGORIES[c] ? CATEGORIES[c][gp.lang === 'zh' ? 0 : 1] : c);
const stateName = (s) => (STATES[s] ? STATES[s][gp.lang === 'zh' ? 0 : 1] : s);
const runStateName = (s) => (RUN_STATES[s] ? RUN_STATES[s][gp.lang === 'zh' ? 0 : 1] : s);
const can = (role) => gp.me && ROLE_RANK[gp.me.role] >= ROLE_RANK[role];
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of kids.flat()) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
};
const when = (us) => (us ? new Date(us / 1000).toLocaleString(gp.lang === 'zh' ? 'zh-CN' : 'en-GB') : '-');

// ---- datum: Chinese base maps are in GCJ-02 -------------------------------------------
// The published GCJ-02 offset (Krasovsky ellipsoid); positions from the API are WGS-84.
function gcj02(lat, lon) {
  if (lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271) return [lat, lon];
  const A = 6378245.0, EE = 0.006693421622965943, PI = Math.PI;
  const x = lon - 105.0, y = lat - 35.0;
  let dlat = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  dlat += (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3;
  dlat += (20 * Math.sin(y * PI) + 40 * Math.sin(y / 3 * PI)) * 2 / 3;
  dlat += (160 * Math.sin(y / 12 * PI) + 320 * Math.sin(y * PI / 30)) * 2 / 3;
  let dlon = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  dlon += (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3;
  dlon += (20 * Math.sin(x * PI) + 40 * Math.sin(x / 3 * PI)) * 2 / 3;
  dlon += (150 * Math.sin(x / 12 * PI) + 300 * Math.sin(x / 30 * PI)) * 2 / 3;
  const rad = lat / 180 * PI;
  const magic = 1 - EE * Math.sin(rad) * Math.sin(rad);
  const sq = Math.sqrt(magic);
  dlat = (dlat * 180) / ((A * (1 - EE)) / (magic * sq) * PI);
  dlon = (dlon * 180) / (A / sq * Math.cos(rad) * PI);
  return [lat + dlat, lon + dlon];
}
// A WGS-84 position as drawn: shifted when the base map is GCJ-02.
const drawn = (lat, lon) => (gp.config && gp.config.tiles_datum === 'gcj02' ? gcj02(lat, lon) : [lat, lon]);
const datumQuery = () => (gp.config && gp.config.tiles_datum === 'gcj02' ? 'gcj02' : 'wgs84');

// ---- API ----------------------------------------------------------------------------
async function api(path, opts = {}) {
  const headers = Object.assign({ Authorization: 'Bearer ' + gp.token }, opts.headers || {});
  if (opts.body) headers['Content-Type'] = 'application/json';
  const r = await fetch('/api/v1' + path, Object.assign({}, opts, { headers }));
  if (r.status === 401) throw new Error(t('bad_token'));
  const body = r.headers.get('content-type')?.includes('json') ? await r.json() : null;
  if (!r.ok) throw new Error((body && body.message) || r.statusText);
  return body;
}
async function imageUrl(captureId) {
  const r = await fetch('/api/v1/images/' + captureId, { headers: { Authorization: 'Bearer ' + gp.token } });
  if (!r.ok) throw new Error(r.statusText);
  return URL.createObjectURL(await r.blob());
}

// ---- map ----------------------------------------------------------------------------
function initMap() {
  const map = L.map('map', { preferCanvas: false, zoomControl: true, attributionControl: true });
  gp.map = map;
  if (gp.config.tiles) {
    L.tileLayer(gp.config.tiles, { maxZoom: 20, attribution: gp.config.tiles_attribution || '' }).addTo(map);
  }
  for (const name of ['cells', 'no_fly', 'routes', 'tracks', 'footprints', 'events', 'incidents', 'vehicles']) {
    gp.layers[name] = L.layerGroup();
    if (name !== 'footprints') gp.layers[name].addTo(map);
  }
  gp.layerControl = L.control.layers(null, {}, { collapsed: true }).addTo(map);
  labelLayers();
  map.setView([36.56, 103.68], 14);
}
function labelLayers() {
  if (!gp.layerControl) return;
  for (const [name, layer] of Object.entries(gp.layers)) {
    gp.layerControl.removeLayer(layer);
    gp.layerControl.addOverlay(layer, t(name));
  }
}

async function loadDistrict() {
  const fc = await api('/grids?datum=' + datumQuery());
  const mine = gp.me.role === 'grid_worker' ? new Set(gp.me.cells) : null;
  let mineBounds = null, allBounds = null;
  for (const f of fc.features) {
    const p = f.properties;
    if (p.layer === 'cell') {
      const ring = f.geometry.coordinates[0].map(([lon, lat]) => [lat, lon]);
      const poly = L.polygon(ring, { className: 'cell', weight: mine && mine.has(f.id) ? 3 : 1, color: '#37474f', fillOpacity: 0.08 });
      poly.bindTooltip(`${f.id} ${p.cell.name || ''}`);
      poly.addTo(gp.layers.cells);
      poly.getElement()?.setAttribute('data-cell', f.id);
      gp.cells[f.id] = poly;
      gp.cellInfo[f.id] = p.cell;
      allBounds = allBounds ? allBounds.extend(poly.getBounds()) : poly.getBounds();
      if (mine && mine.has(f.id)) mineBounds = mineBounds ? mineBounds.extend(poly.getBounds()) : poly.getBounds();
    } else if (p.layer === 'no_fly') {
      const ring = f.geometry.coordinates[0].map(([lon, lat]) => [lat, lon]);
      L.polygon(ring, { className: 'no-fly', color: '#d32f2f', weight: 2, dashArray: '4 4', fillOpacity: 0.15 })
        .bindTooltip(`${t('no_fly')} ${p.name || p.id}`).addTo(gp.layers.no_fly);
    } else if (p.layer === 'road') {
      const line = f.geometry.coordinates.map(([lon, lat]) => [lat, lon]);
      const road = L.polyline(line, { className: 'road', color: '#ffffff', weight: 6, opacity: 0.9 })
        .bindTooltip(p.name || '').addTo(gp.layers.cells);
      road.bringToBack(); // streets under the cells
      road.getElement()?.setAttribute('data-road', p.name || '');
    } else if (p.layer === 'home' || p.layer === 'hotspot') {
      const [lon, lat] = f.geometry.coordinates;
      L.circleMarker([lat, lon], { radius: p.layer === 'home' ? 7 : 4, color: p.layer === 'home' ? '#123c69' : '#ef6c00' })
        .bindTooltip(p.layer === 'home' ? 'dock' : (p.hotspot && p.hotspot.name) || 'hotspot').addTo(gp.layers.cells);
    }
  }
  // A grid worker sees their own cells first.
  const b = mineBounds || allBounds;
  if (b) gp.map.fitBounds(b, { padding: [10, 10] });
}

function colourCells() {
  const now = Date.now() * 1000;
  const open = {}, late = {};
  for (const e of Object.values(gp.events)) {
    if (!e.cell_id || e.state === 'closed' || e.merged_into) continue;
    open[e.cell_id] = (open[e.cell_id] || 0) + 1;
    if (e.deadline_us && e.deadline_us < now) late[e.cell_id] = true;
  }
  for (const [id, poly] of Object.entries(gp.cells)) {
    const colour = late[id] ? '#d32f2f' : open[id] ? '#f57c00' : '#37474f';
    poly.setStyle({ fillColor: colour, fillOpacity: open[id] ? Math.min(0.15 + 0.08 * open[id], 0.5) : 0.06 });
    const el = poly.getElement();
    if (el) { el.setAttribute('data-open', open[id] || 0); el.setAttribute('data-overdue', late[id] ? 1 : 0); }
  }
}

// ---- vehicles: smooth between samples -------------------------------------------------
function vehicleIcon(v) {
  const heading = (v.position && v.position.heading) || 0;
  const colour = v.link !== 'Connected' ? '#9e9e9e' : v.armed ? '#1565c0' : '#455a64';
  const pct = v.mission_total ? `${Math.max(0, v.mission_current)}/${v.mission_total}` : '';
  const batt = v.battery ? `${v.battery.remaining}%` : '';
  return L.divIcon({
    className: 'vehicle-icon',
    iconSize: [26, 26], iconAnchor: [13, 13],
    html: `<svg class="arrow" viewBox="0 0 26 26" style="transform: rotate(${heading}deg)"><path d="M13 2 L22 23 L13 18 L4 23 Z" fill="${colour}" stroke="#fff" stroke-width="1.5"/></svg>` +
      `<span class="tag">#${v.sysid} ${v.mode || ''} ${batt} ${pct}</span>`,
  });
}
function onTelemetry(v) {
  if (!v.position || !isFinite(v.position.lat)) return;
  const target = drawn(v.position.lat, v.position.lon);
  let s = gp.vehicles[v.sysid];
  if (!s) {
    const marker = L.marker(target, { icon: vehicleIcon(v), zIndexOffset: 1000 }).addTo(gp.layers.vehicles);
    marker.getElement()?.setAttribute('data-sysid', v.sysid);
    marker.getElement()?.classList.add('vehicle');
    s = gp.vehicles[v.sysid] = { marker, from: target, to: target, t0: performance.now(), samples: 0, track: null, last: null };
  }
  const prev = s.last;
  s.last = v;
  s.samples += 1;
  // Glide from where the marker is now to the new sample over one sample period.
  const here = s.marker.getLatLng();
  s.from = [here.lat, here.lng];
  s.to = target;
  s.t0 = performance.now();
  s.marker.setIcon(vehicleIcon(v));
  s.marker.getElement()?.setAttribute('data-sysid', v.sysid);
  s.marker.getElement()?.classList.add('vehicle');
  s.marker.bindTooltip(vehicleText(v));
  if (v.armed) {
    if (!s.track) s.track = L.polyline([], { color: '#1565c0', weight: 2, opacity: 0.7 }).addTo(gp.layers.tracks);
    s.track.addLatLng(target);
  } else {
    s.track = null; // the next flight starts a track of its own
  }
  vehicleAlerts(prev, v);
  if (!prev || prev.armed !== v.armed) renderSummary();
}
function vehicleText(v) {
  const q = v.quality ? (100 * v.quality.received / Math.max(1, v.quality.received + v.quality.lost)).toFixed(0) : '-';
  return `${t('vehicle')} ${v.sysid} · ${t('mode')} ${v.mode} · ${t('battery')} ${v.battery ? v.battery.remaining : '-'}% · ` +
    `${t('link')} ${v.link} ${q}% · ${t('progress')} ${v.mission_current}/${v.mission_total}`;
}
function animate() {
  const period = 1000 / ((gp.config && gp.config.telemetry_hz) || 2);
  const now = performance.now();
  for (const s of Object.values(gp.vehicles)) {
    const k = Math.min(1, (now - s.t0) / period);
    s.marker.setLatLng([s.from[0] + (s.to[0] - s.from[0]) * k, s.from[1] + (s.to[1] - s.from[1]) * k]);
  }
  requestAnimationFrame(animate);
}

// ---- alerts -------------------------------------------------------------------------
function addAlert(level, text, at) {
  gp.alerts.unshift({ level, text, at: at || Date.now() * 1000 });
  gp.alerts = gp.alerts.slice(0, 200);
  renderAlerts();
}
function vehicleAlerts(prev, v) {
  if (prev && prev.link === 'Connected' && v.link !== 'Connected') addAlert('crit', `${t('vehicle')} ${v.sysid}: ${t('link_lost')}`);
  if (prev && prev.link !== 'Connected' && v.link === 'Connected') addAlert('warn', `${t('vehicle')} ${v.sysid}: ${t('link_back')}`);
  const b = v.battery && v.battery.remaining, pb = prev && prev.battery && prev.battery.remaining;
  if (b !== undefined && b >= 0 && b < 25 && (pb === undefined || pb >= 25)) addAlert('warn', `${t('vehicle')} ${v.sysid}: ${t('low_battery')} ${b}%`);
  // STATUSTEXTs of warning or worse (MAV_SEVERITY ≤ 4): failsafes and refusals.
  const seen = prev ? prev.statustext.length : 0;
  const fresh = v.statustext.slice(prev && v.statustext.length >= seen ? seen : v.statustext.length);
  for (const [sev, text] of fresh) if (sev <= 4) addAlert(sev <= 2 ? 'crit' : 'warn', `${t('vehicle')} ${v.sysid}: ${text}`);
}
function renderAlerts() {
  const ul = document.getElementById('alerts');
  ul.replaceChildren(...(gp.alerts.length ? gp.alerts.map((a) =>
    el('li', { class: 'alert-' + a.level }, a.text, el('div', { class: 'muted' }, when(a.at)))) : [el('li', { class: 'muted' }, t('no_alerts'))]));
  document.querySelector('nav [data-tab=alerts]').textContent = t('alerts') + (gp.alerts.length ? ` (${gp.alerts.length})` : '');
}

// ---- events -------------------------------------------------------------------------
function eventIcon(e) {
  const c = CATEGORIES[e.category] ? CATEGORIES[e.category][2] : '#555';
  return L.divIcon({
    className: `event-icon ${e.state}`, iconSize: [18, 18], iconAnchor: [9, 9],
    html: `<div style="background:${c};width:16px;height:16px;border-radius:50%"></div>`,
  });
}
function putEvent(e) {
  if (e.merged_into) { removeEvent(e.id); return; }
  const known = gp.events[e.id];
  gp.events[e.id] = e;
  const at = drawn(e.lat, e.lon);
  if (known && known.marker) {
    e.marker = known.marker;
    e.marker.setLatLng(at);
    e.marker.setIcon(eventIcon(e));
  } else {
    if (!gp.seenAt[e.id]) gp.seenAt[e.id] = Date.now(); // when it reached this page, ms
    e.marker = L.marker(at, { icon: eventIcon(e) }).addTo(gp.layers.events);
    e.marker.on('click', () => showEvent(e.id));
  }
  const me = e.marker.getElement();
  if (me) { me.setAttribute('data-event-id', e.id); me.classList.add('event'); }
  e.marker.bindTooltip(`#${e.id} ${catName(e.category)} · ${stateName(e.state)}`);
}
function removeEvent(id) {
  const e = gp.events[id];
  if (e && e.marker) gp.layers.events.removeLayer(e.marker);
  delete gp.events[id];
}
async function loadEvents() {
  const r = await api('/events');
  for (const e of r.events) putEvent(e);
  renderEvents();
  colourCells();
}
function renderSummary() {
  const now = Date.now() * 1000;
  const open = Object.values(gp.events).filter((e) => e.state !== 'closed');
  const late = open.filter((e) => e.deadline_us && e.deadline_us < now).length;
  const vs = Object.values(gp.vehicles).map((s) => s.last).filter(Boolean);
  const flying = vs.filter((v) => v.armed).length;
  document.getElementById('summary').textContent = gp.lang === 'zh'
    ? `未结案 ${open.length} · 超期 ${late} · 无人机 ${flying}/${vs.length} 架在飞`
    : `${open.length} open · ${late} overdue · ${flying}/${vs.length} drones flying`;
}
function renderEvents() {
  const cat = document.getElementById('f-category').value;
  const st = document.getElementById('f-state').value;
  const now = Date.now() * 1000;
  const list = Object.values(gp.events)
    .filter((e) => (!cat || e.category === cat) && (!st || e.state === st))
    .sort((a, b) => b.last_seen_us - a.last_seen_us);
  for (const e of Object.values(gp.events)) {
    const show = (!cat || e.category === cat) && (!st || e.state === st);
    if (show && !gp.layers.events.hasLayer(e.marker)) gp.layers.events.addLayer(e.marker);
    if (!show && gp.layers.events.hasLayer(e.marker)) gp.layers.events.removeLayer(e.marker);
  }
  renderSummary();
  const ul = document.getElementById('events');
  ul.replaceChildren(...(list.length ? list.map((e) => el('li', {
    'data-event-id': e.id, class: gp.selected === e.id ? 'sel' : '', onclick: () => showEvent(e.id),
  },
  el('strong', {}, `#${e.id} ${catName(e.category)}`), ' ',
  el('span', { class: 'badge state' }, stateName(e.state)), ' ',
  e.deadline_us && e.deadline_us < now && e.state !== 'closed' ? el('span', { class: 'badge overdue' }, t('overdue')) : '',
  el('div', { class: 'muted' }, `${e.cell_id || '-'} · ${e.sightings} ${t('sightings')} · ${when(e.last_seen_us)}`))) : [el('li', { class: 'muted' }, t('no_events'))]));
}
let refreshTimers = {};
function eventChanged(c) {
  // One fetch per event however many changes arrive together.
  clearTimeout(refreshTimers[c.event]);
  refreshTimers[c.event] = setTimeout(async () => {
    try {
      const d = await api('/events/' + c.event);
      putEvent(d.event);
      renderEvents();
      colourCells();
      if (gp.selected === c.event) renderDetail(d);
    } catch (err) { /* a grid worker's stream carries their cells only; ignore others */ }
  }, 150);
}

async function showEvent(id) {
  gp.selected = id;
  renderEvents();
  const d = await api('/events/' + id);
  renderDetail(d);
  const e = gp.events[id];
  if (e && e.marker) gp.map.panTo(e.marker.getLatLng());
}
function renderDetail(d) {
  const e = d.event;
  const box = document.getElementById('detail');
  box.hidden = false;
  const info = gp.cellInfo[e.cell_id] || {};
  const photos = [...d.photos].sort((a, b) => b.confidence - a.confidence);
  const cover = photos.find((p) => p.image_sha && e.cover_image && e.cover_image.includes(p.image_sha)) || photos[0];
  const photoBox = el('div', { class: 'photo', id: 'cover' });
  if (cover) {
    imageUrl(cover.capture_id).then((url) => {
      const img = el('img', { src: url, alt: catName(e.category) });
      img.onload = () => {
        const [x1, y1, x2, y2] = cover.bbox;
        const W = img.naturalWidth, H = img.naturalHeight;
        photoBox.append(el('div', {
          class: 'box',
          style: `left:${100 * x1 / W}%;top:${100 * y1 / H}%;width:${100 * (x2 - x1) / W}%;height:${100 * (y2 - y1) / H}%`,
        }));
      };
      photoBox.prepend(img);
    }).catch(() => {});
  }
  const now = Date.now() * 1000;
  box.replaceChildren(
    el('div', { class: 'actions' },
      el('h3', { class: 'grow' }, `#${e.id} ${catName(e.category)}`),
      el('button', { type: 'button', onclick: () => { box.hidden = true; gp.selected = null; renderEvents(); } }, t('close_panel'))),
    el('div', {}, el('span', { class: 'badge state', id: 'detail-state' }, stateName(e.state)), ' ',
      e.deadline_us && e.deadline_us < now && e.state !== 'closed' ? el('span', { class: 'badge overdue' }, t('overdue')) : ''),
    el('div', { class: 'muted' }, `${t('cell')} ${e.cell_id || '-'} ${info.name || ''} · ${t('worker')} ${info.grid_worker || '-'} ${info.phone || ''}`),
    el('div', { class: 'muted' }, `${t('deadline')} ${when(e.deadline_us)} · ${e.department || ''} ${e.handler || ''}`),
    e.feedback ? el('div', {}, `${t('feedback')}: ${e.feedback}`) : '',
    photoBox,
    actionButtons(e),
    el('h4', {}, `${t('photos')} (${d.photos.length})`),
    el('ul', { class: 'audit' }, photos.map((p) => el('li', {}, `${p.sysid}/${p.index} · ${(p.confidence * 100).toFixed(0)}% · ${p.lat.toFixed(6)},${p.lon.toFixed(6)} ±${p.uncertainty_m.toFixed(1)} m`))),
    el('h4', {}, t('audit')),
    el('ul', { class: 'audit', id: 'audit' }, d.audit.map((a) => el('li', {},
      `${when(a.at_us)} ${a.from ? stateName(a.from) : '-'} → ${stateName(a.to)} · ${a.actor}${a.note ? ': ' + a.note : ''}`))),
  );
}
// The lifecycle buttons the token's role allows: grid workers (their cells) and up.
function actionButtons(e) {
  const div = el('div', { class: 'actions', id: 'actions' });
  if (!can('grid_worker')) return div;
  const note = el('input', { placeholder: t('note'), id: 'act-note' });
  for (const a of NEXT_ACTIONS[e.state] || []) {
    const fields = {};
    if (a === 'dispatch' || a === 'transfer') {
      fields.department = el('input', { placeholder: t('department'), id: `act-${a}-department` });
      fields.handler = el('input', { placeholder: t('handler'), id: `act-${a}-handler` });
    } else if (a === 'resolve') {
      fields.feedback = el('input', { placeholder: t('feedback'), id: 'act-feedback' });
    } else if (a === 'evaluate') {
      fields.rating = el('select', { id: 'act-rating' }, [5, 4, 3, 2, 1].map((n) => el('option', { value: n }, `${t('rating')} ${n}`)));
    }
    const go = el('button', {
      type: 'button', class: 'action', 'data-action': a,
      onclick: async () => {
        const body = { action: a, note: note.value };
        for (const [k, f] of Object.entries(fields)) body[k] = k === 'rating' ? Number(f.value) : f.value;
        if (a === 'resolve') body.photos = [];
        go.disabled = true;
        try {
          await api(`/events/${e.id}/actions`, { method: 'POST', body: JSON.stringify(body) });
          const d = await api('/events/' + e.id);
          putEvent(d.event); renderEvents(); colourCells(); renderDetail(d);
        } catch (err) {
          div.append(el('p', { class: 'error' }, err.message));
          go.disabled = false;
        }
      },
    }, t(a));
    div.append(...Object.values(fields), go);
  }
  if (div.childElementCount) div.append(note);
  return div;
}

// ---- runs and patrols -------------------------------------------------------------------
async function loadRuns() {
  const [r, p] = await Promise.all([api('/runs'), api('/patrols')]);
  gp.runs = r.runs;
  gp.patrols = p.patrols;
  renderRuns();
}
function renderRuns() {
  const op = can('operator');
  document.getElementById('patrols').replaceChildren(...gp.patrols.map((p) => el('li', {},
    el('strong', {}, p.definition.name), ' ',
    el('span', { class: 'muted' }, `${p.definition.pattern} · ${p.definition.cells.join(',')} · ${t('next')} ${p.next ? new Date(p.next).toLocaleString() : '-'}`), ' ',
    op ? el('button', { type: 'button', 'data-patrol': p.definition.name, onclick: () => act(`/patrols/${encodeURIComponent(p.definition.name)}/runs`) }, t('start_now')) : '')));
  const runs = [...gp.runs].sort((a, b) => b.id - a.id).slice(0, 50);
  document.getElementById('runs').replaceChildren(...runs.map((r) => {
    const buttons = [];
    if (op && ['waiting', 'preparing', 'executing'].includes(r.state)) buttons.push(['pause', 'pause'], ['cancel', 'cancel']);
    if (op && r.state === 'paused') buttons.push(['resume', 'resume'], ['cancel', 'cancel']);
    return el('li', { 'data-run': r.id },
      el('strong', {}, `#${r.id} ${r.patrol}`), ' ', el('span', { class: 'badge' }, runStateName(r.state)),
      r.sysid ? ` · ${t('vehicle')} ${r.sysid}` : '',
      el('div', { class: 'muted' }, r.reason || ''),
      el('div', { class: 'actions' },
        buttons.map(([k, path]) => el('button', { type: 'button', 'data-op': k, onclick: () => act(`/runs/${r.id}/${path}`) }, t(k))),
        el('button', { type: 'button', 'data-op': 'photos', onclick: () => showRunPhotos(r.id) }, t('show_photos'))));
  }));
}
async function act(path) {
  try { await api(path, { method: 'POST' }); } catch (err) { addAlert('warn', err.message); }
  loadRuns();
}
async function showRunPhotos(id) {
  const [m, tr] = await Promise.all([api(`/runs/${id}/media`), api(`/runs/${id}/track`)]);
  // The run's whole track as recorded (a point a second), one line per vehicle.
  if (gp.runTrack) gp.layers.tracks.removeLayer(gp.runTrack);
  const bySysid = {};
  for (const p of tr.points) (bySysid[p.sysid] = bySysid[p.sysid] || []).push(drawn(p.lat, p.lon));
  gp.runTrack = L.featureGroup(Object.values(bySysid).map((line) =>
    L.polyline(line, { color: '#6a1b9a', weight: 3, opacity: 0.8, className: 'run-track' }))).addTo(gp.layers.tracks);
  gp.layers.footprints.clearLayers();
  for (const p of m.photos) {
    const shape = p.footprint && p.footprint.length === 4
      ? L.polygon(p.footprint.map(([lat, lon]) => drawn(lat, lon)), { color: '#6a1b9a', weight: 1, fillOpacity: 0.05 })
      : L.circleMarker(drawn(p.lat, p.lon), { radius: 3, color: '#6a1b9a' });
    shape.bindTooltip(`${p.sysid}/${p.index} ${p.events.length ? '#' + p.events.join(',#') : ''}`).addTo(gp.layers.footprints);
  }
  gp.layers.footprints.addTo(gp.map);
}
let runsTimer = null;
function runChanged(c) {
  if (['failed_to_start', 'terminated', 'timeout'].includes(c.to)) addAlert('crit', `#${c.run} ${c.patrol}: ${runStateName(c.to)} · ${c.reason}`, c.at_us);
  clearTimeout(runsTimer);
  runsTimer = setTimeout(() => { loadRuns(); loadIncidents(); }, 300);
}

// ---- alert flights: each alert's point, coloured by where it stands ------------------
const INCIDENT_COLOURS = {
  dispatching: '#ef6c00', en_route: '#1565c0', on_scene: '#6a1b9a',
  confirmed: '#c62828', not_confirmed: '#757575', refused: '#212121',
};
async function loadIncidents() {
  let r;
  try { r = await api('/alerts'); } catch (err) { return; }
  gp.layers.incidents.clearLayers();
  for (const a of r.alerts.filter((a) => a.state !== 'merged')) {
    const m = L.circleMarker(drawn(a.lat, a.lon), {
      radius: 10, weight: 3, color: INCIDENT_COLOURS[a.state] || '#000', fillOpacity: 0.25, className: 'incident',
    });
    const tts = a.times.total_s != null ? ` · ${t('time_to_scene')} ${a.times.total_s.toFixed(0)} s` : '';
    m.bindTooltip(el('div', {},
      el('b', {}, `${t('incident')} #${a.id} ${catName(a.category)}`),
      el('div', {}, `${t('inc_' + a.state)}${tts}`),
      el('div', {}, a.reason)));
    m.addTo(gp.layers.incidents);
    const node = m.getElement();
    if (node) { node.setAttribute('data-incident', String(a.id)); node.setAttribute('data-state', a.state); }
  }
}
async function loadRoutes() {
  gp.layers.routes.clearLayers();
  for (const p of gp.patrols.filter((p) => p.definition.enabled)) {
    try {
      const plan = await api('/plans/preview?datum=' + datumQuery(), { method: 'POST', body: JSON.stringify(p.definition) });
      L.geoJSON(plan.geojson, {
        filter: (f) => f.geometry.type === 'LineString',
        style: { color: '#00897b', weight: 2, dashArray: '6 4', opacity: 0.8 },
      }).bindTooltip(p.definition.name).addTo(gp.layers.routes);
    } catch (err) { /* a patrol the district cannot plan is reported by the API elsewhere */ }
  }
}

// ---- live stream: fetch-based SSE, so the token goes in a header ---------------------
async function stream() {
  while (gp.token) {
    const ctl = new AbortController();
    gp.streamAbort = ctl;
    try {
      const headers = { Authorization: 'Bearer ' + gp.token };
      if (gp.lastId) headers['Last-Event-ID'] = String(gp.lastId);
      const r = await fetch('/api/v1/stream', { headers, signal: ctl.signal });
      if (!r.ok) throw new Error(r.statusText);
      setLive(true);
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          dispatch(buf.slice(0, cut));
          buf = buf.slice(cut + 2);
        }
      }
    } catch (err) { /* reconnect below */ }
    setLive(false);
    if (!gp.token) break;
    await new Promise((ok) => setTimeout(ok, 1000));
  }
}
function dispatch(block) {
  let kind = 'message', data = '', id = null;
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) kind = line.slice(6).trim();
    else if (line.startsWith('data:')) data += line.slice(5).trim();
    else if (line.startsWith('id:')) id = Number(line.slice(3).trim());
  }
  if (id) gp.lastId = id;
  if (!data && kind !== 'reset') return;
  const v = data ? JSON.parse(data) : null;
  if (kind === 'telemetry') onTelemetry(v);
  else if (kind === 'event') eventChanged(v);
  else if (kind === 'run') runChanged(v);
  else if (kind === 'reset') { loadEvents(); loadRuns(); } // fell too far behind: reload
}
function setLive(on) {
  gp.connected = on;
  const s = document.getElementById('live');
  s.className = 'live' + (on ? '' : ' off');
  s.textContent = t(on ? 'live' : gp.token ? 'reconnecting' : 'offline');
}

// ---- page ---------------------------------------------------------------------------
function translate() {
  document.documentElement.lang = gp.lang;
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.getAttribute('data-i18n'));
  document.getElementById('lang').textContent = gp.lang === 'zh' ? 'EN' : '中文';
  const fc = document.getElementById('f-category'), fs = document.getElementById('f-state');
  const [c, s] = [fc.value, fs.value];
  fc.replaceChildren(el('option', { value: '' }, t('all_categories')), ...Object.keys(CATEGORIES).map((k) => el('option', { value: k }, catName(k))));
  fs.replaceChildren(el('option', { value: '' }, t('all_states')), ...Object.keys(STATES).map((k) => el('option', { value: k }, stateName(k))));
  fc.value = c; fs.value = s;
  if (gp.me) {
    document.getElementById('who').textContent = `${gp.me.holder} · ${t('role')} ${gp.me.role}`;
    renderEvents(); renderRuns(); renderAlerts(); setLive(gp.connected); labelLayers();
    for (const e of Object.values(gp.events)) putEvent(e);
  }
}
function signOut() {
  gp.token = '';
  localStorage.removeItem('gp-token');
  if (gp.streamAbort) gp.streamAbort.abort();
  location.reload();
}
async function start() {
  try {
    if (!gp.token) throw new Error('');
    gp.me = await api('/me');
  } catch (err) {
    document.getElementById('signin').hidden = false;
    document.getElementById('signin-error').textContent = gp.token ? err.message : '';
    return;
  }
  document.getElementById('signin').hidden = true;
  document.getElementById('signout').hidden = false;
  translate();
  initMap();
  await loadDistrict();
  await Promise.all([loadEvents(), loadRuns(), loadIncidents()]);
  // A drone reaching the point changes no run: look again every few seconds.
  setInterval(loadIncidents, 3000);
  requestAnimationFrame(animate);
  stream();
  loadRoutes();
  document.body.setAttribute('data-ready', '1');
}

async function boot() {
  gp.config = await (await fetch('/config.json')).json();
  translate();
  document.getElementById('lang').onclick = () => {
    gp.lang = gp.lang === 'zh' ? 'en' : 'zh';
    localStorage.setItem('gp-lang', gp.lang);
    translate();
  };
  document.getElementById('signout').onclick = signOut;
  document.querySelector('#signin form').onsubmit = (ev) => {
    ev.preventDefault();
    gp.token = document.getElementById('token').value.trim();
    localStorage.setItem('gp-token', gp.token);
    start();
  };
  for (const b of document.querySelectorAll('nav button')) {
    b.onclick = () => {
      for (const o of document.querySelectorAll('nav button')) o.classList.toggle('on', o === b);
      for (const s of ['events', 'runs', 'alerts']) document.getElementById('tab-' + s).hidden = s !== b.dataset.tab;
    };
  }
  document.getElementById('f-category').onchange = renderEvents;
  document.getElementById('f-state').onchange = renderEvents;
  start();
}
boot();
