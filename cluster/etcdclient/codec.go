package etcdclient

import (
	"sync/atomic"
	"unicode/utf8"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// codec is the gRPC codec of procfleet's etcd clients. It writes the
// requests and reads the answers that a member sends and receives while it
// runs (ranges, puts, deletes, transactions, leases and their keep-alives,
// watches) with protowire, field by field, and hands every other message to
// gRPC's protobuf codec. The wire is the same (content subtype "proto"),
// and so is every message: the tests compare both ways with protobuf's own
// Marshal and Unmarshal.
//
// Why: protobuf's generic codec builds, at the first message of a file, the
// full descriptors of every message etcd's rpc.proto declares (about 0.26
// MB of heap), and per message type used its coder tables (0.4 MB more),
// and it runs through reflection code spread over the binary, pages a
// member then keeps mapped. A clustered agent held 0.65 MB of live heap for
// that alone, a sixth of its heap (docs/performance.md).
//
// What the fast path does not take falls back to protobuf whole, so the
// fallback decides everything unusual: a field this code does not know (an
// etcd newer than this client), a wire type it does not expect, malformed
// or truncated input (protobuf's error is the one returned), a string that
// is not UTF-8, nesting deeper than maxDepth. Requests are written from
// their Go fields only: a request carrying unknown fields (clientv3 never
// sets any) loses them.
type codec struct{}

// Codec returns the codec; its Name is protobuf's, "proto".
func Codec() encoding.CodecV2 { return codec{} }

// codecFallbacks counts the messages the codec handed to protobuf.
var codecFallbacks atomic.Int64

// protoCodec is gRPC's protobuf codec, the fallback.
func protoCodec() encoding.CodecV2 { return encoding.GetCodecV2("proto") }

func (codec) Name() string { return "proto" }

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := appendRequest(nil, v)
	if !ok {
		codecFallbacks.Add(1)
		return protoCodec().Marshal(v)
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData()
	} else {
		b = data.Materialize()
	}
	if decodeResponse(b, v) {
		return nil
	}
	codecFallbacks.Add(1)
	return protoCodec().Unmarshal(data, v)
}

// maxDepth bounds the nesting of transactions in a message the fast path
// reads or writes; deeper ones go to protobuf.
const maxDepth = 32

// appendRequest appends the wire form of v, a request of a type the codec
// writes, and reports whether it did.
func appendRequest(b []byte, v any) ([]byte, bool) {
	switch m := v.(type) {
	case *pb.RangeRequest:
		return appendRange(b, m), true
	case *pb.PutRequest:
		return appendPut(b, m), true
	case *pb.DeleteRangeRequest:
		return appendDeleteRange(b, m), true
	case *pb.TxnRequest:
		return appendTxn(b, m, 0)
	case *pb.LeaseGrantRequest:
		b = appendInt(b, 1, m.TTL)
		return appendInt(b, 2, m.ID), true
	case *pb.LeaseRevokeRequest:
		return appendInt(b, 1, m.ID), true
	case *pb.LeaseKeepAliveRequest:
		return appendInt(b, 1, m.ID), true
	case *pb.LeaseTimeToLiveRequest:
		b = appendInt(b, 1, m.ID)
		return appendBool(b, 2, m.Keys), true
	case *pb.WatchRequest:
		return appendWatch(b, m)
	}
	return nil, false
}

func appendRange(b []byte, m *pb.RangeRequest) []byte {
	b = appendBytes(b, 1, m.Key)
	b = appendBytes(b, 2, m.RangeEnd)
	b = appendInt(b, 3, m.Limit)
	b = appendInt(b, 4, m.Revision)
	b = appendInt(b, 5, int64(m.SortOrder))
	b = appendInt(b, 6, int64(m.SortTarget))
	b = appendBool(b, 7, m.Serializable)
	b = appendBool(b, 8, m.KeysOnly)
	b = appendBool(b, 9, m.CountOnly)
	b = appendInt(b, 10, m.MinModRevision)
	b = appendInt(b, 11, m.MaxModRevision)
	b = appendInt(b, 12, m.MinCreateRevision)
	return appendInt(b, 13, m.MaxCreateRevision)
}

