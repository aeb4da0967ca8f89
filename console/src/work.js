// What the work pages (网上办案, supervision cases, review, evaluation, reports) share: the command
// descriptions, the department the supervisor's coordination commands speak for, documents rendered
// by the documents service and their download links.
import { get, post, session } from './api.js'
import { bureauOf } from './labels.js'

let commands = null
/** The 网上办案 commands with their parameters (GET /api/v1/case-commands, derived from the contracts). */
export async function caseCommands() {
  if (!commands) commands = (await get('/api/v1/case-commands')).items
  return commands
}

/** The justice bureau the supervisor acts for: its own department, else the bureau of `someDept`'s county. */
export function bureauDept(someDept) {
  const own = session.user && session.user.dept
  if (own) return own
  return someDept ? bureauOf(someDept) : ''
}

/** A document rendered, numbered and stored by the documents service (POST /api/v1/documents). */
export async function renderDocument(body, dept) {
  const reply = await post('/api/v1/documents', body, dept ? { dept } : undefined)
  return reply.document || reply
}

export const downloadUrl = (docId, format) => `/api/v1/documents/${encodeURIComponent(docId)}/download/${format}`

/** Today in China (YYYY-MM-DD), whatever the browser's zone. */
export function chinaToday(offsetDays = 0) {
  const d = new Date(Date.now() + 8 * 3600 * 1000 + offsetDays * 86400 * 1000)
  return d.toISOString().slice(0, 10)
}

/** The justice bureau of the county the console serves, for a supervisor without a department of its own:
 *  the bureau of the first department that has a case. */
export async function countyBureau() {
  const own = session.user && session.user.dept
  if (own) return own
  const page = await get('/api/v1/cases', { limit: 1 })
  return page.items && page.items.length ? bureauOf(page.items[0].dept) : ''
}

export const GRADES = { excellent: '优秀', pass: '合格', fail: '不合格' }
