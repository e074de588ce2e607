package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/ring"
	"github.com/procfleet/procfleet/config"
)

// StateFileName is the name of the member's saved state in the directory
// the command gives it (the agent's spool directory, the relay's data
// directory).
const StateFileName = "cluster-state.json"

// savedState is the last settings a member handed out from etcd's state,
// kept on disk so that it can start on them when etcd cannot be reached.
// It holds the cluster document rather than the effective settings, so
// that host-local settings changed since (flags, the local file) still
// apply: the effective settings are computed again from it at start.
type savedState struct {
	Format    int       `json:"format"` // savedFormat
	Cluster   string    `json:"cluster"`
	Node      string    `json:"node"`
	Kind      keys.Kind `json:"kind"`
	Revision  int64     `json:"revision"`
	Config    string    `json:"config"`    // the cluster document, as read from etcd
	Upstreams []string  `json:"upstreams"` // the assignment: upstream names, ring order
	Budget    int64     `json:"budget"`    // bytes per second
	Saved     time.Time `json:"saved"`
}

const savedFormat = 1

// saveState writes st to path atomically: a temporary file in the same
// directory, written, fsynced and renamed over path, then the directory
// fsynced, so that a crash leaves the old file or the new one, never a
// part. The file is 0600: the cluster document is the operator's.
func saveState(path string, st savedState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode the cluster state: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot save the cluster state: %w", err)
	}
	f, err := os.CreateTemp(dir, ".cluster-state-*.tmp")
	if err != nil {
		return fmt.Errorf("cannot save the cluster state: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing left to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("cannot save the cluster state: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot save the cluster state to %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot save the cluster state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename itself; a failure here loses only this save
		d.Close()
	}
	return nil
}

// errNoSavedState: the member has no saved state to start on.
var errNoSavedState = errors.New("no saved state")

// loadState reads the state saved at path and checks that it is this
// member's: same cluster, node and kind.
func loadState(path string, cfg Config) (savedState, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return savedState{}, errNoSavedState
	}
	if err != nil {
		return savedState{}, fmt.Errorf("cannot read the saved cluster state: %w", err)
	}
	var st savedState
	if err := json.Unmarshal(data, &st); err != nil {
		return savedState{}, fmt.Errorf("cannot parse the saved cluster state %s: %w", path, err)
	}
	switch {
	case st.Format != savedFormat:
		return savedState{}, fmt.Errorf("saved cluster state %s has format %d; want %d", path, st.Format, savedFormat)
	case st.Cluster != cfg.Cluster || st.Node != cfg.Node || st.Kind != cfg.Kind:
		return savedState{}, fmt.Errorf("saved cluster state %s is of %s %s in cluster %q, not of %s %s in cluster %q",
			path, st.Kind, st.Node, st.Cluster, cfg.Kind, cfg.Node, cfg.Cluster)
	}
	return st, nil
}

// savedUpdate rebuilds the member's settings from a saved state: the
// effective settings from the saved document and today's local settings,
// the upstreams and budget as saved.
func (m *Member) savedUpdate(st savedState) (Update, config.Cluster, error) {
	c, err := config.ParseCluster([]byte(st.Config))
	if err != nil {
		return Update{}, c, fmt.Errorf("saved config revision %d: %w", st.Revision, err)
	}
	agentCfg, err := c.AgentConfig(m.cfg.Node, m.cfg.Labels, m.local)
	if err != nil {
		return Update{}, c, fmt.Errorf("saved config revision %d: %w", st.Revision, err)
	}
	a := ring.Assignment{Node: m.cfg.Node, Budget: st.Budget}
	names, urls := map[string]string{}, map[string]string{}
	for _, e := range c.Endpoints() {
		names[endpointLabel(e.URL)] = e.Name
		urls[e.Name] = e.URL
	}
	agentCfg.Ship.Upstreams = nil
	for _, n := range st.Upstreams { // in the saved order
		if u, ok := urls[n]; ok {
			a.Upstreams = append(a.Upstreams, n)
			agentCfg.Ship.Upstreams = append(agentCfg.Ship.Upstreams, u)
		}
	}
	if len(a.Upstreams) == 0 {
		return Update{}, c, fmt.Errorf("saved config revision %d: no upstream of the saved assignment %v is in the document", st.Revision, st.Upstreams)
	}
	agentCfg.Ship.Strategy = config.StrategyOrdered
	agentCfg.Limit.BytesPerSecond = config.ByteRate(a.Budget)
	m.mu.Lock()
	m.names = names
	m.mu.Unlock()
	return Update{Revision: st.Revision, Agent: agentCfg, Assignment: a}, c, nil
}