func appendPut(b []byte, m *pb.PutRequest) []byte {
	b = appendBytes(b, 1, m.Key)
	b = appendBytes(b, 2, m.Value)
	b = appendInt(b, 3, m.Lease)
	b = appendBool(b, 4, m.PrevKv)
	b = appendBool(b, 5, m.IgnoreValue)
	return appendBool(b, 6, m.IgnoreLease)
}

func appendDeleteRange(b []byte, m *pb.DeleteRangeRequest) []byte {
	b = appendBytes(b, 1, m.Key)
	b = appendBytes(b, 2, m.RangeEnd)
	return appendBool(b, 3, m.PrevKv)
}

func appendTxn(b []byte, m *pb.TxnRequest, depth int) ([]byte, bool) {
	if depth > maxDepth {
		return nil, false
	}
	for _, c := range m.Compare {
		body, ok := appendCompare(nil, c)
		if !ok {
			return nil, false
		}
		b = appendMessage(b, 1, body)
	}
	for i, ops := range [][]*pb.RequestOp{m.Success, m.Failure} {
		for _, op := range ops {
			body, ok := appendRequestOp(nil, op, depth)
			if !ok {
				return nil, false
			}
			b = appendMessage(b, protowire.Number(2+i), body)
		}
	}
	return b, true
}

func appendCompare(b []byte, c *pb.Compare) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	b = appendInt(b, 1, int64(c.Result))
	b = appendInt(b, 2, int64(c.Target))
	b = appendBytes(b, 3, c.Key)
	b = appendBytes(b, 64, c.RangeEnd)
	// A member of a oneof is written even when zero (it is set), and last,
	// as protobuf writes it.
	switch t := c.TargetUnion.(type) {
	case nil:
	case *pb.Compare_Version:
		b = appendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(t.Version))
	case *pb.Compare_CreateRevision:
		b = appendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(t.CreateRevision))
	case *pb.Compare_ModRevision:
		b = appendTag(b, 6, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(t.ModRevision))
	case *pb.Compare_Value:
		b = appendMessage(b, 7, t.Value)
	case *pb.Compare_Lease:
		b = appendTag(b, 8, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(t.Lease))
	default:
		return nil, false
	}
	return b, true
}

func appendRequestOp(b []byte, op *pb.RequestOp, depth int) ([]byte, bool) {
	if op == nil {
		return nil, false
	}
	switch r := op.Request.(type) {
	case nil:
		return b, true
	case *pb.RequestOp_RequestRange:
		if r.RequestRange != nil {
			return appendMessage(b, 1, appendRange(nil, r.RequestRange)), true
		}
	case *pb.RequestOp_RequestPut:
		if r.RequestPut != nil {
			return appendMessage(b, 2, appendPut(nil, r.RequestPut)), true
		}
	case *pb.RequestOp_RequestDeleteRange:
		if r.RequestDeleteRange != nil {
			return appendMessage(b, 3, appendDeleteRange(nil, r.RequestDeleteRange)), true
		}
	case *pb.RequestOp_RequestTxn:
		if r.RequestTxn != nil {
			body, ok := appendTxn(nil, r.RequestTxn, depth+1)
			return appendMessage(b, 4, body), ok
		}
	}
	return nil, false
}

func appendWatch(b []byte, m *pb.WatchRequest) ([]byte, bool) {
	switch r := m.RequestUnion.(type) {
	case nil:
		return b, true
	case *pb.WatchRequest_CreateRequest:
		c := r.CreateRequest
		if c == nil {
			break
		}
		var body []byte
		body = appendBytes(body, 1, c.Key)
		body = appendBytes(body, 2, c.RangeEnd)
		body = appendInt(body, 3, c.StartRevision)
		body = appendBool(body, 4, c.ProgressNotify)
		if len(c.Filters) > 0 {
			var packed []byte
			for _, f := range c.Filters {
				packed = protowire.AppendVarint(packed, uint64(int64(f)))
			}
			body = appendMessage(body, 5, packed)
		}
		body = appendBool(body, 6, c.PrevKv)
		body = appendInt(body, 7, c.WatchId)
		body = appendBool(body, 8, c.Fragment)
		return appendMessage(b, 1, body), true
	case *pb.WatchRequest_CancelRequest:
		if r.CancelRequest != nil {
			return appendMessage(b, 2, appendInt(nil, 1, r.CancelRequest.WatchId)), true
		}
	case *pb.WatchRequest_ProgressRequest:
		if r.ProgressRequest != nil {
			return appendMessage(b, 3, nil), true
		}
	}
	return nil, false
}

