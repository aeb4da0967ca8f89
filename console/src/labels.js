// Chinese labels of the codes the API answers with.
export const ROLES = {
  supervisor: '司法局监督人员', dept_user: '部门用户', auditor: '审计人员', operator: '运维人员', public: '公众',
}
export const SEVERITIES = { critical: '严重', serious: '较重', warning: '一般', info: '提示' }
export const SEVERITY_ORDER = ['critical', 'serious', 'warning', 'info']
export const SEVERITY_TAG = { critical: 'danger', serious: 'warning', warning: 'primary', info: 'info' }
export const SEVERITY_COLOR = { critical: '#c0392b', serious: '#e67e22', warning: '#2e86de', info: '#7f8c8d' }
export const INBOX_STATES = {
  new: '待处理', acknowledged: '已阅', assigned: '已交办', in_case: '已立监督案件', dismissed: '不予处理',
  merged: '已合并', resolved: '已消除',
}
// stages of a penalty case (services/penalty/domain: STAGE_LABELS), as the API answers them
export const STAGES = { filed: '已立案', investigating: '调查取证', notified: '已告知', hearing_requested: '已申请听证',
  hearing_held: '已听证', legal_review: '法制审核', collective_discussion: '集体讨论', decided: '已决定',
  served: '已送达', executed: '已执行', closed: '已结案', archived: '已归档' }
export const CREDENTIAL_STATUS = {
  valid: '有效', suspended: '暂扣', expired: '过期', revoked: '收回', cancelled: '注销', pending: '待生效',
}
export const SUBJECTS = { case: '案件', officer: '执法人员', item: '执法事项', credential: '执法证件', handover: '移送案件' }
const DEPT_SUFFIX = {
  scjg: '市场监督管理局', sthj: '生态环境局', cgj: '城市管理局', wjj: '卫生健康局', ga: '公安局', jcy: '人民检察院',
  sfj: '司法局', jtj: '交通运输局', yjj: '应急管理局', zjj: '住房和城乡建设局',
  wsjk: '卫生健康局', jtys: '交通运输局', glj: '公路事业发展中心',
}
/** "511322-scjg" -> "市场监督管理局（511322-scjg）" */
export function deptName(code, withCode = false) {
  if (!code) return '—'
  const name = DEPT_SUFFIX[String(code).split('-').pop()]
  if (!name) return code
  return withCode ? `${name}（${code}）` : name
}
export function fmtTime(v) {
  if (!v) return '—'
  const d = new Date(v)
  if (Number.isNaN(d.getTime())) return String(v)
  const p = (n) => String(n).padStart(2, '0')
  // China time (UTC+8), whatever the browser's zone
  const c = new Date(d.getTime() + 8 * 3600 * 1000)
  return `${c.getUTCFullYear()}-${p(c.getUTCMonth() + 1)}-${p(c.getUTCDate())} ${p(c.getUTCHours())}:${p(c.getUTCMinutes())}`
}
export function fmtDate(v) {
  return v ? fmtTime(v).slice(0, 10) : '—'
}
export function fmtMoney(v) {
  return v === null || v === undefined ? '—' : `${Number(v).toLocaleString('zh-CN')} 元`
}
/** The console route of a finding's subject, or null. */
export function subjectRoute(type, id) {
  if (!id) return null
  if (type === 'case') return `/cases/${encodeURIComponent(id)}`
  if (type === 'officer') return `/officers/${encodeURIComponent(id)}`
  if (type === 'item') return `/items/${encodeURIComponent(id)}`
  return null
}
/** The justice bureau (司法局, short name `sfj`, services/common/ownership.py) of a department's county:
 *  the department the supervisor's coordination commands speak for ("511322-scjg" -> "511322-sfj"). */
export function bureauOf(dept) {
  return `${String(dept).split('-')[0]}-sfj`
}
// statuses of a handover of a suspected crime (services/handover, GET /api/v1/handovers?status=)
export const HANDOVER_STATUS = {
  raised: '拟移送', not_approved: '未批准移送', approved: '已批准移送', transferred: '已移送', received: '公安已接收',
  police_refused: '公安不予立案', review_requested: '已申请复议', review_answered: '复议已答复',
  supervision_suggested: '已建议立案监督', supervised: '检察院已监督', police_opened: '公安已立案',
  criminal_case_opened: '已刑事立案', returned: '已退回', penalty_case_opened: '已行政立案', unknown: '待确认',
}
