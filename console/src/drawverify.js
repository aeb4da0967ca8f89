// Verification of a published draw record (双随机) in the browser: the algorithm `zhifa-draw-v1` of
// services/inspection/draw.py (its docstring is the specification), recomputed here from the record
// alone, as `zhifa verify-draw` does on the command line. No server is asked: SHA-256 and HMAC-SHA256 are
// computed below (WebCrypto is absent on plain-http county networks), and the record is parsed keeping
// each number's literal text, so that its canonical JSON is byte for byte the one Python digested.
// tests/unit/test_console_drawverify.py runs this module in Node against records built by draw.py.

export const ALGORITHM = 'zhifa-draw-v1'
export const RECORD_FORMAT = 'zhifa-draw-record/1'
const SEED_PREFIX = 'zhifa-draw-seed-v1:'
const SEED_METHODS = ['commit_reveal', 'beacon']

// ---- SHA-256 and HMAC-SHA256 over bytes ------------------------------------------------------------
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
])

export function sha256(bytes) {
  const len = bytes.length
  const padded = new Uint8Array(((len + 9 + 63) >> 6) << 6)
  padded.set(bytes)
  padded[len] = 0x80
  const bits = len * 8
  const view = new DataView(padded.buffer)
  view.setUint32(padded.length - 8, Math.floor(bits / 0x100000000))
  view.setUint32(padded.length - 4, bits >>> 0)
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19])
  const w = new Uint32Array(64)
  const rotr = (x, n) => (x >>> n) | (x << (32 - n))
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4)
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3)
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10)
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0
    }
    let [a, b, c, d, e, f, g, hh] = h
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh
  }
  const out = new Uint8Array(32)
  const ov = new DataView(out.buffer)
  h.forEach((x, i) => ov.setUint32(i * 4, x))
  return out
}

const utf8 = (s) => new TextEncoder().encode(s)
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')

export function hmacSha256(key, message) {
  let k = key.length > 64 ? sha256(key) : key
  const block = new Uint8Array(64)
  block.set(k)
  const inner = new Uint8Array(64 + message.length)
  const outer = new Uint8Array(64 + 32)
  for (let i = 0; i < 64; i++) { inner[i] = block[i] ^ 0x36; outer[i] = block[i] ^ 0x5c }
  inner.set(message, 64)
  outer.set(sha256(inner), 64)
  return sha256(outer)
}

// ---- JSON keeping number literals, and Python's canonical JSON ----------------------------------------
/** A JSON number as written in the record (Python wrote it with repr: 1.0 stays "1.0"). */
export class Num {
  constructor(text) { this.text = text }
  get isInt() { return /^-?\d+$/.test(this.text) }
  valueOf() { return Number(this.text) }
}

/** Parse JSON text; numbers become `Num` with their literal text. */
export function parseRecordJson(text) {
  let i = 0
  const fail = () => { throw new SyntaxError(`JSON 格式错误（第 ${i} 个字符）`) }
  const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++ }
  function value() {
    ws()
    const c = text[i]
    if (c === '{') {
      i++
      const obj = {}
      ws()
      if (text[i] === '}') { i++; return obj }
      for (;;) {
        ws()
        if (text[i] !== '"') fail()
        const key = string()
        ws()
        if (text[i++] !== ':') fail()
        obj[key] = value()
        ws()
        if (text[i] === ',') { i++; continue }
        if (text[i++] !== '}') fail()
        return obj
      }
    }
    if (c === '[') {
      i++
      const arr = []
      ws()
      if (text[i] === ']') { i++; return arr }
      for (;;) {
        arr.push(value())
        ws()
        if (text[i] === ',') { i++; continue }
        if (text[i++] !== ']') fail()
        return arr
      }
    }
    if (c === '"') return string()
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400))
    if (m) { i += m[0].length; return new Num(m[0]) }
    for (const [lit, v] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(lit, i)) { i += lit.length; return v }
    }
    return fail()
  }
  function string() {
    const m = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/.exec(text.slice(i))
    if (!m) fail()
    i += m[0].length
    return JSON.parse(m[0])
  }
  const out = value()
  ws()
  if (i !== text.length) fail()
  return out
}