func appendTag(b []byte, num protowire.Number, t protowire.Type) []byte {
	return protowire.AppendTag(b, num, t)
}

// appendInt appends an int64, int32 or enum field unless it is zero (an
// int32's negative values take ten bytes, as protobuf writes them).
func appendInt(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(appendTag(b, num, protowire.VarintType), uint64(v))
}

func appendBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	return protowire.AppendVarint(appendTag(b, num, protowire.VarintType), 1)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	return appendMessage(b, num, v)
}

// appendMessage appends a length-delimited field, empty or not.
func appendMessage(b []byte, num protowire.Number, body []byte) []byte {
	return protowire.AppendBytes(appendTag(b, num, protowire.BytesType), body)
}

// decodeResponse reads b into v, an answer of a type the codec reads, and
// reports whether it did; false leaves v for protobuf to reset and read.
func decodeResponse(b []byte, v any) bool {
	// Each message starts empty, as protobuf's Unmarshal resets it (set
	// here, not with Reset, which reaches into protobuf's runtime).
	switch m := v.(type) {
	case *pb.RangeResponse:
		*m = pb.RangeResponse{}
		return decodeRange(b, m)
	case *pb.PutResponse:
		*m = pb.PutResponse{}
		return decodePut(b, m)
	case *pb.DeleteRangeResponse:
		*m = pb.DeleteRangeResponse{}
		return decodeDeleteRange(b, m)
	case *pb.TxnResponse:
		*m = pb.TxnResponse{}
		return decodeTxn(b, m, 0)
	case *pb.LeaseGrantResponse:
		*m = pb.LeaseGrantResponse{}
		return eachField(b, func(num protowire.Number, t protowire.Type, x uint64, f []byte) bool {
			switch {
			case num == 1 && t == protowire.BytesType:
				return decodeHeader(f, &m.Header)
			case num == 2 && t == protowire.VarintType:
				m.ID = int64(x)
			case num == 3 && t == protowire.VarintType:
				m.TTL = int64(x)
			case num == 4 && t == protowire.BytesType && utf8.Valid(f):
				m.Error = string(f)
			default:
				return false
			}
			return true
		})
	case *pb.LeaseRevokeResponse:
		*m = pb.LeaseRevokeResponse{}
		return eachField(b, func(num protowire.Number, t protowire.Type, x uint64, f []byte) bool {
			return num == 1 && t == protowire.BytesType && decodeHeader(f, &m.Header)
		})
	case *pb.LeaseKeepAliveResponse:
		*m = pb.LeaseKeepAliveResponse{}
		return eachField(b, func(num protowire.Number, t protowire.Type, x uint64, f []byte) bool {
			switch {
			case num == 1 && t == protowire.BytesType:
				return decodeHeader(f, &m.Header)
			case num == 2 && t == protowire.VarintType:
				m.ID = int64(x)
			case num == 3 && t == protowire.VarintType:
				m.TTL = int64(x)
			default:
				return false
			}
			return true
		})
	case *pb.LeaseTimeToLiveResponse:
		*m = pb.LeaseTimeToLiveResponse{}
		return eachField(b, func(num protowire.Number, t protowire.Type, x uint64, f []byte) bool {
			switch {
			case num == 1 && t == protowire.BytesType:
				return decodeHeader(f, &m.Header)
			case num == 2 && t == protowire.VarintType:
				m.ID = int64(x)
			case num == 3 && t == protowire.VarintType:
				m.TTL = int64(x)
			case num == 4 && t == protowire.VarintType:
				m.GrantedTTL = int64(x)
			case num == 5 && t == protowire.BytesType:
				m.Keys = append(m.Keys, append([]byte{}, f...))
			default:
				return false
			}
			return true
		})
	case *pb.WatchResponse:
		*m = pb.WatchResponse{}
		return decodeWatch(b, m)
	}
	return false
}

