package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
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
	a.ConfigFile = path
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

var unknownField = lazyRegexp(`line (\d+): field (\S+) not found in type config\.(\w+)`)

// decodeStrict decodes one YAML document into v, rejecting unknown keys and
// rewording the decoder's messages so that they say what was accepted.
func decodeStrict(data []byte, v any) error {
	return decodeStrictRef(data, v, "deploy/agent.example.yaml")
}

// decodeStrictRef is decodeStrict for a document whose keys are listed in
// the reference file ref.
func decodeStrictRef(data []byte, v any, ref string) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		return nil // an empty document keeps the defaults
	}
	if err != nil {
		return rewordDecodeError(err, ref)
	}
	var extra yaml.Node
	if dec.Decode(&extra) == nil {
		return errors.New("more than one YAML document; want one")
	}
	return nil
}

// rewordDecodeError joins the messages of a *yaml.TypeError into one line
// and rewords unknown-field messages to name the reference file ref; other
// errors are returned as they are.
func rewordDecodeError(err error, ref string) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = unknownField().ReplaceAllString(m, "line $1: unknown key $2 (see "+ref+" for the keys accepted)")
	}
	return errors.New(strings.Join(msgs, "; "))
}

// MarshalAgent writes a as YAML.
func MarshalAgent(a Agent) ([]byte, error) { return yaml.Marshal(a) }
