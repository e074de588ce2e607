package config

import (
	"fmt"
	"strings"
)

// ScrapeAuth holds the keys of Prometheus' HTTP client settings that
// procfleet takes in the cluster document: basic_auth, authorization and
// tls_config. Credentials and TLS settings are host-local (as for
// upstreams): each of them only names a credential of the host's own
// credentials: map (agent.yaml), which holds the files. password,
// password_file, credentials_file, ca_file, cert_file, key_file,
// server_name, insecure_skip_verify and the like are refused here.
type ScrapeAuth struct {
	// BasicAuth sends the username and password_file of a host
	// credential. Default none.
	BasicAuth *BasicAuthRef `yaml:"basic_auth,omitempty"`
	// Authorization sends the bearer_token_file of a host credential in
	// an Authorization header. Default none.
	Authorization *AuthorizationRef `yaml:"authorization,omitempty"`
	// TLSConfig uses the tls settings of a host credential for https.
	// Default: system roots, verification on.
	TLSConfig *TLSRef `yaml:"tls_config,omitempty"`
}

// BasicAuthRef names the host credential basic_auth sends.
type BasicAuthRef struct {
	// Credential is a key of the host's credentials that sets username
	// and password_file. Required.
	Credential string `yaml:"credential"`
}

// AuthorizationRef names the host credential an Authorization header
// carries.
type AuthorizationRef struct {
	// Type is the header's scheme. Default Bearer; Basic is refused (use
	// basic_auth).
	Type string `yaml:"type,omitempty"`
	// Credential is a key of the host's credentials that sets
	// bearer_token_file. Required.
	Credential string `yaml:"credential"`
}

// TLSRef names the host credential whose tls settings https scrapes use.
type TLSRef struct {
	// Credential is a key of the host's credentials. Required.
	Credential string `yaml:"credential"`
}

// scrapeHostLocalHelp follows the key and line of a host-local key set in
// scrape_configs.
const scrapeHostLocalHelp = "not accepted in the cluster config: credentials and TLS settings are host-local " +
	"and never come from etcd. Define the credential in each scraping host's own agent.yaml under " +
	"credentials: {NAME: {username, password_file | bearer_token_file, tls: {ca_file, cert_file, key_file, " +
	"server_name, insecure_skip_verify}, hosts: [TARGET_HOST, ...]}}, with files under /etc/procfleet/, and name it " +
	"here with basic_auth: {credential: NAME}, authorization: {credential: NAME} or tls_config: {credential: NAME} " +
	"(see " + clusterRef + ")"

// validate checks the names and the combination; key is the path of the
// block that holds a.
func (a ScrapeAuth) validate(key string) error {
	if a.BasicAuth != nil && a.Authorization != nil {
		return fmt.Errorf("%s: basic_auth and authorization are both set; want at most one", key)
	}
	check := func(sub, name string) error {
		if err := ValidateCredentialName(name); err != nil {
			return fmt.Errorf("%s.%s.credential: %w (a key of credentials: in each host's agent.yaml)", key, sub, err)
		}
		return nil
	}
	if r := a.BasicAuth; r != nil {
		if err := check("basic_auth", r.Credential); err != nil {
			return err
		}
	}
	if r := a.Authorization; r != nil {
		if err := check("authorization", r.Credential); err != nil {
			return err
		}
	}
	if r := a.TLSConfig; r != nil {
		if err := check("tls_config", r.Credential); err != nil {
			return err
		}
	}
	if a.Authorization != nil && strings.EqualFold(a.Authorization.Type, "basic") {
		return fmt.Errorf("%s.authorization.type: Basic is not accepted; use basic_auth: {credential: NAME}", key)
	}
	return nil
}

// ScrapeCredentials is a job's (or an http_sd_config's) HTTP client
// settings resolved against a host's credentials.
type ScrapeCredentials struct {
	// Username and PasswordFile are basic_auth's, empty without it.
	Username, PasswordFile string
	// AuthType and TokenFile are authorization's (type Bearer by default),
	// empty without it.
	AuthType, TokenFile string
	// TLS is tls_config's credential's tls; the zero value (system roots)
	// without it.
	TLS ShipTLS
	// Hosts are, per credential named, the hosts it is pinned to
	// (Credential.Hosts); a target must be allowed by every one.
	Hosts [][]string
}

// Resolve resolves the credential names of a against the host's
// credentials, defined in source (for messages, such as "credentials: in
// /etc/procfleet/agent.yaml"). An error names the key and the credential:
// the host then does not scrape the job's targets (nor fetch from its
// http_sd endpoint), neither without credentials nor with others.
func (a ScrapeAuth) Resolve(creds map[string]Credential, source string) (ScrapeCredentials, error) {
	var out ScrapeCredentials
	get := func(key, name string) (Credential, error) {
		c, ok := creds[name]
		if !ok {
			return Credential{}, fmt.Errorf("%s: credential %q is not defined in this host's credentials (%s)", key, name, source)
		}
		if len(c.Hosts) > 0 {
			out.Hosts = append(out.Hosts, c.Hosts)
		}
		return c, nil
	}
	if r := a.BasicAuth; r != nil {
		c, err := get("basic_auth", r.Credential)
		if err != nil {
			return ScrapeCredentials{}, err
		}
		if c.Username == "" || c.PasswordFile == "" {
			return ScrapeCredentials{}, fmt.Errorf("basic_auth: credential %q sets no username and password_file (%s)", r.Credential, source)
		}
		out.Username, out.PasswordFile = c.Username, c.PasswordFile
	}
	if r := a.Authorization; r != nil {
		c, err := get("authorization", r.Credential)
		if err != nil {
			return ScrapeCredentials{}, err
		}
		if c.BearerTokenFile == "" {
			return ScrapeCredentials{}, fmt.Errorf("authorization: credential %q sets no bearer_token_file (%s)", r.Credential, source)
		}
		out.AuthType, out.TokenFile = r.Type, c.BearerTokenFile
		if out.AuthType == "" {
			out.AuthType = "Bearer"
		}
	}
	if r := a.TLSConfig; r != nil {
		c, err := get("tls_config", r.Credential)
		if err != nil {
			return ScrapeCredentials{}, err
		}
		out.TLS = c.TLS
	}
	return out, nil
}

// Allows reports whether the credentials may be sent to the target at
// host:port: every credential pinned to hosts lists its host or
// host:port.
func (s ScrapeCredentials) Allows(target string) bool {
	for _, hosts := range s.Hosts {
		if !(Credential{Hosts: hosts}).allows("http://" + target) {
			return false
		}
	}
	return true
}
