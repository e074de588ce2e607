package etcdclient

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/procfleet/procfleet/internal/etcdtest"
)

// gen makes random messages of the types the codec writes and reads, with
// zero, negative, unknown-enum and empty values among the others.
type gen struct{ r *rand.Rand }

func (g gen) n(k int) int { return g.r.IntN(k) }

func (g gen) i64() int64 {
	switch g.n(5) {
	case 0, 1:
		return 0
	case 2:
		return -g.r.Int64N(1 << 40)
	case 3:
		return g.r.Int64N(1000)
	}
	return g.r.Int64()
}

func (g gen) u64() uint64 {
	if g.n(3) == 0 {
		return 0
	}
	return g.r.Uint64() >> g.n(64)
}

func (g gen) enum() int32 {
	switch g.n(6) {
	case 0:
		return -1 - g.r.Int32N(5)
	case 1:
		return 7
	}
	return g.r.Int32N(3)
}

func (g gen) flag() bool { return g.n(2) == 0 }

func (g gen) bytes() []byte {
	switch g.n(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	b := make([]byte, g.n(300))
	for i := range b {
		b[i] = byte(g.r.UintN(256))
	}
	return b
}

func (g gen) text() string {
	return []string{"", "etcdserver: mvcc: required revision has been compacted", "lease ÿ not found", "x"}[g.n(4)]
}

func (g gen) header() *pb.ResponseHeader {
	if g.n(4) == 0 {
		return nil
	}
	return &pb.ResponseHeader{ClusterId: g.u64(), MemberId: g.u64(), Revision: g.i64(), RaftTerm: g.u64()}
}

func (g gen) kv() *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: g.bytes(), CreateRevision: g.i64(), ModRevision: g.i64(), Version: g.i64(), Value: g.bytes(), Lease: g.i64()}
}

func (g gen) kvs() []*mvccpb.KeyValue {
	var out []*mvccpb.KeyValue
	for range g.n(4) {
		out = append(out, g.kv())
	}
	return out
}

func (g gen) rangeReq() *pb.RangeRequest {
	return &pb.RangeRequest{Key: g.bytes(), RangeEnd: g.bytes(), Limit: g.i64(), Revision: g.i64(),
		SortOrder: pb.RangeRequest_SortOrder(g.enum()), SortTarget: pb.RangeRequest_SortTarget(g.enum()),
		Serializable: g.flag(), KeysOnly: g.flag(), CountOnly: g.flag(), MinModRevision: g.i64(), MaxModRevision: g.i64(),
		MinCreateRevision: g.i64(), MaxCreateRevision: g.i64()}
}

func (g gen) putReq() *pb.PutRequest {
	return &pb.PutRequest{Key: g.bytes(), Value: g.bytes(), Lease: g.i64(), PrevKv: g.flag(), IgnoreValue: g.flag(), IgnoreLease: g.flag()}
}

func (g gen) deleteReq() *pb.DeleteRangeRequest {
	return &pb.DeleteRangeRequest{Key: g.bytes(), RangeEnd: g.bytes(), PrevKv: g.flag()}
}

func (g gen) txnReq(depth int) *pb.TxnRequest {
	m := &pb.TxnRequest{}
	for range g.n(3) {
		c := &pb.Compare{Result: pb.Compare_CompareResult(g.enum()), Target: pb.Compare_CompareTarget(g.enum()), Key: g.bytes(), RangeEnd: g.bytes()}
		switch g.n(6) {
		case 1:
			c.TargetUnion = &pb.Compare_Version{Version: g.i64()}
		case 2:
			c.TargetUnion = &pb.Compare_CreateRevision{CreateRevision: g.i64()}
		case 3:
			c.TargetUnion = &pb.Compare_ModRevision{ModRevision: g.i64()}
		case 4:
			c.TargetUnion = &pb.Compare_Value{Value: g.bytes()}
		case 5:
			c.TargetUnion = &pb.Compare_Lease{Lease: g.i64()}
		}
		m.Compare = append(m.Compare, c)
	}
	ops := func() []*pb.RequestOp {
		var out []*pb.RequestOp
		for range g.n(3) {
			op := &pb.RequestOp{}
			switch g.n(5) {
			case 1:
				op.Request = &pb.RequestOp_RequestRange{RequestRange: g.rangeReq()}
			case 2:
				op.Request = &pb.RequestOp_RequestPut{RequestPut: g.putReq()}
			case 3:
				op.Request = &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: g.deleteReq()}
			case 4:
				if depth < 3 {
					op.Request = &pb.RequestOp_RequestTxn{RequestTxn: g.txnReq(depth + 1)}
				}
			}
			out = append(out, op)
		}
		return out
	}
	m.Success, m.Failure = ops(), ops()
	return m
}

