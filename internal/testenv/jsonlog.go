package testenv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// JSONLog keeps what a slog.JSONHandler writes, for tests that check every
// record. encoding/json keeps the last of two equal keys without a word;
// Records reads each record as a token stream and fails on a repeated key.
// Safe for concurrent use.
type JSONLog struct {
	buf Buffer
}

// Write takes one or more whole records.
func (l *JSONLog) Write(p []byte) (int, error) { return l.buf.Write(p) }

// Logger returns a base logger, with no attributes, that writes every
// level to l as JSON, as procfleet's log.format: json does.
func (l *JSONLog) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Records returns every record written so far, decoded; t fails on a line
// that is not one JSON object or that holds a key twice, at any depth.
func (l *JSONLog) Records(t testing.TB) []map[string]any {
	t.Helper()
	recs, err := ParseJSONLog(l.buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// ParseJSONLog decodes data, one JSON object a line, and returns an error
// for a line that is not one or that holds a key twice.
func ParseJSONLog(data []byte) ([]map[string]any, error) {
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if err := checkUniqueKeys(line); err != nil {
			return nil, fmt.Errorf("log line %d: %w: %s", n, err, line)
		}
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, fmt.Errorf("log line %d: %w: %s", n, err, line)
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}

// checkUniqueKeys reports a key that an object of line holds twice, and
// anything but one JSON object on the line.
func checkUniqueKeys(line []byte) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("not a JSON object (%v)", err)
	}
	if err := checkObject(dec, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("more than one JSON value")
	}
	return nil
}

// checkObject reads the rest of an object whose '{' was read; path names
// it in errors.
func checkObject(dec *json.Decoder, path string) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string) // json.Decoder returns object keys as strings
		if seen[key] {
			return fmt.Errorf("key %q twice", strings.TrimPrefix(path+"."+key, "."))
		}
		seen[key] = true
		if err := checkValue(dec, path+"."+key); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}

func checkValue(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		return checkObject(dec, path)
	case json.Delim('['):
		for dec.More() {
			if err := checkValue(dec, path+"[]"); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	return nil
}
