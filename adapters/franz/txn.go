package franz

// This file holds the exactly-once mode (WithTransactionalID): Produce, the
// transactional producer (a kgo client of its own with the transactional
// id) and the engine's TxnFunc, which commits one transaction per commit:
// the outputs of the records the commit marks done, then the offsets and
// our commit metadata through TxnOffsetCommit with the group's member id
// and generation (KIP-447), then EndTxn. kgo's GroupTransactSession is not
// used: it commits everything polled, and records here finish out of
// order.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/inorder/inorder/adapters/internal/engine"
)

var (
	// ErrNotTransactional is wrapped by Produce's error when ctx is not the
	// context of a handler call of a Consumer with WithTransactionalID.
	ErrNotTransactional = engine.ErrNotTransactional
	// ErrHandlerReturned is wrapped by Produce's error when the handler
	// call whose context it was given has returned: its outputs are
	// settled.
	ErrHandlerReturned = engine.ErrCallEnded
)

// Produce records rec as an output of the record being handled, from a
// handler of a Consumer with WithTransactionalID (ctx is the handler's
// context, or derived from it; any goroutine until the handler returns).
// rec is copied (its slices are not: do not change them afterwards); set
// its Topic; it is partitioned by kgo's default partitioner, except on the
// dead-letter topic (WithDeadLetter), where its Partition is used. The
// output is
// produced in the transaction that commits the handled record as done, and
// becomes visible to read-committed readers exactly when that transaction
// commits; if the handler fails (or panics) its outputs are discarded (a
// retry produces anew). Produce does not block and does not report produce
// errors (a refused output aborts its transaction, which is retried with
// the same outputs). It returns an error wrapping ErrNotTransactional for
// any other context, wrapping ErrHandlerReturned after the handler
// returned, and an error for a nil record.
func Produce(ctx context.Context, rec *kgo.Record) error {
	if rec == nil {
		return errors.New("franz: Produce: nil record")
	}
	cp := *rec
	if err := engine.AddOutput(ctx, &cp); err != nil {
		return fmt.Errorf("franz: Produce: %w", err)
	}
	return nil
}

// transactional reports whether the Consumer runs exactly once.
func (c *Consumer) transactional() bool { return c.cfg.txnID != nil }

// newTxnSession returns the Run's session: the engine's transactional one,
// with the producer that commits it, or a plain one. The producer is
// closed by the returned func, after the session.
func (r *runner) newTxnSession(eng *engine.Engine[*kgo.Record]) (*engine.Session[*kgo.Record], func(), error) {
	if !r.c.transactional() {
		return eng.NewSession(r.commit), func() {}, nil
	}
	opts, err := r.c.connOpts()
	if err != nil {
		return nil, nil, err
	}
	// TxnOffsetCommit v6 and OffsetFetch v8 name topics by id, which
	// requests built here do not carry: cap them (kgo's own commits are on
	// the consumer's client).
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(kmsg.TxnOffsetCommit.Int16(), 5)
	vs.SetMaxKeyVersion(kmsg.OffsetFetch.Int16(), 7)
	opts = append(opts,
		kgo.TransactionalID(*r.cfg.txnID),
		kgo.TransactionTimeout(txnTimeout(r.opts.CommitTimeout)),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MaxVersions(vs),
		kgo.RecordPartitioner(outPartitioner{dlt: r.opts.DeadLetterTopic,
			def: kgo.UniformBytesPartitioner(64<<10, true, true, nil)}), // kgo's default
	)
	t := &txnProducer{r: r, id: *r.cfg.txnID, opts: opts, timeout: r.opts.CommitTimeout}
	cl, err := t.client()
	if err != nil {
		return nil, nil, err
	}
	// Initialise the producer id at once: that fences a previous process
	// of this transactional id and aborts its open transaction, whose
	// offsets would otherwise hold this member's own offset fetch
	// (unstable until the transaction ends) for the transaction timeout.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, _, err := cl.ProducerID(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("franz: initialising the transactional producer failed (retried at the first commit)",
				"group", r.c.group, "transactional_id", t.id, "error", err)
		}
	}()
	return eng.NewTxnSession(t.commit), func() {
		cancel()
		<-done
		t.close()
	}, nil
}

// outPartitioner partitions the transactional producer's records: the
// dead-letter topic's (WithDeadLetter) by the partition each record
// carries (engine.DeadLetterPartition chose it), every other topic's with
// kgo's default partitioner.
type outPartitioner struct {
	dlt string
	def kgo.Partitioner
}