func (g gen) watchReq() *pb.WatchRequest {
	switch g.n(4) {
	case 0:
		return &pb.WatchRequest{}
	case 1:
		c := &pb.WatchCreateRequest{Key: g.bytes(), RangeEnd: g.bytes(), StartRevision: g.i64(), ProgressNotify: g.flag(),
			PrevKv: g.flag(), WatchId: g.i64(), Fragment: g.flag()}
		for range g.n(3) {
			c.Filters = append(c.Filters, pb.WatchCreateRequest_FilterType(g.enum()))
		}
		return &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: c}}
	case 2:
		return &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: g.i64()}}}
	}
	return &pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}}
}

// request returns a random request of one of the types the codec writes.
func (g gen) request() proto.Message {
	switch g.n(9) {
	case 0:
		return g.rangeReq()
	case 1:
		return g.putReq()
	case 2:
		return g.deleteReq()
	case 3:
		return g.txnReq(0)
	case 4:
		return &pb.LeaseGrantRequest{TTL: g.i64(), ID: g.i64()}
	case 5:
		return &pb.LeaseRevokeRequest{ID: g.i64()}
	case 6:
		return &pb.LeaseKeepAliveRequest{ID: g.i64()}
	case 7:
		return &pb.LeaseTimeToLiveRequest{ID: g.i64(), Keys: g.flag()}
	}
	return g.watchReq()
}

func (g gen) rangeResp() *pb.RangeResponse {
	return &pb.RangeResponse{Header: g.header(), Kvs: g.kvs(), More: g.flag(), Count: g.i64()}
}

func (g gen) putResp() *pb.PutResponse {
	m := &pb.PutResponse{Header: g.header()}
	if g.flag() {
		m.PrevKv = g.kv()
	}
	return m
}

func (g gen) deleteResp() *pb.DeleteRangeResponse {
	return &pb.DeleteRangeResponse{Header: g.header(), Deleted: g.i64(), PrevKvs: g.kvs()}
}

func (g gen) txnResp(depth int) *pb.TxnResponse {
	m := &pb.TxnResponse{Header: g.header(), Succeeded: g.flag()}
	for range g.n(4) {
		op := &pb.ResponseOp{}
		switch g.n(5) {
		case 1:
			op.Response = &pb.ResponseOp_ResponseRange{ResponseRange: g.rangeResp()}
		case 2:
			op.Response = &pb.ResponseOp_ResponsePut{ResponsePut: g.putResp()}
		case 3:
			op.Response = &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: g.deleteResp()}
		case 4:
			if depth < 3 {
				op.Response = &pb.ResponseOp_ResponseTxn{ResponseTxn: g.txnResp(depth + 1)}
			}
		}
		m.Responses = append(m.Responses, op)
	}
	return m
}

func (g gen) watchResp() *pb.WatchResponse {
	m := &pb.WatchResponse{Header: g.header(), WatchId: g.i64(), Created: g.flag(), Canceled: g.flag(),
		CompactRevision: g.i64(), CancelReason: g.text(), Fragment: g.flag()}
	for range g.n(4) {
		ev := &mvccpb.Event{Type: mvccpb.Event_EventType(g.enum())}
		if g.n(4) > 0 {
			ev.Kv = g.kv()
		}
		if g.flag() {
			ev.PrevKv = g.kv()
		}
		m.Events = append(m.Events, ev)
	}
	return m
}

// response returns a random answer of one of the types the codec reads.
func (g gen) response() proto.Message {
	switch g.n(9) {
	case 0:
		return g.rangeResp()
	case 1:
		return g.putResp()
	case 2:
		return g.deleteResp()
	case 3:
		return g.txnResp(0)
	case 4:
		return &pb.LeaseGrantResponse{Header: g.header(), ID: g.i64(), TTL: g.i64(), Error: g.text()}
	case 5:
		return &pb.LeaseRevokeResponse{Header: g.header()}
	case 6:
		return &pb.LeaseKeepAliveResponse{Header: g.header(), ID: g.i64(), TTL: g.i64()}
	case 7:
		m := &pb.LeaseTimeToLiveResponse{Header: g.header(), ID: g.i64(), TTL: g.i64(), GrantedTTL: g.i64()}
		for range g.n(3) {
			m.Keys = append(m.Keys, g.bytes())
		}
		return m
	}
	return g.watchResp()
}

