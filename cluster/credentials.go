package cluster

import "strings"

// noteCredentials records the problems of the assigned upstreams that this
// host cannot send to because the credential the cluster config names for
// them is not defined in the host's own file (config.Ship.CredentialProblems).
// The settings still apply: the shipper skips those upstreams and fails
// over. The status reports the problems as its last error when there is no
// other, and a change is logged once.
func (m *Member) noteCredentials(problems []string) {
	msg := strings.Join(problems, "; ")
	m.mu.Lock()
	changed := m.credErr != msg
	m.credErr = msg
	m.mu.Unlock()
	if !changed {
		return
	}
	if msg != "" {
		m.log.Warn("assigned upstreams not usable from this host", "err", msg)
	} else {
		m.log.Info("every assigned upstream has its credential on this host")
	}
	m.writeStatus()
}
