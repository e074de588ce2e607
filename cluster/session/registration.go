package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Registration is what the other members of a cluster use of a Member:
// every member holds one for each of the others, so it keeps only the
// fields they read. The member key's JSON is Member's.
type Registration struct {
	// Address is Member.Address: where the member's gossip listens.
	Address string `json:"address"`
	// Labels is Member.Labels: nil when the value has none or null,
	// empty when it has {}.
	Labels map[string]string `json:"labels"`
	// StartTime is Member.StartTime.
	StartTime time.Time `json:"start_time"`

	// The fields of Member that a Registration does not keep: checked as
	// ParseMember checks them, so that a value is taken or refused alike.
	HTTP    jsonString `json:"http"`
	Version jsonString `json:"version"`
	Kind    jsonString `json:"kind"`
}

// ParseRegistration decodes the value of a member key into a
// Registration. It takes the values ParseMember takes and refuses those it
// refuses, with the same Address, Labels and StartTime.
func ParseRegistration(data []byte) (Registration, error) {
	var r Registration
	if err := json.Unmarshal(data, &r); err != nil {
		return Registration{}, fmt.Errorf("cannot parse member %q: %w", data, err)
	}
	return r, nil
}

// jsonString checks that a field is a JSON string or null, as decoding it
// into a string does, without keeping it.
type jsonString struct{}

var errNotString = errors.New("not a JSON string")

// UnmarshalJSON implements json.Unmarshaler. data is valid JSON: the
// decoder checks the whole value first.
func (jsonString) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && (data[0] == '"' || string(data) == "null") {
		return nil
	}
	return errNotString
}