func slice(b []byte) mem.BufferSlice { return mem.BufferSlice{mem.SliceBuffer(b)} }

// TestCodecWritesAsProtobuf: every request the codec writes is, byte for
// byte, what protobuf's Marshal writes.
func TestCodecWritesAsProtobuf(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(1, 2))}
	for i := range 5000 {
		m := g.request()
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendRequest(nil, m)
		if !ok {
			t.Fatalf("%d: %T not written by the codec", i, m)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%d: %T %v:\n got %x\nwant %x", i, m, m, got, want)
		}
		// And through gRPC's interface.
		out, err := codec{}.Marshal(m)
		if err != nil || !bytes.Equal(out.Materialize(), want) {
			t.Fatalf("%d: Marshal = %x, %v; want %x", i, out.Materialize(), err, want)
		}
	}
}

// TestCodecReadsAsProtobuf: every answer protobuf writes, the codec reads
// into what protobuf's Unmarshal gives, without falling back.
func TestCodecReadsAsProtobuf(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(3, 4))}
	for i := range 5000 {
		m := g.response()
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := m.ProtoReflect().Type().New().Interface()
		if !decodeResponse(b, got) {
			t.Fatalf("%d: %T %v: the codec did not read %x", i, m, m, b)
		}
		if !proto.Equal(got, m) {
			t.Fatalf("%d: read %v; want %v", i, got, m)
		}
		// A message read into one that held another answer holds only
		// the new one, as with protobuf, which resets first.
		other := g.response()
		if other.ProtoReflect().Type() == m.ProtoReflect().Type() {
			if err := (codec{}).Unmarshal(slice(b), other); err != nil || !proto.Equal(other, m) {
				t.Fatalf("%d: read over another answer: %v, %v; want %v", i, other, err, m)
			}
			// Two encodings one after the other are their merge: a
			// message field met twice merges, a oneof's same member
			// merges and another replaces, lists append.
			m2 := g.response()
			for m2.ProtoReflect().Type() != m.ProtoReflect().Type() {
				m2 = g.response()
			}
			if b2, err := proto.Marshal(m2); err == nil {
				both := append(append([]byte(nil), b...), b2...)
				want := m.ProtoReflect().Type().New().Interface()
				if err := proto.Unmarshal(both, want); err != nil {
					t.Fatal(err)
				}
				merged := m.ProtoReflect().Type().New().Interface()
				if !decodeResponse(both, merged) || !proto.Equal(merged, want) {
					t.Fatalf("%d: merge read %v; want %v", i, merged, want)
				}
			}
		}
	}
}

// TestCodecMergesOneof: one answer of a transaction whose oneof is met
// twice holds, as in protobuf, the merge of both when they are the same
// member, the second when not.
func TestCodecMergesOneof(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(9, 10))}
	merged := 0
	for i := range 2000 {
		a, b := g.txnResp(1), g.txnResp(1)
		if len(a.Responses) == 0 || len(b.Responses) == 0 {
			continue
		}
		ba, _ := proto.Marshal(a.Responses[0])
		bb, _ := proto.Marshal(b.Responses[0])
		both := append(ba, bb...)
		want := &pb.ResponseOp{}
		if err := proto.Unmarshal(both, want); err != nil {
			t.Fatal(err)
		}
		got := &pb.ResponseOp{}
		if !decodeResponseOp(both, got, 0) || !proto.Equal(got, want) {
			t.Fatalf("%d: read %v; want %v", i, got, want)
		}
		if a.Responses[0].Response != nil && b.Responses[0].Response != nil &&
			fmt.Sprintf("%T", a.Responses[0].Response) == fmt.Sprintf("%T", b.Responses[0].Response) {
			merged++
		}
	}
	if merged < 100 {
		t.Fatalf("%d answers merged the same member; the test wants more", merged)
	}
}

