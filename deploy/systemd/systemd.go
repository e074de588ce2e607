// Package systemd holds procfleet's systemd units. The .service files in
// this directory are their only text: "procfleet install" writes them as
// they are, through the accessors here, and packagers copy them from here.
// What differs between hosts is in the environment and config files that
// install writes beside them. Every directive is explained where it is
// not self-evident: a unit is read by the people who run it, who need to
// know what they may relax.
//
// The accessors return constants and are safe for concurrent use.
package systemd

import _ "embed" // for go:embed

//go:embed procfleet-agent.service
var agent string

//go:embed procfleet-relay.service
var relay string

// Agent returns the text of procfleet-agent.service.
func Agent() string { return agent }

// Relay returns the text of procfleet-relay.service.
func Relay() string { return relay }
