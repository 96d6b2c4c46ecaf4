/**
 * deploy/prometheus-alerts.yaml and deploy/grafana-dashboard.json against the
 * metrics the app really serves: every metric an expression names exists in
 * the app's registry (a histogram's _bucket, _sum and _count included), every
 * Roster metric is on the dashboard, and both files have the structure
 * Prometheus and Grafana load.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { build } from './helper.ts'
import { rootDir } from '../src/infra/paths.ts'

/** PromQL's functions and aggregation operators, and Grafana's label_values (a name followed by `(`). */
const FUNCTIONS = new Set([
  'abs', 'absent', 'absent_over_time', 'avg', 'avg_over_time', 'bottomk', 'ceil', 'changes', 'clamp', 'clamp_max', 'clamp_min',
  'count', 'count_over_time', 'count_values', 'day_of_month', 'day_of_week', 'day_of_year', 'days_in_month', 'delta', 'deriv',
  'exp', 'floor', 'group', 'histogram_quantile', 'holt_winters', 'hour', 'idelta', 'increase', 'irate', 'label_join', 'label_replace',
  'last_over_time', 'limitk', 'ln', 'log10', 'log2', 'max', 'max_over_time', 'min', 'min_over_time', 'minute', 'month',
  'predict_linear', 'present_over_time', 'quantile', 'quantile_over_time', 'rate', 'resets', 'round', 'scalar', 'sgn', 'sort',
  'sort_desc', 'sqrt', 'stddev', 'stddev_over_time', 'stdvar', 'stdvar_over_time', 'sum', 'sum_over_time', 'time', 'timestamp',
  'topk', 'vector', 'year', 'label_values'
])
/** PromQL's keywords: operators, modifiers, and the words before label lists. */
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'inf', 'nan'])
/** Series Prometheus adds to every target itself. */
const PROMETHEUS_OWN = new Set(['up'])

/**
 * The metric names a PromQL expression selects. Crude but sufficient for
 * these files: drop string literals (label values, Grafana variables), label
 * matchers `{…}`, ranges `[…]` and label lists after by/without/on/ignoring/
 * group_left/group_right, and label_values' label argument; what is left that
 * looks like an identifier is a function (followed by `(`), a keyword, or a
 * metric name. An unknown function is reported as `unknown function name(`.
 */
export function metricNames (expr: string): string[] {
  const e = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\[[^\]]*\]/g, '[]')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '$1()')
    .replace(/\blabel_values\s*\(([^,()]*),[^()]*\)/g, 'label_values($1)')
  const names: string[] = []
  // An aggregation may carry its `by ()` between its name and its `(`.
  for (const m of e.matchAll(/(?<![\w:.$])([a-zA-Z_:][\w:]*)(\s*(?:(?:by|without)\s*\(\)\s*)?\()?/g)) {
    const [, name, call] = m as unknown as [string, string, string | undefined]
    if (call !== undefined) {
      if (!FUNCTIONS.has(name) && !KEYWORDS.has(name)) names.push(`unknown function ${name}(`)
    } else if (!KEYWORDS.has(name.toLowerCase())) {
      names.push(name)
    }
  }
  return names
}

t.test('the PromQL reading finds metric names, and only them', async (t) => {
  t.same(metricNames('sum by (le, route) (rate(http_request_duration_seconds_bucket{route!="a{b}", x=~"$i"}[5m])) > 0.5'), ['http_request_duration_seconds_bucket'])
  t.same(metricNames('a_total / on(instance) group_left(version) b{c="d"} offset 5m and bool c'), ['a_total', 'b', 'c'])
  t.same(metricNames('histogram_quantile(0.99, sum without (pod) (rate(x_bucket[5m:1m]))) > 1e3'), ['x_bucket'])
  t.same(metricNames('label_values(roster_info, instance)'), ['roster_info'])
  t.same(metricNames('up{job="roster"} == 0'), ['up'])
  t.same(metricNames('rate(x[$__rate_interval]) * 100'), ['x'])
  t.same(metricNames('sum(rat(x[5m]))'), ['unknown function rat(', 'x'], 'a misspelt function is caught')
})

