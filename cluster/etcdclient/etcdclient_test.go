package etcdclient

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/etcdtest"
)

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := func(c Config, want string) {
		t.Helper()
		_, err := New(c)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("New(%+v) = %v; want an error with %q", c, err, want)
		}
	}
	f(Config{}, "etcd endpoints: empty")
	f(Config{Endpoints: []string{"http://x"}, CertFile: "c"}, "certificate and key go together")
	f(Config{Endpoints: []string{"http://x"}, Username: "u"}, "needs a password file")
	f(Config{Endpoints: []string{"http://x"}, Username: "u", PasswordFile: filepath.Join(dir, "none")}, "cannot read etcd password file")
	f(Config{Endpoints: []string{"https://x"}, CAFile: notPEM}, "no PEM certificate")
}

func TestConnects(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli, err := New(Config{Endpoints: e.Endpoints})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/procfleet/t/x", "1"); err != nil {
		t.Fatalf("put through the client: %v", err)
	}
}
