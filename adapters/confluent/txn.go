package confluent

// This file holds the exactly-once mode (WithTransactionalID): Produce, the
// transactional librdkafka producer and the engine's TxnFunc, which
// commits one transaction per commit: the outputs of the messages the
// commit marks done, then the offsets with our commit metadata through
// SendOffsetsToTransaction with the consumer's group metadata (member id
// and generation: KIP-447), then CommitTransaction.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/internal/engine"
)

var (
	// ErrNotTransactional is wrapped by Produce's error when ctx is not the
	// context of a handler call of a Consumer with WithTransactionalID.
	ErrNotTransactional = engine.ErrNotTransactional
	// ErrHandlerReturned is wrapped by Produce's error when the handler
	// call whose context it was given has returned.
	ErrHandlerReturned = engine.ErrCallEnded
)

// Produce records msg as an output of the message being handled, from a
// handler of a Consumer with WithTransactionalID (ctx is the handler's
// context, or derived from it; any goroutine until the handler returns).
// msg is copied (its slices are not: do not change them afterwards); set
// its TopicPartition's Topic, and Partition to kafka.PartitionAny unless
// you choose one. The output is produced in the transaction that commits
// the handled message as done and becomes visible to read-committed
// readers exactly when it commits; if the handler fails (or panics) its
// outputs are discarded (a retry produces anew). Produce does not block and
// does not report produce errors (a refused output aborts its transaction,
// which is retried with the same outputs). It returns an error wrapping
// ErrNotTransactional for any other context, wrapping ErrHandlerReturned
// after the handler returned, and an error for a nil message or topic.
func Produce(ctx context.Context, msg *kafka.Message) error {
	if msg == nil || msg.TopicPartition.Topic == nil {
		return errors.New("confluent: Produce: nil message or topic")
	}
	cp := *msg
	if err := engine.AddOutput(ctx, &cp); err != nil {
		return fmt.Errorf("confluent: Produce: %w", err)
	}
	return nil
}

func (c *Consumer) transactional() bool { return c.cfg.txnID != nil }

// newTxnSession returns the Run's session: the engine's transactional one,
// with the producer that commits it, or a plain one; close (after the
// session closed) destroys the producer.
func (r *runner) newTxnSession() (*engine.Session[*kafka.Message], func()) {
	if !r.c.transactional() {
		return r.eng.NewSession(r.commit), func() {}
	}
	cm := kafka.ConfigMap{}
	for k, v := range r.c.cm {
		if producerKeys[k] || hasAnyPrefix(k, producerPrefixes) {
			cm[k] = v
		}
	}
	cm["transactional.id"] = *r.cfg.txnID
	cm["transaction.timeout.ms"] = int(txnTimeout(r.opts.CommitTimeout) / time.Millisecond)
	cm["acks"] = "all"
	cm["linger.ms"] = 5
	t := &txnProducer{r: r, cm: cm, timeout: r.opts.CommitTimeout}
	// Initialise at once: that fences a previous process of this
	// transactional id and aborts its open transaction, whose offsets
	// would otherwise hold this member's offset fetch until it times out.
	// The first commit retries a failure.
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.RequestTimeout)
	defer cancel()
	if _, err := t.producer(ctx); err != nil {
		r.log.Warn("confluent: initialising the transactional producer failed (retried at the first commit)",
			"group", r.c.group, "transactional_id", *r.cfg.txnID, "error", err)
	}
	return r.eng.NewTxnSession(t.commit), t.reset
}

// txnTimeout is the transaction timeout for a commit timeout d (see the
// franz adapter's).
func txnTimeout(d time.Duration) time.Duration { return max(2*d, 10*time.Second) }

// txnProducer is the transactional producer of one Run, made again after
// a fatal error (a new one fences the old and aborts its transaction). The
// engine calls commit from one goroutine at a time; reset after the last.
type txnProducer struct {
	r       *runner
	cm      kafka.ConfigMap
	timeout time.Duration

	cur *producer
}

