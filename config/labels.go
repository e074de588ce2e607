package config

import (
	"fmt"
	"strings"
)

// ParseLabels parses the value of a --labels flag (of the agent, the relay
// and install): k=v pairs separated by commas, each checked with
// ValidateLabel; a key given twice keeps its last value. "" is no labels.
// Errors name the flag, as the commands that take it print them as they
// are.
func ParseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	if s == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--labels %q: want k=v pairs separated by commas", s)
		}
		if err := ValidateLabel(k, v); err != nil {
			return nil, fmt.Errorf("--labels: %w", err)
		}
		out[k] = v
	}
	return out, nil
}