const byCodePoint = (a, b) => {
  const x = Array.from(a, (ch) => ch.codePointAt(0))
  const y = Array.from(b, (ch) => ch.codePointAt(0))
  for (let j = 0; j < Math.min(x.length, y.length); j++) if (x[j] !== y[j]) return x[j] - y[j]
  return x.length - y.length
}

/** json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) */
export function canonical(v) {
  if (v === null || v === undefined) return 'null'
  if (v instanceof Num) return v.text
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(v)
  if (typeof v === 'boolean') return v ? 'true' : 'false'
  if (typeof v === 'string') return JSON.stringify(v)
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  return `{${Object.keys(v).sort(byCodePoint).map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`
}

export const digest = (obj) => hex(sha256(utf8(canonical(obj))))
export const seedCommitment = (seed) => hex(sha256(utf8(SEED_PREFIX + seed)))
export const score = (seed, ...parts) => hex(hmacSha256(utf8(seed), utf8(parts.join('|'))))

// ---- the algorithm ------------------------------------------------------------------------------------
class DrawError extends Error {}

const str = (v) => (v instanceof Num ? v.text : String(v))
const isInt = (v) => v instanceof Num ? v.isInt : (typeof v === 'number' && Number.isInteger(v))
const intOf = (v) => Number(v instanceof Num ? v.text : v)
const has = (o, k) => o && Object.prototype.hasOwnProperty.call(o, k)
const gradeOf = (t) => {
  const g = t.grade
  return g === null || g === undefined || g === '' || g === false || (g instanceof Num && Number(g.text) === 0) ? '' : str(g)
}

/** Fraction(str(x)) as [numerator, denominator] BigInts (Python's fractions accept "0.5", "1e-05", "1/3"). */
function fraction(value, name) {
  const bad = () => new DrawError(`抽取比例 ${name} 必须是 0 到 1 之间的数`)
  if (typeof value === 'boolean' || value === null || typeof value === 'object' && !(value instanceof Num)) throw bad()
  const m = /^\s*([+-]?)(?=\d|\.\d)(\d*)(?:\/(\d+)|(?:\.(\d*))?(?:[eE]([+-]?\d+))?)\s*$/.exec(str(value))
  if (!m) throw bad()
  let num = BigInt(m[2] || '0')
  let den = 1n
  if (m[3] !== undefined) {
    den = BigInt(m[3])
    if (den === 0n) throw bad()
  } else {
    const frac = m[4] || ''
    num = BigInt((m[2] || '0') + frac)
    den = 10n ** BigInt(frac.length)
    const exp = Number(m[5] || 0)
    if (exp >= 0) num *= 10n ** BigInt(exp)
    else den *= 10n ** BigInt(-exp)
  }
  if (m[1] === '-') num = -num
  if (num < 0n || num > den) throw bad()
  return [num, den]
}

function quota(size, grade, params) {
  const counts = (params && params.counts) || {}
  const ratios = (params && params.ratios) || {}
  if (has(counts, grade) || (!has(ratios, grade) && has(counts, '*'))) {
    const n = has(counts, grade) ? counts[grade] : counts['*']
    if (!isInt(n) || intOf(n) < 0) throw new DrawError(`抽取数量 ${grade || '*'} 必须是非负整数`)
    return Math.min(intOf(n), size)
  }
  if (has(ratios, grade) || has(ratios, '*')) {
    const [p, q] = fraction(has(ratios, grade) ? ratios[grade] : ratios['*'], grade || '*')
    const n = (BigInt(size) * p + q - 1n) / q
    return Math.min(size, Number(n))
  }
  throw new DrawError(`风险等级 ${grade || '（未分级）'} 没有抽取比例或数量（可用 * 设默认值）`)
}

