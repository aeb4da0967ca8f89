import { createRouter, createWebHashHistory } from 'vue-router'
import { session } from './api.js'
import { homePath } from './nav.js'

const page = (loader) => loader
export const router = createRouter({
  history: createWebHashHistory(),
  routes: [
    { path: '/', redirect: () => (session.user ? homePath() : '/login') },
    { path: '/login', component: page(() => import('./views/Login.vue')), meta: { public: true, title: '登录' } },
    { path: '/public', component: page(() => import('./views/Public.vue')), meta: { public: true, title: '公示' } },
    { path: '/overview', component: page(() => import('./views/Overview.vue')), meta: { title: '驾驶舱' } },
    { path: '/findings', component: page(() => import('./views/Findings.vue')), meta: { title: '监督发现' } },
    { path: '/cases', component: page(() => import('./views/Cases.vue')), meta: { title: '处罚案件' } },
    { path: '/cases/:id', component: page(() => import('./views/CaseDetail.vue')), meta: { title: '案件详情' } },
    { path: '/officers', component: page(() => import('./views/Officers.vue')), meta: { title: '执法人员' } },
    { path: '/officers/:id', component: page(() => import('./views/OfficerDetail.vue')), meta: { title: '执法人员详情' } },
    { path: '/items', component: page(() => import('./views/Items.vue')), meta: { title: '执法事项' } },
    { path: '/items/:code', component: page(() => import('./views/ItemDetail.vue')), meta: { title: '执法事项详情' } },
    { path: '/supervision', component: page(() => import('./views/Supervision.vue')), meta: { title: '监督案件' } },
    { path: '/supervision/new', component: page(() => import('./views/SupervisionCaseNew.vue')), meta: { title: '立案监督' } },
    { path: '/supervision/:id', component: page(() => import('./views/SupervisionCase.vue')), meta: { title: '监督案件详情' } },
    { path: '/work/cases', component: page(() => import('./views/CaseForms.vue')), meta: { title: '网上办案' } },
    { path: '/work/cases/new', component: page(() => import('./views/CaseForm.vue')), meta: { title: '网上办案：立案' } },
    { path: '/work/cases/:id', component: page(() => import('./views/CaseForm.vue')), meta: { title: '网上办案：办理案件' } },
    { path: '/review', component: page(() => import('./views/Review.vue')), meta: { title: '案卷评查' } },
    { path: '/evaluation', component: page(() => import('./views/Evaluation.vue')), meta: { title: '评议考核' } },
    { path: '/reports', component: page(() => import('./views/Reports.vue')), meta: { title: '月报季报' } },
    { path: '/inspections', component: page(() => import('./views/Inspections.vue')), meta: { title: '行政检查' } },
    { path: '/inspection-plans', component: page(() => import('./views/InspectionPlans.vue')), meta: { title: '检查计划' } },
    { path: '/inspection-plans/:id', component: page(() => import('./views/InspectionPlanDetail.vue')), meta: { title: '检查计划详情' } },
    { path: '/draws/:id', component: page(() => import('./views/DrawDetail.vue')), meta: { title: '双随机抽取' } },
    { path: '/public/draws/:id', component: page(() => import('./views/PublicDraw.vue')), meta: { public: true, title: '随机抽取公示' } },
    { path: '/handovers', component: page(() => import('./views/Handovers.vue')), meta: { title: '行刑衔接' } },
    { path: '/handovers/:id', component: page(() => import('./views/HandoverDetail.vue')), meta: { title: '移送案件详情' } },
    { path: '/complaints', component: page(() => import('./views/Complaints.vue')), meta: { title: '投诉举报' } },
    { path: '/complaints/:id', component: page(() => import('./views/ComplaintDetail.vue')), meta: { title: '投诉举报详情' } },
    { path: '/disputes', component: page(() => import('./views/Disputes.vue')), meta: { title: '管辖争议' } },
    { path: '/disputes/:id', component: page(() => import('./views/DisputeDetail.vue')), meta: { title: '管辖争议详情' } },
    { path: '/normative-documents', component: page(() => import('./views/NormativeDocuments.vue')), meta: { title: '规范性文件' } },
    { path: '/devices', component: page(() => import('./views/Devices.vue')), meta: { title: '监控设备' } },
    { path: '/operations', component: page(() => import('./views/Operations.vue')), meta: { title: '运维' } },
    { path: '/audit', component: page(() => import('./views/Audit.vue')), meta: { title: '审计日志' } },
    { path: '/:rest(.*)*', component: page(() => import('./views/NotFound.vue')), meta: { public: true, title: '页面不存在' } },
  ],
})

router.beforeEach((to) => {
  if (!to.meta.public && !session.user) return { path: '/login', query: { next: to.fullPath } }
  return true
})
router.afterEach((to) => {
  document.title = `${to.meta.title || ''} · 执法监督平台`
})
