package main

import (
	"math"
	"slices"
	"time"
)

// report is the command's JSON output.
type report struct {
	Command   string `json:"command"`
	Machine   string `json:"machine"`
	Gossipers int    `json:"gossip_members"`
	Steady    string `json:"steady_window"`
	// LeaseTTLSeconds is the members' registration lease TTL (-lease-ttl).
	LeaseTTLSeconds float64      `json:"lease_ttl_s"`
	Sizes           []sizeReport `json:"sizes"`
	// StoppedAt is the first size that did not run through, and why.
	StoppedAt  int    `json:"stopped_at,omitempty"`
	StoppedWhy string `json:"stopped_why,omitempty"`
}

// sizeReport is one fleet size's figures.
type sizeReport struct {
	Members int `json:"members"`
	// Processes is how many processes ran the members (-procs).
	Processes     int     `json:"simulator_processes"`
	RingComputeMs float64 `json:"ring_compute_ms"`
	// RingComputations and RingShared count the ring computations the
	// simulator ran and those members took from another's (-share-ring).
	RingComputations int64         `json:"ring_computations,omitempty"`
	RingShared       int64         `json:"ring_shared,omitempty"`
	Start            startReport   `json:"start"`
	Steady           steadyReport  `json:"steady"`
	ConfigChange     latency       `json:"config_change_applied_ms"`
	RollingRestart   restartReport `json:"rolling_restart"`
	Faults           *faultReport  `json:"faults,omitempty"`
	// Error is why this size did not run through, if it did not.
	Error string `json:"error,omitempty"`
}

type startReport struct {
	Seconds             float64 `json:"seconds"`
	SimulatorCPUSeconds float64 `json:"simulator_cpu_seconds"`
}

// steadyReport is etcd's load with the fleet idle: keep-alives, status
// writes, watches.
type steadyReport struct {
	EtcdCores          float64            `json:"etcd_cores"`
	EtcdRSSMiB         []float64          `json:"etcd_rss_mib"`
	DBBytesPerNode     float64            `json:"etcd_db_bytes"`
	DBInUseBytesPerNod float64            `json:"etcd_db_in_use_bytes"`
	RequestsPerSecond  float64            `json:"requests_per_second"`
	ByMethodPerSecond  map[string]float64 `json:"requests_per_second_by_method"`
	PutsPerSecond      float64            `json:"puts_per_second"`
	WatchEventsPerSec  float64            `json:"watch_events_per_second"`
	Watchers           float64            `json:"watchers"`
	SimulatorCores     float64            `json:"simulator_cores"`
	SimulatorRSSMiB    float64            `json:"simulator_rss_mib"`
}

// restartReport is a rolling restart as the members that stayed saw it.
type restartReport struct {
	Restarted                int          `json:"restarted"`
	Seconds                  float64      `json:"seconds"`
	WindowSeconds            float64      `json:"window_seconds"`
	EventsPerMember          distribution `json:"member_events_per_member"`
	RecomputesPerMember      distribution `json:"recomputes_per_member"`
	RecomputeWallMsPerMember latency      `json:"recompute_wall_ms_per_member"`
	// MemberCoreFraction*: recomputes over the window times the ring's
	// cost, the share of a core a member on a host of its own spends.
	MemberCoreFractionP99 float64 `json:"member_core_fraction_p99"`
	MemberCoreFractionMax float64 `json:"member_core_fraction_max"`
	EtcdCores             float64 `json:"etcd_cores"`
	EtcdWatchEventsPerSec float64 `json:"etcd_watch_events_per_second"`
	EtcdRequestsPerSecond float64 `json:"etcd_requests_per_second"`
	SimulatorCores        float64 `json:"simulator_cores"`
}

// faultReport is what the fleet did through etcd's faults.
type faultReport struct {
	// Error is why the faults did not run through, if they did not.
	Error       string `json:"error,omitempty"`
	LeaderMoved struct {
		ConfigChange latency `json:"config_change_applied_ms"`
		Reregistered int     `json:"reregistered"`
	} `json:"leader_moved"`
	OneKilled struct {
		Node          string  `json:"node"`
		ConfigChange  latency `json:"config_change_applied_ms_while_down"`
		RejoinSeconds float64 `json:"rejoin_seconds"`
		Reregistered  int     `json:"reregistered"`
	} `json:"one_killed"`
	AllDown struct {
		OutageSeconds       float64 `json:"outage_seconds"`
		ChangedDuringOutage int     `json:"members_changed_upstreams_during_outage"`
		// UpdatedSameUpstreams counts members that handed out settings
		// with the same upstreams during the outage (a budget computed
		// from membership events received before it).
		UpdatedSameUpstreams int     `json:"members_updated_same_upstreams_during_outage"`
		EtcdHealthySeconds   float64 `json:"etcd_healthy_seconds"`
		Reregistered         int     `json:"reregistered"`
		NotReregistered      int     `json:"not_reregistered"`
		Spread               spread  `json:"reregistration_spread"`
		// The half of the fleet with the default ReregisterSpread, and
		// the half without (ReregisterSpread -1), in the same outage.
		SpreadHalf   spread  `json:"reregistration_spread_default_half"`
		NoSpreadHalf spread  `json:"reregistration_spread_no_wait_half"`
		ConfigChange latency `json:"config_change_applied_ms_after"`
	} `json:"all_down"`
}

// spread is when members registered again, from etcd's restart.
type spread struct {
	FirstSeconds float64 `json:"first_s"`
	P50Seconds   float64 `json:"p50_s"`
	P99Seconds   float64 `json:"p99_s"`
	LastSeconds  float64 `json:"last_s"`
	MaxPerSecond int     `json:"max_per_second"`
	PerSecond    []int   `json:"per_second"`
}

// latency is a distribution of durations in milliseconds.
type latency struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
	// Applied counts the members measured, for a config change: those
	// that took the revision within the time allowed; NotApplied says
	// which did not.
	Applied    int    `json:"applied,omitempty"`
	NotApplied string `json:"not_applied,omitempty"`
}

// distribution is a distribution of counts.
type distribution struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func latencyOf(ds []time.Duration) latency {
	if len(ds) == 0 {
		return latency{}
	}
	return latency{P50: ms(percentile(ds, 0.5)), P99: ms(percentile(ds, 0.99)), Max: ms(slices.Max(ds))}
}

func dist(xs []float64) distribution {
	if len(xs) == 0 {
		return distribution{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	at := func(q float64) float64 { return s[min(len(s)-1, int(math.Ceil(q*float64(len(s))))-1)] }
	return distribution{P50: at(0.5), P99: at(0.99), Max: s[len(s)-1], Mean: round(sum / float64(len(s)))}
}

// percentile returns the q quantile (nearest rank) of ds.
func percentile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := max(0, min(len(s)-1, int(math.Ceil(q*float64(len(s))))-1))
	return s[i]
}

func ms(d time.Duration) float64 { return round(float64(d) / float64(time.Millisecond)) }

// round keeps three significant decimals, enough for a report.
func round(x float64) float64 { return math.Round(x*1000) / 1000 }
