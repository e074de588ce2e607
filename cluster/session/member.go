package session

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/procfleet/procfleet/cluster/keys"
)

// Member is the value of a member key: what the cluster knows about a
// running agent or relay. It is stored as JSON.
type Member struct {
	// Address is where the member's gossip listens (host:port).
	Address string `json:"address"`
	// HTTP is where the member's HTTP server listens (host:port: an
	// agent's /metrics, a relay's import API); empty when it has none, or
	// runs a version that did not register it. Readers that do not know
	// the field ignore it.
	HTTP string `json:"http,omitempty"`
	// Version is the procfleet version the member runs.
	Version string `json:"version"`
	// Labels are the member's labels, which config overrides can select.
	Labels map[string]string `json:"labels"`
	// StartTime is when the process started. It survives re-registration,
	// so a change of StartTime means a restarted process.
	StartTime time.Time `json:"start_time"`
	// Kind is agent or relay.
	Kind keys.Kind `json:"kind"`
}

// ParseMember decodes the value of a member key.
func ParseMember(data []byte) (Member, error) {
	var m Member
	if err := json.Unmarshal(data, &m); err != nil {
		return Member{}, fmt.Errorf("cannot parse member %q: %w", data, err)
	}
	return m, nil
}
