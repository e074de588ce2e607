package gossip

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/hashicorp/memberlist"
)

// MaxStateSize is the most bytes a member's encoded State may take, so that
// it fits one gossip packet (memberlist's UDP buffer is 1400 bytes, less
// headers and encryption). About 40 endpoints with 16-byte names fit.
const MaxStateSize = 1024

// ErrStateTooLarge is returned by SetLocal for a State whose encoding
// exceeds MaxStateSize.
var ErrStateTooLarge = errors.New("gossip: state too large")

// State is what one member tells the others about itself.
type State struct {
	// Node is the member's name. SetLocal sets it from Config.NodeName.
	Node string
	// Kind is KindAgent or KindRelay. SetLocal sets it from Config.Kind.
	Kind string
	// Endpoints maps an upstream's name to whether it is healthy as this
	// member sees it. An upstream that is absent is one the member has no
	// opinion on (it has not sent there recently).
	Endpoints map[string]bool
	// BytesPerSecond is what the member actually sent recently, all
	// upstreams together.
	BytesPerSecond int64
	// Scraped names the scrape targets of placement cluster jobs that the
	// member owns, once it has scraped each of them at least once: a
	// digest of their keys, "" when none. A member handing targets over
	// stops scraping them when the new owner's digest is the one it
	// computes for that owner (make before break).
	Scraped string
	// Leaving is set by a member that is stopping and hands its scrape
	// targets over first: the others leave it out of their ownership.
	Leaving bool
	// Updated is when the member formed this view, on its own clock, to
	// the millisecond. SetLocal sets it to now when it is zero. It is
	// shown, never compared with another member's clock: see Formed.
	Updated time.Time
	// Formed is when the view was formed on this member's clock, the one
	// Down is given: for this member's own state, Updated; for another's,
	// the time its state arrived here less the age its sender (or the
	// member that passed it on) gave it, each age measured on one clock.
	// So members' clocks need not agree, and a step of the wall clock on
	// either side does not age an opinion. States sets it; SetLocal
	// ignores it.
	Formed time.Time
}

// sameContent reports whether a and b say the same thing, whenever said.
func sameContent(a, b State) bool {
	return a.Node == b.Node && a.Kind == b.Kind && a.BytesPerSecond == b.BytesPerSecond && a.Scraped == b.Scraped && a.Leaving == b.Leaving &&
		maps.Equal(a.Endpoints, b.Endpoints)
}

// clone returns a copy of s that shares no map with it.
func (s State) clone() State {
	if s.Endpoints != nil {
		s.Endpoints = maps.Clone(s.Endpoints)
	}
	return s
}

// wireState is State on the wire: JSON with one-letter keys. Version orders
// the states of one member: the newest wins wherever they meet.
type wireState struct {
	Node      string          `json:"n"`
	Kind      string          `json:"k"`
	Endpoints map[string]bool `json:"e,omitempty"`
	BPS       int64           `json:"b,omitempty"`
	Scraped   string          `json:"s,omitempty"`
	Leaving   bool            `json:"l,omitempty"`
	Updated   int64           `json:"u"` // Unix milliseconds
	Version   uint64          `json:"v"`
	// Age is how many milliseconds before sending the view was formed, on
	// the sender's clock; absent (0) from members before it was added.
	Age int64 `json:"a,omitempty"`
}

// maxWireAge caps the age a state carries: far beyond MaxOpinionAge, so
// that any older view is as stale, and short enough that the age takes at
// most 7 digits on the wire.
const maxWireAge = time.Hour

// ageReserve is the room an age may take in an encoded state beyond one of
// age 0: `,"a":3600000`. SetLocal keeps it free below MaxStateSize so that
// the state can be sent at any age.
const ageReserve = len(`,"a":3600000`)

// wireAge turns d into the wire's milliseconds, within 0..maxWireAge.
func wireAge(d time.Duration) int64 {
	return min(max(d, 0), maxWireAge).Milliseconds()
}

// Message types, the first byte of every user message and of the
// push/pull state, so that other kinds can be added later.
const (
	msgState     byte = 1 // one wireState
	msgStateList byte = 2 // a JSON array of wireState
)

// encodeState returns the JSON of s at version v, formed age ago.
func encodeState(s State, v uint64, age time.Duration) ([]byte, error) {
	b, err := json.Marshal(wireState{
		Node: s.Node, Kind: s.Kind, Endpoints: s.Endpoints, BPS: s.BytesPerSecond, Scraped: s.Scraped, Leaving: s.Leaving,
		Updated: s.Updated.UnixMilli(), Version: v, Age: wireAge(age),
	})
	if err != nil {
		return nil, fmt.Errorf("cannot encode state: %w", err)
	}
	if len(b) > MaxStateSize {
		return nil, fmt.Errorf("%w: %d bytes encoded, at most %d (%d endpoints)", ErrStateTooLarge, len(b), MaxStateSize, len(s.Endpoints))
	}
	return b, nil
}

// decodeState parses and checks the JSON of one state, and returns its
// version and how long before it was sent it was formed.
func decodeState(b []byte) (State, uint64, time.Duration, error) {
	if len(b) > MaxStateSize {
		return State{}, 0, 0, fmt.Errorf("state of %d bytes, at most %d", len(b), MaxStateSize)
	}
	var w wireState
	if err := json.Unmarshal(b, &w); err != nil {
		return State{}, 0, 0, fmt.Errorf("cannot decode state: %w", err)
	}
	if w.Node == "" || len(w.Node) > maxNodeName {
		return State{}, 0, 0, fmt.Errorf("state with node name of %d bytes", len(w.Node))
	}
	if len(w.Scraped) > 64 {
		return State{}, 0, 0, fmt.Errorf("state of %s with a scraped digest of %d bytes", w.Node, len(w.Scraped))
	}
	if w.Kind != KindAgent && w.Kind != KindRelay {
		return State{}, 0, 0, fmt.Errorf("state of %s with kind %q", w.Node, w.Kind)
	}
	age := time.Duration(min(max(w.Age, 0), maxWireAge.Milliseconds())) * time.Millisecond
	return State{
		Node: w.Node, Kind: w.Kind, Endpoints: w.Endpoints, BytesPerSecond: w.BPS, Scraped: w.Scraped, Leaving: w.Leaving,
		Updated: time.UnixMilli(w.Updated),
	}, w.Version, age, nil
}

// stateBroadcast is one member's state queued for gossip. It is named by
// the member, so a newer state of the same member replaces it in the queue.
type stateBroadcast struct {
	node string
	msg  []byte // msgState and the JSON
}

func (b *stateBroadcast) Name() string                          { return "state/" + b.node }
func (b *stateBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b *stateBroadcast) Message() []byte                       { return b.msg }
func (b *stateBroadcast) Finished()                             {}
