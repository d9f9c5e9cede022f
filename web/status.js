// Shows whether the relay answers its health check. Plain module, no inline script: the relay's
// Content-Security-Policy allows scripts from its own origin only.
const out = document.getElementById('status');
try {
  const res = await fetch('/healthz', { cache: 'no-store' });
  out.textContent = res.ok ? 'running' : `unhealthy (${res.status})`;
} catch (err) {
  out.textContent = `unreachable (${err.message})`;
}