func (p outPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.dlt != "" && topic == p.dlt {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return p.def.ForTopic(topic)
}

// txnTimeout is the transaction timeout for a commit timeout d: a
// transaction lasts one commit (produce, offsets, end), each step bounded
// by d; a member frozen with a transaction open holds the partitions'
// next owner (its offset fetch waits for stable offsets) at most this long.
func txnTimeout(d time.Duration) time.Duration { return max(2*d, 10*time.Second) }

// txnProducer is the transactional producer of one Run. Its client is
// created at the first transaction and again after a failure that leaves
// the producer in an unknown state (a new client initialises the producer
// id anew, which fences the old one and aborts its open transaction).
// The engine calls commit from one goroutine at a time; close after the
// last.
type txnProducer struct {
	r       *runner
	id      string
	opts    []kgo.Opt
	timeout time.Duration

	cl *kgo.Client
}

func (t *txnProducer) client() (*kgo.Client, error) {
	if t.cl == nil {
		cl, err := kgo.NewClient(t.opts...)
		if err != nil {
			return nil, fmt.Errorf("%w: transactional producer: %w", ErrClient, err)
		}
		t.cl = cl
	}
	return t.cl, nil
}

// reset drops the client: the next transaction starts a new producer
// session.
func (t *txnProducer) reset() {
	if t.cl != nil {
		t.cl.Close()
		t.cl = nil
	}
}

func (t *txnProducer) close() { t.reset() }

// begin begins a transaction; a producer in a fatal state (refused or
// fenced earlier) is replaced by a new one, once.
func (t *txnProducer) begin() (*kgo.Client, error) {
	for try := 0; ; try++ {
		cl, err := t.client()
		if err != nil {
			return nil, err
		}
		err = cl.BeginTransaction()
		if err == nil {
			return cl, nil
		}
		t.reset()
		if try > 0 {
			return nil, fmt.Errorf("franz: begin transaction: %w", err)
		}
		t.r.log.Info("franz: transactional producer unusable, starting a new producer session",
			"group", t.r.c.group, "transactional_id", t.id, "error", err)
	}
}

// commit is the engine's TxnFunc. Without outputs the offsets go in a plain
// group commit, fenced by generation. (It follows the transaction that
// carried the partition's previous offsets, which ended before: kfake
// applies a transaction's offsets at its EndTxn, and Kafka keeps the
// offset record appended last when the marker lands.)
func (t *txnProducer) commit(ctx context.Context, offs []engine.Offset, outs []any) error {
	if len(outs) == 0 {
		errs, err := t.r.commit(ctx, offs)
		if err != nil {
			return err
		}
		return errors.Join(errs...)
	}
	// The group membership the offsets are committed under is read now,
	// when this member owns the partitions of offs, not after the
	// produce: a member frozen meanwhile (SIGSTOP, a paused VM) that
	// rejoined under a new member id by the time it reads would commit
	// offsets of partitions it lost. A loss cancels ctx before kgo
	// rejoins, so a membership read before ctx is seen cancelled is the
	// one the offsets were taken under. Not a member (no id or
	// generation): nothing to fence with, refused.
	member, generation := t.r.cl.GroupMetadata()
	if member == "" || generation < 0 {
		return fmt.Errorf("%w: franz: transactional commit: not a group member (member %q, generation %d)",
			engine.ErrFenced, member, generation)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	cl, err := t.begin()
	if err != nil {
		return err
	}
	var (
		mu   sync.Mutex
		perr error
	)
	for _, o := range outs {
		rec := *o.(*kgo.Record) // a fresh copy per attempt: kgo writes into it
		cl.Produce(ctx, &rec, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if perr == nil {
					perr = err
				}
				mu.Unlock()
			}
		})
	}
	err = cl.Flush(ctx)
	mu.Lock()
	if err == nil && perr != nil {
		err = fmt.Errorf("franz: transactional produce: %w", perr)
	}
	mu.Unlock()
	if err == nil {
		err = t.sendOffsets(ctx, cl, offs, member, generation)
	}
	if err != nil {
		t.abort(ctx, cl)
		return err
	}
	// The commit, once asked for, is not cancelled: a cancelled EndTxn
	// leaves its outcome unknown.
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.timeout)
	defer cancel()
	err = cl.EndTransaction(ectx, kgo.TryCommit)
	if err == nil {
		return nil
	}
	err = fmt.Errorf("franz: commit transaction: %w", err)
	definite := false
	if ke, ok := errors.AsType[*kerr.Error](err); ok && !ke.Retriable && ke.Code != kerr.UnknownServerError.Code {
		definite = true // the broker said no: aborted
	}
	t.abort(ctx, cl)
	if definite {
		return err
	}
	// Unknown outcome: the abort above (a producer id reload) ended the
	// transaction either way; what the group holds now says which.
	landed, lerr := t.landed(ectx, offs)
	switch {
	case lerr != nil:
		t.r.log.Error("franz: transaction outcome unknown; its records restart from the group's commits",
			"group", t.r.c.group, "error", err, "check_error", lerr)
		return fmt.Errorf("%w: %w", engine.ErrFenced, err)
	case landed:
		t.r.log.Warn("franz: transaction commit reported an error but committed", "group", t.r.c.group, "error", err)
		return nil
	}
	return err
}

