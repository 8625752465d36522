package engine

// This file holds the transactional (exactly-once) commit path: the outputs
// a handler call records (AddOutput) against the message it handles, kept
// per partition once the call succeeded, and the commit that hands the
// adapter's TxnFunc the offsets + metadata of a commit together with the
// outputs of exactly the messages that commit marks done. A dead-lettered
// message's dead-letter call records its outputs (the dead-letter record)
// the same way (callDeadLetter).
//
// Why it is exact. A call's outputs are stored in its partition before the
// engine acks the message (the wrapper returns before the worker acks), so
// every message a commit's snapshot sees as done has its outputs stored when
// the commit selects them; a message acked after the snapshot is neither in
// the commit (offset, metadata) nor selected. The selection reads back the
// metadata being committed (Decode), not the snapshot: when the done set
// does not fit, only the prefix that was encoded counts. Outputs leave the
// store only when their transaction committed; an aborted transaction
// leaves them, with the commit point, for the next one. A partition that is
// revoked or lost takes its store with it (its Part is dropped): outputs
// of messages it did not commit are produced anew by the next owner, which
// handles those messages again.

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/inorder/inorder/ordset"
	"github.com/inorder/inorder/watermark/metadata"
)

var (
	// ErrNotTransactional is returned by AddOutput called with a context
	// that is not a transactional handler call's.
	ErrNotTransactional = errors.New("inorder: not in a transactional handler call")
	// ErrCallEnded is returned by AddOutput once the handler call whose
	// context it was given has returned.
	ErrCallEnded = errors.New("inorder: output after the handler call returned")
)

// TxnFunc commits one transaction holding outs and offs, or none of it.
// offs are the partitions' commits (next offset to read and commit
// metadata), to be committed fenced by the group generation and member id
// (KIP-447); outs are the outputs of the messages those commits mark done
// (below the offset or in the metadata) that no earlier transaction
// committed, each partition's in offset order, and in the order a call
// added them. It returns nil only if the transaction committed; any error
// means it was aborted (wrap ErrFenced when a retry cannot commit these
// partitions: generation or member gone). It must return soon after ctx
// ends, by aborting, unless the commit was already asked for. Called from
// one goroutine at a time per session.
type TxnFunc func(ctx context.Context, offs []Offset, outs []any) error

// NewTxnSession is NewSession for the exactly-once mode: each commit goes
// through fn as one transaction with the outputs the handler calls added
// (AddOutput) for the messages it marks done. The engine's handler must be
// wrapped by Transactional. fn must not be nil.
func (e *Engine[M]) NewTxnSession(fn TxnFunc) *Session[M] {
	if fn == nil {
		panic("engine: nil TxnFunc") // programmer error
	}
	return e.newSession(nil, fn)
}

// partKey is the context key of a partition's handler context: its *Part.
type partKey struct{}

// callKey is the context key of a transactional handler call: its *txnCall.
type callKey struct{}

// txnOuts are a partition's outputs of messages that were handled and not
// yet committed, by offset. Workers add; the commit path selects and
// removes. Safe for concurrent use.
type txnOuts struct {
	mu sync.Mutex
	m  map[int64][]any
}

func (t *txnOuts) put(offset int64, outs []any) {
	t.mu.Lock()
	if t.m == nil {
		t.m = make(map[int64][]any)
	}
	t.m[offset] = outs // a handler call of this assignment per offset succeeds at most once
	t.mu.Unlock()
}

