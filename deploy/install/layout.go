package install

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/deploy/systemd"
)

// Where install puts things, on the installed system. With Root every
// path is under Root.
const (
	installBin     = "/usr/local/bin/procfleet"
	installEtc     = "/etc/procfleet"
	installUnits   = "/etc/systemd/system"
	installWantsBy = "multi-user.target"
	installUser    = "procfleet"
	// DataDir is the data directory that the services share: the agent's
	// spool and the relay's write-ahead log are under it.
	DataDir = "/var/lib/procfleet"
)

// otherKind is the kind that shares the binary with kind.
func otherKind(kind Kind) Kind {
	if kind == Agent {
		return Relay
	}
	return Agent
}

// ServiceName returns the name of kind's systemd service, without
// ".service".
func ServiceName(kind Kind) string { return serviceName(kind) }

func serviceName(kind Kind) string { return "procfleet-" + string(kind) }
func unitPath(kind Kind) string    { return installUnits + "/" + serviceName(kind) + ".service" }
func configPath(kind Kind) string  { return installEtc + "/" + string(kind) + ".yaml" }
func envPath(kind Kind) string     { return installEtc + "/" + string(kind) + ".env" }

// wantsLink is the link "systemctl enable" makes for kind.
func wantsLink(kind Kind) string {
	return installUnits + "/" + installWantsBy + ".wants/" + serviceName(kind) + ".service"
}

// dataPath is kind's own directory under the shared data directory: the
// agent's spool or the relay's write-ahead log.
func dataPath(kind Kind) string {
	if kind == Agent {
		return DataDir + "/spool"
	}
	return DataDir + "/relay"
}

// unitText returns kind's unit, the file of deploy/systemd as it is.
func unitText(kind Kind) string {
	if kind == Agent {
		return systemd.Agent()
	}
	return systemd.Relay()
}

// installSpec is what install sets up for one kind, checked.
type installSpec struct {
	kind      Kind
	etcd      []string // etcd client URLs; empty runs standalone
	cluster   string
	node      string // empty: the host name, when the service starts
	labels    string // k=v pairs sorted by key, comma-separated
	listen    string
	upstreams []string // standalone only
	etcdAuth  EtcdAuth
	gossipKey string // the gossip key file; empty: none written
}

// newSpec returns the installSpec of c, which is valid.
func newSpec(c Config) installSpec {
	s := installSpec{kind: c.Kind, listen: c.Listen, etcdAuth: c.EtcdAuth}
	if c.Etcd == "" {
		s.upstreams = c.Upstreams
		return s
	}
	s.etcd, _ = parseEtcdURLs(c.Etcd)
	s.cluster, s.node, s.gossipKey = c.Cluster, c.Node, c.GossipKeyFile
	labels, _ := config.ParseLabels(c.Labels)
	s.labels = joinLabels(labels)
	return s
}

// entry is one directory or file that install makes.
type entry struct {
	path    string      // on the installed system
	mode    fs.FileMode // fs.ModeDir set for a directory
	content []byte      // the file's content; nil for the binary
	src     string      // the binary to copy
	// system marks a directory of the system (/usr/local/bin): created when
	// missing, otherwise left as it is, and never removed.
	system bool
}

func (e entry) isDir() bool { return e.mode.IsDir() }

// layout returns what install makes for s, in order; exe is the binary
// to install.
func (s installSpec) layout(exe string) ([]entry, error) {
	cfg, err := s.configFile()
	if err != nil {
		return nil, err
	}
	return []entry{
		{path: "/usr/local/bin", mode: fs.ModeDir | 0o755, system: true},
		{path: installBin, mode: 0o755, src: exe},
		{path: installEtc, mode: fs.ModeDir | 0o755},
		{path: configPath(s.kind), mode: 0o644, content: cfg},
		{path: envPath(s.kind), mode: 0o644, content: s.envFile()},
		{path: installUnits, mode: fs.ModeDir | 0o755, system: true},
		{path: unitPath(s.kind), mode: 0o644, content: []byte(unitText(s.kind))},
		{path: DataDir, mode: fs.ModeDir | 0o750},
	}, nil
}

