package config

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// scrapeHostLocalKeys are Prometheus keys that carry credentials or TLS
// settings, by the type of the block they belong to: scrape_configs
// refuses them with scrapeHostLocalHelp rather than as unknown keys.
var scrapeHostLocalKeys = map[reflect.Type][]string{
	reflect.TypeFor[ScrapeConfig]():     {"bearer_token", "bearer_token_file", "oauth2", "credential"},
	reflect.TypeFor[HTTPSDConfig]():     {"bearer_token", "bearer_token_file", "oauth2", "credential"},
	reflect.TypeFor[BasicAuthRef]():     {"username", "username_file", "password", "password_file"},
	reflect.TypeFor[AuthorizationRef](): {"credentials", "credentials_file"},
	reflect.TypeFor[TLSRef](): {"ca", "ca_file", "cert", "cert_file", "key", "key_file",
		"server_name", "insecure_skip_verify", "min_version", "max_version"},
}

// checkScrapeKeys walks the YAML node n, to be decoded into a
// []ScrapeConfig, and reports the first key that the schema does not
// have, with its path (key is n's own) and line: host-local keys with
// scrapeHostLocalHelp, others as unknown. Anchors, aliases and merge keys
// are followed. Values of the wrong kind are left to the decoder.
func checkScrapeKeys(n *yaml.Node, key string) error {
	return walkKeys(n, reflect.TypeFor[[]ScrapeConfig](), key)
}

// walkKeys checks n against the type t; key is n's path.
func walkKeys(n *yaml.Node, t reflect.Type, key string) error {
	n = deref(n)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			if err := walkKeys(item, t.Elem(), fmt.Sprintf("%s[%d]", key, i)); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		return walkStruct(n, t, key)
	}
	return nil
}

// walkStruct checks the keys of the mapping n against the struct type t.
func walkStruct(n *yaml.Node, t reflect.Type, key string) error {
	fields := yamlFields(t, nil)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged := []*yaml.Node{deref(v)}
			if merged[0].Kind == yaml.SequenceNode {
				merged = merged[0].Content
			}
			for _, m := range merged {
				if err := walkKeys(m, t, key); err != nil {
					return err
				}
			}
			continue
		}
		ft, ok := fields[k.Value]
		switch {
		case !ok && isScrapeHostLocal(t, k.Value):
			return fmt.Errorf("%s.%s: line %d: %s", key, k.Value, k.Line, scrapeHostLocalHelp)
		case !ok:
			return fmt.Errorf("%s: line %d: unknown key %s (see %s for the keys accepted)", key, k.Line, k.Value, clusterRef)
		}
		if err := checkEnum(t, k.Value, deref(v), key+"."+k.Value); err != nil {
			return err
		}
		if err := walkKeys(v, ft, key+"."+k.Value); err != nil {
			return err
		}
	}
	return nil
}

// yamlFields maps the YAML keys of the struct type t to their types,
// inline structs flattened, into m (made when nil).
func yamlFields(t reflect.Type, m map[string]reflect.Type) map[string]reflect.Type {
	if m == nil {
		m = make(map[string]reflect.Type, t.NumField())
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")
		switch {
		case tag[0] == "-":
		case len(tag) > 1 && tag[1] == "inline":
			yamlFields(f.Type, m)
		default:
			m[tag[0]] = f.Type
		}
	}
	return m
}

// scrapeEnums are the keys whose values are one of a list (compared
// case-insensitively where Prometheus does), so that an unsupported one,
// such as a relabeling action, is refused with its path and line.
var scrapeEnums = map[reflect.Type]map[string][]string{
	reflect.TypeFor[RelabelConfig](): {"action": RelabelActions},
	reflect.TypeFor[DNSSDConfig]():   {"type": {DNSSRV, DNSA, DNSAAAA}},
	reflect.TypeFor[ScrapeConfig]():  {"placement": {PlacementCluster, PlacementLocal}, "scheme": {"http", "https"}},
}

// checkEnum refuses a scalar value of the key k of type t that is not one
// of its list; key is the value's path.
func checkEnum(t reflect.Type, k string, v *yaml.Node, key string) error {
	want, ok := scrapeEnums[t][k]
	if !ok || v.Kind != yaml.ScalarNode {
		return nil
	}
	for _, w := range want {
		if strings.EqualFold(v.Value, w) && (t != reflect.TypeFor[ScrapeConfig]() || v.Value == w) {
			return nil
		}
	}
	what := "not accepted"
	if t == reflect.TypeFor[RelabelConfig]() {
		what = "not a relabeling action procfleet supports"
	}
	return fmt.Errorf("%s: line %d: %q is %s; want one of %s", key, v.Line, v.Value, what, strings.Join(want, ", "))
}

func isScrapeHostLocal(t reflect.Type, k string) bool {
	for _, h := range scrapeHostLocalKeys[t] {
		if h == k {
			return true
		}
	}
	return false
}

// ParseRelabelConfigs decodes a YAML list of relabeling rules (the value
// of relabel_configs or metric_relabel_configs) with their defaults, as
// strictly as the cluster document, and validates them. Errors name the
// rule's index and the key.
func ParseRelabelConfigs(data []byte) ([]RelabelConfig, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return nil, err
	}
	if len(n.Content) == 0 {
		return nil, nil
	}
	if err := walkKeys(n.Content[0], reflect.TypeFor[[]RelabelConfig](), "relabel_configs"); err != nil {
		return nil, err
	}
	var out []RelabelConfig
	if err := n.Content[0].Decode(&out); err != nil {
		return nil, rewordDecodeError(err, clusterRef)
	}
	for i, c := range out {
		if err := c.Validate(fmt.Sprintf("relabel_configs[%d]", i)); err != nil {
			return nil, err
		}
	}
	return out, nil
}
