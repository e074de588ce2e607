package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/procfleet/procfleet/agent/ship"
	"github.com/procfleet/procfleet/config"
)

// TestEndpointHealthOpinions: a healthy endpoint's view counts as an
// opinion only while the shipper sends there (up to the first healthy
// endpoint that no Retry-After holds back); an unhealthy one's while it
// failed or was probed within opinionAge; none counts without a send or
// probe within opinionAge.
func TestEndpointHealthOpinions(t *testing.T) {
	now := time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	ok := func(url string, last time.Duration) ship.EndpointState {
		return ship.EndpointState{URL: url, Healthy: true, LastSuccessAt: ago(last), Protocol: config.ProtocolImport}
	}
	down := func(url string, last time.Duration) ship.EndpointState {
		return ship.EndpointState{URL: url, LastErrorAt: ago(last), LastError: "connection refused", Protocol: config.ProtocolImport}
	}
	throttled := ok("vm1", time.Second)
	throttled.ThrottledUntil = now.Add(5 * time.Second)
	unusable := ship.EndpointState{URL: "vm1", Unusable: true, LastError: "credential", Protocol: config.ProtocolImport}
	for _, tc := range []struct {
		name   string
		states []ship.EndpointState
		want   string // URL:healthy/recent, in order
	}{
		{"primary and a fallback it sent to while the primary was starting",
			[]ship.EndpointState{ok("relay1", time.Second), ok("vm1", 10*time.Second)},
			"relay1:true/true vm1:true/false"},
		{"primary down, the fallback takes the batches",
			[]ship.EndpointState{down("vm1", time.Second), ok("vm2", time.Second), ok("relay1", 5*time.Second)},
			"vm1:false/true vm2:true/true relay1:true/false"},
		{"an unhealthy fallback is probed: its view counts",
			[]ship.EndpointState{ok("vm2", time.Second), down("vm1", 2*time.Second)},
			"vm2:true/true vm1:false/true"},
		{"a primary held back by a Retry-After, and the one that takes the batches",
			[]ship.EndpointState{throttled, ok("vm2", time.Second), ok("relay1", time.Second)},
			"vm1:true/true vm2:true/true relay1:true/false"},
		{"an unusable primary says nothing, the next takes the batches",
			[]ship.EndpointState{unusable, ok("vm2", time.Second), ok("relay1", time.Second)},
			"vm1:false/false vm2:true/true relay1:true/false"},
		{"nothing sent within opinionAge",
			[]ship.EndpointState{ok("vm1", opinionAge), down("vm2", opinionAge+time.Second), {URL: "relay1", Healthy: true}},
			"vm1:true/false vm2:false/false relay1:true/false"},
	} {
		got := ""
		for i, h := range endpointHealth(tc.states, now) {
			if i > 0 {
				got += " "
			}
			got += fmt.Sprintf("%s:%v/%v", h.URL, h.Healthy, h.Recent)
		}
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}