// eachField calls field for each field of the message in b, with its
// number, wire type and value (x for a varint, f for a length-delimited
// field), and reports whether b parsed whole and field took every field.
// Other wire types are not taken: no message read here has them.
func eachField(b []byte, field func(num protowire.Number, t protowire.Type, x uint64, f []byte) bool) bool {
	for len(b) > 0 {
		num, t, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		var (
			x uint64
			f []byte
		)
		switch t {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			f, n = protowire.ConsumeBytes(b)
		default:
			return false
		}
		if n < 0 || !field(num, t, x, f) {
			return false
		}
		b = b[n:]
	}
	return true
}

// copyBytes is a proto3 bytes field as protobuf reads it: nil when empty,
// else a copy (gRPC reuses the buffer read).
func copyBytes(f []byte) []byte {
	if len(f) == 0 {
		return nil
	}
	return append([]byte(nil), f...)
}

// decodeHeader reads a header into *h, merging into one already there as
// protobuf does with a message field that occurs twice.
func decodeHeader(b []byte, h **pb.ResponseHeader) bool {
	if *h == nil {
		*h = &pb.ResponseHeader{}
	}
	m := *h
	return eachField(b, func(num protowire.Number, t protowire.Type, x uint64, _ []byte) bool {
		if t != protowire.VarintType {
			return false
		}
		switch num {
		case 1:
			m.ClusterId = x
		case 2:
			m.MemberId = x
		case 3:
			m.Revision = int64(x)
		case 4:
			m.RaftTerm = x
		default:
			return false
		}
		return true
	})
}

// decodeKV reads a key-value into *kv, merging as decodeHeader does.
func decodeKV(b []byte, kv **mvccpb.KeyValue) bool {
	if *kv == nil {
		*kv = &mvccpb.KeyValue{}
	}
	m := *kv
	return eachField(b, func(num protowire.Number, t protowire.Type, x uint64, f []byte) bool {
		switch {
		case num == 1 && t == protowire.BytesType:
			m.Key = copyBytes(f)
		case num == 2 && t == protowire.VarintType:
			m.CreateRevision = int64(x)
		case num == 3 && t == protowire.VarintType:
			m.ModRevision = int64(x)
		case num == 4 && t == protowire.VarintType:
			m.Version = int64(x)
		case num == 5 && t == protowire.BytesType:
			m.Value = copyBytes(f)
		case num == 6 && t == protowire.VarintType:
			m.Lease = int64(x)
		default:
			return false
		}
		return true
	})
}

func decodeRange(b []byte, m *pb.RangeResponse) bool {
	return eachField(b, func(num protowire.Number, t protowire.Type, x uint64, f []byte) bool {
		switch {
		case num == 1 && t == protowire.BytesType:
			return decodeHeader(f, &m.Header)
		case num == 2 && t == protowire.BytesType:
			var kv *mvccpb.KeyValue
			if !decodeKV(f, &kv) {
				return false
			}
			m.Kvs = append(m.Kvs, kv)
		case num == 3 && t == protowire.VarintType:
			m.More = x != 0
		case num == 4 && t == protowire.VarintType:
			m.Count = int64(x)
		default:
			return false
		}
		return true
	})
}

func decodePut(b []byte, m *pb.PutResponse) bool {
	return eachField(b, func(num protowire.Number, t protowire.Type, x uint64, f []byte) bool {
		switch {
		case num == 1 && t == protowire.BytesType:
			return decodeHeader(f, &m.Header)
		case num == 2 && t == protowire.BytesType:
			return decodeKV(f, &m.PrevKv)
		}
		return false
	})
}

func decodeDeleteRange(b []byte, m *pb.DeleteRangeResponse) bool {
	return eachField(b, func(num protowire.Number, t protowire.Type, x uint64, f []byte) bool {
		switch {
		case num == 1 && t == protowire.BytesType:
			return decodeHeader(f, &m.Header)
		case num == 2 && t == protowire.VarintType:
			m.Deleted = int64(x)
		case num == 3 && t == protowire.BytesType:
			var kv *mvccpb.KeyValue
			if !decodeKV(f, &kv) {
				return false
			}
			m.PrevKvs = append(m.PrevKvs, kv)
		default:
			return false
		}
		return true
	})
}