// abort aborts the open transaction; if that fails, the producer is
// dropped (a new one fences it).
func (t *txnProducer) abort(ctx context.Context, cl *kgo.Client) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.timeout)
	defer cancel()
	err := cl.AbortBufferedRecords(actx)
	if err == nil {
		err = cl.EndTransaction(actx, kgo.TryAbort)
	}
	if err != nil {
		t.r.log.Warn("franz: aborting a transaction failed, starting a new producer session",
			"group", t.r.c.group, "transactional_id", t.id, "error", err)
		t.renew(actx)
	}
}

// renew replaces the client and initialises its producer id at once:
// that fences the old session and aborts its open transaction, which
// would otherwise hold the output's last stable offset and the group's
// stable offsets (landed's read, the next owner's offset fetch) until the
// transaction timeout. A failure is logged; the next commit tries again.
func (t *txnProducer) renew(ctx context.Context) {
	t.reset()
	cl, err := t.client()
	if err == nil {
		_, _, err = cl.ProducerID(ctx)
	}
	if err != nil {
		t.r.log.Warn("franz: starting a new producer session failed (retried at the next commit)",
			"group", t.r.c.group, "transactional_id", t.id, "error", err)
	}
}

// sendOffsets adds the group to the open transaction and commits offs in
// it, fenced by member id and generation (the consumer's when the commit
// began). An error refused for the generation or member wraps
// engine.ErrFenced.
func (t *txnProducer) sendOffsets(ctx context.Context, cl *kgo.Client, offs []engine.Offset, member string, generation int32) error {
	id, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return fmt.Errorf("franz: producer id: %w", err)
	}
	group := t.r.c.group
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = t.id, id, epoch, group
	aresp, err := add.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(aresp.ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("franz: add offsets to transaction: %w", err)
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = t.id, group, id, epoch
	req.MemberID, req.Generation = member, generation
	if v, _ := t.r.cl.OptValue(kgo.InstanceID).(*string); v != nil {
		req.InstanceID = v
	}
	idx := make(map[string]int)
	t.r.epMu.Lock()
	for _, o := range offs {
		i, ok := idx[o.TP.Topic]
		if !ok {
			i = len(req.Topics)
			idx[o.TP.Topic] = i
			rt := kmsg.NewTxnOffsetCommitRequestTopic()
			rt.Topic = o.TP.Topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = o.TP.Partition, o.Offset, -1
		if ep := t.r.epochs[o.TP]; ep != nil {
			rp.LeaderEpoch = ep.before(o.Offset)
		}
		rp.Metadata = kmsg.StringPtr(o.Metadata)
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	t.r.epMu.Unlock()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("franz: transactional offset commit: %w", err)
	}
	n := 0
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			n++
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				err = fmt.Errorf("franz: transactional offset commit %s[%d] (member %s, generation %d): %w",
					rt.Topic, rp.Partition, member, generation, err)
				if errors.Is(err, kerr.IllegalGeneration) || errors.Is(err, kerr.UnknownMemberID) ||
					errors.Is(err, kerr.FencedInstanceID) {
					err = fmt.Errorf("%w: %w", engine.ErrFenced, err)
				}
				return err
			}
		}
	}
	if n != len(offs) {
		return fmt.Errorf("franz: transactional offset commit: %d results for %d offsets", n, len(offs))
	}
	return nil
}

// landed reports whether the group's commits are offs (offset and
// metadata), read back as stable offsets: whether the transaction that
// carried them committed. Every partition of offs moved since this
// member's last commit (the engine sends only those), so a match is ours.
func (t *txnProducer) landed(ctx context.Context, offs []engine.Offset) (bool, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = t.r.c.group
	req.RequireStable = true
	idx := make(map[string]int)
	for _, o := range offs {
		i, ok := idx[o.TP.Topic]
		if !ok {
			i = len(req.Topics)
			idx[o.TP.Topic] = i
			rt := kmsg.NewOffsetFetchRequestTopic()
			rt.Topic = o.TP.Topic
			req.Topics = append(req.Topics, rt)
		}
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, o.TP.Partition)
	}
	for {
		cl, err := t.client()
		if err != nil {
			return false, err
		}
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if errors.Is(err, kerr.UnstableOffsetCommit) { // the abort is still being written
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return false, err
		}
		got := make(map[TopicPartition]engine.Offset)
		unstable := false
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				err := kerr.ErrorForCode(rp.ErrorCode)
				if errors.Is(err, kerr.UnstableOffsetCommit) {
					unstable = true
					continue
				}
				if err != nil {
					return false, err
				}
				md := ""
				if rp.Metadata != nil {
					md = *rp.Metadata
				}
				got[TopicPartition{Topic: rt.Topic, Partition: rp.Partition}] = engine.Offset{Offset: rp.Offset, Metadata: md}
			}
		}
		if unstable {
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		for _, o := range offs {
			if g, ok := got[o.TP]; !ok || g.Offset != o.Offset || g.Metadata != o.Metadata {
				return false, nil
			}
		}
		return true, nil
	}
}
