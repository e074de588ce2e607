package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hashicorp/memberlist"
)

// useNetTransport makes Run use memberlist's NetTransport instead of the
// package's transport; tests set it to compare the two.
var useNetTransport bool

// Errors of Run and Join, to be checked with errors.Is.
var (
	// ErrNotRunning: Join was called before Run started the memberlist
	// (wait for Ready) or after Run returned.
	ErrNotRunning = errors.New("gossip: not running")
	// ErrRunTwice: Run was called a second time. A Gossip runs once; make
	// a new one to rejoin.
	ErrRunTwice = errors.New("gossip: Run called twice")
)

// Deps are what a Gossip reports through.
type Deps struct {
	// Logger receives this package's records with component=gossip and
	// memberlist's own lines at debug level. Default: discard.
	Logger *slog.Logger
	// Metrics receives procfleet_gossip_*; one Gossip per set. Default: a
	// private set.
	Metrics *metrics.Set
	// Now is the clock. Default time.Now; tests skew it.
	Now func() time.Time
}

// Gossip is one member's gossip. New makes it, Run runs it; the other
// methods are safe for concurrent use at any time.
type Gossip struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	queue *memberlist.TransmitLimitedQueue

	ml        atomic.Pointer[memberlist.Memberlist] // set while running
	started   atomic.Bool
	ready     chan struct{} // closed once ml is listening
	numLive   atomic.Int32  // len(live), for the queue and the gauge
	kick      chan struct{} // buffered 1: something changed
	skipLeave atomic.Bool   // tests: stop as a crash would, without leaving
	// signals counts calls of signal; forwarded is the count the loop had
	// seen when it last passed a signal on. Tests wait for forwarded to
	// reach signals: then every change so far has been signalled.
	signals   atomic.Uint64
	forwarded atomic.Uint64

	mu            sync.Mutex // guards the fields below; never held while calling memberlist
	live          map[string]struct{}
	states        map[string]*entry
	lastBroadcast time.Time // of the local state
	stopped       bool

	subMu   sync.Mutex
	subs    map[chan struct{}]struct{}
	changes <-chan struct{}

	set          *metrics.Set // Deps.Metrics
	stateUpdates *metrics.Counter
	joins        *metrics.Counter
	joinErrors   *metrics.Counter
	badMessages  *metrics.Counter
}

// entry is the newest state known of one member.
type entry struct {
	state   State
	version uint64
	msg     []byte    // the state's JSON as it came, for re-broadcast
	formed  time.Time // when the view was formed, on this member's clock
	touched time.Time // when stored, or when its member left
}

// New checks cfg and returns a Gossip that has not started: Run starts it.
func New(cfg Config, deps Deps) (*Gossip, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.SecretKey = slices.Clone(cfg.SecretKey)
	cfg.ExtraKeys = cloneKeys(cfg.ExtraKeys)
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Metrics == nil {
		deps.Metrics = metrics.NewSet()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	g := &Gossip{
		cfg:    cfg,
		log:    deps.Logger.With("component", "gossip"),
		now:    deps.Now,
		ready:  make(chan struct{}),
		kick:   make(chan struct{}, 1),
		live:   make(map[string]struct{}),
		states: make(map[string]*entry),
		subs:   make(map[chan struct{}]struct{}),
	}
	// The queue sends each state RetransmitMult*ceil(log10(N+1)) times,
	// to random members, and so does each member that takes it from a
	// broadcast. With memberlist's 4 transmissions for N < 10, a member of
	// a 5-member cluster missed a newcomer's state in about one test run in
	// ten, and waited for push/pull; counting at least 99 members doubles
	// the transmissions to 8, which made that vanish in the tests. Above
	// 99 members the count is the true one.
	g.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return max(99, int(g.numLive.Load())) },
		RetransmitMult: memberlist.DefaultLANConfig().RetransmitMult,
	}
	g.changes, _ = g.Subscribe()
	set := deps.Metrics
	g.set = set
	set.NewGauge("procfleet_gossip_members", func() float64 { return float64(g.numLive.Load()) })
	g.stateUpdates = set.NewCounter("procfleet_gossip_state_updates_total")
	g.joins = set.NewCounter("procfleet_gossip_joins_total")
	g.joinErrors = set.NewCounter("procfleet_gossip_join_errors_total")
	g.badMessages = set.NewCounter("procfleet_gossip_bad_messages_total")
	return g, nil
}

// Metrics returns the set the gossip counts its procfleet_gossip_*
// series in (Deps.Metrics, or its private one).
func (g *Gossip) Metrics() *metrics.Set { return g.set }

