package gossip

import (
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// Kinds of members.
const (
	KindAgent = "agent"
	KindRelay = "relay"
)

// maxNodeName bounds a node name so that a State always fits one gossip
// packet with room for its endpoints.
const maxNodeName = 128

// Config configures a Gossip. Start from DefaultConfig.
//
// The timing defaults start from memberlist.DefaultLANConfig and shorten it
// so that a member that dies without leaving is declared dead in about
// 2-3 s (worst case about 4 s) in clusters of up to 10 members, faster
// than the 10 s etcd lease TTL:
//
//   - ProbeInterval 1 s -> 500 ms and ProbeTimeout 500 ms -> 250 ms: a dead
//     member is probed, and its probe fails, sooner. A LAN answers in well
//     under 1 ms, and a member that misses one probe is only suspected: it
//     refutes the suspicion when it is alive.
//   - SuspicionMult 4 -> 3 and SuspicionMaxTimeoutMult 6 -> 2: a suspect is
//     declared dead after SuspicionMult*max(1, log10(N))*ProbeInterval =
//     1.5 s when another member confirms the suspicion (3 s when none
//     does) for N <= 10; 3 s (6 s) for N = 100; 4.5 s (9 s) for N = 1000.
//   - PushPullInterval 30 s -> 10 s: the full-state exchange that repairs
//     anything a lost broadcast missed runs more often (memberlist scales
//     it up above 32 members).
//   - TCPTimeout 10 s -> 5 s: Join with a seed that is gone costs less.
//   - DeadNodeReclaimTime 0 (never) -> at once: a member that was killed
//     and restarts on another address (BindPort 0, a new IP) is accepted
//     as soon as its old self is declared dead, not refused as a conflict
//     forever. Names are unique (etcd registers them), so a dead name
//     taken by a new address is the same member restarted. A restart that
//     is quicker than detection is refused until the old self is dead;
//     the member is accepted at its next Join or push/pull after that.
//
// GossipInterval (200 ms) and GossipNodes (3) keep memberlist's values.
type Config struct {
	// NodeName is this member's name, unique in the cluster: the node name
	// it registers in etcd. Required, at most 128 bytes.
	NodeName string
	// Kind is KindAgent or KindRelay. Default KindAgent.
	Kind string
	// Cluster is the cluster's name. Packets of members with another
	// Cluster are refused, so two clusters that share hosts never merge.
	// At most 255 bytes. Default "" (no check).
	Cluster string

	// BindAddr is the address to listen on for gossip, UDP and TCP.
	// Default "0.0.0.0" (every interface); tests use "127.0.0.1".
	BindAddr string
	// BindPort is the port to listen on, UDP and TCP; 0 picks a free one
	// (see Addr). Default 7946, memberlist's.
	BindPort int
	// AdvertiseAddr is the address other members reach this one at.
	// Default "": BindAddr, or, when BindAddr is 0.0.0.0, the first
	// private IPv4 address of the host.
	AdvertiseAddr string
	// AdvertisePort is the port other members reach this one at, used only
	// with AdvertiseAddr. Default 0: the bound port.
	AdvertisePort int

	// GossipInterval is how often broadcasts (state changes, deaths) are
	// sent to GossipNodes random members. Default 200 ms.
	GossipInterval time.Duration
	// ProbeInterval is how often this member probes another one for
	// liveness. Default 500 ms.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe waits for its answer before
	// indirect probes through other members start; less than
	// ProbeInterval. Default 250 ms.
	ProbeTimeout time.Duration
	// SuspicionMult scales the time a suspect member has to refute the
	// suspicion before it is declared dead (see above). At least 1.
	// Default 3.
	SuspicionMult int
	// SuspicionMaxTimeoutMult is how many times longer than the shortest
	// suspicion timeout it may last when no other member confirms the
	// suspicion. At least 1. Default 2.
	SuspicionMaxTimeoutMult int
	// PushPullInterval is how often this member exchanges its full state
	// with a random member over TCP. Default 10 s.
	PushPullInterval time.Duration
	// TCPTimeout bounds each TCP exchange (Join, push/pull). Default 5 s.
	TCPTimeout time.Duration
	// RefreshInterval is the longest time between two broadcasts of this
	// member's state when SetLocal is called with unchanged content; a
	// changed state is broadcast at once. Shorter than MaxOpinionAge so
	// that opinions stay fresh. Default 10 s.
	RefreshInterval time.Duration
	// LeaveTimeout bounds how long Run waits, when its context ends, for
	// the leave message to go out. Default 2 s. When it does not go out,
	// the others detect the member as dead instead.
	LeaveTimeout time.Duration

	// SecretKey, when set, encrypts and authenticates every gossip packet
	// with AES-GCM; 16, 24 or 32 bytes. Every member needs the same key:
	// packets that are not encrypted with a key this member holds are
	// dropped, so a host without the key can neither join nor inject
	// states. Default none (plain text). LoadKeyFile reads it.
	SecretKey []byte
	// ExtraKeys are further keys that decrypt but do not encrypt, for a
	// change of keys across the fleet; each 16, 24 or 32 bytes. Only with
	// SecretKey.
	ExtraKeys [][]byte
}

// DefaultConfig returns the defaults documented on Config, with no
// NodeName.
func DefaultConfig() Config {
	return Config{
		Kind:                    KindAgent,
		BindAddr:                "0.0.0.0",
		BindPort:                7946,
		GossipInterval:          200 * time.Millisecond,
		ProbeInterval:           500 * time.Millisecond,
		ProbeTimeout:            250 * time.Millisecond,
		SuspicionMult:           3,
		SuspicionMaxTimeoutMult: 2,
		PushPullInterval:        10 * time.Second,
		TCPTimeout:              5 * time.Second,
		RefreshInterval:         10 * time.Second,
		LeaveTimeout:            2 * time.Second,
	}
}

// Validate reports the first invalid field, naming it and what would be
// accepted.
func (c Config) Validate() error {
	switch {
	case c.NodeName == "":
		return errors.New("gossip: NodeName is empty; want this member's node name")
	case len(c.NodeName) > maxNodeName:
		return fmt.Errorf("gossip: NodeName is %d bytes; want at most %d", len(c.NodeName), maxNodeName)
	case c.Kind != KindAgent && c.Kind != KindRelay:
		return fmt.Errorf("gossip: Kind %q; want %q or %q", c.Kind, KindAgent, KindRelay)
	case len(c.Cluster) > memberlist.LabelMaxSize:
		return fmt.Errorf("gossip: Cluster is %d bytes; want at most %d", len(c.Cluster), memberlist.LabelMaxSize)
	case net.ParseIP(c.BindAddr) == nil:
		return fmt.Errorf("gossip: BindAddr %q; want an IP address such as 0.0.0.0", c.BindAddr)
	case c.BindPort < 0 || c.BindPort > 65535:
		return fmt.Errorf("gossip: BindPort %d; want 0 (any free port) to 65535", c.BindPort)
	case c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil:
		return fmt.Errorf("gossip: AdvertiseAddr %q; want an IP address or empty", c.AdvertiseAddr)
	case c.AdvertisePort < 0 || c.AdvertisePort > 65535:
		return fmt.Errorf("gossip: AdvertisePort %d; want 0 (the bound port) to 65535", c.AdvertisePort)
	case c.GossipInterval <= 0, c.ProbeInterval <= 0, c.PushPullInterval <= 0,
		c.TCPTimeout <= 0, c.RefreshInterval <= 0, c.LeaveTimeout <= 0:
		return fmt.Errorf("gossip: GossipInterval %v, ProbeInterval %v, PushPullInterval %v, TCPTimeout %v, RefreshInterval %v, LeaveTimeout %v; want each above 0",
			c.GossipInterval, c.ProbeInterval, c.PushPullInterval, c.TCPTimeout, c.RefreshInterval, c.LeaveTimeout)
	case c.ProbeTimeout <= 0 || c.ProbeTimeout >= c.ProbeInterval:
		return fmt.Errorf("gossip: ProbeTimeout %v; want above 0 and below ProbeInterval %v", c.ProbeTimeout, c.ProbeInterval)
	case c.SuspicionMult < 1 || c.SuspicionMaxTimeoutMult < 1:
		return fmt.Errorf("gossip: SuspicionMult %d, SuspicionMaxTimeoutMult %d; want each 1 or more", c.SuspicionMult, c.SuspicionMaxTimeoutMult)
	case c.RefreshInterval >= MaxOpinionAge:
		return fmt.Errorf("gossip: RefreshInterval %v; want below MaxOpinionAge %v so that opinions stay fresh", c.RefreshInterval, MaxOpinionAge)
	}
	switch len(c.SecretKey) {
	case 0, 16, 24, 32:
	default:
		return fmt.Errorf("gossip: SecretKey is %d bytes; want 16, 24 or 32, or none", len(c.SecretKey))
	}
	if len(c.ExtraKeys) > 0 && len(c.SecretKey) == 0 {
		return errors.New("gossip: ExtraKeys without SecretKey; want a primary key too")
	}
	for i, k := range c.ExtraKeys {
		if err := memberlist.ValidateKey(k); err != nil {
			return fmt.Errorf("gossip: ExtraKeys[%d] is %d bytes; want 16, 24 or 32", i, len(k))
		}
	}
	return nil
}

// memberlistConfig translates c into memberlist's configuration; d is both
// the delegate and the event delegate.
func (c Config) memberlistConfig(logger *slog.Logger, d *delegate) *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.NodeName
	mc.Label = c.Cluster
	mc.BindAddr = c.BindAddr
	mc.BindPort = c.BindPort
	mc.AdvertiseAddr = c.AdvertiseAddr
	mc.AdvertisePort = c.AdvertisePort
	if mc.AdvertisePort == 0 {
		mc.AdvertisePort = c.BindPort
	}
	mc.GossipInterval = c.GossipInterval
	mc.ProbeInterval = c.ProbeInterval
	mc.ProbeTimeout = c.ProbeTimeout
	mc.SuspicionMult = c.SuspicionMult
	mc.SuspicionMaxTimeoutMult = c.SuspicionMaxTimeoutMult
	mc.PushPullInterval = c.PushPullInterval
	mc.TCPTimeout = c.TCPTimeout
	mc.DeadNodeReclaimTime = time.Nanosecond
	// No LZW: memberlist makes a new compressor (16 KB of tables) for
	// every packet it sends and a decompressor for every one it receives,
	// 60% of a clustered agent's allocations for packets of a few hundred
	// bytes that compress little (docs/performance.md). Members that
	// compress still interoperate: a compressed packet is decoded whatever
	// the receiver's setting.
	mc.EnableCompression = false
	if len(c.SecretKey) > 0 {
		mc.SecretKey = append([]byte(nil), c.SecretKey...)
		// Validate checked the keys: NewKeyring cannot fail here.
		mc.Keyring, _ = memberlist.NewKeyring(cloneKeys(c.ExtraKeys), mc.SecretKey)
	}
	mc.Delegate = d
	mc.Events = d
	mc.LogOutput = nil
	mc.Logger = log.New(logWriter{logger}, "", 0)
	return mc
}

// cloneKeys returns a deep copy of keys.
func cloneKeys(keys [][]byte) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = append([]byte(nil), k...)
	}
	return out
}
