package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// hostLocalHelp follows the key and line of a host-local key set in the
// cluster document.
const hostLocalHelp = "not accepted in the cluster config: credentials and TLS settings are host-local " +
	"and never come from etcd. Define the credential in each host's own file (agent.yaml, relay.yaml) under " +
	"credentials: {NAME: {username, password_file | bearer_token_file, tls: {ca_file, cert_file, key_file, " +
	"server_name, insecure_skip_verify}}}, with files under /etc/procfleet/, and name it here with " +
	"upstreams[].credential: NAME or agents.ship.credential: NAME (see " + clusterRef + ")"

// hostLocalShipKeys are the keys of agents.ship that only a host's own file
// may set: they name files to read or switch certificate checks off.
var hostLocalShipKeys = []string{"auth", "tls"}

// checkHostLocal refuses a cluster document that sets a host-local key
// (agents.ship.auth.*, agents.ship.tls.*, and the same in every
// overrides[].agents), naming the first such key with its line. Keys left
// empty (an empty string, false, null), as older documents hold them, set
// nothing and pass. A document that does not parse passes too: the decoder
// reports it.
func checkHostLocal(data []byte) error {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return nil
	}
	doc := root.Content[0]
	for _, agents := range valuesOf(doc, "agents") {
		if err := checkHostLocalAgents(agents, "agents"); err != nil {
			return err
		}
	}
	for _, ovs := range valuesOf(doc, "overrides") {
		ovs = deref(ovs)
		if ovs.Kind != yaml.SequenceNode {
			continue
		}
		for i, o := range ovs.Content {
			for _, agents := range valuesOf(o, "agents") {
				if err := checkHostLocalAgents(agents, fmt.Sprintf("overrides[%d].agents", i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkHostLocalAgents checks one agents block; key is its path.
func checkHostLocalAgents(agents *yaml.Node, key string) error {
	for _, ship := range valuesOf(agents, "ship") {
		for _, k := range hostLocalShipKeys {
			for _, v := range valuesOf(ship, k) {
				if path, line, ok := firstSet(v, key+".ship."+k); ok {
					return fmt.Errorf("%s: line %d: %s", path, line, hostLocalHelp)
				}
			}
		}
	}
	return nil
}

// deref follows aliases.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// valuesOf returns every value of key in the mapping n, merged mappings
// (<<: *anchor) included, so that no way of writing a key escapes the
// check. It returns nothing when n is not a mapping.
func valuesOf(n *yaml.Node, key string) []*yaml.Node {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return nil
	}
	var out []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged := []*yaml.Node{v}
			if v = deref(v); v.Kind == yaml.SequenceNode {
				merged = v.Content
			}
			for _, m := range merged {
				out = append(out, valuesOf(m, key)...)
			}
			continue
		}
		if k.Value == key {
			out = append(out, v)
		}
	}
	return out
}

// firstSet returns the path and line of the first value under n, path
// being n's own, that sets something: anything but an empty string, false,
// null and mappings or sequences of those.
func firstSet(n *yaml.Node, path string) (string, int, bool) {
	n = deref(n)
	switch n.Kind {
	case yaml.ScalarNode:
		var b bool
		switch {
		case n.ShortTag() == "!!null", n.ShortTag() == "!!str" && n.Value == "":
			return "", 0, false
		case n.ShortTag() == "!!bool" && n.Decode(&b) == nil && !b:
			return "", 0, false
		}
		return path, n.Line, true
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			sub := path + "." + k.Value
			if k.ShortTag() == "!!merge" {
				sub = path
			}
			if p, line, ok := firstSet(v, sub); ok {
				return p, line, true
			}
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			if p, line, ok := firstSet(v, fmt.Sprintf("%s[%d]", path, i)); ok {
				return p, line, true
			}
		}
	}
	return "", 0, false
}

// hostLocal stands for a host-local key of the cluster document that
// takes no value (see ClusterShip.Auth). checkHostLocal refuses a value
// before decoding, with the key's path; UnmarshalYAML refuses it again, so
// that no other way into the decoder accepts one.
type hostLocal struct{}

// UnmarshalYAML implements yaml.Unmarshaler.
func (*hostLocal) UnmarshalYAML(n *yaml.Node) error {
	if path, line, ok := firstSet(n, "ship"); ok {
		return fmt.Errorf("%s: line %d: %s", path, line, hostLocalHelp)
	}
	return nil
}
