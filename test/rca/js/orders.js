'use strict';
// The orders service of the RCA suite's shop: Express on PostgreSQL (pg). Every answer carries
// X-Trace-Id so that the load generator knows which trace each failed request was.
const express = require('express');
const { Pool } = require('pg');
const { trace } = require('@opentelemetry/api');
const { shutdownTracing } = require('./tracing.js');

const port = Number(process.env.ORDERS_PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('ORDERS_PORT must be a TCP port');
  process.exit(2);
}

// PGHOST, PGPORT, PGUSER and PGDATABASE come from the environment.
const pool = new Pool({ max: 4, connectionTimeoutMillis: 3000, idleTimeoutMillis: 30000 });
// A pooled connection whose backend dies while idle is reported here; without a listener Node
// would end the process. The next query opens a new connection.
pool.on('error', (err) => console.error('idle PostgreSQL connection lost:', err.message));

const app = express();
app.use(express.json());
app.use((req, res, next) => {
  const span = trace.getActiveSpan();
  if (span) res.set('X-Trace-Id', span.spanContext().traceId);
  next();
});

app.get('/healthz', (req, res) => res.json({ status: 'ok' }));

app.post('/api/orders', async (req, res) => {
  const { item, quantity } = req.body || {};
  if (typeof item !== 'string' || item === '' || !Number.isInteger(quantity) || quantity < 1) {
    return res.status(400).json({ error: 'item (string) and quantity (positive integer) are required' });
  }
  try {
    const result = await pool.query(
      'INSERT INTO orders (customer, item, quantity) VALUES ($1, $2, $3) RETURNING id',
      [String(req.get('x-user-id') || ''), item, quantity],
    );
    res.status(201).json({ id: result.rows[0].id });
  } catch (err) {
    res.status(500).json({ error: 'orders database: ' + err.message });
  }
});

app.get('/api/orders/:id', async (req, res) => {
  const id = Number(req.params.id);
  if (!Number.isInteger(id) || id < 1) {
    return res.status(400).json({ error: 'order id must be a positive integer' });
  }
  try {
    const result = await pool.query('SELECT id, customer, item, quantity FROM orders WHERE id = $1', [id]);
    if (result.rows.length === 0) return res.status(404).json({ error: 'no such order' });
    res.json(result.rows[0]);
  } catch (err) {
    res.status(500).json({ error: 'orders database: ' + err.message });
  }
});

const server = app.listen(port, '127.0.0.1', () => console.log(`orders listening on 127.0.0.1:${port}`));

process.on('SIGTERM', () => {
  server.close();
  Promise.allSettled([pool.end(), shutdownTracing()]).then(() => process.exit(0));
});
