package benchproc

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
)

// Proxy is a TCP proxy that counts every byte it forwards, in each
// direction, HTTP headers included: what the sender puts on the network.
type Proxy struct {
	ln     net.Listener
	target string
	up     atomic.Int64 // client to server
	down   atomic.Int64 // server to client

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// NewProxy listens on a free loopback port; Serve forwards to target.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}, nil
}

// Addr is the host:port clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Counters returns the bytes forwarded so far, client to server and back.
func (p *Proxy) Counters() (up, down int64) { return p.up.Load(), p.down.Load() }

// Serve accepts until ctx ends, then closes the listener and every
// connection.
func (p *Proxy) Serve(ctx context.Context) {
	go func() {
		<-ctx.Done()
		p.ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.conns = nil
		p.mu.Unlock()
	}()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *Proxy) handle(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(client, server) {
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(server, client, &p.up) }()
	go func() { defer wg.Done(); p.pipe(client, server, &p.down) }()
	wg.Wait()
	client.Close()
	server.Close()
	p.mu.Lock()
	delete(p.conns, client) // no-op on a nil map
	delete(p.conns, server)
	p.mu.Unlock()
}

// track registers both ends for closing at the end; false when the proxy
// has already stopped (both are then closed).
func (p *Proxy) track(a, b net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		a.Close()
		b.Close()
		return false
	}
	p.conns[a], p.conns[b] = struct{}{}, struct{}{}
	return true
}

// pipe copies src to dst, counting as it goes (not at the end) so that a
// window's delta is right for long-lived connections. When src ends, dst's
// write side is closed so the peer sees EOF; the other pipe closes the rest.
func (p *Proxy) pipe(dst, src net.Conn, n *atomic.Int64) {
	buf := make([]byte, 32<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			n.Add(int64(k))
			if _, werr := dst.Write(buf[:k]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	} else {
		dst.Close()
	}
	if tc, ok := src.(*net.TCPConn); ok {
		_ = tc.CloseRead()
	}
}