// producer returns the producer, making and initialising one if needed.
func (t *txnProducer) producer(ctx context.Context) (*producer, error) {
	if t.cur != nil {
		return t.cur, nil
	}
	cm := cloneMap(t.cm)
	pr := &producer{logs: make(chan kafka.LogEvent, 256), stop: make(chan struct{}), drained: make(chan struct{})}
	cm["go.logs.channel.enable"] = true
	cm["go.logs.channel"] = pr.logs
	p, err := kafka.NewProducer(&cm)
	if err != nil {
		return nil, fmt.Errorf("%w: transactional producer: librdkafka: %w", ErrClient, err)
	}
	pr.p = p
	go pr.drain(t.r.log, "(transactional outputs)")
	if err := p.InitTransactions(ctx); err != nil {
		pr.close()
		return nil, fmt.Errorf("confluent: init transactions: %w", err)
	}
	t.cur = pr
	return pr, nil
}

// reset destroys the producer: the next transaction makes a new one.
func (t *txnProducer) reset() {
	if t.cur != nil {
		t.cur.close()
		t.cur = nil
	}
}

// commit is the engine's TxnFunc. Without outputs the offsets go in a plain
// group commit.
func (t *txnProducer) commit(ctx context.Context, offs []engine.Offset, outs []any) error {
	if len(outs) == 0 {
		errs, err := t.r.commit(ctx, offs)
		if err != nil {
			return err
		}
		return errors.Join(errs...)
	}
	// The group metadata the offsets are committed under is read now,
	// when this member owns the partitions of offs, not after the
	// produce: a member frozen meanwhile that rejoined by the time it
	// reads would commit offsets of partitions it lost (see the franz
	// adapter's commit).
	gm, err := t.r.kc.GetConsumerGroupMetadata()
	if err != nil {
		return fmt.Errorf("confluent: consumer group metadata: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	pr, err := t.producer(ctx)
	if err != nil {
		return err
	}
	p := pr.p
	if err := p.BeginTransaction(); err != nil {
		t.reset() // an unusable producer (fatal): a new one next time
		return fmt.Errorf("confluent: begin transaction: %w", err)
	}
	err = t.produce(ctx, p, outs)
	if err == nil {
		err = t.sendOffsets(ctx, p, offs, gm)
	}
	if err != nil {
		t.abort(p, err)
		return err
	}
	// Once asked for, the commit is not cancelled (its outcome would be
	// unknown); librdkafka retries it within the timeout.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.timeout)
	defer cancel()
	err = p.CommitTransaction(cctx)
	if err == nil {
		return nil
	}
	err = fmt.Errorf("confluent: commit transaction: %w", err)
	var ke kafka.Error
	if errors.As(err, &ke) && ke.TxnRequiresAbort() {
		t.abort(p, err) // refused: aborted
		return err
	}
	// Fatal or unknown outcome: a new producer fences this one (aborting
	// the transaction if it is still open); the group's stable offsets
	// then say whether it committed. (Read before the new producer, they
	// stay unstable until the transaction times out.)
	t.renew(cctx)
	landed, lerr := t.landed(cctx, offs)
	switch {
	case lerr != nil:
		t.r.log.Error("confluent: transaction outcome unknown; its messages restart from the group's commits",
			"group", t.r.c.group, "error", err, "check_error", lerr)
		return fmt.Errorf("%w: %w", engine.ErrFenced, err)
	case landed:
		t.r.log.Warn("confluent: transaction commit reported an error but committed", "group", t.r.c.group, "error", err)
		return nil
	}
	return err
}

// produce produces outs in the open transaction and waits for their
// delivery reports.
func (t *txnProducer) produce(ctx context.Context, p *kafka.Producer, outs []any) error {
	reports := make(chan kafka.Event, len(outs))
	sent := 0
	var first error
	for _, o := range outs {
		m := *o.(*kafka.Message) // a fresh copy per attempt
		if err := p.Produce(&m, reports); err != nil {
			first = fmt.Errorf("confluent: transactional produce: %w", err)
			break
		}
		sent++
	}
	for range sent {
		select {
		case ev := <-reports:
			if m, ok := ev.(*kafka.Message); ok && m.TopicPartition.Error != nil && first == nil {
				first = fmt.Errorf("confluent: transactional produce: %w", m.TopicPartition.Error)
			}
		case <-ctx.Done():
			// The abort purges what is not delivered; its reports go to
			// reports, which nobody reads any more (buffered: no block).
			if first == nil {
				first = ctx.Err()
			}
			return first
		}
	}
	return first
}

// sendOffsets commits offs in the open transaction, fenced by gm, the
// consumer's group metadata (member id, generation) when the commit began.
func (t *txnProducer) sendOffsets(ctx context.Context, p *kafka.Producer, offs []engine.Offset, gm *kafka.ConsumerGroupMetadata) error {
	tps := make([]kafka.TopicPartition, 0, len(offs))
	for _, o := range offs {
		topic, meta := o.TP.Topic, o.Metadata
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: o.TP.Partition,
			Offset: kafka.Offset(o.Offset), Metadata: &meta})
	}
	if err := p.SendOffsetsToTransaction(ctx, tps, gm); err != nil {
		err = fmt.Errorf("confluent: send offsets to transaction: %w", err)
		var ke kafka.Error
		if errors.As(err, &ke) {
			switch ke.Code() {
			case kafka.ErrIllegalGeneration, kafka.ErrUnknownMemberID, kafka.ErrFencedInstanceID:
				err = fmt.Errorf("%w: %w", engine.ErrFenced, err)
			}
		}
		return err
	}
	return nil
}