function checkAnnouncement(a) {
  for (const key of ['draw_id', 'targets', 'inspectors', 'params', 'seed']) if (!has(a, key)) throw new DrawError(`公告缺少 ${key}`)
  const ids = a.targets.map((t) => str(t.id))
  if (new Set(ids).size !== ids.length) throw new DrawError('检查对象名录中有重复的对象')
  const officers = a.inspectors.map((o) => str(o.id))
  if (new Set(officers).size !== officers.length) throw new DrawError('检查人员名录中有重复的人员')
  const k = a.params.inspectors_per_target
  if (!isInt(k) || intOf(k) < 1) throw new DrawError('每个对象的检查人员数 inspectors_per_target 必须是正整数')
  const seed = a.seed || {}
  if (!SEED_METHODS.includes(seed.method)) throw new DrawError(`随机数来源必须是 ${SEED_METHODS.join('、')} 之一`)
  if (seed.method === 'commit_reveal' && !seed.commitment) throw new DrawError('先承诺后揭示的抽取须公布随机数承诺值')
  if (seed.method === 'beacon' && !seed.source) throw new DrawError('公开随机源抽取须事先写明随机源')
  for (const g of [...new Set(a.targets.map(gradeOf))].sort(byCodePoint)) {
    quota(a.targets.filter((t) => gradeOf(t) === g).length, g, a.params)
  }
}

const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0)

/** The draw's result from the announcement and the revealed seed (draw.py `compute_result`). */
export function computeResult(a, seed) {
  checkAnnouncement(a)
  if (!seed) throw new DrawError('随机数种子为空')
  const drawId = str(a.draw_id)
  const grades = new Map()
  for (const t of a.targets) {
    const g = gradeOf(t)
    if (!grades.has(g)) grades.set(g, [])
    grades.get(g).push(t)
  }
  const drawn = []
  for (const g of [...grades.keys()].sort(byCodePoint)) {
    const members = grades.get(g).map((t) => ({ id: str(t.id), s: score(seed, 'target', drawId, str(t.id)) }))
    members.sort((x, y) => cmp(x.s, y.s) || byCodePoint(x.id, y.id))
    members.slice(0, quota(members.length, g, a.params)).forEach((t, i) => drawn.push({ id: t.id, grade: g, rank: i + 1 }))
  }
  const conflicts = new Set((a.conflicts || []).map((c) => `${str(c.officer_id)}\u0000${str(c.target_id)}`))
  const k = intOf(a.params.inspectors_per_target)
  const load = new Map(a.inspectors.map((o) => [str(o.id), 0]))
  const assignments = []
  const shortages = []
  for (const t of drawn) {
    const eligible = [...load.keys()].filter((o) => !conflicts.has(`${o}\u0000${t.id}`))
    if (eligible.length < k) {
      shortages.push({ target_id: t.id, eligible: eligible.length, needed: k })
      assignments.push({ target_id: t.id, officers: [] })
      continue
    }
    const keyed = eligible.map((o) => ({ o, s: score(seed, 'inspector', drawId, t.id, o) }))
    keyed.sort((x, y) => load.get(x.o) - load.get(y.o) || cmp(x.s, y.s) || byCodePoint(x.o, y.o))
    const chosen = keyed.slice(0, k).map((x) => x.o)
    for (const o of chosen) load.set(o, load.get(o) + 1)
    assignments.push({ target_id: t.id, officers: chosen })
  }
  return { targets: drawn, assignments, shortages }
}

