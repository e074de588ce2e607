package discovery

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer is a real DNS server on UDP, in the test's process: it answers
// A, AAAA and SRV questions from its records, NXDOMAIN for names it does
// not know, and SERVFAIL for names set to fail.
type dnsServer struct {
	conn    net.PacketConn
	queries atomic.Int64

	mu      sync.Mutex
	a       map[string][]netip.Addr // by lowercase FQDN; A and AAAA
	srv     map[string][]dnsmessage.SRVResource
	failing map[string]bool
}

func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{conn: conn, a: map[string][]netip.Addr{}, srv: map[string][]dnsmessage.SRVResource{}, failing: map[string]bool{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serve()
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return s
}

// resolver returns a Go resolver that asks s only.
func (s *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.conn.LocalAddr().String())
	}}
}

func fqdn(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) + "." }

// setAddrs sets the A and AAAA records of name.
func (s *dnsServer) setAddrs(name string, addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var as []netip.Addr
	for _, a := range addrs {
		as = append(as, netip.MustParseAddr(a))
	}
	s.a[fqdn(name)] = as
}

// setSRV sets the SRV records of name.
func (s *dnsServer) setSRV(name string, recs ...dnsmessage.SRVResource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv[fqdn(name)] = recs
}

// setFailing makes name answer SERVFAIL (true) or its records (false).
func (s *dnsServer) setFailing(name string, fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing[fqdn(name)] = fail
}

// remove forgets name: it answers NXDOMAIN.
func (s *dnsServer) remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.a, fqdn(name))
	delete(s.srv, fqdn(name))
}

func srvRec(target string, port uint16) dnsmessage.SRVResource {
	return dnsmessage.SRVResource{Priority: 10, Weight: 10, Port: port, Target: dnsmessage.MustNewName(target)}
}

func (s *dnsServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp, err := s.answer(buf[:n]); err == nil {
			_, _ = s.conn.WriteTo(resp, from)
		}
	}
}

func (s *dnsServer) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	s.queries.Add(1)
	name := strings.ToLower(q.Name.String())
	s.mu.Lock()
	addrs, srvs := s.a[name], s.srv[name]
	_, known := s.a[name]
	if _, ok := s.srv[name]; ok {
		known = true
	}
	fail := s.failing[name]
	s.mu.Unlock()
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	switch {
	case fail:
		rh.RCode = dnsmessage.RCodeServerFailure
	case !known:
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if rh.RCode == dnsmessage.RCodeSuccess {
		if err := addAnswers(&b, q, addrs, srvs); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

func addAnswers(b *dnsmessage.Builder, q dnsmessage.Question, addrs []netip.Addr, srvs []dnsmessage.SRVResource) error {
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 30}
	switch q.Type {
	case dnsmessage.TypeA:
		for _, a := range addrs {
			if a.Is4() {
				if err := b.AResource(rh, dnsmessage.AResource{A: a.As4()}); err != nil {
					return err
				}
			}
		}
	case dnsmessage.TypeAAAA:
		for _, a := range addrs {
			if a.Is6() {
				if err := b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()}); err != nil {
					return err
				}
			}
		}
	case dnsmessage.TypeSRV:
		for _, r := range srvs {
			if err := b.SRVResource(rh, r); err != nil {
				return err
			}
		}
	default:
		return nil
	}
	return nil
}

// The server answers as a DNS server does, as Go's own resolver sees it.
func TestDNSServer(t *testing.T) {
	s := startDNS(t)
	s.setAddrs("db.example.test", "192.0.2.1", "2001:db8::1")
	r := s.resolver()
	ips, err := r.LookupIP(context.Background(), "ip4", "db.example.test.")
	if err != nil || len(ips) != 1 || ips[0].String() != "192.0.2.1" {
		t.Fatalf("A = %v, %v", ips, err)
	}
	_, err = r.LookupIP(context.Background(), "ip4", "nope.example.test.")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound {
		t.Fatalf("unknown name: %v; want not found", err)
	}
}
