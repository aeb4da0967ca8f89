// The navigation: an entry shows when the API serves its route to the current role (x-roles);
// the server enforces the roles whatever the menu shows.
import { can } from './api.js'

export const NAV = [
  { path: '/overview', title: '驾驶舱', needs: ['GET', '/api/v1/cases'] },
  { path: '/findings', title: '监督发现', needs: ['GET', '/api/v1/findings'] },
  { path: '/cases', title: '处罚案件', needs: ['GET', '/api/v1/cases'] },
  { path: '/officers', title: '执法人员', needs: ['GET', '/api/v1/officers'] },
  { path: '/items', title: '执法事项', needs: ['GET', '/api/v1/items'] },
  { path: '/supervision', title: '监督案件', needs: ['GET', '/api/v1/supervision-cases'] },
  { path: '/work/cases', title: '网上办案', needs: ['POST', '/api/v1/cases/{case_id}/commands/{command}'] },
  { path: '/review', title: '案卷评查', needs: ['POST', '/api/v1/review-plans'] },
  { path: '/evaluation', title: '评议考核', needs: ['GET', '/api/v1/evaluation/{year}'] },
  { path: '/reports', title: '月报季报', needs: ['GET', '/api/v1/reports/monthly'] },
  { path: '/inspections', title: '行政检查', needs: ['GET', '/api/v1/inspections'] },
  { path: '/inspection-plans', title: '检查计划', needs: ['GET', '/api/v1/inspection-plans'] },
  { path: '/handovers', title: '行刑衔接', needs: ['GET', '/api/v1/handovers'] },
  { path: '/complaints', title: '投诉举报', needs: ['GET', '/api/v1/complaints'] },
  { path: '/disputes', title: '管辖争议', needs: ['GET', '/api/v1/disputes'] },
  { path: '/normative-documents', title: '规范性文件', needs: ['GET', '/api/v1/normative-documents'] },
  { path: '/devices', title: '监控设备', needs: ['GET', '/api/v1/devices'] },
  { path: '/operations', title: '运维', needs: ['GET', '/api/v1/dead-letters'] },
  { path: '/audit', title: '审计日志', needs: ['GET', '/api/v1/audit'] },
  { path: '/public', title: '公示', needs: ['GET', '/api/v1/public/items'] },
]

export const visibleNav = () => NAV.filter((n) => can(...n.needs))
export const homePath = () => (visibleNav()[0] || { path: '/public' }).path
