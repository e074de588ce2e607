package keys

import (
	"errors"
	"fmt"
)

// Errors returned by the name checks, wrapped with the name and the reason.
var (
	ErrInvalidName = errors.New("keys: invalid name")
	ErrInvalidKind = errors.New("keys: invalid member kind")
)

// MaxNameLen is the longest cluster or node name accepted: the longest DNS
// name, so that any host name fits.
const MaxNameLen = 253

// ValidateCluster checks a cluster name. See ValidateNode for the rule.
func ValidateCluster(name string) error { return validateName("cluster", name) }

// ValidateNode checks a node name: 1 to MaxNameLen characters, starting with
// a lower-case letter or digit, then lower-case letters, digits, '-', '_'
// and '.'. Host names fit once lower-cased.
func ValidateNode(name string) error { return validateName("node", name) }

func validateName(what, name string) error {
	const rule = "names start with a-z or 0-9 and go on with a-z, 0-9, '-', '_' or '.'"
	if name == "" {
		return fmt.Errorf("%w: empty %s name; %s", ErrInvalidName, what, rule)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %s name %.20q... is %d bytes long; at most %d are accepted",
			ErrInvalidName, what, name, len(name), MaxNameLen)
	}
	pos := 0
	for _, r := range name {
		pos++
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		if pos > 1 {
			ok = ok || r == '-' || r == '_' || r == '.'
		}
		if !ok {
			return fmt.Errorf("%w: %s name %q has %q at character %d; %s",
				ErrInvalidName, what, name, r, pos, rule)
		}
	}
	return nil
}
