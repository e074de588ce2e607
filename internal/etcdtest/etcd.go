// Package etcdtest starts embedded etcd servers (go.etcd.io/etcd/server/v3/embed)
// in the test process, single nodes and clusters whose members can be stopped
// and restarted, kept apart from testenv so that only the tests that need
// etcd link its server.
package etcdtest

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/procfleet/procfleet/internal/testenv"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Tick and election times of the embedded etcd, far below production
// values (100 ms and 1 s) so that a member starts, elects and fails over in
// tens of milliseconds. A single node elects itself within one election
// time of starting, so it gets the least etcd accepts (5 ticks); members of
// a cluster keep 10 ticks, so that a test process busy under -race does
// not miss enough heartbeats to change leaders.
const (
	etcdTickMs           = 10
	etcdElectionMs       = 100
	etcdSingleElectionMs = 50
	// etcdReadyTimeout bounds how long a start or restart waits for the
	// member (or the cluster) to serve.
	etcdReadyTimeout = 20 * time.Second
)

// etcdMember is one embedded etcd server: its fixed addresses and data
// directory survive Stop so that Restart brings the same member back.
type etcdMember struct {
	name      string
	dir       string
	clientURL url.URL
	peerURL   url.URL
	initial   string        // --initial-cluster: every member's name=peer URL
	size      int           // members in the cluster
	peers     []*etcdMember // all members of the cluster, m included
	logs      *lockedBuffer

	mu sync.Mutex
	e  *embed.Etcd // nil while stopped
}

// newEtcdMembers allocates names, loopback ports and data directories for n
// members of one cluster.
func newEtcdMembers(t testing.TB, n int) []*etcdMember {
	t.Helper()
	root := t.TempDir()
	ms := make([]*etcdMember, n)
	for i := range ms {
		ms[i] = &etcdMember{
			name:      fmt.Sprintf("m%d", i),
			dir:       filepath.Join(root, fmt.Sprintf("m%d", i)),
			clientURL: url.URL{Scheme: "http", Host: testenv.FreeAddr(t)},
			peerURL:   url.URL{Scheme: "http", Host: testenv.FreeAddr(t)},
			size:      n,
			logs:      &lockedBuffer{},
		}
	}
	initial := initialCluster(ms)
	for _, m := range ms {
		m.initial, m.peers = initial, ms
	}
	return ms
}

// initialCluster is the --initial-cluster value naming every member.
func initialCluster(ms []*etcdMember) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.name + "=" + m.peerURL.String()
	}
	return strings.Join(parts, ",")
}

// config builds the embed configuration of m. It is the same for the first
// start and for restarts: with a data directory present etcd ignores the
// initial-cluster settings and rejoins as the member it was.
func (m *etcdMember) config() *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ListenClientUrls = []url.URL{m.clientURL}
	cfg.AdvertiseClientUrls = []url.URL{m.clientURL}
	cfg.ListenPeerUrls = []url.URL{m.peerURL}
	cfg.AdvertisePeerUrls = []url.URL{m.peerURL}
	cfg.InitialCluster = m.initial
	cfg.InitialClusterToken = "procfleet-test"
	cfg.TickMs = etcdTickMs
	cfg.ElectionMs = etcdElectionMs
	if m.size == 1 {
		cfg.ElectionMs = etcdSingleElectionMs
	}
	// Test data is thrown away: fsync buys nothing and costs milliseconds
	// per write.
	cfg.UnsafeNoFsync = true
	cfg.EnableGRPCGateway = false
	cfg.Metrics = "basic"
	cfg.LogLevel = "error"
	lg := zap.New(zapcore.NewCore(
		zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()),
		zapcore.AddSync(m.logs),
		zap.ErrorLevel,
	))
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)
	return cfg
}

// start starts m without waiting for it to serve: members of a cluster
// become ready only together.
func (m *etcdMember) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e != nil {
		return nil
	}
	e, err := embed.StartEtcd(m.config())
	if err != nil {
		return fmt.Errorf("start etcd member %s: %w", m.name, err)
	}
	m.e = e
	return nil
}

// waitReady waits until m serves clients or fails.
func (m *etcdMember) waitReady(timeout time.Duration) error {
	m.mu.Lock()
	e := m.e
	m.mu.Unlock()
	if e == nil {
		return fmt.Errorf("etcd member %s is stopped", m.name)
	}
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case err := <-e.Err():
		return fmt.Errorf("etcd member %s: %w", m.name, err)
	case <-time.After(timeout):
		return fmt.Errorf("etcd member %s not ready after %s", m.name, timeout)
	}
}

