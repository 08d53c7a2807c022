package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("1.5s",
// "250ms", "1m"). A bare number is refused: "5" could mean seconds or
// milliseconds, and guessing wrong is worse than asking.
type Duration time.Duration

// D is the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes the canonical string form.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration must be a string such as \"1s\" or \"250ms\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a number with a unit such as \"1s\" or \"250ms\"", s)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative: use a positive duration such as \"1s\"", s)
	}
	*d = Duration(v)
	return nil
}

// StringList is a list of strings that may be written as a single string.
type StringList []string

// UnmarshalJSON accepts "a" or ["a", "b"].
func (l *StringList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = StringList{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("expected a string or a list of strings, got %s", b)
	}
	*l = list
	return nil
}

// Listeners is the proxy's listeners: one address, one listener object, or
// a list mixing both.
type Listeners []Listener

// UnmarshalJSON accepts ":8080", {"address": ...} or a list of either.
func (l *Listeners) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var list []Listener
		if err := json.Unmarshal(b, &list); err != nil {
			return err
		}
		*l = list
		return nil
	}
	var one Listener
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	*l = Listeners{one}
	return nil
}

// Addresses lists the listeners' addresses.
func (l Listeners) Addresses() []string {
	out := make([]string, len(l))
	for i, x := range l {
		out[i] = x.Address
	}
	return out
}

// UnmarshalJSON accepts an address string or an object.
func (l *Listener) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		*l = Listener{}
		return json.Unmarshal(b, &l.Address)
	}
	type plain Listener // without this method
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("expected an address such as \":8080\" or an object with address and tls, got %s", b)
	}
	*l = Listener(p)
	return nil
}

// MarshalJSON writes a cleartext listener as its address, so a config
// that uses none of the object form reads back as it was written.
func (l Listener) MarshalJSON() ([]byte, error) {
	if l.TLS == nil {
		return json.Marshal(l.Address)
	}
	type plain Listener
	return json.Marshal(plain(l))
}
