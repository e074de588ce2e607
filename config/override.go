package config

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// AgentConfig returns the effective configuration of the agent with this
// node name and these labels. It starts from local, the agent's own
// document, for its host-local keys; sets every key of the cluster's Agents
// block; then applies each matching override in document order, each
// changing only the keys it holds. The ring owns ship.upstreams, left empty
// for it to fill, and ship.strategy, set to ordered: an assignment lists
// upstreams closest first. limit stays local until the ring's budget sets
// it. ship.credentials gets, for every upstream of c that names a credential
// (its own, else agents.ship.credential), that credential as local's
// credentials define it, or the problem that they do not. An error names the
// override that made the settings invalid.
func (c Cluster) AgentConfig(node string, labels map[string]string, local Agent) (Agent, error) {
	eff := c.Agents
	if err := eff.Validate("agents"); err != nil {
		return Agent{}, err
	}
	for i, o := range c.Overrides {
		if !o.Match.Matches(node, labels) {
			continue
		}
		if err := o.apply(&eff, fmt.Sprintf("overrides[%d].agents", i)); err != nil {
			return Agent{}, err
		}
	}
	a := local
	eff.applyTo(&a)
	a.Ship.Upstreams, a.Ship.Strategy = nil, StrategyOrdered
	a.Ship.Credentials = c.upstreamCredentials(eff.Ship.Credential, local)
	a.Ship.Protocols = c.upstreamProtocols()
	if err := a.Validate(); err != nil {
		return Agent{}, fmt.Errorf("local agent settings: %w", err)
	}
	return a, nil
}

// upstreamProtocols returns the protocols of the upstreams that are not
// sent in the import protocol, by URL; nil when there are none.
func (c Cluster) upstreamProtocols() map[string]UpstreamProtocol {
	var out map[string]UpstreamProtocol
	for _, u := range c.Upstreams {
		if p := u.UpstreamProtocol(); p.RemoteWrite() > 0 {
			if out == nil {
				out = make(map[string]UpstreamProtocol)
			}
			out[u.URL] = p
		}
	}
	return out
}

// Validate checks o's match, and its agent settings applied over base; key,
// such as "overrides[0]", prefixes errors.
func (o Override) Validate(key string, base ClusterAgents) error {
	if err := o.Match.Validate(key + ".match"); err != nil {
		return err
	}
	return o.apply(&base, key+".agents")
}

// apply overlays the keys of o.Agents onto ca and validates the result,
// leaving ca unchanged on error; key prefixes errors.
func (o Override) apply(ca *ClusterAgents, key string) error {
	n := &o.Agents
	if n.IsZero() {
		return fmt.Errorf("%s: missing; want the agent settings to change, such as {generators: {process: {threads: true}}}", key)
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 0 {
		return fmt.Errorf("%s: line %d: empty; want the agent settings to change, such as {generators: {process: {threads: true}}}", key, n.Line)
	}
	if err := checkKeys(n, reflect.TypeFor[ClusterAgents](), key); err != nil {
		return err
	}
	next := *ca
	if err := n.Decode(&next); err != nil {
		return fmt.Errorf("%s: %w", key, rewordDecodeError(err, clusterRef))
	}
	if err := next.Validate(key); err != nil {
		return err
	}
	*ca = next
	return nil
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// checkKeys reports the first key in the mapping n that the struct type t
// has no field for, with its line. Overrides are kept as nodes, which the
// strict decoder does not look into; this keeps them as strict as the rest.
func checkKeys(n *yaml.Node, t reflect.Type, key string) error {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%s: line %d: %q is not accepted; want a mapping of keys as in %s", key, n.Line, n.Value, clusterRef)
	}
	fields := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		fields[strings.Split(f.Tag.Get("yaml"), ",")[0]] = f.Type
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				merged = v.Content
			}
			for _, m := range merged {
				if err := checkKeys(m, t, key); err != nil {
					return err
				}
			}
			continue
		}
		ft, ok := fields[k.Value]
		if !ok {
			return fmt.Errorf("%s: line %d: unknown key %s (see %s for the keys accepted)", key, k.Line, k.Value, clusterRef)
		}
		if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(unmarshalerType) {
			if err := checkKeys(v, ft, key+"."+k.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

// Matches reports whether the agent with this node name and these labels is
// one m selects. An empty m matches nothing.
func (m OverrideMatch) Matches(node string, labels map[string]string) bool {
	if len(m.Nodes) == 0 && len(m.Labels) == 0 {
		return false
	}
	if len(m.Nodes) > 0 && !slices.Contains(m.Nodes, node) {
		return false
	}
	for k, v := range m.Labels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Validate checks m; key, such as "overrides[0].match", prefixes errors.
func (m OverrideMatch) Validate(key string) error {
	if len(m.Nodes) == 0 && len(m.Labels) == 0 {
		return fmt.Errorf("%s: empty; want nodes: [NAME, ...], labels: {KEY: VALUE, ...} or both", key)
	}
	for i, n := range m.Nodes {
		if err := ValidateNodeName(n); err != nil {
			return fmt.Errorf("%s.nodes[%d]: %w", key, i, err)
		}
	}
	keys := make([]string, 0, len(m.Labels))
	for k := range m.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := ValidateLabel(k, m.Labels[k]); err != nil {
			return fmt.Errorf("%s.labels: %w", key, err)
		}
	}
	return nil
}

var (
	nodeName = lazyRegexp(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)
	labelKey = lazyRegexp(`^[A-Za-z_][A-Za-z0-9_./-]{0,62}$`)
)

// ValidateNodeName checks a node name, as agents register under and
// overrides match: it is part of etcd keys.
func ValidateNodeName(name string) error {
	if !nodeName().MatchString(name) {
		return fmt.Errorf("node name %q is not accepted; want 1 to 253 of A-Z, a-z, 0-9, '-', '_' and '.', starting with a letter or digit", name)
	}
	return nil
}

// ValidateLabel checks one label, as agents register with and overrides
// match.
func ValidateLabel(key, value string) error {
	if !labelKey().MatchString(key) {
		return fmt.Errorf("key %q is not accepted; want 1 to 63 of A-Z, a-z, 0-9, '_', '.', '/' and '-', starting with a letter or '_'", key)
	}
	ok := value != "" && len(value) <= 253
	for _, r := range value {
		ok = ok && unicode.IsPrint(r) && !unicode.IsSpace(r)
	}
	if !ok {
		return fmt.Errorf("%s: value %q is not accepted; want 1 to 253 printable characters without spaces", key, value)
	}
	return nil
}
