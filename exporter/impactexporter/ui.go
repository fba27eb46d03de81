package impactexporter

import "net/http"

// uiPage is a small static page over the API: the newest incidents, refreshed by the stream.
const uiPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tapio incidents</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.CRITICAL{color:#b00;font-weight:bold}.HIGH{color:#d60}.MEDIUM{color:#a80}.LOW{color:#666}
</style></head><body>
<h1>Tapio incidents</h1>
<p id="status">loading…</p>
<table><thead><tr><th>Updated</th><th>Severity</th><th>Score</th><th>Incident</th><th>Root cause</th><th>Services</th></tr></thead>
<tbody id="rows"></tbody></table>
<script>
const rows=document.getElementById('rows'),status=document.getElementById('status');
function text(s){return document.createTextNode(s==null?'':String(s))}
function render(list){rows.replaceChildren();for(const i of list){const tr=document.createElement('tr');
for(const [v,c] of [[i.updated_at],[i.severity,i.severity],[i.score.toFixed(2)],[i.id],[i.root_cause.narrative],[(i.services||[]).join(', ')]]){
const td=document.createElement('td');if(c)td.className=c;td.appendChild(text(v));tr.appendChild(td)}rows.appendChild(tr)}}
async function load(){const r=await fetch('api/v1/incidents?limit=100');if(!r.ok){status.textContent='API answered '+r.status;return}
const b=await r.json();render(b.incidents);status.textContent=b.count+' incidents (newest first)'}
load();const es=new EventSource('api/v1/stream');es.addEventListener('created',load);es.addEventListener('updated',load);
</script></body></html>
`

func (a *apiHandler) ui(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(uiPage))
}
