package discovery

import (
	"context"
	"sync"
	"time"

	"github.com/procfleet/procfleet/prom/labels"
)

// source is one SD config of a job. refresh is called by one goroutine at
// a time.
type source interface {
	// key identifies the source's config within its job: two sources of
	// the same key read the same targets, so a job whose config changed
	// keeps such a source running.
	key() string
	// where says what it reads: files, DNS names, a URL.
	where() string
	// interval is the time between two refreshes; 0: refresh once.
	interval() time.Duration
	// refresh returns the source's groups: the current ones, or for the
	// parts that failed (a file, a DNS name, the whole body) the last good
	// ones, with an error that says what failed and where. changed is
	// false when the groups are those of the last refresh.
	refresh(ctx context.Context) (groups []Group, changed bool, err error)
}

// SourceStatus is the state of one source of a job.
type SourceStatus struct {
	// Name is the source's config within its job: static_configs,
	// file_sd_configs[0], dns_sd_configs[1], http_sd_configs[0].
	Name string `json:"name"`
	// Where is what it reads: the files' host paths, the DNS names and
	// record type, the URL.
	Where string `json:"where"`
	// Targets are the targets of its current groups (the last good ones
	// where it failed), before relabeling.
	Targets int `json:"targets"`
	// Refreshes and Failures count its refreshes and the ones with an
	// error.
	Refreshes uint64 `json:"refreshes"`
	Failures  uint64 `json:"failures"`
	// LastRefresh is when its last refresh ended; zero before the first.
	LastRefresh time.Time `json:"last_refresh"`
	// LastSuccess is when a refresh last ended without an error.
	LastSuccess time.Time `json:"last_success"`
	// LastError is the last refresh's error, "" when it had none.
	LastError string `json:"last_error"`
}

// runSource is a source with its status, run by a job.
type runSource struct {
	src    source
	cancel context.CancelFunc // stops its goroutine; nil while not started
	done   chan struct{}      // closed when its goroutine returned

	// Owned by the job's loop.
	groups    []Group
	resolved  []labels.Labels // what the job's settings made of groups
	stats     ResolveStats
	reported  bool // its first refresh reached the job
	succeeded bool // a refresh of it had no error

	mu sync.Mutex // guards st
	st SourceStatus
}

// newRunSource returns src, called name in its job, not started.
func newRunSource(src source, name string) *runSource {
	return &runSource{src: src, done: make(chan struct{}), st: SourceStatus{Name: name, Where: src.where()}}
}

// setName renames the source (its index in the job changed).
func (rs *runSource) setName(name string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.st.Name = name
}

func (rs *runSource) status() SourceStatus {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.st
}

// sourceUpdate is a source's refresh, sent to its job's loop.
type sourceUpdate struct {
	rs      *runSource
	groups  []Group
	changed bool
	err     error
}

// record notes a refresh in the status; it reports whether the error
// differs from the last refresh's (to log a failure once, and recovery).
func (rs *runSource) record(u sourceUpdate, now time.Time) (errChanged bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.st.Refreshes++
	rs.st.LastRefresh = now
	rs.st.Targets = countTargets(u.groups)
	msg := ""
	if u.err != nil {
		rs.st.Failures++
		msg = u.err.Error()
	} else {
		rs.st.LastSuccess = now
	}
	errChanged = msg != rs.st.LastError
	rs.st.LastError = msg
	return errChanged
}

// run refreshes the source until ctx ends, sending each refresh to out.
func (rs *runSource) run(ctx context.Context, out chan<- sourceUpdate) {
	defer close(rs.done)
	if c, ok := rs.src.(interface{ close() }); ok {
		defer c.close()
	}
	for {
		groups, changed, err := rs.src.refresh(ctx)
		if ctx.Err() != nil {
			return
		}
		select {
		case out <- sourceUpdate{rs: rs, groups: groups, changed: changed, err: err}:
		case <-ctx.Done():
			return
		}
		d := rs.src.interval()
		if d <= 0 {
			return
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}
