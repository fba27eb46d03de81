// The incident list: the newest incidents from the API, loaded again whenever the stream reports
// a created or updated incident. Everything the API returns is untrusted (narratives, ids and
// service names come from the monitored systems), so it only ever becomes text nodes, never
// markup.
'use strict';

const rows = document.getElementById('rows');
const statusLine = document.getElementById('status');

function cell(value, className) {
  const td = document.createElement('td');
  if (className) {
    td.className = className;
  }
  td.appendChild(document.createTextNode(value == null ? '' : String(value)));
  return td;
}

function render(incidents) {
  rows.replaceChildren();
  for (const inc of incidents) {
    const tr = document.createElement('tr');
    tr.appendChild(cell(inc.updated_at));
    tr.appendChild(cell(inc.severity, inc.severity));
    tr.appendChild(cell(inc.score.toFixed(2)));
    tr.appendChild(cell(inc.id));
    tr.appendChild(cell(inc.root_cause.narrative));
    tr.appendChild(cell((inc.services || []).join(', ')));
    rows.appendChild(tr);
  }
}

async function load() {
  const resp = await fetch('api/v1/incidents?limit=100');
  if (!resp.ok) {
    statusLine.textContent = 'API answered ' + resp.status;
    return;
  }
  const body = await resp.json();
  render(body.incidents);
  statusLine.textContent = body.count + ' incidents (newest first)';
}

load();
const stream = new EventSource('api/v1/stream');
stream.addEventListener('created', load);
stream.addEventListener('updated', load);
