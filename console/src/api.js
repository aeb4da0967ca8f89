// The HTTP API (services/api): same-origin fetch with the session cookie; every state change sends the
// CSRF token (double submit: cookie `zhifa_csrf` + header `X-CSRF-Token`). Errors become ApiError with
// the API's Chinese message.
import { reactive } from 'vue'

export class ApiError extends Error {
  constructor(status, code, message, field, detail = {}) {
    super(message)
    this.status = status
    this.code = code
    this.field = field
    this.violations = detail.violations || []  // a contract's refusal: every field, rule and message
  }
}

function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)zhifa_csrf=([^;]+)/)
  return m ? decodeURIComponent(m[1]) : session.csrf || ''
}

function query(params) {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue
    q.append(k, String(v))
  }
  const s = q.toString()
  return s ? `?${s}` : ''
}

// requests in flight, for the browser tests to know when a page has settled
window.__zhifaPending = 0

async function request(method, path, opts = {}) {
  window.__zhifaPending += 1
  try {
    return await send(method, path, opts)
  } finally {
    window.__zhifaPending -= 1
  }
}

async function send(method, path, { params, body, parse } = {}) {
  const headers = { Accept: 'application/json' }
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json'
    headers['X-CSRF-Token'] = csrfToken()
  }
  let resp
  try {
    resp = await fetch(path + query(params), {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  } catch {
    throw new ApiError(0, 'network', '无法连接服务器，请检查网络后重试')
  }
  let doc = null
  try { doc = parse && resp.ok ? parse(await resp.text()) : await resp.json() } catch { doc = null }
  if (!resp.ok) {
    const e = (doc && doc.error) || {}
    if (resp.status === 401 && path !== '/api/v1/auth/login') session.user = null
    throw new ApiError(resp.status, e.code || 'http_' + resp.status, e.message || `请求失败（${resp.status}）`, e.field, e)
  }
  return doc
}

export const get = (path, params) => request('GET', path, { params })
export const post = (path, body, params) => request('POST', path, { body, params })
/** GET with the answer's text parsed by `parse` (e.g. a draw record keeping its number literals). */
export const getParsed = (path, parse, params) => request('GET', path, { params, parse })

/** Every page of a list (`{items, total}`), at most `max` items. */
export async function getAll(path, params = {}, max = 2000) {
  const out = []
  let total = 0
  for (let offset = 0; offset < max; offset += 500) {
    const page = await get(path, { ...params, limit: 500, offset })
    total = page.total
    out.push(...(page.items || []))
    if (!page.items || page.items.length < 500 || out.length >= page.total) break
  }
  return { items: out, total }
}

// ---- the session ---------------------------------------------------------------------------------
export const session = reactive({ user: null, csrf: '', checked: false })

export async function loadSession() {
  // no CSRF cookie: no session either (and no 401 in the browser's console)
  if (!/(?:^|;\s*)zhifa_csrf=/.test(document.cookie)) {
    session.checked = true
    return null
  }
  try {
    session.user = (await get('/api/v1/auth/me')).user
  } catch {
    session.user = null
  }
  session.checked = true
  return session.user
}

export async function login(username, password) {
  const doc = await post('/api/v1/auth/login', { username, password })
  session.user = doc.user
  session.csrf = doc.csrf_token
  return doc.user
}

export async function logout() {
  try { await post('/api/v1/auth/logout', {}) } finally { session.user = null }
}

// ---- which routes exist, and for whom (the served OpenAPI document's `x-roles`) --------------------
let openapi = null
export async function loadOpenapi() {
  if (!openapi) {
    try { openapi = await get('/api/v1/openapi.json') } catch { openapi = { paths: {} } }
  }
  return openapi
}

/** Is `METHOD path` served, and may the current role (or `public`) call it? */
export function can(method, path, role = session.user ? session.user.role : 'public') {
  const op = openapi && openapi.paths[path] && openapi.paths[path][method.toLowerCase()]
  if (!op) return false
  const roles = op['x-roles'] || []
  return roles.includes(role) || roles.includes('public')
}
export const served = (method, path) => !!(openapi && openapi.paths[path] && openapi.paths[path][method.toLowerCase()])