// stop closes m; a stopped member is a no-op.
func (m *etcdMember) stop() {
	m.mu.Lock()
	e := m.e
	m.e = nil
	m.mu.Unlock()
	if e != nil {
		// Errors logged while stopping are about closed listeners.
		m.logs.setMuted(true)
		defer m.logs.setMuted(false)
		// A hard stop first, as in a crash: no leadership transfer, which
		// would wait seconds for peers that are stopping too.
		e.Server.HardStop()
		e.Close()
	}
}

func (m *etcdMember) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.e != nil
}

// Etcd is a single-node etcd running inside the test process.
type Etcd struct {
	// Endpoints are the client URLs (http://127.0.0.1:PORT).
	Endpoints []string
	// StartTime is how long the start took, until the member served.
	StartTime time.Duration

	m *etcdMember
}

// StartEtcd starts a single-node etcd on free loopback ports, with its data
// under t.TempDir() and its logs kept quiet (errors only, shown when the
// test fails), and stops it in t.Cleanup.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	ms, took := startEtcdMembers(t, 1)
	return &Etcd{Endpoints: []string{ms[0].clientURL.String()}, StartTime: took, m: ms[0]}
}

// Stop stops the server, keeping its data. Stopping a stopped server does
// nothing.
func (e *Etcd) Stop() { e.m.stop() }

// Restart starts a stopped server again on the same ports and data, and
// waits until it serves.
func (e *Etcd) Restart(t testing.TB) {
	t.Helper()
	if err := startAndWait([]*etcdMember{e.m}); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// Client returns a client of the server, closed in t.Cleanup. See
// NewEtcdClient.
func (e *Etcd) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	return NewEtcdClient(t, e.Endpoints)
}

// EtcdCluster is an etcd cluster of several members inside the test
// process. Members can be stopped and restarted one at a time or all
// together.
type EtcdCluster struct {
	// Endpoints are the client URLs of all members, in member order.
	Endpoints []string
	// StartTime is how long the start took, until every member served.
	StartTime time.Duration

	members []*etcdMember
}

// StartEtcdCluster starts an n-member etcd cluster on free loopback ports
// (n is 3 in most tests: one member can be lost without losing quorum) and
// stops it in t.Cleanup.
func StartEtcdCluster(t testing.TB, n int) *EtcdCluster {
	t.Helper()
	ms, took := startEtcdMembers(t, n)
	c := &EtcdCluster{StartTime: took, members: ms}
	for _, m := range ms {
		c.Endpoints = append(c.Endpoints, m.clientURL.String())
	}
	return c
}

// startEtcdMembers starts a new cluster of n members, stopped in
// t.Cleanup, and returns them with the time they took to serve. Ports are
// picked free and bound a moment later, so a start that loses a port to
// another test is tried again with new ones.
func startEtcdMembers(t testing.TB, n int) ([]*etcdMember, time.Duration) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ms := newEtcdMembers(t, n)
		begin := time.Now()
		err := startAndWait(ms)
		if err == nil {
			took := time.Since(begin)
			t.Cleanup(func() {
				stopAll(ms)
				if n > 1 {
					waitPeerConnsClosed()
				}
				dumpEtcdLogs(t, ms)
			})
			return ms, took
		}
		stopAll(ms)
		if attempt == 3 || !(errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")) {
			dumpEtcdLogs(t, ms)
			t.Fatalf("testenv: %v", err)
		}
	}
}

// startAndWait starts the given members and waits until each serves. They
// are started together: a member of a cluster without quorum does not
// become ready alone.
func startAndWait(ms []*etcdMember) error {
	for _, m := range ms {
		if err := m.start(); err != nil {
			return err
		}
	}
	for _, m := range ms {
		if err := m.waitReady(etcdReadyTimeout); err != nil {
			return err
		}
	}
	return waitSettled(ms[0].peers)
}

