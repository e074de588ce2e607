package config

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Credential is how this host authenticates to an upstream: basic auth or a
// bearer token read from files, and the TLS settings of https upstreams.
// Credentials are host-local. They are defined by name in the host's own
// file (agent.yaml, relay.yaml) under credentials; the cluster document only
// names them (upstreams[].credential, agents.ship.credential). Whoever can
// write the cluster config can therefore neither make a host read a file
// nor turn certificate verification off.
type Credential struct {
	// ShipAuth holds username, password_file and bearer_token_file, as in
	// ship.auth: at most one of basic auth and a bearer token.
	ShipAuth `yaml:",inline"`
	// TLS is as ship.tls, for the upstreams sent to with this credential.
	TLS ShipTLS `yaml:"tls"`
	// Hosts, when not empty, are the only upstream hosts this credential is
	// sent to, each host or host:port (a host alone allows any port): a
	// cluster config that names the credential for another upstream makes
	// that upstream unusable here. Empty: any upstream the cluster config
	// names it for. Default none.
	Hosts []string `yaml:"hosts"`
}

var credentialName = lazyRegexp(`^[a-z0-9._-]{1,63}$`)

// ValidateCredentialName checks the name of a credential, as a host's
// credentials define it and the cluster document refers to it.
func ValidateCredentialName(name string) error {
	if !credentialName().MatchString(name) {
		return fmt.Errorf("%q is not accepted; want 1 to 63 of a-z, 0-9, '-', '_' and '.', such as vm-writer", name)
	}
	return nil
}

// Validate checks c; key, such as "credentials.vm-writer", prefixes errors.
func (c Credential) Validate(key string) error {
	for i, h := range c.Hosts {
		if u, err := url.Parse("http://" + h); err != nil || u.Host != h || u.Hostname() == "" {
			return fmt.Errorf("%s.hosts[%d]: %q is not accepted; want a host or host:port such as vm.example.com:8427", key, i, h)
		}
	}
	return validateAuthTLS(key, key, c.ShipAuth, c.TLS)
}

// Equal reports whether c and o are the same credential.
func (c Credential) Equal(o Credential) bool {
	return c.ShipAuth == o.ShipAuth && c.TLS == o.TLS && slices.Equal(c.Hosts, o.Hosts)
}

// allows reports whether c may be sent to the upstream at rawURL.
func (c Credential) allows(rawURL string) bool {
	if len(c.Hosts) == 0 {
		return true
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	for _, h := range c.Hosts {
		if strings.EqualFold(h, u.Host) || strings.EqualFold(h, u.Hostname()) {
			return true
		}
	}
	return false
}

// validateCredentials checks a host's credentials, in name order so that
// the error is the same on every run.
func validateCredentials(key string, creds map[string]Credential) error {
	names := make([]string, 0, len(creds))
	for name := range creds {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := ValidateCredentialName(name); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if err := creds[name].Validate(key + "." + name); err != nil {
			return err
		}
	}
	return nil
}

// validateAuthTLS checks the pairs of keys that go together; authKey and
// tlsKey prefix the errors about auth and tls.
func validateAuthTLS(authKey, tlsKey string, a ShipAuth, t ShipTLS) error {
	if a.BearerTokenFile != "" && (a.Username != "" || a.PasswordFile != "") {
		return fmt.Errorf("%s: bearer_token_file and username/password_file are both set; want one of them", authKey)
	}
	if (a.Username == "") != (a.PasswordFile == "") {
		return fmt.Errorf("%s: username and password_file go together; set both or neither", authKey)
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return fmt.Errorf("%s: cert_file and key_file go together; set both or neither", tlsKey)
	}
	return nil
}

// UpstreamCredential is the credential one upstream of a cluster is sent
// with: named by the cluster document, defined by this host.
type UpstreamCredential struct {
	// Upstream is the upstream's name in the cluster document.
	Upstream string
	// Name is the credential's name.
	Name string
	// Credential is Name's definition in the host's credentials.
	Credential Credential
	// Problem, when not empty, says why this host cannot send to the
	// upstream (it does not define Name). Such an upstream is never sent
	// to, neither unauthenticated nor with other credentials.
	Problem string
}

// Equal reports whether u and o are the same.
func (u UpstreamCredential) Equal(o UpstreamCredential) bool {
	return u.Upstream == o.Upstream && u.Name == o.Name && u.Problem == o.Problem && u.Credential.Equal(o.Credential)
}

// upstreamCredentials resolves the credential names of the upstreams against
// the host's credentials, by upstream URL. An upstream's own credential
// wins over def (agents.ship.credential); one with neither is left out and
// sent to with the host's ship.auth and ship.tls.
func (c Cluster) upstreamCredentials(def string, local Agent) map[string]UpstreamCredential {
	var out map[string]UpstreamCredential
	for _, u := range c.Upstreams {
		name := cmp.Or(u.Credential, def)
		if name == "" {
			continue
		}
		uc := UpstreamCredential{Upstream: u.Name, Name: name}
		cred, ok := local.Credentials[name]
		switch {
		case !ok:
			uc.Problem = fmt.Sprintf("upstream %s: credential %q is not defined in this host's credentials (%s); not sending there",
				u.Name, name, local.credentialsSource())
		case !cred.allows(u.URL):
			uc.Problem = fmt.Sprintf("upstream %s: credential %q may not be sent to %s, which is not in its hosts %v (%s); not sending there",
				u.Name, name, hostOf(u.URL), cred.Hosts, local.credentialsSource())
		default:
			uc.Credential = cred
		}
		if out == nil {
			out = make(map[string]UpstreamCredential)
		}
		out[u.URL] = uc
	}
	return out
}

// hostOf returns the host[:port] of rawURL, for messages.
func hostOf(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		return u.Host
	}
	return rawURL
}

// credentialsSource names where this host's credentials are defined, for
// messages.
func (a Agent) credentialsSource() string {
	if a.ConfigFile == "" {
		return "none: no --config file"
	}
	return "credentials: in " + a.ConfigFile
}

// CredentialProblems returns the Problem of every upstream of s.Upstreams
// that has one, in upstream order.
func (s Ship) CredentialProblems() []string {
	var out []string
	for _, u := range s.Upstreams {
		if p := s.Credentials[u].Problem; p != "" {
			out = append(out, p)
		}
	}
	return out
}

// validateUpstreamCredentials checks the resolved credentials of s; key,
// such as "ship", prefixes errors.
func validateUpstreamCredentials(key string, creds map[string]UpstreamCredential) error {
	urls := make([]string, 0, len(creds))
	for u := range creds {
		urls = append(urls, u)
	}
	slices.Sort(urls)
	for _, u := range urls {
		uc := creds[u]
		if uc.Problem != "" {
			continue
		}
		if err := ValidateCredentialName(uc.Name); err != nil {
			return fmt.Errorf("%s.credentials[%s]: %w", key, u, err)
		}
		if err := uc.Credential.Validate("credentials." + uc.Name); err != nil {
			return err
		}
	}
	return nil
}
