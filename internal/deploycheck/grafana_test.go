package deploycheck

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metricsql"
)

// The dashboard JSON, as far as the checks read it.
type (
	dashboard struct {
		UID        string                    `json:"uid"`
		Title      string                    `json:"title"`
		Inputs     []input                   `json:"__inputs"`
		Panels     []panel                   `json:"panels"`
		Templating struct{ List []variable } `json:"templating"`
	}
	input struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	}
	panel struct {
		ID         int         `json:"id"`
		Type       string      `json:"type"`
		Title      string      `json:"title"`
		GridPos    gridPos     `json:"gridPos"`
		Datasource *datasource `json:"datasource"`
		Targets    []target    `json:"targets"`
		Panels     []panel     `json:"panels"` // of a collapsed row
	}
	gridPos    struct{ H, W, X, Y int }
	datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	target struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	}
	variable struct {
		Name       string          `json:"name"`
		Type       string          `json:"type"`
		Query      json.RawMessage `json:"query"`
		Definition string          `json:"definition"`
		Datasource *datasource     `json:"datasource"`
		Current    struct {
			Value any `json:"value"`
		} `json:"current"`
	}
)

// dsInput is the data source input: Grafana's import asks for a data
// source of type prometheus (VictoriaMetrics serves that API), and
// file provisioning resolves it as the dashboard variable of that name.
const dsInput = "DS_PROMETHEUS"

var (
	wantDS     = datasource{Type: "prometheus", UID: "${" + dsInput + "}"}
	metricName = regexp.MustCompile(`\b(?:procfleet|proc_pid)_[a-z0-9_]+`)
	varUse     = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
)

func readDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "grafana", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no deploy/grafana/*.json: %v", err)
	}
	out := map[string]dashboard{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = d
	}
	for _, want := range []string{"procfleet-fleet.json", "procfleet-processes.json"} {
		if _, ok := out[want]; !ok {
			t.Errorf("deploy/grafana/%s is missing", want)
		}
	}
	return out
}

func TestGrafanaDashboards(t *testing.T) {
	boards := readDashboards(t)
	names := gatherExposed(t)
	uids := map[string]string{}
	for file, d := range boards {
		t.Run(file, func(t *testing.T) {
			if d.UID == "" || d.Title == "" {
				t.Error("want a uid and a title")
			}
			if prev, dup := uids[d.UID]; dup {
				t.Errorf("uid %q also in %s", d.UID, prev)
			}
			uids[d.UID] = file
			checkDatasourceInput(t, d)
			vars := checkVariables(t, d, names)
			checkPanels(t, d, vars, names)
		})
	}
}

func checkDatasourceInput(t *testing.T, d dashboard) {
	t.Helper()
	if !slices.Contains(d.Inputs, input{Name: dsInput, Type: "datasource", PluginID: "prometheus"}) {
		t.Errorf("__inputs: want %s, a datasource input of plugin prometheus; have %+v", dsInput, d.Inputs)
	}
	for _, v := range d.Templating.List {
		if v.Name == dsInput && v.Type == "datasource" && string(v.Query) == `"prometheus"` {
			return
		}
	}
	t.Errorf("templating: want a datasource variable %s of type prometheus, for file provisioning", dsInput)
}

// checkVariables checks the template variables and returns a value for
// each, to substitute before parsing a query.
func checkVariables(t *testing.T, d dashboard, names exposed) map[string]string {
	t.Helper()
	vals := map[string]string{}
	for _, v := range d.Templating.List {
		var q string
		_ = json.Unmarshal(v.Query, &q)
		switch v.Type {
		case "datasource":
			vals[v.Name] = "ds"
		case "custom":
			val, _ := v.Current.Value.(string)
			if val == "" {
				val, _, _ = strings.Cut(q, ",")
			}
			vals[v.Name] = val
		case "query":
			if v.Datasource == nil || *v.Datasource != wantDS {
				t.Errorf("variable %s: datasource %+v, want %+v", v.Name, v.Datasource, wantDS)
			}
			checkNames(t, "variable "+v.Name, q+" "+v.Definition, names)
			vals[v.Name] = "x"
		default:
			t.Errorf("variable %s: type %q not checked here", v.Name, v.Type)
		}
	}
	for _, v := range d.Templating.List {
		var q string
		_ = json.Unmarshal(v.Query, &q)
		checkVarUses(t, "variable "+v.Name, q, vals)
	}
	return vals
}

// checkVarUses: every $var in s is a variable of the dashboard or one of
// Grafana's own ($__rate_interval, ...).
func checkVarUses(t *testing.T, where, s string, vals map[string]string) {
	t.Helper()
	for _, m := range varUse.FindAllStringSubmatch(s, -1) {
		if _, ok := vals[m[1]]; !ok && !strings.HasPrefix(m[1], "__") {
			t.Errorf("%s: $%s is not a variable of the dashboard", where, m[1])
		}
	}
}

// checkNames: every procfleet_* and proc_pid_* name in s is exposed.
func checkNames(t *testing.T, where, s string, names exposed) {
	t.Helper()
	for _, n := range metricName.FindAllString(s, -1) {
		if !names.has(n) {
			t.Errorf("%s: %s is not a metric that the agent, the relay or scan exposes", where, n)
		}
	}
}

func checkPanels(t *testing.T, d dashboard, vars map[string]string, names exposed) {
	t.Helper()
	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	ids := map[int]string{}
	var placed []panel
	for _, p := range all {
		where := "panel " + p.Title
		if prev, dup := ids[p.ID]; dup || p.ID <= 0 {
			t.Errorf("%s: id %d not unique and positive (also %q)", where, p.ID, prev)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("%s: gridPos %+v outside the 24-column grid", where, g)
		}
		for _, q := range placed {
			if q.GridPos.X < g.X+g.W && g.X < q.GridPos.X+q.GridPos.W && q.GridPos.Y < g.Y+g.H && g.Y < q.GridPos.Y+q.GridPos.H {
				t.Errorf("%s: overlaps panel %s", where, q.Title)
			}
		}
		placed = append(placed, p)
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %d (%q): want a title and at least one target", p.ID, p.Title)
		}
		if p.Datasource == nil || *p.Datasource != wantDS {
			t.Errorf("%s: datasource %+v, want %+v", where, p.Datasource, wantDS)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			tw := where + " target " + tg.RefID
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("%s: refId empty or repeated", tw)
			}
			refs[tg.RefID] = true
			if tg.Datasource == nil || *tg.Datasource != wantDS {
				t.Errorf("%s: datasource %+v, want %+v", tw, tg.Datasource, wantDS)
			}
			checkVarUses(t, tw, tg.Expr, vars)
			checkNames(t, tw, tg.Expr, names)
			checkQuery(t, tw, tg.Expr, vars, names)
		}
	}
}

// checkQuery parses expr as MetricsQL (what VictoriaMetrics runs), with
// the variables replaced, and checks that process-level selectors of
// names that per-thread series share exclude those (tid=""), or a sum
// over a process would count its threads again.
func checkQuery(t *testing.T, where, expr string, vars map[string]string, names exposed) {
	t.Helper()
	if strings.TrimSpace(expr) == "" {
		t.Errorf("%s: empty expr", where)
		return
	}
	q := expr
	for _, b := range []string{"$__rate_interval", "$__interval", "$__range"} {
		q = strings.ReplaceAll(q, b, "1m")
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) }) // $instance before $inst
	for _, k := range keys {
		q = strings.ReplaceAll(strings.ReplaceAll(q, "${"+k+"}", vars[k]), "$"+k, vars[k])
	}
	e, err := metricsql.Parse(q)
	if err != nil {
		t.Errorf("%s: %v\n%s", where, err, expr)
		return
	}
	if metricsql.IsLikelyInvalid(e) {
		t.Errorf("%s: likely invalid (an implicit conversion, such as rate() of an expression): %s", where, expr)
	}
	metricsql.VisitAll(e, func(x metricsql.Expr) {
		me, ok := x.(*metricsql.MetricExpr)
		if !ok {
			return
		}
		for _, filters := range me.LabelFilterss {
			if len(filters) == 0 || filters[0].Label != "__name__" || !names.threaded[filters[0].Value] {
				continue
			}
			if !slices.Contains(filters, metricsql.LabelFilter{Label: "tid", Value: ""}) {
				t.Errorf("%s: %s without tid=\"\" also takes the per-thread series: %s", where, filters[0].Value, expr)
			}
		}
	})
}