// Run starts the memberlist on the configured address, closes Ready, and
// runs until ctx is done. Then it leaves the cluster, waiting at most
// Config.LeaveTimeout for the leave message to go out, shuts the
// memberlist down and returns nil. Run starts no goroutine of its own;
// memberlist's stop on Shutdown, except that a probe in progress finishes
// first: memberlist does not wait for it, so one of its goroutines may
// outlive Run by up to a ProbeInterval (the tests' leak check allows for
// it). It returns an error when the memberlist cannot start (the port is
// taken, for example: a *BindError), and ErrRunTwice when called a second
// time.
func (g *Gossip) Run(ctx context.Context) error {
	if !g.started.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	g.mu.Lock()
	if g.states[g.cfg.NodeName] == nil {
		// Every member has a state from the start, without opinions.
		now := g.now()
		if err := g.setLocalLocked(State{Node: g.cfg.NodeName, Kind: g.cfg.Kind, Updated: now}, now); err != nil {
			g.mu.Unlock()
			return err
		}
	}
	g.mu.Unlock()

	mc := g.cfg.memberlistConfig(g.log, &delegate{g})
	var ml *memberlist.Memberlist
	tr, err := newTransport(g.cfg.BindAddr, g.cfg.BindPort, mc.Logger)
	if err == nil && useNetTransport {
		// memberlist's own, on the port just bound and let go (tests).
		port := tr.port()
		_ = tr.Shutdown()
		mc.BindPort = port
		if g.cfg.AdvertisePort == 0 {
			mc.AdvertisePort = port
		}
		ml, err = memberlist.Create(mc)
	} else if err == nil {
		mc.Transport = tr
		if mc.BindPort == 0 {
			mc.BindPort = tr.port()
		}
		if mc.AdvertisePort == 0 {
			mc.AdvertisePort = tr.port()
		}
		if ml, err = memberlist.Create(mc); err != nil {
			_ = tr.Shutdown()
		}
	}
	if err != nil {
		g.mu.Lock()
		g.stopped = true
		g.mu.Unlock()
		if _, ok := errors.AsType[*BindError](err); ok {
			return err
		}
		return fmt.Errorf("cannot start gossip on %s:%d: %w", g.cfg.BindAddr, g.cfg.BindPort, err)
	}
	g.ml.Store(ml)
	g.memberUp(g.cfg.NodeName)
	close(g.ready)
	g.log.Info("gossip started", "node", g.cfg.NodeName, "addr", g.Addr())

	g.loop(ctx)

	if g.skipLeave.Load() {
		g.log.Info("gossip stopping without leaving", "node", g.cfg.NodeName)
	} else if err := ml.Leave(g.cfg.LeaveTimeout); err != nil {
		g.log.Warn("cannot leave the gossip cleanly; the others will detect this member as dead", "err", err)
	}
	if err := ml.Shutdown(); err != nil {
		g.log.Warn("cannot shut the gossip down", "err", err)
	}
	g.ml.Store(nil)
	g.mu.Lock()
	g.stopped = true
	clear(g.live)
	g.numLive.Store(0)
	g.mu.Unlock()
	g.log.Info("gossip stopped", "node", g.cfg.NodeName)
	return nil
}

// loop signals subscribers and prunes departed members' states until ctx
// is done. It runs on Run's goroutine.
func (g *Gossip) loop(ctx context.Context) {
	prune := time.NewTicker(g.cfg.PushPullInterval)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.kick:
			seen := g.signals.Load()
			if seen == g.forwarded.Load() {
				continue // a kick left over from signals already passed on
			}
			g.subMu.Lock()
			for ch := range g.subs {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
			g.subMu.Unlock()
			g.forwarded.Store(seen)
		case <-prune.C:
			g.prune(g.now())
		}
	}
}

// prune forgets the states of members that left more than MaxOpinionAge
// ago. They are kept that long so that a member wrongly declared dead,
// which refutes and comes back, has its state again at once.
func (g *Gossip) prune(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, e := range g.states {
		if _, ok := g.live[name]; !ok && name != g.cfg.NodeName && now.Sub(e.touched) > MaxOpinionAge {
			delete(g.states, name)
		}
	}
}

// Ready returns a channel closed once Run has started the memberlist, so
// that Addr and Join work. It is never closed when Run fails to start.
func (g *Gossip) Ready() <-chan struct{} { return g.ready }

// Addr returns the address other members join this one at (host:port),
// with the port that was picked when Config.BindPort is 0; "" unless
// running.
func (g *Gossip) Addr() string {
	ml := g.ml.Load()
	if ml == nil {
		return ""
	}
	return ml.LocalNode().Address()
}

