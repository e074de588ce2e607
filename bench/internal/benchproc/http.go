package benchproc

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Client is the HTTP client of the benchmark programs' queries.
var Client = &http.Client{Timeout: 30 * time.Second}

// Get fetches http://addr/path and returns the body of a 200 answer.
func Get(ctx context.Context, addr, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %.300s", req.URL, resp.Status, b)
	}
	return b, nil
}

// FreeAddr returns a loopback host:port whose port was free a moment ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("cannot find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
