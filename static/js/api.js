// Fetching the API's JSON. Errors come back as {error: {code, message, ...}}.

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `request failed (${status})`);
    this.status = status;
    this.body = body;
  }
}

async function parse(response) {
  const type = response.headers.get('content-type') ?? '';
  const body = type.includes('json') ? await response.json() : await response.text();
  if (!response.ok) throw new ApiError(response.status, typeof body === 'object' ? body : null);
  return body;
}

export async function getJSON(url) {
  return parse(await fetch(url, { headers: { Accept: 'application/json' } }));
}

export async function post(url, body, accept = 'application/json') {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: accept },
    body: JSON.stringify(body),
  });
  return accept === 'application/json' || !response.ok ? parse(response) : response.blob();
}

// A multipart upload (FormData); the answer is JSON either way.
export async function postForm(url, form) {
  return parse(await fetch(url, { method: 'POST', headers: { Accept: 'application/json' }, body: form }));
}

// JSON the server carried in the page (templates/macros.html, page_data): the same text the
// API answers at the element's data-src, there from the first byte, so the first chart waits
// for no request. Inert data in an attribute: the page runs no inline script.
export function embeddedJSON(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no data #${id}`);
  return JSON.parse(el.dataset.json);
}