/** Microseconds since the epoch of an ISO 8601 time with a zone (null when absent or invalid). */
function micros(v) {
  if (typeof v !== 'string') return null
  const m = /^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,6}))?(Z|[+-]\d{2}:?\d{2}(?::?\d{2})?)$/.exec(v)
  if (!m) return null
  const zone = m[3] === 'Z' ? 'Z' : m[3].replace(/^([+-]\d{2}):?(\d{2}).*$/, '$1:$2')
  const ms = Date.parse(`${m[1].replace(' ', 'T')}${zone}`)
  if (Number.isNaN(ms)) return null
  return BigInt(ms) * 1000n + BigInt((m[2] || '').padEnd(6, '0') || '0')
}

/** Recompute a published draw record (draw.py `verify`): {ok, problems, notes, announcement_digest, result}. */
export function verifyRecord(record, expectedAnnouncementDigest = '') {
  const problems = []
  const notes = []
  const problem = (code, message) => problems.push({ code, message })
  if (!record || typeof record !== 'object' || Array.isArray(record)) {
    return { ok: false, problems: [{ code: 'not_a_record', message: '文件内容不是抽取记录（JSON 对象）' }], notes }
  }
  if (record.format !== RECORD_FORMAT || record.algorithm !== ALGORITHM) {
    problem('unknown_format', `记录格式或算法不是 ${RECORD_FORMAT} / ${ALGORITHM}，无法验证`)
    return { ok: false, problems, notes }
  }
  const a = record.announcement
  if (!a || typeof a !== 'object' || Array.isArray(a)) {
    problem('no_announcement', '记录缺少抽取公告')
    return { ok: false, problems, notes }
  }
  const computedDigest = digest(a)
  if (record.announcement_digest !== computedDigest) {
    problem('announcement_altered', '抽取公告内容与公布的公告摘要不一致（名录、参数或承诺值被改动）')
  }
  if (expectedAnnouncementDigest && expectedAnnouncementDigest.trim().toLowerCase() !== computedDigest) {
    problem('announcement_mismatch', '抽取公告摘要与事先公布的摘要不一致')
  }
  const seed = record.seed
  const spec = a.seed || {}
  if (typeof seed !== 'string' || !seed) problem('no_seed', '记录未揭示随机数种子')
  else if (spec.method === 'commit_reveal') {
    if (seedCommitment(seed) !== spec.commitment) problem('seed_mismatch', '揭示的随机数种子与事先公布的承诺值不符')
  } else if (spec.method === 'beacon') {
    notes.push({ code: 'check_beacon', message: `随机数来自公开随机源“${spec.source}”，记录值为“${seed}”，请对照该来源核实` })
  }
  const announced = micros(record.announced_at)
  const performed = micros(record.performed_at)
  if (announced === null || performed === null) problem('bad_times', '公告时间或抽取时间缺失或无效（须为带时区的 ISO 8601 时间）')
  else if (performed <= announced) problem('drawn_before_announced', '抽取时间不晚于公告时间：名录与参数没有在抽取前固定')
  let result = null
  if (typeof seed === 'string' && seed) {
    try {
      result = computeResult(a, seed)
    } catch (e) {
      problem('cannot_compute', `无法按算法重算抽取结果：${e.message}`)
    }
  }
  if (result !== null) {
    if (canonical(result) !== canonical(record.result)) problem('result_mismatch', '按公告、种子与算法重算的结果与公布的结果不一致')
    if (record.result_digest !== digest(record.result)) problem('result_digest_mismatch', '公布的结果与其摘要不一致')
  }
  const previous = record.previous_attempts || []
  const attempt = record.attempt
  if (!isInt(attempt) || intOf(attempt) !== previous.length + 1) problem('attempts_inconsistent', '抽取次序号与此前各次抽取的记录数不符')
  if (previous.length) {
    notes.push({ code: 'earlier_attempts', message: `本次为第 ${str(attempt)} 次抽取，此前有 ${previous.length} 次抽取记录（均须公开说明理由）` })
  }
  notes.push({ code: 'compare_digest', message: `请将公告摘要 ${computedDigest} 与抽取前公布的摘要比对` })
  return { ok: problems.length === 0, problems, notes, announcement_digest: computedDigest, result }
}