// abort aborts the open transaction (why: the error that made it fail); a
// producer that cannot abort is dropped.
func (t *txnProducer) abort(p *kafka.Producer, why error) {
	actx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	if err := p.AbortTransaction(actx); err != nil {
		t.r.log.Warn("confluent: aborting a transaction failed, starting a new producer",
			"group", t.r.c.group, "error", err, "aborted_for", why)
		t.renew(actx)
	}
}

// renew replaces the producer at once: the new one's InitTransactions
// fences the old one and aborts its open transaction, which would
// otherwise hold the output's last stable offset and the group's stable
// offsets (this member's reads, the next owner's offset fetch) until the
// transaction timeout. A failure is logged; the next commit tries again.
func (t *txnProducer) renew(ctx context.Context) {
	t.reset()
	if _, err := t.producer(ctx); err != nil {
		t.r.log.Warn("confluent: starting a new transactional producer failed (retried at the next commit)",
			"group", t.r.c.group, "error", err)
	}
}

// landed reports whether the group's stable commits (read_committed
// consumers read them with require_stable) are offs: whether the
// transaction that carried them committed.
func (t *txnProducer) landed(ctx context.Context, offs []engine.Offset) (bool, error) {
	tps := make([]kafka.TopicPartition, 0, len(offs))
	for _, o := range offs {
		topic := o.TP.Topic
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: o.TP.Partition})
	}
	ms := int(time.Until(deadlineOr(ctx, time.Now().Add(t.timeout))) / time.Millisecond)
	got, err := t.r.kc.Committed(tps, max(ms, 1))
	if err != nil {
		return false, err
	}
	want := make(map[TopicPartition]engine.Offset, len(offs))
	for _, o := range offs {
		want[o.TP] = o
	}
	for _, g := range got {
		w, ok := want[toTP(g)]
		md := ""
		if g.Metadata != nil {
			md = *g.Metadata
		}
		if g.Error != nil {
			return false, g.Error
		}
		if !ok || int64(g.Offset) != w.Offset || md != w.Metadata {
			return false, nil
		}
	}
	return len(got) == len(offs), nil
}

func deadlineOr(ctx context.Context, d time.Time) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return d
}
