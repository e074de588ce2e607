package gossip

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate is what memberlist calls, from its packet, stream and probe
// goroutines, sometimes while holding its own locks. Every method here
// must therefore return quickly and never block: none calls back into
// memberlist, none waits on a channel, and each holds g.mu only to update
// maps. Byte slices memberlist passes in may be reused after the call
// returns, so they are decoded, or copied, before then.
type delegate struct{ g *Gossip }

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*delegate)(nil)
)

// NodeMeta returns no metadata: states travel as messages, which are not
// limited to memberlist's 512 bytes of metadata nor resent with every
// liveness message.
func (d *delegate) NodeMeta(int) []byte { return nil }

// NotifyMsg takes one member's state broadcast; b is decoded, and copied
// for re-broadcast, before it returns.
func (d *delegate) NotifyMsg(b []byte) {
	if len(b) == 0 || b[0] != msgState {
		d.g.badMessages.Inc()
		return
	}
	s, version, age, err := decodeState(b[1:])
	if err != nil {
		d.g.badMessages.Inc()
		d.g.log.Debug("dropped a gossip message", "err", err)
		return
	}
	d.g.apply(s, version, age, b[1:], true)
}

// GetBroadcasts returns queued states that fit in limit bytes.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.g.queue.GetBroadcasts(overhead, limit)
}

// LocalState returns the states of every live member, for a push/pull:
// anti-entropy, so that a state whose broadcasts were lost still arrives,
// and a joining member learns every state at once. Departed members'
// states are left out so that they die out instead of circulating. Each
// carries its age now, on this member's clock.
func (d *delegate) LocalState(bool) []byte {
	g := d.g
	now := g.now()
	g.mu.Lock()
	p := pushPull{From: g.cfg.NodeName, States: make([]json.RawMessage, 0, len(g.live))}
	for name, e := range g.states {
		if _, live := g.live[name]; live || name == g.cfg.NodeName {
			msg, err := encodeState(e.state, e.version, now.Sub(e.formed))
			if err != nil {
				msg = e.msg // a state from a member that left no room for the age
			}
			p.States = append(p.States, msg)
		}
	}
	g.mu.Unlock()
	b, err := json.Marshal(p)
	if err != nil {
		g.log.Warn("cannot encode the gossip push/pull state", "err", err)
		return nil
	}
	return append([]byte{msgStateList}, b...)
}

// pushPull is the user state of a push/pull.
type pushPull struct {
	From   string            `json:"f"`
	States []json.RawMessage `json:"s"`
}

// MergeRemoteState takes the other side's LocalState. Of the states learnt
// this way, only the other side's own is re-broadcast when it is news:
// on a join, that spreads the newcomer's state from its seed at once,
// without the newcomer re-broadcasting the whole cluster's states that it
// has just learnt and everyone else already has.
func (d *delegate) MergeRemoteState(b []byte, _ bool) {
	if len(b) == 0 || b[0] != msgStateList {
		d.g.badMessages.Inc()
		return
	}
	var p pushPull
	if err := json.Unmarshal(b[1:], &p); err != nil {
		d.g.badMessages.Inc()
		d.g.log.Debug("dropped a gossip push/pull state", "err", err)
		return
	}
	for _, raw := range p.States {
		s, version, age, err := decodeState(raw)
		if err != nil {
			d.g.badMessages.Inc()
			continue
		}
		d.g.apply(s, version, age, raw, s.Node == p.From)
	}
}

// NotifyJoin records a member that became alive.
func (d *delegate) NotifyJoin(n *memberlist.Node) { d.g.memberUp(n.Name) }

// NotifyLeave records a member that left or was declared dead.
func (d *delegate) NotifyLeave(n *memberlist.Node) { d.g.memberDown(n.Name) }

// NotifyUpdate ignores metadata updates: there is no metadata.
func (d *delegate) NotifyUpdate(*memberlist.Node) {}

// apply stores s, formed age before it arrived, when it is newer than what
// is known of its member, and queues it for re-broadcast when asked, so
// that a state spreads as an epidemic and not only through the
// transmissions of its origin. This member's own state comes only from
// SetLocal. The re-broadcast carries the age as it came: the few seconds
// a broadcast waits in the queue are small beside MaxOpinionAge.
func (g *Gossip) apply(s State, version uint64, age time.Duration, raw []byte, rebroadcast bool) {
	if s.Node == g.cfg.NodeName {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return
	}
	prev := g.states[s.Node]
	if prev != nil && prev.version >= version {
		return
	}
	raw = bytes.Clone(raw)
	now := g.now()
	g.states[s.Node] = &entry{state: s, version: version, msg: raw, formed: now.Add(-age), touched: now}
	if rebroadcast {
		g.queue.QueueBroadcast(&stateBroadcast{node: s.Node, msg: append([]byte{msgState}, raw...)})
	}
	g.stateUpdates.Inc()
	if _, live := g.live[s.Node]; live && (prev == nil || !sameContent(prev.state, s)) {
		g.signal()
	}
}

// memberUp records that name is alive.
func (g *Gossip) memberUp(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return
	}
	if _, ok := g.live[name]; ok {
		return
	}
	g.live[name] = struct{}{}
	g.numLive.Store(int32(len(g.live)))
	g.signal()
}

// memberDown records that name left or died.
func (g *Gossip) memberDown(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return
	}
	if _, ok := g.live[name]; !ok {
		return
	}
	delete(g.live, name)
	g.numLive.Store(int32(len(g.live)))
	if e := g.states[name]; e != nil {
		e.touched = g.now()
	}
	g.signal()
}
