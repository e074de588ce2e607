package gossip

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
)

// transport is memberlist's transport for the gossip: TCP for streams
// (push/pull, joins) and UDP for packets on one address, as memberlist's
// own NetTransport, but a received packet is held in a buffer of its own
// size. NetTransport reads every packet into a new 64 KiB buffer and hands
// that on, so that a gossip packet of a few hundred bytes cost 64 KiB of
// allocation: half of everything a clustered agent allocated
// (docs/performance.md). Here one 64 KiB buffer is read into again and
// again, and each packet copied out of it.
type transport struct {
	tcp    *net.TCPListener
	udp    *net.UDPConn
	bindIP string
	logger *log.Logger

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	done     chan struct{} // closed by Shutdown
	once     sync.Once
	wg       sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*transport)(nil)

const (
	// maxPacket is the largest UDP payload: a packet is read whole.
	maxPacket = 65536
	// udpRecvBuf is the receive buffer the UDP socket asks the kernel
	// for (backing off to what it grants), as NetTransport does.
	udpRecvBuf = 2 << 20
)

// newTransport listens on addr:port for TCP and UDP. A port of 0 picks a
// free one for both, tried a few times when the port the kernel gave for
// TCP is taken for UDP. A port that cannot be bound is a BindError.
func newTransport(addr string, port int, logger *log.Logger) (*transport, error) {
	ip := net.ParseIP(addr)
	if ip == nil {
		return nil, fmt.Errorf("gossip: bind address %q is not an IP address", addr)
	}
	tries := 1
	if port == 0 {
		tries = 10
	}
	var err error
	for range tries {
		var t *transport
		if t, err = listen(ip, port); err == nil {
			t.bindIP, t.logger = addr, logger
			t.wg.Add(2)
			go t.acceptStreams()
			go t.readPackets()
			return t, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, err
}

// listen binds TCP then UDP on ip:port (port 0: the one TCP was given).
func listen(ip net.IP, port int) (*transport, error) {
	tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, &BindError{Addr: net.JoinHostPort(ip.String(), strconv.Itoa(port)), Proto: "tcp", Err: sysErr(err)}
	}
	port = tcp.Addr().(*net.TCPAddr).Port
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		_ = tcp.Close()
		return nil, &BindError{Addr: net.JoinHostPort(ip.String(), strconv.Itoa(port)), Proto: "udp", Err: sysErr(err)}
	}
	for size := udpRecvBuf; size > 0; size /= 2 {
		if udp.SetReadBuffer(size) == nil {
			break
		}
	}
	return &transport{
		tcp:      tcp,
		udp:      udp,
		packetCh: make(chan *memberlist.Packet),
		streamCh: make(chan net.Conn),
		done:     make(chan struct{}),
	}, nil
}

// port returns the port the transport listens on, TCP and UDP.
func (t *transport) port() int { return t.tcp.Addr().(*net.TCPAddr).Port }

// FinalAdvertiseAddr implements memberlist.Transport as NetTransport
// does: the address given, else a private IP of the host when bound to
// every address, else the bound one.
func (t *transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip != "" {
		a := net.ParseIP(ip)
		if a == nil {
			return nil, 0, fmt.Errorf("failed to parse advertise address %q", ip)
		}
		if a4 := a.To4(); a4 != nil {
			a = a4
		}
		return a, port, nil
	}
	if t.bindIP == "0.0.0.0" {
		priv, err := sockaddr.GetPrivateIP()
		if err != nil {
			return nil, 0, fmt.Errorf("failed to get interface addresses: %v", err)
		}
		if priv == "" {
			return nil, 0, fmt.Errorf("no private IP address found, and explicit IP not provided")
		}
		a := net.ParseIP(priv)
		if a == nil {
			return nil, 0, fmt.Errorf("failed to parse advertise address: %q", priv)
		}
		return a, t.port(), nil
	}
	return t.tcp.Addr().(*net.TCPAddr).IP, t.port(), nil
}

// WriteTo implements memberlist.Transport.
func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport.
func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	// memberlist sends to the IP and port members gossip: parsed here,
	// without the resolver (several times a second); a name (a join
	// address) goes through it.
	if ap, err := netip.ParseAddrPort(a.Addr); err == nil {
		_, err = t.udp.WriteToUDPAddrPort(b, ap)
		return time.Now(), err
	}
	to, err := net.ResolveUDPAddr("udp", a.Addr)
	if err != nil {
		return time.Time{}, err
	}
	// A packet's send time is when it was written, as NetTransport gives.
	_, err = t.udp.WriteTo(b, to)
	return time.Now(), err
}

// PacketCh implements memberlist.Transport.
func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout implements memberlist.Transport.
func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.Dial("tcp", a.Addr)
}

// StreamCh implements memberlist.Transport.
func (t *transport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown implements memberlist.Transport: it closes both listeners and
// waits for their goroutines. Calling it again does nothing.
func (t *transport) Shutdown() error {
	t.once.Do(func() {
		close(t.done)
		_ = t.tcp.Close()
		_ = t.udp.Close()
		t.wg.Wait()
	})
	return nil
}

// acceptStreams hands accepted TCP connections to memberlist, backing off
// after a failed accept (from 5 ms, doubling, to 1 s) as NetTransport does.
func (t *transport) acceptStreams() {
	defer t.wg.Done()
	const base, most = 5 * time.Millisecond, time.Second
	var delay time.Duration
	for {
		conn, err := t.tcp.AcceptTCP()
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			delay = min(max(2*delay, base), most)
			t.logger.Printf("[ERR] memberlist: Error accepting TCP connection: %v", err)
			select {
			case <-t.done:
				return
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		select {
		case t.streamCh <- conn:
		case <-t.done:
			_ = conn.Close()
			return
		}
	}
}

// readPackets hands received UDP packets to memberlist, each copied out of
// the one read buffer into a slice of its length.
func (t *transport) readPackets() {
	defer t.wg.Done()
	buf := make([]byte, maxPacket)
	for {
		n, from, err := t.udp.ReadFrom(buf)
		now := time.Now() // as close to the read as can be: memberlist times probes with it
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			t.logger.Printf("[ERR] memberlist: Error reading UDP packet: %v", err)
			continue
		}
		if n < 1 {
			t.logger.Printf("[ERR] memberlist: UDP packet too short (%d bytes) %s", n, memberlist.LogAddress(from))
			continue
		}
		own := make([]byte, n)
		copy(own, buf)
		p := &memberlist.Packet{Buf: own, From: from, Timestamp: now}
		select {
		case t.packetCh <- p:
		case <-t.done:
			return
		}
	}
}