// envFile returns the environment file the unit reads. Values are in
// double quotes, with the four characters that systemd and sh treat
// specially there escaped, so that both read the same value.
func (s installSpec) envFile() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# procfleet %s: cluster membership and etcd access, read by %s.service.\n", s.kind, serviceName(s.kind))
	fmt.Fprintf(&b, "# Written by \"procfleet install %s\"; running it again rewrites this file.\n", s.kind)
	type envVar struct{ comment, name, value string }
	vars := []envVar{
		{"etcd client URLs, comma-separated; empty runs standalone, with the\n# upstreams of " + configPath(s.kind) + ".",
			"PROCFLEET_ETCD", strings.Join(s.etcd, ",")},
		{"Cluster name: its keys are under /procfleet/NAME/.", "PROCFLEET_CLUSTER", s.cluster},
		{"Node name in the cluster; empty is the host name, lower-cased.", "PROCFLEET_NODE", s.node},
		{"Labels registered with the node, k=v,k2=v2; config overrides select on them.", "PROCFLEET_LABELS", s.labels},
		{"etcd TLS (CA bundle, client certificate and key) and user/password auth:\n# files readable by the procfleet user, not under /home or /root.",
			"PROCFLEET_ETCD_CA", s.etcdAuth.CA},
		{"", "PROCFLEET_ETCD_CERT", s.etcdAuth.Cert},
		{"", "PROCFLEET_ETCD_KEY", s.etcdAuth.Key},
		{"", "PROCFLEET_ETCD_USER", s.etcdAuth.User},
		{"", "PROCFLEET_ETCD_PASSWORD_FILE", s.etcdAuth.PasswordFile},
	}
	if s.gossipKey != "" {
		// Only when given: this file overrides the Environment= of a
		// drop-in, which may set it instead.
		vars = append(vars, envVar{"Gossip encryption keys (--gossip-key-file): a file readable by the procfleet\n# user and not by every user, such as root:procfleet 0640.",
			"PROCFLEET_GOSSIP_KEY_FILE", s.gossipKey})
	}
	for _, v := range vars {
		if v.comment != "" {
			fmt.Fprintf(&b, "# %s\n", v.comment)
		}
		fmt.Fprintf(&b, "%s=%s\n", v.name, envQuote(v.value))
	}
	return []byte(b.String())
}

// envQuote quotes v for an environment file: systemd's EnvironmentFile=
// and sh both take a backslash before " \ ` and $ in double quotes as the
// character itself.
func envQuote(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range v {
		if strings.ContainsRune("\"\\`$", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// configFile returns the config file of s: the host-local keys only, so
// that everything else keeps its default or comes from the cluster. It is
// parsed back and validated, so that the service never starts on a file
// install wrote wrong.
func (s installSpec) configFile() ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# procfleet %s: this host's settings, read by %s.service.\n", s.kind, serviceName(s.kind))
	fmt.Fprintf(&b, "# Written by \"procfleet install %s\"; running it again rewrites this file.\n", s.kind)
	if len(s.etcd) > 0 {
		b.WriteString("# Host-local keys only: every other key comes from the cluster config.\n")
	}
	fmt.Fprintf(&b, "# Every key, its unit and default: deploy/%s.example.yaml.\n", s.kind)
	fmt.Fprintf(&b, "listen: %s\n", yamlString(s.listen))
	if s.kind == Agent {
		fmt.Fprintf(&b, "spool:\n  dir: %s\n", dataPath(s.kind))
	} else {
		fmt.Fprintf(&b, "wal:\n  dir: %s\n", dataPath(s.kind))
	}
	if len(s.upstreams) > 0 {
		b.WriteString("ship:\n  upstreams:\n")
		for _, u := range s.upstreams {
			fmt.Fprintf(&b, "    - %s\n", yamlString(u))
		}
	}
	data := []byte(b.String())
	if err := s.checkConfig(data); err != nil {
		return nil, usageError{fmt.Errorf("%s as install would write it: %w", configPath(s.kind), err)}
	}
	return data, nil
}

func (s installSpec) checkConfig(data []byte) error {
	if s.kind == Agent {
		_, err := config.ParseAgent(data)
		return err
	}
	r, err := config.ParseRelay(data)
	if err != nil {
		return err
	}
	return r.Validate()
}

// yamlString returns v as a YAML double-quoted scalar: every escape
// strconv.Quote writes is one YAML reads the same way.
func yamlString(v string) string { return strconv.Quote(v) }
