package gossip

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Keys are the gossip's encryption keys, as LoadKeyFile reads them.
type Keys struct {
	// Primary encrypts what this member sends, and decrypts.
	Primary []byte
	// Extra only decrypt: they let a fleet change keys without a split
	// (add the new key as an extra everywhere, make it primary
	// everywhere, then drop the old one).
	Extra [][]byte
}

// LoadKeyFile reads the gossip keys from the host-local file path: one
// key per line, each the standard base64 of 16, 24 or 32 random bytes
// (AES-128, -192 or -256), the first the primary; blank lines and lines
// starting with # are skipped. A file that others than its owner and group
// may read or write is refused: whoever has the key can join the gossip
// and vote on which upstreams are down.
func LoadKeyFile(path string) (Keys, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Keys{}, fmt.Errorf("cannot read gossip key file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		return Keys{}, fmt.Errorf("gossip key file %s has mode %04o, open to every user; want 0600 or 0640 (chmod o= %s)", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Keys{}, fmt.Errorf("cannot read gossip key file: %w", err)
	}
	var keys Keys
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return Keys{}, fmt.Errorf("gossip key file %s, line %d: not base64; want the base64 of 16, 24 or 32 random bytes, such as the output of: head -c 32 /dev/urandom | base64", path, line)
		}
		switch len(key) {
		case 16, 24, 32:
		default:
			return Keys{}, fmt.Errorf("gossip key file %s, line %d: a key of %d bytes; want 16, 24 or 32", path, line, len(key))
		}
		if keys.Primary == nil {
			keys.Primary = key
		} else {
			keys.Extra = append(keys.Extra, key)
		}
	}
	if err := sc.Err(); err != nil {
		return Keys{}, fmt.Errorf("cannot read gossip key file %s: %w", path, err)
	}
	if keys.Primary == nil {
		return Keys{}, errors.New("gossip key file " + path + ": no key; want the base64 of 16, 24 or 32 random bytes on a line")
	}
	return keys, nil
}
