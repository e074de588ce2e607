package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LoadAgentFile reads and validates the agent configuration file at path,
// over the defaults. Errors name the file, and the line or key.
func LoadAgentFile(path string) (Agent, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Agent{}, fmt.Errorf("cannot read config: %w", err)
	}
	a, err := ParseAgent(data)
	if err != nil {
		return Agent{}, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// ParseAgent decodes an agent document over the defaults and validates it.
// Unknown keys are errors.
func ParseAgent(data []byte) (Agent, error) {
	a := DefaultAgent()
	if err := decodeStrict(data, &a); err != nil {
		return Agent{}, err
	}
	if err := a.Validate(); err != nil {
		return Agent{}, err
	}
	return a, nil
}

var unknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type config\.(\w+)`)

// decodeStrict decodes one YAML document into v, rejecting unknown keys and
// rewording the decoder's messages so that they say what was accepted.
func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		return nil // an empty document keeps the defaults
	}
	if err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msgs := make([]string, len(te.Errors))
			for i, m := range te.Errors {
				msgs[i] = unknownField.ReplaceAllString(m, "line $1: unknown key $2 (see deploy/agent.example.yaml for the keys accepted)")
			}
			return errors.New(strings.Join(msgs, "; "))
		}
		return err
	}
	var extra yaml.Node
	if dec.Decode(&extra) == nil {
		return errors.New("more than one YAML document; want one")
	}
	return nil
}

// MarshalAgent writes a as YAML.
func MarshalAgent(a Agent) ([]byte, error) { return yaml.Marshal(a) }
