package discovery

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/prom/labels"
)

// staticSource is a job's static_configs: its groups, as written.
type staticSource struct {
	k      string
	groups []Group
}

func newStaticSource(cfgs []config.StaticConfig) *staticSource {
	s := &staticSource{k: sourceKey("static", cfgs)}
	for _, c := range cfgs {
		if len(c.Targets) == 0 {
			continue
		}
		lbls := make(labels.Labels, 0, len(c.Labels))
		for k, v := range c.Labels {
			lbls = append(lbls, labels.Label{Name: k, Value: v})
		}
		s.groups = append(s.groups, addressGroup(c.Targets, labels.FromUnsorted(lbls)))
	}
	return s
}

func (s *staticSource) key() string             { return s.k }
func (s *staticSource) interval() time.Duration { return 0 }

func (s *staticSource) where() string {
	return fmt.Sprintf("%d targets in %d groups", countTargets(s.groups), len(s.groups))
}

func (s *staticSource) refresh(context.Context) ([]Group, bool, error) {
	return s.groups, true, nil
}

// sourceKey identifies a source by its kind and config: encoding/json
// writes maps in key order, so equal configs give equal keys.
func sourceKey(kind string, cfg any) string {
	b, err := json.Marshal(cfg)
	if err != nil { // config types always marshal
		panic(fmt.Sprintf("discovery: cannot marshal %s config: %v", kind, err))
	}
	return kind + string(b)
}
