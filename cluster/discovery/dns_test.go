package discovery

import (
	"strings"
	"testing"
)

func TestDNSSD(t *testing.T) {
	s := startDNS(t)
	s.setSRV("_node._tcp.example.test", srvRec("node-1.example.test.", 9100), srvRec("node-2.example.test.", 9101))
	s.setAddrs("db.example.test", "192.0.2.1", "192.0.2.2", "2001:db8::1")
	s.setAddrs("v6.example.test", "2001:db8::2")
	j := runJob(t, `
- job_name: dns
  dns_sd_configs:
    - names: [_node._tcp.example.test.]
      refresh_interval: 50ms
    - names: [db.example.test.]
      type: A
      port: 9187
    - names: [db.example.test., v6.example.test.]
      type: aaaa
      port: 9187
  relabel_configs:
    - source_labels: [__meta_dns_srv_record_target, __meta_dns_srv_record_port]
      regex: '(.+);(.+)'
      replacement: '$1 $2'
      target_label: srv
    - source_labels: [__meta_dns_name]
      target_label: name
`, Deps{Resolver: s.resolver()})
	ts := waitSet(t, j, "every record", hasAddresses("192.0.2.1:9187", "192.0.2.2:9187", "[2001:db8::1]:9187", "[2001:db8::2]:9187", "node-1.example.test:9100", "node-2.example.test:9101"))
	var got []string
	for _, l := range ts.Labels {
		got = append(got, l.Get("__address__")+" "+l.Get("name")+" "+l.Get("srv"))
	}
	want := []string{
		"192.0.2.1:9187 db.example.test. ",
		"192.0.2.2:9187 db.example.test. ",
		"[2001:db8::1]:9187 db.example.test. ",
		"[2001:db8::2]:9187 v6.example.test. ",
		"node-1.example.test:9100 _node._tcp.example.test. node-1.example.test. 9100",
		"node-2.example.test:9101 _node._tcp.example.test. node-2.example.test. 9101",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("targets =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if st := j.Status(); srcAt(st, 2).Where != "AAAA db.example.test., v6.example.test. port 9187" {
		t.Fatalf("where = %q", srcAt(st, 2).Where)
	}

	// A changed record is seen at the next refresh.
	s.setSRV("_node._tcp.example.test", srvRec("node-3.example.test.", 9100))
	waitSet(t, j, "node-3", func(ts Targets) bool { return strings.Contains(show(ts.Labels), "node-3.example.test:9100") })

	// A name whose server fails keeps its last targets and says so.
	s.setFailing("_node._tcp.example.test", true)
	st := waitStatus(t, j, "the SRV failure", func(st Status) bool { return srcAt(st, 0).LastError != "" })
	if e := srcAt(st, 0).LastError; !strings.HasPrefix(e, "_node._tcp.example.test.: ") || srcAt(st, 0).Targets != 1 {
		t.Fatalf("source status = %+v", srcAt(st, 0))
	}
	// Its refreshes go on; the set still holds node-3 after more of them.
	n := srcAt(st, 0).Refreshes
	waitStatus(t, j, "more refreshes", func(st Status) bool { return srcAt(st, 0).Refreshes >= n+3 })
	if cur, _ := j.Current(); !strings.Contains(show(cur.Labels), "node-3.example.test:9100") {
		t.Fatalf("the failing name lost its targets:\n%s", show(cur.Labels))
	}

	// A name that no longer exists (NXDOMAIN) has no targets: a valid
	// answer, as in Prometheus.
	s.setFailing("_node._tcp.example.test", false)
	s.remove("_node._tcp.example.test")
	waitSet(t, j, "no SRV targets", func(ts Targets) bool { return !strings.Contains(show(ts.Labels), "node-") })
	if e := j.Status().Sources[0].LastError; e != "" {
		t.Fatalf("NXDOMAIN reported as %q", e)
	}
}
