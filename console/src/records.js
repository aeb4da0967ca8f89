// What the record pages (inspection plans and draws, handovers, complaints, disputes, normative documents,
// devices) share: the Chinese labels of their codes and fact types, and deadline states.

import { computed, onMounted } from 'vue'
import { session } from './api.js'
import { useList, useQueryFilters } from './composables.js'

export const FACT_LABELS = {
  'inspection_plan.registered': '登记检查计划', 'inspection_plan.filed': '检查计划备案', 'inspection_plan.published': '检查计划公布',
  'inspection_plan.approved': '检查计划批准', 'inspection_plan.cancelled': '检查计划取消',
  'inspection_pool.members_listed': '名录库列入对象', 'inspection_pool.members_removed': '名录库移出对象',
  'inspection_draw.announced': '抽取公告（固定名录、参数与随机数承诺）', 'inspection_draw.performed': '实施抽取（揭示种子）',
  'inspection_draw.published': '公开抽取结果',
  'complaint.received': '登记投诉举报', 'complaint.routed': '转办', 'complaint.acknowledged': '受理', 'complaint.answered': '答复',
  'complaint.feedback': '回访投诉人并办结',
  'dispute.raised': '提出管辖争议', 'dispute.answered': '争议方答复', 'dispute.agreed': '协商一致确定管辖',
  'dispute.referred': '报请共同上级机关指定管辖', 'dispute.decided': '指定管辖',
  'normative_document.issued': '制发', 'normative_document.filed': '报送备案', 'normative_document.reviewed': '备案审查',
  'device.registered': '登记设备', 'device.reviewed': '审核设备', 'device.published': '向社会公布', 'device.used': '使用设备取证',
}
export const COMPLAINT_STATUS = { received: '已登记', routed: '已转办', acknowledged: '已受理', answered: '已答复', closed: '已回访办结', unknown: '待确认' }
export const COMPLAINT_CHANNELS = { hotline_12345: '12345 热线', console: '平台登记', letter: '来信', online: '网上', visit: '来访' }
export const COMPLAINT_STEPS = { route: '转办', ack: '受理', answer: '答复' }
export const DISPUTE_STATUS = { raised: '已提出', negotiating: '协商中', referred: '已报请指定', agreed: '协商确定', decided: '已指定管辖', unknown: '待确认' }
export const NORMATIVE_STATUS = { issued: '已制发未备案', filed: '已报备案', reviewed: '已审查', unknown: '待确认' }
export const REVIEW_OUTCOMES = { approved: '通过', corrected: '责令纠正', revoked: '撤销' }
export const DEVICE_STATUS = { unregistered: '未登记', registered: '已登记待审核', approved: '审核通过待公布', rejected: '审核未通过', published: '已公布' }
export const HANDOVER_PARTIES = { department: '行政执法机关', police: '公安机关', procuratorate: '人民检察院', supervisor: '司法行政机关' }
export const HANDOVER_DOCS = {
  transfer_letter: '涉嫌犯罪案件移送书', investigation_report: '涉嫌犯罪案件情况的调查报告', exhibit_list: '涉案物品清单',
}
export const INSPECTION_KINDS = { routine: '日常检查', special: '专项检查', random: '双随机抽查', complaint: '投诉举报核查', joint: '联合检查' }
export const DRAW_STATUS = { announced: '已公告待抽取', performed: '已抽取待公开', published: '已公开' }
export const SEED_METHODS = { commit_reveal: '先承诺后揭示（随机数种子事先承诺）', beacon: '公开随机源' }

/** A deadline's state: met, met late, missed (still open after its due time) or running. */
export function deadlineState({ due, done, breached }, now = new Date()) {
  const d = due ? new Date(due.length === 10 ? `${due}T23:59:59+08:00` : due) : null
  const finished = done ? new Date(done.length === 10 ? `${done}T00:00:00+08:00` : done) : null
  if (finished) return breached || (d && finished > d) ? { label: '逾期完成', tag: 'warning' } : { label: '按期完成', tag: 'success' }
  if (breached || (d && now > d)) return { label: '已逾期', tag: 'danger' }
  return d ? { label: '办理中', tag: 'info' } : { label: '—', tag: 'info' }
}

export const pct = (v) => (v === null || v === undefined ? '—' : `${Math.round(v * 1000) / 10}%`)
export const enc = encodeURIComponent

/** A plan's state from its dates (registered → filed → published → approved, or cancelled). */
export function planStatus(p) {
  if (p.cancelled_on) return '已取消'
  if (p.approved_on) return '已批准'
  if (p.published_on) return '已公布'
  if (p.filed_on) return '已备案'
  return '已登记'
}

/** A complaint's steps with their deadlines: route, acknowledge, answer (late ones as the service kept them). */
export function complaintDeadlines(c) {
  const due = c.due || {}
  const late = new Set((c.late || []).map((l) => l.what))
  const done = { route: c.routed_on, ack: c.acknowledged_on, answer: c.answered_on }
  return Object.keys(COMPLAINT_STEPS).filter((k) => due[k] || done[k])
    .map((k) => ({ key: k, what: COMPLAINT_STEPS[k], due: due[k] || null, done: done[k] || null, breached: late.has(k) }))
}

/** A record list page: filters in the URL (`defaults`), one page of `apiPath`, loaded on mount; whether the
 *  user is a department user (who is forced to its own department, so sees no department filter). */
export function useRecordList(path, apiPath, defaults) {
  const filters = useQueryFilters(path, defaults)
  const list = useList(apiPath, () => ({ ...filters.f }), filters.page)
  const isDeptUser = computed(() => !!session.user && session.user.role === 'dept_user')
  onMounted(list.load)
  return { ...filters, ...list, isDeptUser }
}