// Join contacts each of addrs (host:port; the port defaults to
// Config.BindPort) and exchanges full state with it, one after the other,
// each bounded by Config.TCPTimeout. It returns how many it reached, and an
// error only when it reached none. Joining members that are already known,
// or this member's own address, is harmless, so the caller can pass every
// address it reads from etcd, as often as it likes. It returns
// ErrNotRunning before Ready and after Run returns.
func (g *Gossip) Join(addrs []string) (int, error) {
	ml := g.ml.Load()
	if ml == nil {
		return 0, ErrNotRunning
	}
	self := ml.LocalNode().Address()
	seeds := slices.DeleteFunc(slices.Clone(addrs), func(a string) bool { return a == "" || a == self })
	if len(seeds) == 0 {
		return 0, nil
	}
	n, err := ml.Join(seeds)
	if err != nil {
		g.joinErrors.Inc()
		return n, fmt.Errorf("cannot join the gossip through %s: %w", strings.Join(seeds, ", "), err)
	}
	g.joins.Inc()
	// Broadcasts of this member's state so far went to the few members it
	// knew; now that it knows them all, send it afresh, so that it does
	// not wait for push/pull to reach them.
	now := g.now()
	g.mu.Lock()
	if e := g.states[g.cfg.NodeName]; e != nil {
		msg, err := encodeState(e.state, e.version, now.Sub(e.formed)) // with its age now
		if err != nil {
			msg = e.msg
		}
		g.queue.QueueBroadcast(&stateBroadcast{node: g.cfg.NodeName, msg: append([]byte{msgState}, msg...)})
		g.lastBroadcast = now
	}
	g.mu.Unlock()
	return n, nil
}

// Members returns the sorted names of the live members (alive or
// suspected, not yet declared dead), this one included; none unless
// running.
func (g *Gossip) Members() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	names := make([]string, 0, len(g.live))
	for name := range g.live {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// States returns the newest state of each live member whose state has
// arrived, keyed by node name, this member's included. A member that dies
// or leaves drops out as soon as memberlist declares it so. The maps are
// the caller's.
func (g *Gossip) States() map[string]State {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]State, len(g.live))
	for name := range g.live {
		if e := g.states[name]; e != nil {
			s := e.state.clone()
			s.Formed = e.formed
			out[name] = s
		}
	}
	return out
}

// SetLocal replaces this member's state and gossips it: at once when its
// content (endpoints, bytes per second) changed, otherwise at most once
// per Config.RefreshInterval, push/pull carrying it in between. Node and
// Kind are set from the Config, Updated to now when zero. The caller may
// reuse s.Endpoints after the call. It may be called before Run. It
// returns ErrStateTooLarge, and changes nothing, when the state's encoding
// exceeds MaxStateSize. It never blocks on the network.
func (g *Gossip) SetLocal(s State) error {
	now := g.now()
	s.Node, s.Kind = g.cfg.NodeName, g.cfg.Kind
	if s.Updated.IsZero() {
		s.Updated = now
	}
	s = s.clone()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.setLocalLocked(s, now)
}

// setLocalLocked stores s as this member's state and queues its broadcast;
// g.mu is held.
func (g *Gossip) setLocalLocked(s State, now time.Time) error {
	s.Updated = time.UnixMilli(s.Updated.UnixMilli()) // as the others will see it
	s.Formed = time.Time{}
	// now less the age keeps now's monotonic reading: Down's ages are
	// immune to steps of the wall clock.
	formed := now.Add(-now.Sub(s.Updated))
	prev := g.states[s.Node]
	// Versions grow across restarts as the clock does.
	version := uint64(now.UnixNano())
	if prev != nil && version <= prev.version {
		version = prev.version + 1
	}
	raw, err := encodeState(s, version, now.Sub(formed))
	if err != nil {
		return err
	}
	if len(raw)+ageReserve > MaxStateSize {
		// Sent later with its age, it would not fit.
		return fmt.Errorf("%w: %d bytes encoded with its age, at most %d (%d endpoints)", ErrStateTooLarge, len(raw)+ageReserve, MaxStateSize, len(s.Endpoints))
	}
	g.states[s.Node] = &entry{state: s, version: version, msg: raw, formed: formed, touched: now}
	changed := prev == nil || !sameContent(prev.state, s)
	if changed || now.Sub(g.lastBroadcast) >= g.cfg.RefreshInterval {
		g.queue.QueueBroadcast(&stateBroadcast{node: s.Node, msg: append([]byte{msgState}, raw...)})
		g.lastBroadcast = now
	}
	g.stateUpdates.Inc()
	if changed {
		g.signal()
	}
	return nil
}

// Changes returns a channel that receives a value, coalesced (buffered 1),
// after the set of live members or the content of a live member's state
// changed. A refresh that only moves Updated is not signalled, nor is the
// passage of time: a consumer of Down should also re-evaluate every
// RefreshInterval or so. The channel is shared: it suits one consumer;
// others use Subscribe. Signals are sent from Run's goroutine.
func (g *Gossip) Changes() <-chan struct{} { return g.changes }

// Subscribe returns a new channel signalled like Changes, and a function
// that stops the signals; the channel is not closed.
func (g *Gossip) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	g.subMu.Lock()
	g.subs[ch] = struct{}{}
	g.subMu.Unlock()
	return ch, sync.OnceFunc(func() {
		g.subMu.Lock()
		delete(g.subs, ch)
		g.subMu.Unlock()
	})
}

// signal kicks the loop without blocking.
func (g *Gossip) signal() {
	g.signals.Add(1)
	select {
	case g.kick <- struct{}{}:
	default:
	}
}