// TestCodecFallsBack: what the fast path does not take, protobuf reads or
// writes, with its result and its errors.
func TestCodecFallsBack(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(5, 6))}
	check := func(name string, b []byte, newMsg func() proto.Message, fallsBack bool) {
		t.Helper()
		before := codecFallbacks.Load()
		got, want := newMsg(), newMsg()
		errGot := codec{}.Unmarshal(slice(b), got)
		errWant := proto.Unmarshal(b, want)
		if (errGot == nil) != (errWant == nil) || errGot != nil && errGot.Error() != errWant.Error() {
			t.Fatalf("%s: error %v; want %v", name, errGot, errWant)
		}
		if errWant == nil && !proto.Equal(got, want) {
			t.Fatalf("%s: read %v; want %v", name, got, want)
		}
		if fallsBack && codecFallbacks.Load() != before+1 {
			t.Fatalf("%s: the codec did not fall back", name)
		}
	}
	for i := range 300 {
		m := g.response()
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		newMsg := func() proto.Message { return m.ProtoReflect().Type().New().Interface() }
		// A field of a newer etcd: kept as protobuf keeps unknown fields.
		unknown := protowire.AppendVarint(protowire.AppendTag(append([]byte(nil), b...), 99, protowire.VarintType), uint64(i))
		check("unknown field", unknown, newMsg, true)
		// A known field with another wire type: unknown to protobuf too.
		check("wire type", protowire.AppendFixed32(protowire.AppendTag(append([]byte(nil), b...), 1, protowire.Fixed32Type), 7), newMsg, true)
		if len(b) > 1 {
			// A cut at a field's end parses whole: the codec need not
			// fall back then, only read what protobuf reads.
			check("truncated", b[:len(b)-1-g.n(len(b)-1)], newMsg, false)
		}
	}
	// Not UTF-8 where protobuf wants a string.
	b, _ := proto.Marshal(&pb.WatchResponse{CancelReason: "x"})
	b[len(b)-1] = 0xff
	check("utf-8", b, func() proto.Message { return &pb.WatchResponse{} }, true)
	// Nesting beyond maxDepth.
	deep := &pb.TxnResponse{}
	for range maxDepth + 2 {
		deep = &pb.TxnResponse{Responses: []*pb.ResponseOp{{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: deep}}}}
	}
	b, _ = proto.Marshal(deep)
	check("depth", b, func() proto.Message { return &pb.TxnResponse{} }, true)

	// Messages of other types, both ways.
	before := codecFallbacks.Load()
	st := &pb.StatusResponse{Version: "3.7.3", DbSize: 12}
	out, err := codec{}.Marshal(st)
	want, _ := proto.Marshal(st)
	if err != nil || !bytes.Equal(out.Materialize(), want) {
		t.Fatalf("Marshal(%v) = %x, %v; want %x", st, out.Materialize(), err, want)
	}
	var got pb.StatusResponse
	if err := (codec{}).Unmarshal(slice(want), &got); err != nil || !proto.Equal(&got, st) {
		t.Fatalf("Unmarshal = %v, %v; want %v", &got, err, st)
	}
	if n := codecFallbacks.Load() - before; n != 2 {
		t.Fatalf("%d fallbacks for a status request and answer; want 2", n)
	}
}

// FuzzCodecUnmarshal: whatever the bytes, the codec reads what protobuf
// reads, or fails where it fails.
func FuzzCodecUnmarshal(f *testing.F) {
	g := gen{rand.New(rand.NewPCG(7, 8))}
	for range 40 {
		m := g.response()
		b, _ := proto.Marshal(m)
		f.Add(b, uint8(g.n(9)))
	}
	types := []func() proto.Message{
		func() proto.Message { return &pb.RangeResponse{} }, func() proto.Message { return &pb.PutResponse{} },
		func() proto.Message { return &pb.DeleteRangeResponse{} }, func() proto.Message { return &pb.TxnResponse{} },
		func() proto.Message { return &pb.LeaseGrantResponse{} }, func() proto.Message { return &pb.LeaseRevokeResponse{} },
		func() proto.Message { return &pb.LeaseKeepAliveResponse{} }, func() proto.Message { return &pb.LeaseTimeToLiveResponse{} },
		func() proto.Message { return &pb.WatchResponse{} },
	}
	f.Fuzz(func(t *testing.T, b []byte, kind uint8) {
		newMsg := types[int(kind)%len(types)]
		got, want := newMsg(), newMsg()
		errGot := codec{}.Unmarshal(slice(b), got)
		errWant := proto.Unmarshal(b, want)
		if (errGot == nil) != (errWant == nil) {
			t.Fatalf("%T from %x: error %v; protobuf's %v", got, b, errGot, errWant)
		}
		if errWant == nil && !proto.Equal(got, want) {
			t.Fatalf("%T from %x: read %v; protobuf read %v", got, b, got, want)
		}
	})
}