// selectDone returns, in offset order, the offsets of the stored outputs
// below point or in done, and those outputs appended to outs.
func (t *txnOuts) selectDone(point int64, done *ordset.Set, outs []any) ([]int64, []any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keys []int64
	for off := range t.m {
		if off < point || (done != nil && done.Contains(off)) {
			keys = append(keys, off)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		outs = append(outs, t.m[k]...)
	}
	return keys, outs
}

func (t *txnOuts) remove(keys []int64) {
	t.mu.Lock()
	for _, k := range keys {
		delete(t.m, k)
	}
	t.mu.Unlock()
}

// txnCall is one transactional handler call: the outputs it added, until
// it returns.
type txnCall struct {
	mu    sync.Mutex
	outs  []any
	ended bool
}

// AddOutput records out as an output of the message whose transactional
// handler call ctx belongs to (ctx or a context derived from it): out
// becomes visible when a transaction commits that message as done, and is
// discarded if the call fails. It returns an error wrapping
// ErrNotTransactional for any other context, and one wrapping ErrCallEnded
// once the call returned. Safe for concurrent use (from goroutines the
// handler started); it does not block.
func AddOutput(ctx context.Context, out any) error {
	c, _ := ctx.Value(callKey{}).(*txnCall)
	if c == nil {
		return ErrNotTransactional
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return ErrCallEnded
	}
	c.outs = append(c.outs, out)
	return nil
}

// Transactional wraps h for a session made by NewTxnSession: each call gets
// a context that AddOutput records outputs against; when the call returns
// nil its outputs are stored with its partition under the message's offset
// (offset returns it), before the engine acks the message; when it fails or
// panics they are dropped. Calls outside such a session's partitions run h
// unchanged (AddOutput refuses them).
func Transactional[M any](h Handler[M], offset func(M) int64) Handler[M] {
	return func(ctx context.Context, msg M) error {
		p, _ := ctx.Value(partKey{}).(*Part)
		if p == nil || p.txo == nil {
			return h(ctx, msg)
		}
		cctx, end := p.txo.begin(ctx, offset(msg))
		ok := false
		defer func() { end(ok) }() // a panic (recovered by the engine) drops the outputs
		err := h(cctx, msg)
		ok = err == nil
		return err
	}
}

// begin starts a transactional call for the message at offset: AddOutput
// records against the returned context until end(ok) is called (once,
// when the call returned): ok stores the outputs under offset, else they
// are dropped. The handler wrapper and the dead letter (a dead-lettered
// message's dead-letter record goes in the transaction that commits it as
// done) both go through it, before the message is acked.
func (t *txnOuts) begin(ctx context.Context, offset int64) (context.Context, func(ok bool)) {
	c := &txnCall{}
	return context.WithValue(ctx, callKey{}, c), func(ok bool) {
		c.mu.Lock()
		c.ended = true
		outs := c.outs
		c.outs = nil
		c.mu.Unlock()
		if ok && len(outs) > 0 {
			t.put(offset, outs)
		}
	}
}

// send hands offs (the commits of which, in order) to the session's
// CommitFunc, or, in the exactly-once mode, to its TxnFunc with the outputs
// of the messages offs marks done; results as CommitFunc's. Under the
// commit lock.
func (s *Session[M]) send(ctx context.Context, offs []Offset, which []*Part) ([]error, error) {
	if s.txn == nil {
		return s.commit(ctx, offs)
	}
	type taken struct {
		t    *txnOuts
		keys []int64
	}
	var outs []any
	took := make([]taken, 0, len(offs))
	for i, o := range offs {
		p := which[i]
		var done *ordset.Set
		if o.Metadata != "" {
			d, err := metadata.Decode(o.Metadata, o.Offset)
			if err != nil { // we just encoded it: a bug
				s.e.log.Error("inorder: decoding our own commit metadata", "topic", p.TP.Topic,
					"partition", p.TP.Partition, "error", err)
				return nil, err
			}
			done = d
		}
		var keys []int64
		keys, outs = p.txo.selectDone(o.Offset, done, outs)
		took = append(took, taken{p.txo, keys})
	}
	if err := s.txn(ctx, offs, outs); err != nil {
		return nil, err
	}
	for _, t := range took {
		t.t.remove(t.keys)
	}
	return make([]error, len(offs)), nil
}