func decodeTxn(b []byte, m *pb.TxnResponse, depth int) bool {
	if depth > maxDepth {
		return false
	}
	return eachField(b, func(num protowire.Number, t protowire.Type, x uint64, f []byte) bool {
		switch {
		case num == 1 && t == protowire.BytesType:
			return decodeHeader(f, &m.Header)
		case num == 2 && t == protowire.VarintType:
			m.Succeeded = x != 0
		case num == 3 && t == protowire.BytesType:
			op := &pb.ResponseOp{}
			if !decodeResponseOp(f, op, depth) {
				return false
			}
			m.Responses = append(m.Responses, op)
		default:
			return false
		}
		return true
	})
}

// decodeResponseOp reads one answer of a transaction. A member of the
// oneof that occurs again merges into the one set, as in protobuf; another
// member replaces it.
func decodeResponseOp(b []byte, op *pb.ResponseOp, depth int) bool {
	return eachField(b, func(num protowire.Number, t protowire.Type, x uint64, f []byte) bool {
		if t != protowire.BytesType {
			return false
		}
		switch num {
		case 1:
			r := sameOr(op.Response, &pb.ResponseOp_ResponseRange{ResponseRange: &pb.RangeResponse{}})
			op.Response = r
			return decodeRange(f, r.ResponseRange)
		case 2:
			r := sameOr(op.Response, &pb.ResponseOp_ResponsePut{ResponsePut: &pb.PutResponse{}})
			op.Response = r
			return decodePut(f, r.ResponsePut)
		case 3:
			r := sameOr(op.Response, &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: &pb.DeleteRangeResponse{}})
			op.Response = r
			return decodeDeleteRange(f, r.ResponseDeleteRange)
		case 4:
			r := sameOr(op.Response, &pb.ResponseOp_ResponseTxn{ResponseTxn: &pb.TxnResponse{}})
			op.Response = r
			return decodeTxn(f, r.ResponseTxn, depth+1)
		}
		return false
	})
}

// sameOr returns cur if it is a T, the oneof's member being read again,
// else fresh.
func sameOr[T any](cur any, fresh T) T {
	if c, ok := cur.(T); ok {
		return c
	}
	return fresh
}

func decodeWatch(b []byte, m *pb.WatchResponse) bool {
	return eachField(b, func(num protowire.Number, t protowire.Type, x uint64, f []byte) bool {
		switch {
		case num == 1 && t == protowire.BytesType:
			return decodeHeader(f, &m.Header)
		case num == 2 && t == protowire.VarintType:
			m.WatchId = int64(x)
		case num == 3 && t == protowire.VarintType:
			m.Created = x != 0
		case num == 4 && t == protowire.VarintType:
			m.Canceled = x != 0
		case num == 5 && t == protowire.VarintType:
			m.CompactRevision = int64(x)
		case num == 6 && t == protowire.BytesType && utf8.Valid(f):
			m.CancelReason = string(f)
		case num == 7 && t == protowire.VarintType:
			m.Fragment = x != 0
		case num == 11 && t == protowire.BytesType:
			ev := &mvccpb.Event{}
			if !decodeEvent(f, ev) {
				return false
			}
			m.Events = append(m.Events, ev)
		default:
			return false
		}
		return true
	})
}

func decodeEvent(b []byte, ev *mvccpb.Event) bool {
	return eachField(b, func(num protowire.Number, t protowire.Type, x uint64, f []byte) bool {
		switch {
		case num == 1 && t == protowire.VarintType:
			ev.Type = mvccpb.Event_EventType(int32(x))
		case num == 2 && t == protowire.BytesType:
			return decodeKV(f, &ev.Kv)
		case num == 3 && t == protowire.BytesType:
			return decodeKV(f, &ev.PrevKv)
		default:
			return false
		}
		return true
	})
}
