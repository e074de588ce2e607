package gossip

import (
	"bytes"
	"io"
	"log"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func newTestTransport(t *testing.T) *transport {
	t.Helper()
	tr, err := newTransport("127.0.0.1", 0, log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown() })
	return tr
}

func recvPacket(t *testing.T, tr *transport) *memberlist.Packet {
	t.Helper()
	select {
	case p := <-tr.PacketCh():
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no packet within 10s")
		return nil
	}
}

// TestTransportPackets: every packet arrives whole in a buffer of its own
// length, with its sender and a receive time, and a later packet does not
// overwrite an earlier one (the read buffer is reused, the packet's is not).
func TestTransportPackets(t *testing.T) {
	a, b := newTestTransport(t), newTestTransport(t)
	if a.port() == b.port() || a.port() == 0 {
		t.Fatalf("ports %d and %d; want two free ports", a.port(), b.port())
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 4000) // 64,000 bytes: more than any gossip packet
	sent := [][]byte{[]byte("x"), []byte("a gossip packet of a few bytes"), big}
	before := time.Now()
	var got []*memberlist.Packet
	for _, p := range sent {
		at, err := a.WriteTo(p, b.udp.LocalAddr().String())
		if err != nil || at.Before(before) {
			t.Fatalf("WriteTo = %v, %v", at, err)
		}
		got = append(got, recvPacket(t, b)) // one at a time: UDP on loopback keeps them, in order
	}
	for i, p := range got {
		if !bytes.Equal(p.Buf, sent[i]) {
			t.Errorf("packet %d: %d bytes, want %d", i, len(p.Buf), len(sent[i]))
		}
		if cap(p.Buf) != len(sent[i]) {
			t.Errorf("packet %d: buffer of capacity %d for %d bytes; want its own length", i, cap(p.Buf), len(sent[i]))
		}
		if from := p.From.(*net.UDPAddr); from.Port != a.port() {
			t.Errorf("packet %d from port %d; want %d", i, from.Port, a.port())
		}
		if p.Timestamp.Before(before) {
			t.Errorf("packet %d received at %v, before it was sent (%v)", i, p.Timestamp, before)
		}
	}
}

// TestTransportStreams: a dialled connection arrives on StreamCh and
// carries bytes both ways.
func TestTransportStreams(t *testing.T) {
	a, b := newTestTransport(t), newTestTransport(t)
	c, err := a.DialAddressTimeout(memberlist.Address{Addr: b.tcp.Addr().String()}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var s net.Conn
	select {
	case s = <-b.StreamCh():
	case <-time.After(10 * time.Second):
		t.Fatal("no stream within 10s")
	}
	defer s.Close()
	if _, err := c.Write([]byte("push")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "push" {
		t.Fatalf("read %q, %v; want push", buf, err)
	}
}

// TestTransportAdvertise: the advertised address is the one given, else
// the bound one, with the bound port.
func TestTransportAdvertise(t *testing.T) {
	tr := newTestTransport(t)
	ip, port, err := tr.FinalAdvertiseAddr("", 0)
	if err != nil || !ip.Equal(net.ParseIP("127.0.0.1")) || port != tr.port() {
		t.Errorf("FinalAdvertiseAddr(\"\", 0) = %v, %d, %v; want 127.0.0.1, %d", ip, port, err, tr.port())
	}
	ip, port, err = tr.FinalAdvertiseAddr("10.1.2.3", 7000)
	if err != nil || !ip.Equal(net.ParseIP("10.1.2.3")) || len(ip) != net.IPv4len || port != 7000 {
		t.Errorf("FinalAdvertiseAddr(10.1.2.3, 7000) = %v, %d, %v; want 10.1.2.3 (4 bytes), 7000", ip, port, err)
	}
	if _, _, err := tr.FinalAdvertiseAddr("not-an-ip", 1); err == nil {
		t.Error("FinalAdvertiseAddr(not-an-ip) did not fail")
	}
}

// TestTransportShutdown: Shutdown returns while memberlist reads nothing
// more (a packet waiting to be handed on does not hold it up), frees the
// port, and may be called twice.
func TestTransportShutdown(t *testing.T) {
	a := newTestTransport(t)
	b, err := newTransport("127.0.0.1", 0, log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteTo([]byte("never read"), b.udp.LocalAddr().String()); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = b.Shutdown()
		_ = b.Shutdown()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return within 10s")
	}
	again, err := newTransport("127.0.0.1", b.port(), log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatalf("the port of a shut transport: %v", err)
	}
	_ = again.Shutdown()
}
