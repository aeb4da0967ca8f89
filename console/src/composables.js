// What the list and record pages share: filters kept in the URL's query, a page of a list with its true
// total, one record loaded on mount.
import { onMounted, reactive, ref } from 'vue'
import { useRoute, useRouter } from 'vue-router'
import { get } from './api.js'

export const PAGE_SIZE = 20

/** Filters read from and written back to the route's query (`defaults`: name -> '' or false). */
export function useQueryFilters(path, defaults) {
  const route = useRoute()
  const router = useRouter()
  const q = route.query
  const f = reactive(Object.fromEntries(Object.entries(defaults).map(([k, d]) => [k,
    typeof d === 'boolean' ? q[k] === 'true' : (typeof q[k] === 'string' ? q[k] : d)])))
  const page = Number(q.page || 1)
  const apply = () => router.replace({
    path, query: Object.fromEntries(Object.entries(f).filter(([, v]) => v).map(([k, v]) => [k, String(v)])),
  })
  const goPage = (p) => router.replace({ path, query: { ...route.query, page: p } })
  return { f, page, apply, goPage, query: q }
}

/** One page of `apiPath` (`{items, total}`) with the filters `params()` gives; loaded by `load()`. */
export function useList(apiPath, params, page) {
  const rows = ref([])
  const total = ref(0)
  const loading = ref(true)
  const error = ref(null)
  async function load() {
    loading.value = true
    try {
      const doc = await get(apiPath, { ...params(), limit: PAGE_SIZE, offset: (page - 1) * PAGE_SIZE })
      rows.value = doc.items
      total.value = doc.total
      return doc
    } catch (e) {
      error.value = e
      return null
    } finally {
      loading.value = false
    }
  }
  return { rows, total, loading, error, load }
}

/** One record, fetched on mount by `fetch()`; a 404/403 lands in `error` (shown by LoadError). */
export function useRecord(fetch) {
  const data = ref(null)
  const loading = ref(true)
  const error = ref(null)
  onMounted(async () => {
    try {
      data.value = await fetch()
    } catch (e) {
      error.value = e
    } finally {
      loading.value = false
    }
  })
  return { data, loading, error }
}