// TestCodecWithEtcd runs a member's requests through the codec against a
// real etcd and reads the results back through a client with protobuf's
// codec: none of them falls back.
func TestCodecWithEtcd(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli, err := New(Config{Endpoints: e.Endpoints})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	oracle := e.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := codecFallbacks.Load()

	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wch := cli.Watch(wctx, "/c/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithProgressNotify())
	if err := cli.RequestProgress(ctx); err != nil {
		t.Fatal(err)
	}

	lease, err := cli.Grant(ctx, 30)
	if err != nil || lease.TTL != 30 {
		t.Fatalf("Grant = %v, %v", lease, err)
	}
	if _, err := cli.Put(ctx, "/c/a", "1", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	put, err := cli.Put(ctx, "/c/a", "2", clientv3.WithPrevKV(), clientv3.WithIgnoreLease())
	if err != nil || put.PrevKv == nil || string(put.PrevKv.Value) != "1" {
		t.Fatalf("Put with prev_kv = %v, %v", put, err)
	}
	txn, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision("/c/b"), "=", 0)).
		Then(clientv3.OpPut("/c/b", "\x00\xff", clientv3.WithLease(lease.ID)), clientv3.OpGet("/c/", clientv3.WithPrefix())).
		Else(clientv3.OpGet("/c/b")).Commit()
	if err != nil || !txn.Succeeded || len(txn.Responses) != 2 || len(txn.Responses[1].GetResponseRange().Kvs) != 2 {
		t.Fatalf("Txn = %v, %v", txn, err)
	}
	ka, err := cli.KeepAliveOnce(ctx, lease.ID)
	if err != nil || ka.ID != lease.ID || ka.TTL != 30 {
		t.Fatalf("KeepAliveOnce = %v, %v", ka, err)
	}
	ttl, err := cli.TimeToLive(ctx, lease.ID, clientv3.WithAttachedKeys())
	if err != nil || len(ttl.Keys) != 2 || ttl.GrantedTTL != 30 {
		t.Fatalf("TimeToLive = %v, %v", ttl, err)
	}
	got, err := cli.Get(ctx, "/c/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))
	if err != nil {
		t.Fatal(err)
	}
	want, err := oracle.Get(ctx, "/c/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal((*pb.RangeResponse)(got), (*pb.RangeResponse)(want)) {
		t.Fatalf("Get through the codec = %v; through protobuf's = %v", got, want)
	}
	del, err := cli.Delete(ctx, "/c/a", clientv3.WithPrevKV())
	if err != nil || del.Deleted != 1 || string(del.PrevKvs[0].Value) != "2" {
		t.Fatalf("Delete = %v, %v", del, err)
	}
	if _, err := cli.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	// The watch saw the progress answer, then every change in order, with
	// the previous values.
	var events []string
	progress := false
	for len(events) < 5 {
		select {
		case wr := <-wch:
			if err := wr.Err(); err != nil {
				t.Fatal(err)
			}
			progress = progress || wr.IsProgressNotify()
			for _, ev := range wr.Events {
				s := ev.Type.String() + " " + string(ev.Kv.Key) + "=" + string(ev.Kv.Value)
				if ev.PrevKv != nil {
					s += " was " + string(ev.PrevKv.Value)
				}
				events = append(events, s)
			}
		case <-ctx.Done():
			t.Fatalf("watch: %v after %q", ctx.Err(), events)
		}
	}
	wantEvents := []string{"PUT /c/a=1", "PUT /c/a=2 was 1", "PUT /c/b=\x00\xff", "DELETE /c/a= was 2", "DELETE /c/b= was \x00\xff"}
	if !progress || len(events) != len(wantEvents) {
		t.Fatalf("watch: progress %v, events %q; want %q", progress, events, wantEvents)
	}
	for i := range events {
		if events[i] != wantEvents[i] {
			t.Fatalf("watch: events %q; want %q", events, wantEvents)
		}
	}
	if n := codecFallbacks.Load() - before; n != 0 {
		t.Fatalf("%d messages fell back to protobuf; want none", n)
	}
}
