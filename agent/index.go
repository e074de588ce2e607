package agent

import (
	"html/template"
	"net/http"
)

// ClusterInfo is what the agent's index page says of the cluster the
// agent is a member of.
type ClusterInfo struct {
	// Cluster is the cluster's name.
	Cluster string
	// Node is the agent's node name in the cluster.
	Node string
	// Page is the URL of the cluster's page (procfleet ui), when the
	// process that starts the agent knows it (procfleet dev); "" when it
	// does not, and the page says how to start one.
	Page string
}

// WithCluster says on the agent's index page (/) that it is a member of
// a cluster, and where the cluster's page is. Default: a standalone agent.
func WithCluster(c ClusterInfo) Option {
	return func(o *options) { o.cluster = &c }
}

// WithClusterPage gives the URL of the cluster's page (procfleet ui) for
// the index page of a clustered agent, whatever WithCluster says of it;
// "" changes nothing.
func WithClusterPage(url string) Option {
	return func(o *options) { o.clusterPage = url }
}

// indexPage is the agent's / : what it is and where to look, without a
// script or anything from elsewhere.
var indexPage = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>procfleet agent {{.Hostname}}</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto;line-height:1.5}code{background:#eee;padding:0 .2em}</style>
</head>
<body>
<h1>procfleet agent {{.Hostname}}</h1>
<ul>
<li><a href="/metrics">/metrics</a>: the agent's own metrics, Prometheus text</li>
<li><a href="/healthz">/healthz</a>: 200 while the process runs</li>
<li><a href="/readyz">/readyz</a>: 200 once every part started</li>
</ul>
{{with .Cluster}}<p>Node <b>{{.Node}}</b> of cluster <b>{{.Cluster}}</b>.
{{if .Page}}The cluster page: <a href="{{.Page}}">{{.Page}}</a>.
{{else}}The cluster page, with every member, upstream and config revision, is served by
<code>procfleet ui --etcd URLS --cluster {{.Cluster}}</code> (<code>procfleet dev</code> starts one
and prints its address); <code>procfleet status --cluster {{.Cluster}}</code> prints the same.
{{end}}</p>
{{else}}<p>A standalone agent: it pushes to the upstreams of its own configuration.</p>
{{end}}</body>
</html>
`))

// serveIndex answers / with the index page.
func (a *Agent) serveIndex(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = indexPage.Execute(w, struct {
		Hostname string
		Cluster  *ClusterInfo
	}{a.cfg.Hostname, a.cluster})
}
