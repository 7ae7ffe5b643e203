// rayward's HTML report: renders the scorecard and the findings from the JSON data block.
// Input-derived text is only ever set as textContent or as attribute values; links are
// the relative hrefs rayward wrote, or "#findings".
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('rw-data').textContent);
  if (window.performance && performance.mark) performance.mark('rw-parsed');
  var S = D.s, F = D.f, O = D.objects, R = D.rules, P = D.practices;
  var N = F.rule.length;
  // obj and line are stored as differences from the previous finding.
  (function () {
    var o = 0, l = 0;
    for (var i = 0; i < N; i++) { o += F.obj[i]; F.obj[i] = o; l += F.line[i]; F.line[i] = l; }
  })();
  // A message that names its object holds U+0001 where the name goes.
  function message(i) {
    var m = S[F.msg[i]];
    return m.indexOf('\u0001') < 0 ? m : m.split('\u0001').join(S[O.name[F.obj[i]]]);
  }
  var PAGE_SIZES = [50, 100, 500, 1000];
  var CARD_PAGE = 20;

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function num(n) { return n.toLocaleString('en-US'); }
  function nsText(i) { return i < 0 ? '(no namespace)' : S[i]; }
  function objName(o) {
    return (O.ns[o] >= 0 ? S[O.ns[o]] + '/' : '') + S[O.name[o]];
  }
  function objLabel(o) { return S[O.kind[o]] + ' ' + objName(o); }

  // ---- namespaces: those of the scorecard, then any other an object has
  var nsList = [], nsOfKey = new Map();
  function nsKey(sIdx) {
    if (!nsOfKey.has(sIdx)) { nsOfKey.set(sIdx, nsList.length); nsList.push(sIdx); }
    return nsOfKey.get(sIdx);
  }
  D.namespaces.forEach(function (n) { nsKey(n.ns); });
  var nObj = O.kind.length;
  var objOwnNs = new Int32Array(nObj);
  for (var o = 0; o < nObj; o++) objOwnNs[o] = nsKey(O.ns[o]);
  var colObj = D.columns.obj;
  // Per object: the namespaces it counts in (its own, and those of the Ray objects it
  // counts against), and its "other objects" bucket when it counts against none.
  var otherOfNs = new Map();
  D.other.forEach(function (x, i) { otherOfNs.set(x.ns, i); });
  var objNs = new Array(nObj), objOther = new Int32Array(nObj);
  for (o = 0; o < nObj; o++) {
    var set = [objOwnNs[o]];
    var cols = O.cols[o];
    for (var k = 0; k < cols.length; k++) {
      var n = objOwnNs[colObj[cols[k]]];
      if (set.indexOf(n) < 0) set.push(n);
    }
    objNs[o] = set;
    objOther[o] = cols.length === 0 && otherOfNs.has(O.ns[o]) ? otherOfNs.get(O.ns[o]) : -1;
  }
  var rulePractice = R.map(function (r) { return r.practice; });

  // ---- filters
  var state = { text: '', sev: '', practice: '', rule: '', ns: '', cluster: '', sort: 'sev' };
  var pages = { active: 0, suppressed: 0 }, pageSize = 100;
  var lower = null;
  function textMatcher(q) {
    if (!q) return null;
    if (!lower) lower = S.map(function (s) { return s.toLowerCase(); });
    var hit = new Uint8Array(S.length);
    for (var i = 0; i < lower.length; i++) if (lower[i].indexOf(q) >= 0) hit[i] = 1;
    var ruleHit = R.map(function (r) {
      return (r.id + ' ' + r.name + ' ' + r.summary).toLowerCase().indexOf(q) >= 0;
    });
    var ruleFixHit = R.map(function (r) { return r.fix.toLowerCase().indexOf(q) >= 0; });
    return function (i) {
      var o = F.obj[i], fx = F.fix[i], sp = F.sup[i];
      var m = lower[F.msg[i]];
      var msgHit = m.indexOf('\u0001') < 0 ? hit[F.msg[i]]
        : m.split('\u0001').join(lower[O.name[o]]).indexOf(q) >= 0;
      return msgHit || hit[F.path[i]] || hit[D.files.name[F.file[i]]] ||
        hit[O.name[o]] || hit[O.kind[o]] || (O.ns[o] >= 0 && hit[O.ns[o]]) ||
        ruleHit[F.rule[i]] || (fx >= 0 ? hit[fx] : ruleFixHit[F.rule[i]]) ||
        (sp >= 0 && hit[sp]);
    };
  }
  function matching() {
    var text = textMatcher(state.text.trim().toLowerCase());
    var sev = state.sev === '' ? -1 : +state.sev;
    var practice = state.practice === '' ? -2 : +state.practice;
    var rule = state.rule === '' ? -1 : +state.rule;
    var ns = state.ns === '' ? -1 : +state.ns;
    var col = -1, other = -1;
    if (state.cluster[0] === 'c') col = +state.cluster.slice(1);
    if (state.cluster[0] === 'o') other = +state.cluster.slice(1);
    var active = [], suppressed = [];
    for (var i = 0; i < N; i++) {
      if (sev >= 0 && F.sev[i] !== sev) continue;
      if (rule >= 0 && F.rule[i] !== rule) continue;
      if (practice > -2 && rulePractice[F.rule[i]] !== practice) continue;
      var o = F.obj[i];
      if (col >= 0 && O.cols[o].indexOf(col) < 0) continue;
      if (other >= 0 && objOther[o] !== other) continue;
      if (ns >= 0 && objNs[o].indexOf(ns) < 0) continue;
      if (text && !text(i)) continue;
      (F.sup[i] >= 0 ? suppressed : active).push(i);
    }
    if (state.sort === 'sev') {
      var bySev = function (list) {
        var b = [[], [], [], [], []];
        for (var j = 0; j < list.length; j++) b[F.sev[list[j]]].push(list[j]);
        return b[4].concat(b[3], b[2], b[1], b[0]);
      };
      active = bySev(active);
      suppressed = bySev(suppressed);
    }
    return { active: active, suppressed: suppressed };
  }

  // ---- the findings tables
  function hardenText(r) {
    var x = R[r];
    var fix = x.safe ? 'fixes it (safe)' : 'fixes it';
    if (x.harden === 'object') return fix;
    if (x.harden === 'companion') return 'adds ' + x.companion;
    if (x.harden === 'both') return fix + '; adds ' + x.companion;
    return 'no';
  }
  function row(i) {
    var tr = document.createElement('tr');
    var r = R[F.rule[i]], sev = D.sev[F.sev[i]];
    var td = el('td');
    td.append(el('span', 'badge sev-' + sev, sev));
    tr.append(td);
    td = el('td');
    td.append(el('code', null, r.id), document.createElement('br'), el('span', null, r.name));
    tr.append(td);
    tr.append(el('td', null, objLabel(F.obj[i])));
    td = el('td', 'msg');
    td.append(el('div', null, message(i)));
    td.append(el('div', 'fix', 'Fix: ' + (F.fix[i] >= 0 ? S[F.fix[i]] : r.fix)));
    if (F.sup[i] >= 0) {
      td.append(el('div', 'reason', 'Suppressed: ' + (S[F.sup[i]] || '(no reason given)')));
    }
    tr.append(td);
    td = el('td', 'path');
    td.append(el('code', null, S[F.path[i]]));
    tr.append(td);
    td = el('td', 'where');
    var file = F.file[i], where = S[D.files.name[file]];
    if (F.line[i] > 0) where += ':' + F.line[i] + ':' + F.col[i];
    var href = D.files.href[file];
    if (href >= 0) {
      var a = el('a', null, where);
      a.setAttribute('href', S[href]);
      td.append(a);
    } else {
      td.append(document.createTextNode(where));
    }
    tr.append(td);
    tr.append(el('td', 'harden', hardenText(F.rule[i])));
    return tr;
  }
  function pager(nav, total, which, render) {
    nav.textContent = '';
    var count = Math.max(1, Math.ceil(total / pageSize));
    if (pages[which] >= count) pages[which] = count - 1;
    var p = pages[which];
    function button(label, aria, to, disabled) {
      var b = el('button', null, label);
      b.type = 'button';
      b.setAttribute('aria-label', aria);
      b.disabled = disabled;
      b.addEventListener('click', function () { pages[which] = to; render(); });
      nav.append(b);
    }
    button('«', 'First page', 0, p === 0);
    button('‹', 'Previous page', p - 1, p === 0);
    nav.append(el('span', null, 'page ' + num(p + 1) + ' of ' + num(count)));
    button('›', 'Next page', p + 1, p >= count - 1);
    button('»', 'Last page', count - 1, p >= count - 1);
    var label = el('label', null, 'rows per page');
    var sel = el('select');
    var id = 'size-' + which;
    sel.id = id;
    label.setAttribute('for', id);
    PAGE_SIZES.forEach(function (n) {
      var opt = el('option', null, String(n));
      opt.value = String(n);
      if (n === pageSize) opt.selected = true;
      sel.append(opt);
    });
    sel.addEventListener('change', function () {
      pageSize = +sel.value; pages.active = 0; pages.suppressed = 0; renderFindings();
    });
    nav.append(label, sel);
  }
  function fill(table, list, which) {
    var body = table.tBodies[0];
    var start = pages[which] * pageSize;
    var frag = document.createDocumentFragment();
    for (var j = start; j < Math.min(list.length, start + pageSize); j++) frag.append(row(list[j]));
    body.textContent = '';
    body.append(frag);
  }
  var current = null;
  function renderFindings(keepPage) {
    if (!keepPage) { pages.active = 0; pages.suppressed = 0; }
    current = matching();
    draw();
  }
  function draw() {
    var a = current.active, s = current.suppressed;
    var t = $('t-active');
    t.hidden = false;
    pager($('p-active'), a.length, 'active', draw);
    fill(t, a, 'active');
    var from = a.length ? pages.active * pageSize + 1 : 0;
    var to = Math.min(a.length, (pages.active + 1) * pageSize);
    $('f-count').textContent = (a.length ? 'Showing ' + num(from) + '–' + num(to) + ' of ' : 'No finding out of ') +
      num(a.length) + (a.length ? ' matching findings' : ' matching') + ' (' + num(D.summary.findings) + ' in all).';
    var sup = $('suppressed');
    sup.hidden = D.summary.suppressed === 0;
    if (!sup.hidden) {
      pager($('p-suppressed'), s.length, 'suppressed', draw);
      fill($('t-suppressed'), s, 'suppressed');
      $('s-count').textContent = num(s.length) + ' of ' + num(D.summary.suppressed) + ' suppressed findings match the filters.';
    }
  }

  // ---- filter controls
  function option(sel, value, text) {
    var o = el('option', null, text);
    o.value = value;
    sel.append(o);
  }
  function setupFilters() {
    var present = { rule: new Uint8Array(R.length), sev: new Uint8Array(5) };
    for (var i = 0; i < N; i++) { present.rule[F.rule[i]] = 1; present.sev[F.sev[i]] = 1; }
    for (var s = 4; s >= 0; s--) if (present.sev[s]) option($('f-sev'), String(s), D.sev[s]);
    P.forEach(function (p, j) { option($('f-practice'), String(j), p.label); });
    R.forEach(function (r, j) { if (present.rule[j]) option($('f-rule'), String(j), r.id + ' ' + r.name); });
    var order = nsList.map(function (x, j) { return j; }).sort(function (a, b) {
      return nsText(nsList[a]).localeCompare(nsText(nsList[b]));
    });
    order.forEach(function (j) { option($('f-ns'), String(j), nsText(nsList[j])); });
    var frag = document.createDocumentFragment();
    colObj.forEach(function (o, c) {
      var opt = el('option', null, objLabel(o));
      opt.value = 'c' + c;
      frag.append(opt);
    });
    D.other.forEach(function (x, j) {
      var opt = el('option', null, 'other objects in ' + nsText(x.ns));
      opt.value = 'o' + j;
      frag.append(opt);
    });
    $('f-cluster').append(frag);
    var timer = null;
    $('f-text').addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(function () { state.text = $('f-text').value; renderFindings(); }, 150);
    });
    [['f-sev', 'sev'], ['f-practice', 'practice'], ['f-rule', 'rule'], ['f-ns', 'ns'],
      ['f-cluster', 'cluster'], ['f-sort', 'sort']].forEach(function (x) {
      $(x[0]).addEventListener('change', function () { state[x[1]] = $(x[0]).value; renderFindings(); });
    });
    $('filters').addEventListener('submit', function (e) { e.preventDefault(); });
    $('filters').addEventListener('reset', function () {
      setTimeout(function () { readFilters(); renderFindings(); }, 0);
    });
    $('filters').hidden = false;
  }
  function readFilters() {
    state.text = $('f-text').value; state.sev = $('f-sev').value;
    state.practice = $('f-practice').value; state.rule = $('f-rule').value;
    state.ns = $('f-ns').value; state.cluster = $('f-cluster').value; state.sort = $('f-sort').value;
  }
  function showCell(practice, cluster, ns) {
    $('f-text').value = ''; $('f-sev').value = ''; $('f-rule').value = '';
    $('f-practice').value = practice == null ? '' : String(practice);
    $('f-cluster').value = cluster || '';
    $('f-ns').value = ns == null ? '' : String(ns);
    readFilters();
    renderFindings();
    var target = $('findings');
    target.scrollIntoView();
    target.focus();
  }

  // ---- the scorecard
  var card = { view: 'objects', order: 'input', page: 0 };
  function cardColumns() {
    var cols = [];
    if (card.view === 'objects') {
      colObj.forEach(function (o, c) {
        cols.push({ kind: S[O.kind[o]], name: objName(o), cells: D.columns.cells[c],
          score: D.columns.score[c], cluster: 'c' + c, ns: null });
      });
      D.other.forEach(function (x, j) {
        cols.push({ kind: 'other objects', name: nsText(x.ns), cells: x.cells.map(function (n) { return n > 0 ? n : -2; }),
          score: null, cluster: 'o' + j, ns: null });
      });
    } else {
      D.namespaces.forEach(function (x) {
        cols.push({ kind: 'namespace · ' + num(x.members.length) + ' Ray object' + (x.members.length === 1 ? '' : 's'),
          name: nsText(x.ns), cells: x.cells, score: x.score, cluster: null, ns: nsOfKey.get(x.ns) });
      });
    }
    if (card.order === 'score') {
      cols = cols.map(function (c, i) { return [c, i]; }).sort(function (a, b) {
        var x = a[0].score == null ? 101 : a[0].score, y = b[0].score == null ? 101 : b[0].score;
        return x - y || a[1] - b[1];
      }).map(function (p) { return p[0]; });
    }
    return cols;
  }
  function renderCard() {
    var wrap = $('card-wrap');
    wrap.textContent = '';
    if (colObj.length === 0 && D.other.length === 0) {
      wrap.append(el('p', null, 'No Ray object (RayCluster, RayJob, RayService, RayCronJob) among the inputs, and no finding: no scorecard.'));
      return;
    }
    var cols = cardColumns();
    var count = Math.max(1, Math.ceil(cols.length / CARD_PAGE));
    if (card.page >= count) card.page = count - 1;
    var shown = cols.slice(card.page * CARD_PAGE, (card.page + 1) * CARD_PAGE);
    var t = el('table', 'card');
    t.id = 'card-table';
    t.append(el('caption', null, 'Scorecard: practices of the guide × ' +
      (card.view === 'objects' ? 'Ray objects' : 'namespaces') +
      (count > 1 ? ' (columns ' + num(card.page * CARD_PAGE + 1) + '–' + num(card.page * CARD_PAGE + shown.length) + ' of ' + num(cols.length) + ')' : '')));
    var head = el('tr');
    head.append(el('th', null, 'Practice'));
    head.firstChild.setAttribute('scope', 'col');
    shown.forEach(function (c) {
      var th = el('th');
      th.setAttribute('scope', 'col');
      th.append(el('span', 'kind', c.kind), document.createTextNode(c.name));
      head.append(th);
    });
    var thead = el('thead');
    thead.append(head);
    t.append(thead);
    var body = el('tbody');
    P.forEach(function (p, j) {
      var tr = el('tr');
      var th = el('th', null, p.label);
      th.setAttribute('scope', 'row');
      tr.append(th);
      shown.forEach(function (c) {
        var v = c.cells[j], td;
        var who = p.label + ', ' + c.kind + ' ' + c.name;
        if (v > 0) {
          td = el('td', 'fail');
          var a = el('a', null, '✗ ' + num(v));
          a.setAttribute('href', '#findings');
          a.setAttribute('aria-label', who + ': ' + num(v) + ' finding' + (v === 1 ? '' : 's') + '. Show them.');
          a.addEventListener('click', function (e) { e.preventDefault(); showCell(j, c.cluster, c.ns); });
          td.append(a);
        } else if (v === 0) {
          td = el('td', 'pass');
          var s = el('span', null, '✓ pass');
          s.setAttribute('title', who + ': pass');
          td.append(s);
        } else if (v === -2) {
          td = el('td', 'na');
          td.append(el('span', null, '–'));
          td.lastChild.setAttribute('title', who + ': no finding');
        } else {
          td = el('td', 'na');
          var n = el('span', null, 'n/a');
          n.setAttribute('title', who + ': not applicable');
          td.append(n);
        }
        tr.append(td);
      });
      body.append(tr);
    });
    var sr = el('tr', 'score');
    var sth = el('th', null, 'Score');
    sth.setAttribute('scope', 'row');
    sr.append(sth);
    shown.forEach(function (c) { sr.append(el('td', null, c.score == null ? '–' : c.score + '%')); });
    body.append(sr);
    t.append(body);
    wrap.append(t);
    var nav = $('card-pager');
    nav.textContent = '';
    if (count > 1) {
      var prev = el('button', null, '‹ columns');
      prev.type = 'button';
      prev.setAttribute('aria-label', 'Previous columns');
      prev.disabled = card.page === 0;
      prev.addEventListener('click', function () { card.page--; renderCard(); });
      var next = el('button', null, 'columns ›');
      next.type = 'button';
      next.setAttribute('aria-label', 'Next columns');
      next.disabled = card.page >= count - 1;
      next.addEventListener('click', function () { card.page++; renderCard(); });
      nav.append(prev, el('span', null, 'page ' + num(card.page + 1) + ' of ' + num(count)), next);
    }
  }
  function setupCard() {
    // The coarser view by default when the objects would not fit a screen.
    if (colObj.length > CARD_PAGE) { card.view = 'namespaces'; $('card-view').value = 'namespaces'; }
    $('card-view').addEventListener('change', function () { card.view = $('card-view').value; card.page = 0; renderCard(); });
    $('card-order').addEventListener('change', function () { card.order = $('card-order').value; card.page = 0; renderCard(); });
    $('card-controls').hidden = false;
    var list = el('ul');
    P.forEach(function (p) {
      var li = el('li', null, p.label + ': ' + (p.rules.length ? p.rules.join(', ') : 'no rule ran'));
      list.append(li);
    });
    var rules = $('practice-rules');
    rules.append(el('p', null, 'The rules of each practice that ran:'), list);
  }

  function setupErrors() {
    if (!D.errors.length) return;
    var ul = $('error-list');
    D.errors.forEach(function (e) {
      ul.append(el('li', null, e.file + (e.line ? ':' + e.line + ':' + e.column : '') + ': ' + e.message));
    });
    $('errors').hidden = false;
  }

  // On paper, the definitions are part of the page.
  window.addEventListener('beforeprint', function () {
    var d = document.querySelector('details.defs');
    if (d) d.open = true;
  });
  setupCard();
  renderCard();
  setupFilters();
  setupErrors();
  renderFindings();
  if (window.performance && performance.mark) {
    performance.mark('rw-ready');
    // After the next frame: the rendered page painted (for the benchmark).
    requestAnimationFrame(function () { setTimeout(function () { performance.mark('rw-painted'); }, 0); });
  }
  document.documentElement.setAttribute('data-ready', '1');
})();