/** Every expression in the two files, with where it is. */
function expressions (): Array<{ where: string, expr: string }> {
  const found: Array<{ where: string, expr: string }> = []
  const rules = parse(readFileSync(join(rootDir, 'deploy/prometheus-alerts.yaml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string, expr: string }> }> }
  for (const group of rules.groups) for (const rule of group.rules) found.push({ where: `alert ${rule.alert}`, expr: String(rule.expr) })
  const dashboard = JSON.parse(readFileSync(join(rootDir, 'deploy/grafana-dashboard.json'), 'utf8')) as { panels: Array<{ title: string, targets?: Array<{ expr: string }> }>, templating: { list: Array<{ name: string, query: string | { query: string } }> } }
  for (const panel of dashboard.panels) for (const target of panel.targets ?? []) found.push({ where: `panel "${panel.title}"`, expr: target.expr })
  for (const v of dashboard.templating.list) if (typeof v.query === 'object') found.push({ where: `variable ${v.name}`, expr: v.query.query })
  return found
}

t.test('every expression of the alerts and the dashboard names metrics the app serves; every Roster metric is on the dashboard', async (t) => {
  const app = await build(t, { env: { MAIL_DISPATCHER: 'false' } })
  const served = new Set<string>(PROMETHEUS_OWN)
  for (const metric of await app.metrics.registry.getMetricsAsJSON()) {
    served.add(metric.name)
    const type = String(metric.type)
    const suffixes = type === 'histogram' ? ['_bucket', '_sum', '_count'] : type === 'summary' ? ['_sum', '_count'] : []
    for (const suffix of suffixes) served.add(`${metric.name}${suffix}`)
  }
  const all = expressions()
  t.ok(all.length > 30, `${all.length} expressions`)
  const unknown = all.flatMap(({ where, expr }) => metricNames(expr).filter((n) => !served.has(n)).map((n) => `${where}: ${n}`))
  t.same(unknown, [], 'no expression names a metric the app does not serve')
  t.same(all.filter(({ expr }) => metricNames(expr).length === 0).map((e) => e.where), [], 'every expression selects some metric')

  const onDashboard = new Set(all.filter((e) => e.where.startsWith('panel')).flatMap((e) => metricNames(e.expr)).map((n) => n.replace(/_(bucket|sum|count)$/, '')))
  const roster = [...served].filter((n) => n.startsWith('roster_') && !/_(bucket|sum|count)$/.test(n))
  t.same(roster.filter((n) => !onDashboard.has(n)), [], `every roster_* metric has a panel (${roster.length})`)
})

t.test('the alert rules file is what Prometheus loads', async (t) => {
  const rules = parse(readFileSync(join(rootDir, 'deploy/prometheus-alerts.yaml'), 'utf8'), { strict: true, uniqueKeys: true }) as { groups: Array<{ name: string, rules: Array<Record<string, unknown>> }> }
  const names = rules.groups.flatMap((g) => g.rules.map((r) => r.alert))
  t.equal(new Set(names).size, names.length, 'alert names are unique')
  t.equal(new Set(rules.groups.map((g) => g.name)).size, rules.groups.length, 'group names are unique')
  for (const rule of rules.groups.flatMap((g) => g.rules)) {
    t.match(rule, { alert: /^Roster[A-Z]\w+$/, expr: String, labels: { severity: /^(critical|warning)$/ }, annotations: { summary: String, description: String } }, String(rule.alert))
    t.same(Object.keys(rule).filter((k) => !['alert', 'expr', 'for', 'labels', 'annotations'].includes(k)), [], `${String(rule.alert)}: only rule fields`)
    if (rule.for !== undefined) t.match(rule.for, /^\d+[smh]$/)
    t.equal(count(String(rule.expr), '('), count(String(rule.expr), ')'), `${String(rule.alert)}: balanced parentheses`)
  }
})

t.test('the dashboard is a Grafana dashboard on a Prometheus data source chosen at import', async (t) => {
  const dashboard = JSON.parse(readFileSync(join(rootDir, 'deploy/grafana-dashboard.json'), 'utf8')) as { uid: string, title: string, panels: Array<{ id: number, type: string, title: string, gridPos: { x: number, w: number }, datasource?: { uid: string }, targets?: Array<{ expr: string, refId: string }> }> }
  t.match(dashboard, { uid: 'roster', title: 'Roster' })
  const ids = dashboard.panels.map((p) => p.id)
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique')
  for (const panel of dashboard.panels) {
    t.ok(panel.gridPos.x + panel.gridPos.w <= 24, `${panel.title}: within the 24-column grid`)
    if (panel.type === 'row') continue
    t.equal(panel.datasource?.uid, '${datasource}', `${panel.title}: the chosen data source`) // eslint-disable-line no-template-curly-in-string
    t.ok((panel.targets ?? []).length > 0, `${panel.title}: has queries`)
    for (const target of panel.targets ?? []) t.equal(count(target.expr, '('), count(target.expr, ')'), `${panel.title} ${target.refId}: balanced parentheses`)
  }
})

function count (text: string, char: string): number {
  return text.split(char).length - 1
}
