package install

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/procfleet/procfleet/cluster/gossip"
	"github.com/procfleet/procfleet/cluster/keys"
)

// parseEtcdURLs checks the --etcd value: http or https URLs with a host
// and a port, and nothing else.
func parseEtcdURLs(s string) ([]string, error) {
	var out []string
	for _, raw := range strings.Split(s, ",") {
		u := strings.TrimSpace(raw)
		p, err := url.Parse(u)
		ok := err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Hostname() != "" &&
			p.Opaque == "" && (p.Path == "" || p.Path == "/") && p.RawQuery == "" && p.Fragment == ""
		if ok {
			port, err := strconv.Atoi(p.Port())
			ok = err == nil && port > 0 && port < 65536
		}
		if !ok {
			return nil, fmt.Errorf("--etcd %q: %q is not accepted; want http:// or https:// URLs with a host and a port, comma-separated, such as http://10.0.0.1:2379,http://10.0.0.2:2379", s, u)
		}
		if p.User != nil {
			return nil, fmt.Errorf("--etcd %q: %q holds a user name or password, which the env file would show to every local user; give them with --etcd-user and --etcd-password-file", s, u)
		}
		out = append(out, u)
	}
	return out, nil
}

// checkListen checks --listen: the unit grants no CAP_NET_BIND_SERVICE.
func checkListen(kind Kind, s string) error {
	if s == "" && kind == Agent {
		return nil
	}
	_, p, err := net.SplitHostPort(s)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil || port < 1 || port > 65535 {
		return fmt.Errorf("--listen %q: want host:port such as %s", s, defaultListen(kind))
	}
	if port < 1024 {
		return fmt.Errorf("--listen %q: ports below 1024 need CAP_NET_BIND_SERVICE, which %s.service does not grant; want 1024 to 65535", s, serviceName(kind))
	}
	return nil
}

// joinLabels returns labels as k=v pairs sorted by key, comma-separated.
func joinLabels(labels map[string]string) string {
	ks := make([]string, 0, len(labels))
	for k := range labels {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	for i, k := range ks {
		ks[i] = k + "=" + labels[k]
	}
	return strings.Join(ks, ",")
}

// files pairs each file of a with its flag.
func (a EtcdAuth) files() []struct{ flag, path string } {
	return []struct{ flag, path string }{
		{"--etcd-ca", a.CA}, {"--etcd-cert", a.Cert}, {"--etcd-key", a.Key}, {"--etcd-password-file", a.PasswordFile},
	}
}

// validate checks a against what the unit lets the service read.
func (a EtcdAuth) validate() error {
	if (a.Cert == "") != (a.Key == "") {
		return errors.New("--etcd-cert, --etcd-key: go together; give both or neither")
	}
	if (a.User == "") != (a.PasswordFile == "") {
		return errors.New("--etcd-user, --etcd-password-file: go together; give both or neither")
	}
	if strings.ContainsFunc(a.User, unicode.IsControl) {
		return fmt.Errorf("--etcd-user %q: control characters are not accepted", a.User)
	}
	for _, f := range a.files() {
		if f.path == "" {
			continue
		}
		if err := checkServiceFile(f.flag, f.path); err != nil {
			return err
		}
	}
	return nil
}

// checkServiceFile checks the path of a file that the service reads, given
// with flag: absolute, and not where the unit hides it.
func checkServiceFile(flag, path string) error {
	if !filepath.IsAbs(path) || strings.ContainsFunc(path, unicode.IsControl) {
		return fmt.Errorf("%s %q: want an absolute path", flag, path)
	}
	for _, hidden := range []string{"/home", "/root", "/run/user"} {
		if path == hidden || strings.HasPrefix(path, hidden+"/") {
			return fmt.Errorf("%s %q: the unit's ProtectHome=yes hides %s from the service; put the file under /etc/procfleet", flag, path, hidden)
		}
	}
	return nil
}

// checkHost checks what of c depends on the host, for an install on this
// host (no Root): the host name that the service will take for its node
// name when Node is empty, that the etcd auth files exist, and that the
// gossip key file is one the service takes (it exists, holds keys, and
// is not open to every user). c is valid.
func (c Config) checkHost(env Env) error {
	if c.Root != "" || c.Etcd == "" {
		return nil // the target's host name and files are not known here
	}
	if c.Node == "" {
		h, err := env.Hostname()
		if err != nil {
			return fmt.Errorf("--node: not given, and the host name is unknown: %w", err)
		}
		if err := keys.ValidateNode(strings.ToLower(h)); err != nil {
			return fmt.Errorf("--node: not given, and the host name %q is no node name (%w); give --node", h, err)
		}
	}
	for _, f := range c.EtcdAuth.files() {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%s: %w", f.flag, err)
		}
	}
	if c.GossipKeyFile != "" {
		// The service's own check, so that it cannot refuse at start a
		// file that install took.
		if _, err := gossip.LoadKeyFile(c.GossipKeyFile); err != nil {
			return fmt.Errorf("--gossip-key-file: %w", err)
		}
	}
	return nil
}
