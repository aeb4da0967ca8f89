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
  { path: '/operations', title: '运维', needs: ['GET', '/api/v1/dead-letters'] },
  { path: '/audit', title: '审计日志', needs: ['GET', '/api/v1/audit'] },
  { path: '/public', title: '公示', needs: ['GET', '/api/v1/public/items'] },
]

export const visibleNav = () => NAV.filter((n) => can(...n.needs))
export const homePath = () => (visibleNav()[0] || { path: '/public' }).path