// waitSettled waits until the running members agree on a leader among
// them and have applied the same entries; it returns at once when they are
// too few for a quorum. A member is ready as soon as it serves, which can
// be before the others have caught up; and a write sent while the members
// elect a new leader waits etcd's request timeout (5s) and fails. Tests
// want neither.
func waitSettled(ms []*etcdMember) error {
	deadline := time.Now().Add(etcdReadyTimeout)
	for {
		var servers []*embed.Etcd
		for _, m := range ms {
			m.mu.Lock()
			if m.e != nil {
				servers = append(servers, m.e)
			}
			m.mu.Unlock()
		}
		if len(servers) <= len(ms)/2 {
			return nil
		}
		if settled(servers) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd members not settled after %s", etcdReadyTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settled reports whether the servers follow one of them and have applied
// the same entries.
func settled(servers []*embed.Etcd) bool {
	lead, applied := servers[0].Server.Lead(), servers[0].Server.AppliedIndex()
	leaderRunning := false
	for _, e := range servers {
		if e.Server.Lead() != lead || e.Server.AppliedIndex() != applied {
			return false
		}
		leaderRunning = leaderRunning || uint64(e.Server.MemberID()) == lead
	}
	return lead != 0 && leaderRunning
}

// stopAll stops the members concurrently.
func stopAll(ms []*etcdMember) {
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(m.stop)
	}
	wg.Wait()
}

// Stop stops member i, keeping its data, and waits until the others (if
// they keep a quorum) have elected a leader among them.
func (c *EtcdCluster) Stop(t testing.TB, i int) {
	t.Helper()
	c.members[i].stop()
	if err := waitSettled(c.members); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// Restart starts member i again and waits until it serves (which needs a
// quorum of members running).
func (c *EtcdCluster) Restart(t testing.TB, i int) {
	t.Helper()
	if err := startAndWait(c.members[i : i+1]); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// StopAll stops every member, concurrently: "all of etcd is down".
func (c *EtcdCluster) StopAll() { stopAll(c.members) }

// RestartAll starts every stopped member and waits until all serve.
func (c *EtcdCluster) RestartAll(t testing.TB) {
	t.Helper()
	var stopped []*etcdMember
	for _, m := range c.members {
		if !m.running() {
			stopped = append(stopped, m)
		}
	}
	if err := startAndWait(stopped); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// Client returns a client of all members, closed in t.Cleanup. See
// NewEtcdClient.
func (c *EtcdCluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	return NewEtcdClient(t, c.Endpoints)
}

// EtcdConnectParams caps gRPC's reconnect backoff at 1s. gRPC's default
// grows to 120s, so after an outage of a minute a client would wait about
// as long again before it even tries the etcd that came back; production
// clients want the same cap.
var EtcdConnectParams = grpc.ConnectParams{
	Backoff: backoff.Config{
		BaseDelay:  100 * time.Millisecond,
		Multiplier: 1.6,
		Jitter:     0.2,
		MaxDelay:   time.Second,
	},
	MinConnectTimeout: time.Second,
}

// NewEtcdClient returns a client of the given endpoints with a quiet
// logger and EtcdConnectParams, closed in t.Cleanup.
func NewEtcdClient(t testing.TB, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(EtcdConnectParams)},
	})
	if err != nil {
		t.Fatalf("testenv: etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// peerConnRead is in the stack of a goroutine reading an etcd peer
// connection.
const peerConnRead = "go.etcd.io/etcd/client/pkg/v3/transport.timeoutConn.Read"

// waitPeerConnsClosed waits until no goroutine reads an etcd peer
// connection, or for the 5s after which the stopped members' reads have
// surely ended (other clusters' live connections keep the count above
// zero). A stopped member can leave such reads behind: net/http's abort of
// a pending read races with the 5s read deadline that etcd's timeoutConn
// sets on each read, so they end only at that deadline. Waiting here keeps
// the goroutine-leak check of MainWithLeakCheck reliable.
func waitPeerConnsClosed() {
	deadline := time.Now().Add(5*time.Second + 100*time.Millisecond)
	buf := make([]byte, 4<<20)
	for time.Now().Before(deadline) {
		if !bytes.Contains(buf[:runtime.Stack(buf, true)], []byte(peerConnRead)) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dumpEtcdLogs shows the members' error logs when the test failed.
func dumpEtcdLogs(t testing.TB, ms []*etcdMember) {
	if !t.Failed() {
		return
	}
	for _, m := range ms {
		if b := m.logs.Bytes(); len(b) > 0 {
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("testenv: etcd member %s errors:\n%s", m.name, b)
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for etcd's concurrent loggers,
// which drops what is written while muted.
type lockedBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	muted bool
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.muted {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) setMuted(m bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.muted = m
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
